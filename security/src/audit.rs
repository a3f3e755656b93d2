//! The audit log: one JSON line per control-plane call and per refused call, shaped like a
//! CloudTrail event, written to a file that rotates by size.
//!
//! Writing never happens on the request path. [`AuditLog::record`] puts the event on a
//! bounded queue ([`AUDIT_EVENTS_QUEUED_MAX`]) with `try_send` and returns at once; a
//! dedicated thread (`sluice-audit`) formats and appends. When the queue is full the event is
//! dropped and counted, and the writer notes the count in the log (`AuditEventsDropped`) as
//! soon as it catches up. Why drop rather than wait: waiting would let a slow or full audit
//! disk stall every core's requests, turning a logging problem into an outage (and a way to
//! slow the service down by making it log); dropping keeps serving and leaves an explicit,
//! counted gap. A deployment that must refuse calls it cannot audit can check
//! [`AuditLog::dropped`] and stop serving; that mode is not built (see docs/security.md).
//!
//! The file is `audit.log` in the given directory; when a write would take it past
//! [`AUDIT_FILE_BYTES_MAX`] it becomes `audit.log.1` (older ones shift up to
//! `audit.log.<AUDIT_FILES_KEPT>`, the oldest is deleted) and a new `audit.log` starts. Each
//! batch of lines is flushed to the kernel; rotation and shutdown also fsync.

use crate::limits::{AUDIT_EVENTS_QUEUED_MAX, AUDIT_FILES_KEPT, AUDIT_FILE_BYTES_MAX};
use crate::timestamp::iso8601;
use serde::Serialize;
use serde_json::Value;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;

/// CloudTrail's record format version.
pub const EVENT_VERSION: &str = "1.08";
pub const EVENT_SOURCE: &str = "kinesis.amazonaws.com";
pub const FILE_NAME: &str = "audit.log";

/// CloudTrail's `userIdentity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity {
    #[serde(rename = "type")]
    pub identity_type: String,
    pub principal_id: String,
    pub arn: String,
    pub account_id: String,
    pub access_key_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
}

impl UserIdentity {
    pub fn of(principal: &crate::credentials::Principal) -> UserIdentity {
        UserIdentity {
            identity_type: principal.identity_type().to_string(),
            principal_id: principal.principal_id.clone(),
            arn: principal.arn.clone(),
            account_id: principal.account_id.clone(),
            access_key_id: principal.access_key_id.clone(),
            user_name: (principal.identity_type() == "IAMUser").then(|| principal.name.clone()),
        }
    }

    /// An unauthenticated caller (a refused request, or the daemon's open mode).
    pub fn anonymous(access_key_id: Option<&str>) -> UserIdentity {
        UserIdentity {
            identity_type: "Unknown".into(),
            principal_id: String::new(),
            arn: String::new(),
            account_id: String::new(),
            access_key_id: access_key_id.unwrap_or_default().to_string(),
            user_name: None,
        }
    }
}

/// One CloudTrail-shaped event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    pub event_version: &'static str,
    pub user_identity: UserIdentity,
    pub event_time: String,
    pub event_source: &'static str,
    pub event_name: String,
    pub aws_region: String,
    #[serde(rename = "sourceIPAddress")]
    pub source_ip_address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    pub request_parameters: Value,
    pub response_elements: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(rename = "requestID")]
    pub request_id: String,
    #[serde(rename = "eventID")]
    pub event_id: String,
    pub read_only: bool,
    pub event_type: &'static str,
    pub management_event: bool,
    pub recipient_account_id: String,
    pub event_category: &'static str,
}

/// The Kinesis operations that only read (CloudTrail's `readOnly`).
fn is_read_only(operation: &str) -> bool {
    ["Describe", "List", "Get"].iter().any(|prefix| operation.starts_with(prefix)) || operation == "SubscribeToShard"
}

/// Whether an operation is a data-plane call, audited only when refused (CloudTrail logs
/// Kinesis data events only on request, and one line per PutRecord would dwarf the data).
pub fn is_data_plane(operation: &str) -> bool {
    matches!(operation, "PutRecord" | "PutRecords" | "GetRecords" | "GetShardIterator" | "SubscribeToShard")
}

/// Removes record data from request parameters: `Data` of PutRecord and of each entry of
/// PutRecords' `Records` become `"HIDDEN_DUE_TO_SECURITY_REASONS"`, as CloudTrail writes
/// sensitive fields.
pub fn redact_request_parameters(operation: &str, parameters: &mut Value) {
    const HIDDEN: &str = "HIDDEN_DUE_TO_SECURITY_REASONS";
    match operation {
        "PutRecord" => {
            if let Some(data) = parameters.get_mut("Data") {
                *data = Value::String(HIDDEN.into());
            }
        }
        "PutRecords" => {
            if let Some(Value::Array(records)) = parameters.get_mut("Records") {
                for record in records {
                    if let Some(data) = record.get_mut("Data") {
                        *data = Value::String(HIDDEN.into());
                    }
                }
            }
        }
        _ => {}
    }
}

/// The fields of an event that vary per call.
#[derive(Debug, Clone)]
pub struct CallRecord {
    pub now_ms: i64,
    pub operation: String,
    pub region: String,
    pub account_id: String,
    pub source_ip: String,
    pub user_agent: Option<String>,
    pub identity: UserIdentity,
    pub request_parameters: Value,
    /// `Ok(response elements)` or `Err((error code, message))`.
    pub outcome: Result<Value, (String, String)>,
    pub request_id: String,
}

impl AuditEvent {
    /// An event for one call, its request parameters redacted.
    pub fn from_call(call: CallRecord) -> AuditEvent {
        let mut parameters = call.request_parameters;
        redact_request_parameters(&call.operation, &mut parameters);
        let (response_elements, error_code, error_message) = match call.outcome {
            Ok(elements) => (elements, None, None),
            Err((code, message)) => (Value::Null, Some(code), Some(message)),
        };
        AuditEvent {
            event_version: EVENT_VERSION,
            user_identity: call.identity,
            event_time: iso8601(call.now_ms),
            event_source: EVENT_SOURCE,
            read_only: is_read_only(&call.operation),
            event_name: call.operation,
            aws_region: call.region,
            source_ip_address: call.source_ip,
            user_agent: call.user_agent,
            request_parameters: parameters,
            response_elements,
            error_code,
            error_message,
            request_id: call.request_id,
            event_id: uuid::Uuid::new_v4().to_string(),
            event_type: "AwsApiCall",
            management_event: true,
            recipient_account_id: call.account_id,
            event_category: "Management",
        }
    }
}

enum Message {
    Event(Box<AuditEvent>),
    Stop,
}

/// The request side of the audit log: cheap to clone, `Send`, never blocks.
#[derive(Clone)]
pub struct AuditLog {
    sender: SyncSender<Message>,
    dropped: Arc<AtomicU64>,
}

/// The writer thread; [`AuditWriter::shutdown`] writes what is queued and stops it.
pub struct AuditWriter {
    sender: SyncSender<Message>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl AuditLog {
    /// Opens (or creates) `directory/audit.log` and starts the writer thread.
    pub fn start(directory: &Path) -> io::Result<(AuditLog, AuditWriter)> {
        AuditLog::start_with(directory, AUDIT_EVENTS_QUEUED_MAX, AUDIT_FILE_BYTES_MAX)
    }

    /// [`AuditLog::start`] with a chosen queue length and rotation size (tests reach both).
    pub fn start_with(directory: &Path, queue_max: usize, file_bytes_max: u64) -> io::Result<(AuditLog, AuditWriter)> {
        AuditLog::spawn(directory, queue_max, file_bytes_max, None)
    }

    /// Starts the writer, which first waits for `gate` (if any) to say go: lets a test fill
    /// the queue before anything drains it.
    fn spawn(
        directory: &Path,
        queue_max: usize,
        file_bytes_max: u64,
        gate: Option<Receiver<()>>,
    ) -> io::Result<(AuditLog, AuditWriter)> {
        std::fs::create_dir_all(directory)?;
        let mut file = RotatingFile::open(directory.to_path_buf(), file_bytes_max)?;
        let (sender, receiver) = sync_channel(queue_max);
        let dropped = Arc::new(AtomicU64::new(0));
        let counter = dropped.clone();
        let thread = std::thread::Builder::new().name("sluice-audit".into()).spawn(move || {
            if let Some(gate) = gate {
                let _ = gate.recv();
            }
            write_loop(&receiver, &mut file, &counter)
        })?;
        Ok((AuditLog { sender: sender.clone(), dropped }, AuditWriter { sender, thread: Some(thread) }))
    }

    /// Queues an event; if the queue is full (or the writer stopped) it is dropped and
    /// counted. Never blocks.
    pub fn record(&self, event: AuditEvent) {
        match self.sender.try_send(Message::Event(Box::new(event))) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    // Unfinished: a strict mode that refuses calls it cannot audit (the daemon would check
    // this count, or wait on the queue for control-plane calls only).
    /// Events dropped since the start because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl AuditWriter {
    /// Writes every event queued before this call, fsyncs and stops the thread.
    pub fn shutdown(mut self) -> io::Result<()> {
        self.stop()
    }

    fn stop(&mut self) -> io::Result<()> {
        let Some(thread) = self.thread.take() else { return Ok(()) };
        // Blocking is right here: shutdown waits for the queue to drain.
        let _ = self.sender.send(Message::Stop);
        thread.join().unwrap_or_else(|_| Err(io::Error::other("the audit thread panicked")))
    }
}

impl Drop for AuditWriter {
    fn drop(&mut self) {
        if let Err(error) = self.stop() {
            tracing::error!(%error, "the audit log failed while stopping");
        }
    }
}

fn write_loop(receiver: &Receiver<Message>, file: &mut RotatingFile, dropped: &AtomicU64) -> io::Result<()> {
    let mut dropped_reported = 0u64;
    let mut result = Ok(());
    while let Ok(first) = receiver.recv() {
        let mut stop = false;
        let mut batch = vec![first];
        batch.extend(receiver.try_iter());
        for message in batch {
            match message {
                Message::Event(event) => {
                    let line = serde_json::to_string(&event).expect("audit events serialize");
                    if let Err(error) = file.append_line(&line) {
                        // A failing disk must not kill the thread silently: count the loss
                        // and say so; the next batch tries again.
                        dropped.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(%error, "audit log write failed");
                        result = Err(error);
                    }
                }
                Message::Stop => stop = true,
            }
        }
        let dropped_now = dropped.load(Ordering::Relaxed);
        if dropped_now > dropped_reported {
            let line = serde_json::json!({
                "eventVersion": EVENT_VERSION,
                "eventTime": iso8601(crate::timestamp::now_ms()),
                "eventSource": "sluice",
                "eventName": "AuditEventsDropped",
                "droppedEventCount": dropped_now - dropped_reported,
                "droppedEventTotal": dropped_now,
            });
            if file.append_line(&line.to_string()).is_ok() {
                tracing::warn!(
                    dropped = dropped_now - dropped_reported,
                    "audit events dropped: the audit queue was full"
                );
                dropped_reported = dropped_now;
            }
        }
        file.flush()?;
        if stop {
            file.sync()?;
            break;
        }
    }
    result
}

struct RotatingFile {
    directory: PathBuf,
    file: io::BufWriter<File>,
    bytes: u64,
    bytes_max: u64,
}

impl RotatingFile {
    fn open(directory: PathBuf, bytes_max: u64) -> io::Result<RotatingFile> {
        let file = OpenOptions::new().create(true).append(true).open(directory.join(FILE_NAME))?;
        let bytes = file.metadata()?.len();
        Ok(RotatingFile { directory, file: io::BufWriter::new(file), bytes, bytes_max })
    }

    fn path(&self, generation: u32) -> PathBuf {
        if generation == 0 {
            self.directory.join(FILE_NAME)
        } else {
            self.directory.join(format!("{FILE_NAME}.{generation}"))
        }
    }

    fn append_line(&mut self, line: &str) -> io::Result<()> {
        let length = line.len() as u64 + 1;
        if self.bytes > 0 && self.bytes + length > self.bytes_max {
            self.rotate()?;
        }
        self.file.write_all(line.as_bytes())?;
        self.file.write_all(b"\n")?;
        self.bytes += length;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.sync()?;
        let oldest = self.path(AUDIT_FILES_KEPT);
        if oldest.exists() {
            std::fs::remove_file(&oldest)?;
        }
        for generation in (0..AUDIT_FILES_KEPT).rev() {
            let from = self.path(generation);
            if from.exists() {
                std::fs::rename(&from, self.path(generation + 1))?;
            }
        }
        let file = OpenOptions::new().create(true).append(true).open(self.path(0))?;
        self.file = io::BufWriter::new(file);
        self.bytes = 0;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.flush()?;
        self.file.get_ref().sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(operation: &str, parameters: Value, outcome: Result<Value, (String, String)>) -> AuditEvent {
        let principal =
            crate::credentials::Principal::new("alice", "123456789012", "AKIAALICE", crate::Secret::new("s"), vec![]);
        AuditEvent::from_call(CallRecord {
            now_ms: 1_440_938_160_000,
            operation: operation.into(),
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            source_ip: "127.0.0.1".into(),
            user_agent: Some("aws-cli/1.46".into()),
            identity: UserIdentity::of(&principal),
            request_parameters: parameters,
            outcome,
            request_id: "c5a3d8d2-0000-4000-8000-000000000000".into(),
        })
    }

    fn lines(path: &Path) -> Vec<Value> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    #[test]
    fn events_have_cloudtrails_shape() {
        let event = call("DeleteStream", json!({"StreamName": "orders"}), Ok(Value::Null));
        let value = serde_json::to_value(&event).unwrap();
        assert_eq!(value["eventVersion"], "1.08");
        assert_eq!(value["eventTime"], "2015-08-30T12:36:00Z");
        assert_eq!(value["eventSource"], "kinesis.amazonaws.com");
        assert_eq!(value["eventName"], "DeleteStream");
        assert_eq!(value["awsRegion"], "us-east-1");
        assert_eq!(value["sourceIPAddress"], "127.0.0.1");
        assert_eq!(value["userIdentity"]["type"], "IAMUser");
        assert_eq!(value["userIdentity"]["arn"], "arn:aws:iam::123456789012:user/alice");
        assert_eq!(value["userIdentity"]["accessKeyId"], "AKIAALICE");
        assert_eq!(value["requestParameters"], json!({"StreamName": "orders"}));
        assert_eq!(value["requestID"], "c5a3d8d2-0000-4000-8000-000000000000");
        assert_eq!(value["readOnly"], false);
        assert!(uuid::Uuid::parse_str(value["eventID"].as_str().unwrap()).is_ok());
        assert!(value.get("errorCode").is_none());

        let denied = call(
            "PutRecords",
            json!({"StreamName": "orders", "Records": [{"Data": "c2VjcmV0", "PartitionKey": "k"}]}),
            Err(("AccessDeniedException".into(), "User: … is not authorized".into())),
        );
        let value = serde_json::to_value(&denied).unwrap();
        assert_eq!(value["errorCode"], "AccessDeniedException");
        assert_eq!(value["requestParameters"]["Records"][0]["Data"], "HIDDEN_DUE_TO_SECURITY_REASONS");
        assert!(!value.to_string().contains("c2VjcmV0"));
        assert!(is_data_plane("PutRecords") && !is_data_plane("DeleteStream"));
        assert!(call("ListStreams", json!({}), Ok(json!({}))).read_only);
    }

    #[test]
    fn writes_one_line_per_event_and_rotates_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let (log, writer) = AuditLog::start_with(dir.path(), 1024, 2_000).unwrap();
        for index in 0..40 {
            log.record(call(
                "CreateStream",
                json!({"StreamName": format!("s{index}"), "ShardCount": 1}),
                Ok(Value::Null),
            ));
        }
        writer.shutdown().unwrap();
        assert_eq!(log.dropped(), 0);
        let mut names: Vec<String> = Vec::new();
        let mut total = 0;
        // Oldest file first, so the names come out in the order they were recorded.
        for generation in (0..=AUDIT_FILES_KEPT).rev() {
            let path = if generation == 0 {
                dir.path().join(FILE_NAME)
            } else {
                dir.path().join(format!("{FILE_NAME}.{generation}"))
            };
            if path.exists() {
                assert!(
                    std::fs::metadata(&path).unwrap().len() <= 2_000,
                    "{} is over the rotation size",
                    path.display()
                );
                for line in lines(&path) {
                    names.push(line["requestParameters"]["StreamName"].as_str().unwrap().to_string());
                    total += 1;
                }
            }
        }
        assert!(dir.path().join(format!("{FILE_NAME}.1")).exists(), "no rotation happened");
        // Only AUDIT_FILES_KEPT + 1 files survive; the newest events are all there, in order.
        assert!(total < 40 && total > 10, "{total}");
        let expected: Vec<String> = (40 - total..40).map(|index| format!("s{index}")).collect();
        assert_eq!(names, expected);
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let (go, gate) = std::sync::mpsc::channel();
        let (log, writer) = AuditLog::spawn(dir.path(), 4, AUDIT_FILE_BYTES_MAX, Some(gate)).unwrap();
        // The writer is held back: the queue takes 4 events, every further call returns at
        // once having counted its event as dropped.
        for index in 0..5_000 {
            log.record(call("CreateStream", json!({"StreamName": format!("s{index}")}), Ok(Value::Null)));
        }
        let dropped = log.dropped();
        assert_eq!(dropped, 4_996);
        go.send(()).unwrap();
        writer.shutdown().unwrap();
        let written = lines(&dir.path().join(FILE_NAME));
        let events = written.iter().filter(|line| line["eventName"] == "CreateStream").count() as u64;
        let reported: u64 = written
            .iter()
            .filter(|line| line["eventName"] == "AuditEventsDropped")
            .map(|line| line["droppedEventCount"].as_u64().unwrap())
            .sum();
        assert_eq!(events + dropped, 5_000, "every event is either written or counted as dropped");
        assert_eq!(reported, dropped, "the log reports every drop");
    }

    #[test]
    fn records_after_shutdown_are_counted_not_lost_silently() {
        let dir = tempfile::tempdir().unwrap();
        let (log, writer) = AuditLog::start(dir.path()).unwrap();
        writer.shutdown().unwrap();
        log.record(call("DeleteStream", json!({}), Ok(Value::Null)));
        assert_eq!(log.dropped(), 1);
    }
}
