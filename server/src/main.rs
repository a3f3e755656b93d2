//! `sluiced`: run the Sluice daemon. See `sluiced --help` and the README.

use clap::Parser;
use sluice_server::daemon::{self, Args, Config};

fn main() -> anyhow::Result<()> {
    let config = Config::resolve(Args::parse())?;
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&config.log_level)?)
        .with_target(false)
        .init();
    daemon::run(config)
}
