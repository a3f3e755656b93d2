//! Starting and stopping the agent: the flows, the checkpointer, the watcher, the sink and
//! the status file.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::access::{self, Access, AccessError};
use crate::checkpoint::{CheckpointError, CheckpointStore};
use crate::config::{AgentConfig, DestinationKind};
use crate::endpoint::{EndpointError, SinkEndpoints, StreamEndpoint};
use crate::file_sink::FileSink;
use crate::limits;
use crate::metrics::{FlowMetrics, Status};
use crate::producer_sink::ProducerSink;
use crate::sink::Sink;
use crate::stream_sink::StreamSink;
use crate::tail::{self, FlowContext, FlowExit, TailError};
use crate::watch::{Wake, Watcher};

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// `--sink-file DIR`: write records to files in DIR instead of streams (default: the
    /// stream sink, to `kinesis.endpoint`).
    pub sink_dir: Option<PathBuf>,
    /// `--once`: ship what exists, then exit.
    pub once: bool,
    /// Where the status file goes (default: the checkpoint file's path plus `.status`).
    pub status_file: Option<PathBuf>,
    /// Poll instead of using inotify.
    pub no_inotify: bool,
    /// `--window-records`: records in flight per flow (and so the bound on duplicates after a
    /// crash), at most [`limits::WINDOW_RECORDS_MAX`]; `None` for that maximum.
    pub window_records: Option<usize>,
    /// `--metrics-listen`: where to serve `GET /metrics` (Prometheus); `None` for no port.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// `--ca-bundle`: a PEM file of CA certificates HTTPS trusts besides the system's roots
    /// (default: `AWS_CA_BUNDLE`).
    pub ca_bundle: Option<PathBuf>,
}

/// Why the agent could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Tail(#[from] TailError),
    #[error("cannot start the file sink in {dir}: {source}")]
    Sink { dir: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error("cannot start the stream sink: {0}")]
    StreamSink(std::io::Error),
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
    #[error("cannot listen for metrics on {addr}: {source}")]
    Metrics { addr: std::net::SocketAddr, source: std::io::Error },
    #[error("a flow thread panicked")]
    Panicked,
}

/// A running flow as the main thread sees it.
type FlowRuntime = (Arc<crate::config::FlowConfig>, Arc<Wake>, PathBuf, Arc<FlowMetrics>);

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub status: Status,
    pub records_unacknowledged: usize,
}

/// The status file of a configuration.
pub fn status_path(config: &AgentConfig, options: &RunOptions) -> PathBuf {
    options.status_file.clone().unwrap_or_else(|| {
        let mut path = config.checkpoint_file.clone().into_os_string();
        path.push(".status");
        PathBuf::from(path)
    })
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

/// Where the stream sink sends and how it signs and trusts.
#[derive(Debug, Clone)]
pub struct SinkPlan {
    pub endpoints: SinkEndpoints,
    pub access: Access,
}

impl std::fmt::Display for SinkPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (region {}", self.endpoints, self.endpoints.kinesis.region)?;
        if let Some(firehose) = self.endpoints.firehose.as_ref().filter(|f| f.region != self.endpoints.kinesis.region) {
            write!(f, "; Firehose region {}", firehose.region)?;
        }
        write!(f, "), {}", self.access)
    }
}

/// Checks that the configuration can run with the sink `options` pick, before anything is
/// read: the endpoints (`kinesis.endpoint`; `firehose.endpoint` when a flow names a delivery
/// stream, which must be HTTP(S)), the credentials (`access.rs`: refused keys, keys given by
/// halves, an AWS endpoint without any) and HTTPS's trusted roots. Returns the stream sink's
/// plan; `None` with the file sink.
pub fn check_sink(config: &AgentConfig, options: &RunOptions) -> Result<Option<SinkPlan>, RunError> {
    if options.sink_dir.is_some() {
        return Ok(None);
    }
    let kinesis = StreamEndpoint::parse(config.kinesis.endpoint.as_deref(), config.kinesis.region.as_deref())?
        .with_route(config.kinesis.route.as_deref())?;
    let firehose = if config.flows.iter().any(|f| f.destination.kind == DestinationKind::DeliveryStream) {
        Some(StreamEndpoint::parse_firehose(
            config.firehose.endpoint.as_deref(),
            config.firehose.region.as_deref(),
            &kinesis,
        )?)
    } else {
        None
    };
    let endpoints = SinkEndpoints { kinesis, firehose };
    let access = access::resolve(config, &endpoints, options.ca_bundle.as_deref())?;
    Ok(Some(SinkPlan { endpoints, access }))
}

/// Runs the agent until `stop` is set (or, with `--once`, until everything is shipped).
/// `report` asks for a status line (SIGUSR1).
pub fn run(
    config: AgentConfig,
    options: RunOptions,
    stop: Arc<AtomicBool>,
    report: Arc<AtomicBool>,
) -> Result<RunSummary, RunError> {
    let sink: Arc<dyn Sink> = match (&options.sink_dir, check_sink(&config, &options)?) {
        (Some(dir), _) => FileSink::start(dir).map_err(|source| RunError::Sink { dir: dir.clone(), source })?,
        (None, Some(SinkPlan { endpoints, access })) => {
            let kinesis = endpoints.kinesis.clone();
            tracing::info!("sink: {} ({})", endpoints, access);
            let streams = StreamSink::start(endpoints, access.clone()).map_err(RunError::StreamSink)?;
            if config.flows.iter().any(crate::producer_sink::aggregates) {
                // Aggregating flows through the KPL producer; the rest through `streams`.
                ProducerSink::start(&kinesis, &access, streams).map_err(RunError::StreamSink)?
            } else {
                streams
            }
        }
        (None, None) => unreachable!("check_sink returns an endpoint without --sink-file"),
    };
    run_with_sink(config, options, sink, stop, report)
}

/// [`run`] with a given sink (tests, or an embedding program with a sink of its own).
pub fn run_with_sink(
    config: AgentConfig,
    options: RunOptions,
    sink: Arc<dyn Sink>,
    stop: Arc<AtomicBool>,
    report: Arc<AtomicBool>,
) -> Result<RunSummary, RunError> {
    for warning in &config.warnings {
        tracing::warn!("agent.json: {warning}");
    }
    // Open every destination first, so a sink that cannot serve one fails the start.
    for flow in &config.flows {
        if let Err(error) = sink.open_flow(flow) {
            sink.shutdown(Duration::ZERO);
            return Err(RunError::Tail(TailError::Setup { flow: flow.id.clone(), message: error.to_string() }));
        }
    }
    let store = CheckpointStore::open(&config.checkpoint_file, config.checkpoint_ttl)?;
    let status_file = status_path(&config, &options);
    let started = unix_ms();

    let mut flows = Vec::new();
    for flow in &config.flows {
        let wake = Wake::new();
        store.register(Arc::clone(&wake));
        let dir = std::path::Path::new(&flow.file_pattern).parent().expect("checked by the configuration").to_owned();
        flows.push((Arc::new(flow.clone()), wake, dir, Arc::new(FlowMetrics::default())));
    }
    if let Some(addr) = options.metrics_listen {
        let listener = std::net::TcpListener::bind(addr).map_err(|source| RunError::Metrics { addr, source })?;
        let bound = listener.local_addr().map_err(|source| RunError::Metrics { addr, source })?;
        let counted: Vec<(String, Arc<FlowMetrics>)> =
            flows.iter().map(|(config, _, _, metrics)| (config.id.clone(), Arc::clone(metrics))).collect();
        let sink_name = sink.describe();
        let status = move || Status {
            pid: std::process::id(),
            started_unix_ms: started,
            updated_unix_ms: unix_ms(),
            sink: sink_name.clone(),
            flows: counted.iter().map(|(id, metrics)| metrics.snapshot(id)).collect(),
        };
        // Detached: it serves until the process exits.
        std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || crate::exposition::serve(listener, status))
            .map_err(RunError::Thread)?;
        tracing::info!(%bound, "metrics port listening");
    }
    let watch_targets: Vec<_> = flows.iter().map(|(_, wake, dir, _)| (dir.clone(), Arc::clone(wake))).collect();
    let _watcher = Watcher::start(&watch_targets, options.no_inotify);

    let writer_store = Arc::clone(&store);
    let writer = std::thread::Builder::new()
        .name("checkpointer".into())
        .spawn(move || writer_store.run_writer())
        .map_err(RunError::Thread)?;

    let flow_stop = Arc::new(AtomicBool::new(false));
    let mut handles: Vec<JoinHandle<Result<FlowExit, TailError>>> = Vec::new();
    for (config_flow, wake, _, metrics) in &flows {
        let context = FlowContext {
            config: Arc::clone(config_flow),
            sink: Arc::clone(&sink),
            store: Arc::clone(&store),
            metrics: Arc::clone(metrics),
            wake: Arc::clone(wake),
            stop: Arc::clone(&flow_stop),
            once: options.once,
            window_records: options
                .window_records
                .unwrap_or(limits::WINDOW_RECORDS_MAX)
                .clamp(1, limits::WINDOW_RECORDS_MAX),
            shutdown_timeout: config.shutdown_timeout,
            restored: store.flow(&config_flow.id),
        };
        let handle = std::thread::Builder::new()
            .name(format!("flow-{}", handles.len()))
            .spawn(move || tail::run_flow(context))
            .map_err(RunError::Thread)?;
        handles.push(handle);
    }
    tracing::info!(flows = flows.len(), sink = sink.describe(), once = options.once, "sluice-agent started");

    let status = |metrics: &[FlowRuntime]| Status {
        pid: std::process::id(),
        started_unix_ms: started,
        updated_unix_ms: unix_ms(),
        sink: sink.describe(),
        flows: metrics.iter().map(|(c, _, _, m)| m.snapshot(&c.id)).collect(),
    };
    let mut last_status_file = Instant::now() - limits::STATUS_FILE_INTERVAL;
    let mut last_status_log = Instant::now();
    while !handles.iter().all(|h| h.is_finished()) {
        if stop.load(Ordering::Acquire) {
            flow_stop.store(true, Ordering::Release);
            for (_, wake, _, _) in &flows {
                wake.wake(false);
            }
        }
        if report.swap(false, Ordering::AcqRel) {
            for line in status(&flows).lines() {
                eprintln!("sluice-agent status: {line}");
            }
        }
        if last_status_log.elapsed() >= config.status_log_period {
            last_status_log = Instant::now();
            let current = status(&flows);
            for line in current.lines() {
                tracing::info!("{line}");
            }
            if config.log_emit_metrics {
                for flow in &current.flows {
                    for file in &flow.files {
                        tracing::info!(flow = flow.id.as_str(), path = %file.path.display(), size = file.size, acked = file.acked_offset, lag = file.lag_bytes, "file");
                    }
                }
            }
        }
        if last_status_file.elapsed() >= limits::STATUS_FILE_INTERVAL {
            last_status_file = Instant::now();
            if let Err(error) = status(&flows).store(&status_file) {
                tracing::warn!(path = %status_file.display(), %error, "cannot write the status file");
            }
        }
        // The main thread only reports: a tenth of a second is prompt enough for SIGUSR1.
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut unacknowledged = 0;
    let mut result = Ok(());
    for handle in handles {
        match handle.join() {
            Ok(Ok(exit)) => unacknowledged += exit.records_unacknowledged,
            Ok(Err(error)) => result = Err(RunError::Tail(error)),
            Err(_) => result = Err(RunError::Panicked),
        }
    }
    sink.shutdown(config.shutdown_timeout);
    store.stop();
    let _ = writer.join();
    let final_status = status(&flows);
    let _ = final_status.store(&status_file);
    result?;
    Ok(RunSummary { status: final_status, records_unacknowledged: unacknowledged })
}
