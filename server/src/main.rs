//! `sluiced`: run the Sluice daemon. See `sluiced --help` and the README.

use clap::Parser;
use sluice_server::daemon::{self, Args, Config, LogFormat};
use std::io::IsTerminal;

/// mimalloc instead of glibc's malloc: the request path allocates per request and per record
/// (vectors of a PutRecords' 500 records, answers), and glibc's `free` of a chunk of 64 KiB or
/// more consolidates its fast bins every time; allocation was 11% of sluiced's CPU under
/// `bench/peers/iggy.sh`'s load (`bench/results/2026-12-02-native-path/`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let check_only = args.check_config;
    let config = Config::resolve(args)?;
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_level)?;
    if check_only {
        println!("configuration is valid:\n{config:#?}");
        return Ok(());
    }
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_writer(std::io::stderr);
    match config.log_format {
        // A service manager's log file gets no colour escapes; a terminal does.
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => logs.json().with_current_span(true).with_span_list(false).init(),
    }
    daemon::run(config)
}
