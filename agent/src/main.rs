//! `sluice-agent`: ships log files into streams and delivery streams, reading the Kinesis
//! Agent's `agent.json`. See `docs/agent.md`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sluice_agent::config::AgentConfig;
use sluice_agent::file_sink::{self, Frame};
use sluice_agent::metrics::Status;
use sluice_agent::run::{self, RunOptions};

/// The AWS agent's configuration path, so an existing host needs no new flag.
const CONFIG_DEFAULT: &str = "/etc/aws-kinesis/agent.json";

#[derive(Parser)]
#[command(
    name = "sluice-agent",
    version,
    about = "Tails log files and ships them into streams, reading the Kinesis Agent's agent.json"
)]
struct Cli {
    /// The Kinesis Agent configuration file.
    #[arg(long, short = 'c', default_value = CONFIG_DEFAULT, global = true)]
    config: PathBuf,
    /// Write records to files in DIR (one per destination) instead of shipping them to
    /// streams (the default: PutRecords to `kinesis.endpoint`; unset, AWS's regional endpoint).
    #[arg(long, value_name = "DIR", global = true)]
    sink_file: Option<PathBuf>,
    /// A PEM file of CA certificates that HTTPS endpoints may chain to, besides the system's
    /// roots (default: `AWS_CA_BUNDLE`; `SSL_CERT_FILE` replaces the system's roots).
    #[arg(long, value_name = "FILE", global = true)]
    ca_bundle: Option<PathBuf>,
    /// Ship what the files hold now, then exit.
    #[arg(long)]
    once: bool,
    /// The status file (default: the checkpoint file's path plus `.status`).
    #[arg(long, value_name = "PATH", global = true)]
    status_file: Option<PathBuf>,
    /// Poll files instead of using inotify.
    #[arg(long)]
    no_inotify: bool,
    /// Records in flight per flow: the bound on duplicates after a crash, traded against
    /// throughput (default and maximum 65536).
    #[arg(long, value_name = "N")]
    window_records: Option<usize>,
    /// Serve the agent's counters at GET /metrics (Prometheus text) on this address, e.g.
    /// 127.0.0.1:9465. Default: no metrics port.
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<std::net::SocketAddr>,
    /// Log filter (`error`, `warn`, `info`, `debug`, or a tracing filter).
    #[arg(long, default_value = "info")]
    log_level: String,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Print the running agent's status (from its status file).
    Status {
        /// Print the status file as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check a configuration: print what it means and every key that is ignored.
    CheckConfig,
    /// Print the records of a `--sink-file` file as JSON lines.
    SinkDump { file: PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&cli.log_level).unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run_cli(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("sluice-agent: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_cli(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Some(Command::SinkDump { file }) => sink_dump(&file),
        Some(Command::CheckConfig) => {
            let config = AgentConfig::load(&cli.config)?;
            for flow in &config.flows {
                println!(
                    "flow {}: {:?} {}, initialPosition {:?}, {} processing option(s)",
                    flow.id,
                    flow.destination.kind,
                    flow.destination.name,
                    flow.initial_position,
                    flow.processing.len()
                );
            }
            for warning in &config.warnings {
                println!("warning: {warning}");
            }
            // Whether this build can run it: the sink's refusals (an https endpoint, a
            // delivery stream without an HTTP firehose.endpoint) fail the check, after
            // everything else was printed.
            let options = RunOptions {
                sink_dir: cli.sink_file.clone(),
                ca_bundle: cli.ca_bundle.clone(),
                ..RunOptions::default()
            };
            match run::check_sink(&config, &options)? {
                Some(plan) => {
                    println!("sink: {plan}");
                    for flow in config.flows.iter().filter(|f| sluice_agent::producer_sink::aggregates(f)) {
                        println!(
                            "flow {}: through the KPL producer, aggregates of at most {} bytes",
                            flow.id, flow.aggregated_record_size_bytes
                        );
                    }
                }
                None => println!(
                    "sink: files in {}",
                    cli.sink_file.as_deref().unwrap_or(std::path::Path::new("?")).display()
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Status { json }) => {
            let options = RunOptions { status_file: cli.status_file.clone(), ..RunOptions::default() };
            let path = match &cli.status_file {
                Some(path) => path.clone(),
                None => run::status_path(&AgentConfig::load(&cli.config)?, &options),
            };
            let status = Status::load(&path)?;
            // SAFETY: kill with signal 0 sends nothing; it only asks whether the pid exists.
            let alive = unsafe { libc::kill(status.pid as libc::pid_t, 0) } == 0;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                let age_ms = status_age_ms(&status);
                println!(
                    "sluice-agent (pid {}) is {}; status written {} ms ago; sink: {}",
                    status.pid,
                    if alive { "running" } else { "not running" },
                    age_ms,
                    status.sink
                );
                for line in status.lines() {
                    println!("{line}");
                }
                for flow in &status.flows {
                    for file in &flow.files {
                        println!(
                            "  {}: size {}, acknowledged {}, lag {} bytes",
                            file.path.display(),
                            file.size,
                            file.acked_offset,
                            file.lag_bytes
                        );
                    }
                }
            }
            // LSB `status`: 3 means "not running".
            Ok(if alive { ExitCode::SUCCESS } else { ExitCode::from(3) })
        }
        None => {
            let config = AgentConfig::load(&cli.config)?;
            let load_options = RunOptions {
                sink_dir: cli.sink_file.clone(),
                ca_bundle: cli.ca_bundle.clone(),
                ..RunOptions::default()
            };
            // A configuration this sink cannot serve (an https endpoint, a delivery stream
            // without an HTTP firehose.endpoint) is refused now, before a signal handler, a
            // thread or a file is touched.
            run::check_sink(&config, &load_options).with_context(|| format!("{}", cli.config.display()))?;
            let stop = Arc::new(AtomicBool::new(false));
            let report = Arc::new(AtomicBool::new(false));
            for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
                signal_hook::flag::register(signal, Arc::clone(&stop)).context("installing signal handlers")?;
            }
            signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(&report))
                .context("installing signal handlers")?;
            let options = RunOptions {
                sink_dir: cli.sink_file,
                once: cli.once,
                status_file: cli.status_file,
                no_inotify: cli.no_inotify,
                window_records: cli.window_records,
                metrics_listen: cli.metrics_listen,
                ca_bundle: cli.ca_bundle,
            };
            let summary = run::run(config, options, stop, report)?;
            for line in summary.status.lines() {
                tracing::info!("{line}");
            }
            if summary.records_unacknowledged > 0 {
                tracing::warn!(
                    records = summary.records_unacknowledged,
                    "exiting with records unacknowledged; they will be sent again"
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn status_age_ms(status: &Status) -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
    now.saturating_sub(status.updated_unix_ms)
}

fn sink_dump(file: &std::path::Path) -> anyhow::Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut write_error = None;
    let (_, error) = file_sink::scan_file(file, |frame| {
        let line = match frame {
            Frame::Session { pid, unix_ms } => serde_json::json!({"session": {"pid": pid, "unixMs": unix_ms}}),
            Frame::Record { partition_key, data } => match String::from_utf8(data) {
                Ok(text) => serde_json::json!({"partitionKey": partition_key, "data": text}),
                Err(e) => serde_json::json!({"partitionKey": partition_key, "dataHex": e.into_bytes().iter().map(|b| format!("{b:02x}")).collect::<String>()}),
            },
        };
        if let Err(e) = writeln!(out, "{line}") {
            write_error.get_or_insert(e);
        }
    })
    .with_context(|| format!("reading {}", file.display()))?;
    out.flush()?;
    if let Some(e) = write_error {
        return Err(e.into());
    }
    if let Some(error) = error {
        eprintln!("sluice-agent: {}: {error} (a torn tail is cut when the agent opens the file again)", file.display());
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
