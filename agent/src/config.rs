//! The Kinesis Agent's `agent.json`, read unchanged.
//!
//! Keys, defaults and bounds are the AWS agent's (see `limits.rs` for where each comes from).
//! Every key is accounted for: a key we implement is parsed and checked against the AWS
//! bounds; a key the AWS agent knows that only tunes its Java internals (thread pools, HTTP
//! connections, CloudWatch) is reported as a warning naming it; a key the AWS agent knows that
//! would change what is shipped and that we do not implement is an error; a key nobody knows is
//! a warning (the AWS agent ignores those silently), unless it differs from a known key only in
//! case, which is an error (a misspelt `multilinestartpattern` must not silently ship
//! single-line records).

use std::path::PathBuf;
use std::time::Duration;

use crate::json::Json;
use regex::Regex;

use crate::limits;

use crate::keys::{classify_keys, get, Obj, Reader};
pub use crate::keys::{ConfigError, ConfigWarning};
use crate::process::{self, ProcessingOption};

/// Where the Sluice agent keeps its checkpoints unless `checkpointFile` says otherwise. Not
/// the AWS agent's default (`/var/run/aws-kinesis-agent/checkpoints`, an SQLite database), so
/// the two agents never overwrite each other's checkpoints on one host; and under `/var/lib`,
/// not `/var/run` (a tmpfs), so checkpoints survive a reboot.
pub const CHECKPOINT_FILE_DEFAULT: &str = "/var/lib/sluice-agent/checkpoints";

/// Credentials from the configuration: the stream sink signs with the keys (`access.rs`);
/// `assumeRoleARN` and `userDefinedCredentialsProvider.classname` are refused there (they need
/// an STS call or a JVM).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub assume_role_arn: Option<String>,
    pub assume_role_external_id: Option<String>,
    /// `userDefinedCredentialsProvider.classname`.
    pub user_defined_provider: Option<String>,
}

impl std::fmt::Debug for Credentials {
    /// Never the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &self.secret_access_key.as_ref().map(|_| "<redacted>"))
            .field("assume_role_arn", &self.assume_role_arn)
            .field("assume_role_external_id", &self.assume_role_external_id)
            .field("user_defined_provider", &self.user_defined_provider)
            .finish()
    }
}

/// A service endpoint (`kinesis.endpoint`, `kinesis.region`, …); empty strings, as in the AWS
/// agent's release configuration, mean "not set".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoint {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// `kinesis.route` (a Sluice setting; none for Firehose).
    pub route: Option<String>,
}

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub checkpoint_file: PathBuf,
    pub shutdown_timeout: Duration,
    pub kinesis: Endpoint,
    pub firehose: Endpoint,
    pub sts_endpoint: Option<String>,
    pub credentials: Credentials,
    /// `log.statusReportingPeriodSeconds`.
    pub status_log_period: Duration,
    /// `log.emitMetrics`: the periodic status line also carries every per-file figure.
    pub log_emit_metrics: bool,
    /// `checkpointTimeToLiveDays`.
    pub checkpoint_ttl: Duration,
    pub flows: Vec<FlowConfig>,
    /// Keys accepted but not acted on; print them at start-up.
    pub warnings: Vec<ConfigWarning>,
}

/// Where a flow's records go.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DestinationKind {
    /// `kinesisStream`: a Kinesis data stream (PutRecords).
    Stream,
    /// `deliveryStream`: a Firehose delivery stream (PutRecordBatch).
    DeliveryStream,
}

/// A flow's destination.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Destination {
    pub kind: DestinationKind,
    pub name: String,
}

impl Destination {
    /// The largest record the destination takes (data plus partition key).
    pub fn record_bytes_max(&self) -> usize {
        match self.kind {
            DestinationKind::Stream => limits::KINESIS_RECORD_BYTES_MAX,
            DestinationKind::DeliveryStream => limits::FIREHOSE_RECORD_BYTES_MAX,
        }
    }
}

/// `partitionKeyOption`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionKeyOption {
    /// A random decimal number below 1,000,000 (the AWS agent's `nextDouble(1000000)`).
    Random,
    /// The MD5 of the record's data, in hex.
    Deterministic,
}

/// `initialPosition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitialPosition {
    StartOfFile,
    EndOfFile,
}

/// `maxBufferAgeMillis`, `maxBufferSizeRecords`, `maxBufferSizeBytes`: how long and how much
/// the sink may collect before it sends (the producer's collection limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferLimits {
    pub age: Duration,
    pub records: u64,
    pub bytes: u64,
}

/// One entry of `flows`.
#[derive(Debug, Clone)]
pub struct FlowConfig {
    /// The AWS agent's flow id (`kinesis:STREAM:PATTERN` or `fh:STREAM:PATTERN`), which names
    /// the flow's entry in the checkpoint file.
    pub id: String,
    pub file_pattern: String,
    pub destination: Destination,
    pub partition_key: PartitionKeyOption,
    pub initial_position: InitialPosition,
    pub buffer: BufferLimits,
    /// `minTimeBetweenFilePollsMillis`: the poll period without inotify.
    pub poll_interval: Duration,
    /// `maxTimeBetweenFileTrackerRefreshMillis`: full rescans even with inotify.
    pub rescan_interval: Duration,
    pub skip_header_lines: u64,
    pub multi_line_start: Option<Regex>,
    /// `fileFooterPattern`: a record matching it ends the file (nothing after it is read).
    pub file_footer: Option<Regex>,
    pub truncated_record_terminator: Vec<u8>,
    pub processing: Vec<ProcessingOption>,
    pub retry_initial_backoff: Duration,
    pub retry_max_backoff: Duration,
    /// `aggregatedRecordSizeBytes`: for streams, a non-zero value ships the flow through the
    /// KPL producer with aggregates of at most this many bytes (`producer_sink`); for delivery
    /// streams, consecutive records are concatenated into Firehose records of at most this
    /// size, as the AWS agent does (`stream_sink::firehose_groups`).
    pub aggregated_record_size_bytes: u64,
}

/// Top-level keys we implement.
const TOP_SUPPORTED: &[&str] = &[
    "flows",
    "checkpointFile",
    "shutdownTimeoutMillis",
    "kinesis.endpoint",
    "kinesis.region",
    "kinesis.route",
    "firehose.endpoint",
    "firehose.region",
    "sts.endpoint",
    "awsAccessKeyId",
    "awsSecretAccessKey",
    "assumeRoleARN",
    "assumeRoleExternalId",
    "userDefinedCredentialsProvider.classname",
    "log.statusReportingPeriodSeconds",
    "log.emitMetrics",
    "checkpointTimeToLiveDays",
];

/// Top-level keys of the AWS agent that tune its Java implementation or publish to services
/// we do not talk to; accepted with a warning.
const TOP_IGNORED: &[(&str, &str)] = &[
    ("cloudwatch.emitMetrics", "metrics go to the status file and `sluice-agent status`, not to CloudWatch"),
    ("cloudwatch.endpoint", "metrics are not sent to CloudWatch"),
    ("cloudwatch.region", "metrics are not sent to CloudWatch"),
    ("cloudwatch.tagInstance", "metrics are not sent to CloudWatch"),
    ("cloudwatch.metricsBufferTimeMillis", "metrics are not sent to CloudWatch"),
    ("cloudwatch.namespace", "metrics are not sent to CloudWatch"),
    ("cloudwatch.metricsQueueSize", "metrics are not sent to CloudWatch"),
    ("log.emitInternalMetrics", "no internal metrics beyond the status file"),
    ("maxSendingThreads", "no sending thread pool; the producer sends asynchronously"),
    ("maxSendingThreadsPerCore", "no sending thread pool"),
    ("sendingThreadsKeepAliveMillis", "no sending thread pool"),
    ("sendingThreadsMaxQueueSize", "no sending thread pool; queues are bounded by the agent's own limits"),
    ("maxConnections", "the sink keeps its own connections (one native connection, or a pool over HTTP)"),
    ("connectionTimeoutMillis", "a call, connecting included, is given up after 50 s (STREAM_SINK_CALL_TIMEOUT)"),
    ("connectionTTLMillis", "connections are kept until they break or the server closes them"),
    ("socketTimeoutMillis", "a call is given up after 50 s (STREAM_SINK_CALL_TIMEOUT), the AWS SDK's default"),
    ("useTcpKeepAlive", "TCP keep-alive is not set"),
    ("useHttpGzip", "requests are not compressed"),
    ("userAgent", "no User-Agent header is sent"),
    ("userAgentOverride", "no User-Agent header is sent"),
    ("userDefinedCredentialsProvider.location", "Java credential providers cannot be loaded"),
    ("checkpoints.queryTimeoutSeconds", "checkpoints are a JSON file, not SQLite"),
    ("checkpoints.connectionTimeoutSeconds", "checkpoints are a JSON file, not SQLite"),
    ("assumeRoleDurationSeconds", "used only with assumeRoleARN, which is refused (it needs an STS call)"),
];

/// Flow keys we implement.
const FLOW_SUPPORTED: &[&str] = &[
    "filePattern",
    "kinesisStream",
    "deliveryStream",
    "partitionKeyOption",
    "initialPosition",
    "maxBufferAgeMillis",
    "maxBufferSizeRecords",
    "maxBufferSizeBytes",
    "minTimeBetweenFilePollsMillis",
    "maxTimeBetweenFileTrackerRefreshMillis",
    "skipHeaderLines",
    "multiLineStartPattern",
    "fileFooterPattern",
    "truncatedRecordTerminator",
    "dataProcessingOptions",
    "retryInitialBackoffMillis",
    "retryMaxBackoffMillis",
    "aggregatedRecordSizeBytes",
];

/// Flow keys of the AWS agent that tune its Java queues; accepted with a warning.
const FLOW_IGNORED: &[(&str, &str)] = &[
    ("waitOnFullPublishQueueMillis", "the flow waits for room in its bounded window instead"),
    ("waitOnEmptyPublishQueueMillis", "no publish queue; maxBufferAgeMillis bounds the wait"),
    ("waitOnFullRetryQueueMillis", "retries belong to the producer"),
    ("publishQueueCapacity", "the window of records in flight is fixed (WINDOW_RECORDS_MAX)"),
    ("log.emitInternalMetrics", "no internal metrics beyond the status file"),
];

impl AgentConfig {
    /// Reads and checks `agent.json` at `path`.
    pub fn load(path: &std::path::Path) -> Result<AgentConfig, ConfigError> {
        let read = |source| ConfigError::Read { path: path.to_owned(), source };
        let len = std::fs::metadata(path).map_err(read)?.len();
        if len > limits::CONFIG_BYTES_MAX {
            return Err(ConfigError::TooLarge { path: path.to_owned(), max: limits::CONFIG_BYTES_MAX });
        }
        let text = std::fs::read(path).map_err(read)?;
        AgentConfig::parse(&text)
    }

    /// Parses and checks the text of an `agent.json`.
    pub fn parse(text: &[u8]) -> Result<AgentConfig, ConfigError> {
        let value = Json::parse(text)?;
        let Json::Object(top) = value else {
            return Err(ConfigError::invalid("(top level)", "must be a JSON object"));
        };
        let mut warnings = Vec::new();
        classify_keys(&top, "", TOP_SUPPORTED, TOP_IGNORED, &mut warnings)?;

        let reader = Reader { map: &top, prefix: "" };
        let flows_value =
            get(&top, "flows").ok_or_else(|| ConfigError::invalid("flows", "required: the list of file flows"))?;
        let Json::Array(flow_values) = flows_value else {
            return Err(ConfigError::invalid("flows", "must be a list"));
        };
        if flow_values.is_empty() {
            return Err(ConfigError::invalid("flows", "must name at least one flow"));
        }
        if flow_values.len() > limits::FLOWS_MAX {
            return Err(ConfigError::invalid("flows", format!("at most {} flows", limits::FLOWS_MAX)));
        }
        let mut flows = Vec::with_capacity(flow_values.len());
        for (index, flow) in flow_values.iter().enumerate() {
            let prefix = format!("flows[{index}].");
            let Json::Object(map) = flow else {
                return Err(ConfigError::invalid(format!("flows[{index}]"), "must be an object"));
            };
            flows.push(parse_flow(map, &prefix, &mut warnings)?);
        }
        let mut ids = std::collections::HashSet::new();
        for flow in &flows {
            if !ids.insert(flow.id.clone()) {
                return Err(ConfigError::invalid(
                    "flows",
                    format!("two flows ship {} to the same destination", flow.file_pattern),
                ));
            }
        }

        if reader.string("assumeRoleARN")?.is_none() {
            for key in ["sts.endpoint", "assumeRoleExternalId"] {
                if reader.string(key)?.is_some() {
                    warnings.push(ConfigWarning {
                        key: key.into(),
                        reason: "accepted but ignored: used only with assumeRoleARN".into(),
                    });
                }
            }
        }
        let string = |key| reader.string(key);
        Ok(AgentConfig {
            checkpoint_file: string("checkpointFile")?
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(CHECKPOINT_FILE_DEFAULT)),
            shutdown_timeout: Duration::from_millis(reader.integer(
                "shutdownTimeoutMillis",
                limits::SHUTDOWN_TIMEOUT_MS_DEFAULT,
                0,
                u64::MAX / 2,
            )?),
            kinesis: Endpoint {
                endpoint: string("kinesis.endpoint")?,
                region: string("kinesis.region")?,
                route: string("kinesis.route")?,
            },
            firehose: Endpoint {
                endpoint: string("firehose.endpoint")?,
                region: string("firehose.region")?,
                route: None,
            },
            sts_endpoint: string("sts.endpoint")?,
            credentials: Credentials {
                access_key_id: string("awsAccessKeyId")?,
                secret_access_key: string("awsSecretAccessKey")?,
                assume_role_arn: string("assumeRoleARN")?,
                assume_role_external_id: string("assumeRoleExternalId")?,
                user_defined_provider: string("userDefinedCredentialsProvider.classname")?,
            },
            status_log_period: Duration::from_secs(reader.integer(
                "log.statusReportingPeriodSeconds",
                limits::STATUS_LOG_PERIOD_S_DEFAULT,
                1,
                86_400,
            )?),
            log_emit_metrics: reader.boolean("log.emitMetrics", false)?,
            checkpoint_ttl: Duration::from_secs(
                86_400 * reader.integer("checkpointTimeToLiveDays", limits::CHECKPOINT_TTL_DAYS_DEFAULT, 1, 36_500)?,
            ),
            flows,
            warnings,
        })
    }
}

fn parse_flow(map: &Obj, prefix: &str, warnings: &mut Vec<ConfigWarning>) -> Result<FlowConfig, ConfigError> {
    classify_keys(map, prefix, FLOW_SUPPORTED, FLOW_IGNORED, warnings)?;
    let reader = Reader { map, prefix };
    let key = |k: &str| format!("{prefix}{k}");

    let file_pattern =
        reader.string("filePattern")?.ok_or_else(|| ConfigError::invalid(key("filePattern"), "required"))?;
    check_file_pattern(&file_pattern).map_err(|m| ConfigError::invalid(key("filePattern"), m))?;

    let stream = reader.string("kinesisStream")?;
    let delivery = reader.string("deliveryStream")?;
    let destination = match (stream, delivery) {
        (Some(name), None) => Destination { kind: DestinationKind::Stream, name },
        (None, Some(name)) => Destination { kind: DestinationKind::DeliveryStream, name },
        (Some(_), Some(_)) => {
            return Err(ConfigError::invalid(
                key("kinesisStream"),
                "a flow names either kinesisStream or deliveryStream, not both",
            ))
        }
        (None, None) => {
            return Err(ConfigError::invalid(key("kinesisStream"), "required: kinesisStream or deliveryStream"))
        }
    };
    let (id, bytes_max) = match destination.kind {
        DestinationKind::Stream => {
            (format!("kinesis:{}:{}", destination.name, file_pattern), limits::KINESIS_BUFFER_BYTES_MAX)
        }
        DestinationKind::DeliveryStream => {
            (format!("fh:{}:{}", destination.name, file_pattern), limits::FIREHOSE_BUFFER_BYTES_MAX)
        }
    };

    let partition_key = match reader.string("partitionKeyOption")?.as_deref() {
        None | Some("RANDOM") => PartitionKeyOption::Random,
        Some("DETERMINISTIC") => PartitionKeyOption::Deterministic,
        Some(other) => {
            return Err(ConfigError::invalid(
                key("partitionKeyOption"),
                format!("{other:?} is not RANDOM or DETERMINISTIC"),
            ))
        }
    };
    if destination.kind == DestinationKind::DeliveryStream && get(map, "partitionKeyOption").is_some() {
        warnings.push(ConfigWarning {
            key: key("partitionKeyOption"),
            reason: "delivery streams have no partition keys".into(),
        });
    }
    let initial_position = match reader.string("initialPosition")?.as_deref() {
        None | Some("END_OF_FILE") => InitialPosition::EndOfFile,
        Some("START_OF_FILE") => InitialPosition::StartOfFile,
        Some(other) => {
            return Err(ConfigError::invalid(
                key("initialPosition"),
                format!("{other:?} is not START_OF_FILE or END_OF_FILE"),
            ))
        }
    };
    let buffer = BufferLimits {
        age: Duration::from_millis(reader.integer(
            "maxBufferAgeMillis",
            limits::BUFFER_AGE_MS_DEFAULT,
            limits::BUFFER_AGE_MS_MIN,
            limits::BUFFER_AGE_MS_MAX,
        )?),
        records: reader.integer("maxBufferSizeRecords", limits::BUFFER_RECORDS_MAX, 1, limits::BUFFER_RECORDS_MAX)?,
        bytes: reader.integer("maxBufferSizeBytes", bytes_max, 1, bytes_max)?,
    };
    let regex = |k: &str| -> Result<Option<Regex>, ConfigError> {
        match reader.string(k)? {
            None => Ok(None),
            Some(pattern) if pattern.is_empty() => Ok(None),
            Some(pattern) => Regex::new(&pattern)
                .map(Some)
                .map_err(|e| ConfigError::invalid(key(k), format!("not a regular expression: {e}"))),
        }
    };
    let terminator = reader.string("truncatedRecordTerminator")?.unwrap_or_else(|| "\n".to_string()).into_bytes();
    if terminator.len() >= destination.record_bytes_max() {
        return Err(ConfigError::invalid(key("truncatedRecordTerminator"), "exceeds the maximum record size"));
    }
    let processing = match get(map, "dataProcessingOptions") {
        None | Some(Json::Null) => Vec::new(),
        Some(Json::Array(options)) => {
            let mut parsed = Vec::with_capacity(options.len());
            for (i, option) in options.iter().enumerate() {
                parsed.push(process::parse_option_warn(
                    option,
                    &format!("{prefix}dataProcessingOptions[{i}]"),
                    warnings,
                )?);
            }
            parsed
        }
        Some(_) => {
            return Err(ConfigError::invalid(key("dataProcessingOptions"), "must be a list of processing options"))
        }
    };
    let retry_initial_backoff = Duration::from_millis(reader.integer(
        "retryInitialBackoffMillis",
        limits::RETRY_INITIAL_BACKOFF_MS_DEFAULT,
        1,
        u64::MAX / 2,
    )?);
    let retry_max_backoff = Duration::from_millis(reader.integer(
        "retryMaxBackoffMillis",
        limits::RETRY_MAX_BACKOFF_MS_DEFAULT,
        1,
        u64::MAX / 2,
    )?);
    let aggregated_record_size_bytes =
        reader.integer("aggregatedRecordSizeBytes", 0, 0, limits::FIREHOSE_RECORD_BYTES_MAX as u64)?;
    // Streams: a non-zero size selects the KPL producer's aggregation (Sluice's extension;
    // `producer_sink`), whose aggregates hold at least its 64-byte minimum.
    if destination.kind == DestinationKind::Stream
        && aggregated_record_size_bytes > 0
        && aggregated_record_size_bytes < limits::AGGREGATED_RECORD_BYTES_MIN
    {
        return Err(ConfigError::OutOfRange {
            key: key("aggregatedRecordSizeBytes"),
            value: i128::from(aggregated_record_size_bytes),
            min: limits::AGGREGATED_RECORD_BYTES_MIN,
            max: limits::FIREHOSE_RECORD_BYTES_MAX as u64,
        });
    }

    Ok(FlowConfig {
        id,
        file_pattern,
        destination,
        partition_key,
        initial_position,
        buffer,
        poll_interval: Duration::from_millis(reader.integer(
            "minTimeBetweenFilePollsMillis",
            limits::FILE_POLL_MS_DEFAULT,
            1,
            u64::MAX / 2,
        )?),
        rescan_interval: Duration::from_millis(reader.integer(
            "maxTimeBetweenFileTrackerRefreshMillis",
            limits::RESCAN_MS_DEFAULT,
            1,
            u64::MAX / 2,
        )?),
        skip_header_lines: reader.integer("skipHeaderLines", 0, 0, u64::MAX / 2)?,
        multi_line_start: regex("multiLineStartPattern")?,
        file_footer: regex("fileFooterPattern")?,
        truncated_record_terminator: terminator,
        processing,
        retry_initial_backoff,
        retry_max_backoff,
        aggregated_record_size_bytes,
    })
}

/// The AWS agent takes globs in the file-name component only (`SourceFile.java`): the
/// directory must be a plain absolute path.
fn check_file_pattern(pattern: &str) -> Result<(), String> {
    let path = std::path::Path::new(pattern);
    if !path.is_absolute() {
        return Err(format!("{pattern:?} must be an absolute path"));
    }
    if pattern.ends_with('/') {
        return Err(format!("{pattern:?} has no file-name component"));
    }
    let dir = path.parent().map(|p| p.to_string_lossy().into_owned());
    if dir.is_some_and(|d| d.contains(['*', '?', '[', '{'])) {
        return Err(format!("{pattern:?}: globs are allowed in the file name only, as in the Kinesis Agent"));
    }
    globset::Glob::new(&path.file_name().unwrap_or_default().to_string_lossy())
        .map(|_| ())
        .map_err(|e| format!("{pattern:?} is not a valid glob: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AgentConfig, ConfigError> {
        AgentConfig::parse(text.as_bytes())
    }

    #[test]
    fn defaults_are_the_aws_agents() {
        let config = parse(r#"{"flows":[{"filePattern":"/tmp/app.log*","kinesisStream":"s"}]}"#).unwrap();
        let flow = &config.flows[0];
        assert_eq!(flow.id, "kinesis:s:/tmp/app.log*");
        assert_eq!(flow.initial_position, InitialPosition::EndOfFile);
        assert_eq!(flow.partition_key, PartitionKeyOption::Random);
        assert_eq!(flow.buffer.age, Duration::from_secs(60));
        assert_eq!(flow.buffer.records, 500);
        assert_eq!(flow.buffer.bytes, 5 * 1024 * 1024);
        assert_eq!(flow.poll_interval, Duration::from_millis(100));
        assert_eq!(flow.truncated_record_terminator, b"\n");
        assert_eq!(config.shutdown_timeout, Duration::from_secs(10));
        assert!(config.warnings.is_empty());
    }

    #[test]
    fn bounds_are_checked() {
        for (key, value) in [
            ("maxBufferAgeMillis", "999"),
            ("maxBufferAgeMillis", "900001"),
            ("maxBufferSizeRecords", "0"),
            ("maxBufferSizeRecords", "501"),
            ("maxBufferSizeBytes", "5242881"),
            ("skipHeaderLines", "-1"),
        ] {
            let text = format!(r#"{{"flows":[{{"filePattern":"/tmp/a","kinesisStream":"s","{key}":{value}}}]}}"#);
            let error = parse(&text).unwrap_err();
            assert!(matches!(error, ConfigError::OutOfRange { .. }), "{key}={value}: {error}");
        }
        let firehose = r#"{"flows":[{"filePattern":"/tmp/a","deliveryStream":"d","maxBufferSizeBytes":4194305}]}"#;
        assert!(matches!(parse(firehose).unwrap_err(), ConfigError::OutOfRange { .. }));
    }

    #[test]
    fn keys_are_accounted_for() {
        let config = parse(
            r#"{"maxSendingThreads": 4, "comment": "x",
                "flows":[{"filePattern":"/tmp/a","kinesisStream":"s","publishQueueCapacity":5}]}"#,
        )
        .unwrap();
        let keys: Vec<_> = config.warnings.iter().map(|w| w.key.as_str()).collect();
        assert_eq!(keys, ["maxSendingThreads", "comment", "flows[0].publishQueueCapacity"]);
        let error = parse(r#"{"flows":[{"filePattern":"/tmp/a","kinesisStream":"s","multilineStartPattern":"x"}]}"#)
            .unwrap_err();
        assert!(matches!(error, ConfigError::Misspelt { .. }), "{error}");
    }

    #[test]
    fn bad_flows_are_refused() {
        for text in [
            r#"{"flows":[]}"#,
            r#"{"flows":[{"kinesisStream":"s"}]}"#,
            r#"{"flows":[{"filePattern":"/tmp/a"}]}"#,
            r#"{"flows":[{"filePattern":"/tmp/a","kinesisStream":"s","deliveryStream":"d"}]}"#,
            r#"{"flows":[{"filePattern":"tmp/a","kinesisStream":"s"}]}"#,
            r#"{"flows":[{"filePattern":"/tmp/*/a","kinesisStream":"s"}]}"#,
            r#"{"flows":[{"filePattern":"/tmp/a","kinesisStream":"s","initialPosition":"MIDDLE"}]}"#,
            r#"{"flows":[{"filePattern":"/tmp/a","kinesisStream":"s","multiLineStartPattern":"("}]}"#,
            r#"{"flows":[{"filePattern":"/tmp/a","kinesisStream":"s"},{"filePattern":"/tmp/a","kinesisStream":"s"}]}"#,
            r#"[]"#,
            r#"{"flows":[{"filePattern":"/tmp/a","kinesisStream":"s"}"#,
        ] {
            assert!(parse(text).is_err(), "{text}");
        }
    }
}
