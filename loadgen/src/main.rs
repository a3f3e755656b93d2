//! `sluice-loadgen`: drives a running `sluiced` and reports what it measured.
//!
//! Scenarios (subcommands): `limits` proves the per-shard quotas, `latency` draws enhanced
//! fan-out against polling latency, `throughput` finds the durable ingest ceiling, `queue`
//! measures Kinesis queues with competing consumers (over HTTP), `endure` writes to a cluster
//! through leader kills and partitions and logs every acknowledged record; `check`
//! compares a short run of all three with a committed baseline, as ratios (CI). Each scenario
//! prints a live progress line, then a summary table, and writes a JSON result (`--json`);
//! `latency` also writes HdrHistogram `.hgrm` files and an SVG plot. docs/benchmarks.md says
//! how to run them and read the results.
//!
//! The load generator runs on glommio, like the client it uses: one executor thread for
//! `limits` and `latency` (their load is light, and one thread keeps their bookkeeping
//! lock-free), `--client-threads` of them for `throughput`.

mod check;
mod cli;
mod conn;
mod endure;
mod latency;
mod limits;
mod payload;
mod plot;
mod progress;
mod queue;
mod rate;
mod server_metrics;
mod setup;
mod stats;
mod throughput;

use anyhow::Context;
use clap::Parser;
use cli::{Cli, Command};
use serde::Serialize;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("sluice-loadgen: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// Exit codes: 0 success, 1 a verdict or check failed, 2 the run itself failed.
fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Limits(args) => {
            let json = args.common.json.clone();
            let server = ServerMetrics::before(args.common.metrics.clone())?;
            let result = on_executor(move || limits::run(args))?;
            print!("{}", limits::table(&result));
            write_json(json.as_deref(), &server.after(&result)?)?;
            Ok(if result.pass { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Command::Latency(args) => {
            let (json, out_dir) = (args.common.json.clone(), args.common.out_dir());
            let server = ServerMetrics::before(args.common.metrics.clone())?;
            let result = on_executor(move || latency::run(args))?;
            let files = latency::write_outputs(&result, &out_dir)?;
            print!("{}", latency::table(&result));
            for file in files {
                println!("wrote {}", file.display());
            }
            write_json(json.as_deref(), &server.after(&result.json)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Throughput(args) => {
            let json = args.common.json.clone();
            let server = ServerMetrics::before(args.common.metrics.clone())?;
            let result = throughput::run(args)?;
            print!("{}", throughput::table(&result));
            write_json(json.as_deref(), &server.after(&result)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Queue(args) => {
            let json = args.common.json.clone();
            let server = ServerMetrics::before(args.common.metrics.clone())?;
            let result = on_executor(move || queue::run(args))?;
            print!("{}", queue::table(&result));
            write_json(json.as_deref(), &server.after(&result)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Endure(args) => {
            endure::validate(&args)?;
            let json = args.json.clone();
            let stop = stop_flag(args.until_stdin_closes)?;
            let result = on_executor(move || endure::run(args, stop))?;
            print!("{}", endure::table(&result));
            write_json(json.as_deref(), &result)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check(args) => {
            let report = check::run(&args)?;
            print!("{}", report.table());
            Ok(if report.pass() { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
    }
}

/// `--metrics`: the scrape before a run, and after it the result with the server's figures.
struct ServerMetrics {
    url: Option<String>,
    before: server_metrics::Scrape,
}

impl ServerMetrics {
    fn before(url: Option<String>) -> anyhow::Result<ServerMetrics> {
        let before = match &url {
            Some(url) => {
                server_metrics::watch(url);
                server_metrics::scrape(url)?
            }
            None => Default::default(),
        };
        Ok(ServerMetrics { url, before })
    }

    /// `result` as JSON, with `server_metrics` added (and the summary printed) under `--metrics`.
    fn after(&self, result: &impl Serialize) -> anyhow::Result<serde_json::Value> {
        let mut json = serde_json::to_value(result)?;
        if let Some(url) = &self.url {
            // Taken before the run deleted its streams, if it did.
            let after = match server_metrics::take_before_clean_up() {
                Some(page) => page,
                None => server_metrics::scrape(url)?,
            };
            let delta = server_metrics::delta(&self.before, &after);
            print!("{}", server_metrics::table(&delta));
            if let serde_json::Value::Object(map) = &mut json {
                map.insert("server_metrics".to_owned(), serde_json::to_value(&delta)?);
            }
        }
        Ok(json)
    }
}

/// A flag raised by SIGTERM or SIGINT and, if `stdin_too`, by the end of stdin: the scenario
/// then stops sending, waits for the calls in flight and prints its summary.
fn stop_flag(stdin_too: bool) -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, stop.clone()).context("register a signal handler")?;
    }
    if stdin_too {
        let stop = stop.clone();
        std::thread::spawn(move || {
            // Reads until the end (or an error), discarding what it reads.
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
            stop.store(true, Ordering::SeqCst);
        });
    }
    Ok(stop)
}

/// Runs `work` on a fresh glommio executor thread and returns its result.
fn on_executor<F, Fut, T>(work: F) -> anyhow::Result<T>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<T>> + 'static,
    T: Send + 'static,
{
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name("loadgen")
        .spawn(work)
        .map_err(|error| anyhow::anyhow!("start an executor: {error}"))?
        .join()
        .map_err(|error| anyhow::anyhow!("executor: {error:?}"))?
}

fn write_json(path: Option<&Path>, value: &impl Serialize) -> anyhow::Result<()> {
    let Some(path) = path else { return Ok(()) };
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text + "\n").with_context(|| format!("write {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}
