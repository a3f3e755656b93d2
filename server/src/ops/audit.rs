//! The audit log's entries (`--audit-dir`): one CloudTrail-shaped event per call of an
//! authenticated caller, allowed or refused, and one per request refused before it had a
//! caller (a bad or missing signature). Recording never waits: the log's queue is bounded and
//! an event that does not fit is dropped and counted (`sluice_security::audit`).
//!
//! Record data never reaches the log: PutRecord's and PutRecords' `Data` are written as
//! `HIDDEN_DUE_TO_SECURITY_REASONS`, as CloudTrail writes them, and are never serialized.

use crate::ops::auth::{CallSource, Caller};
use crate::ops::node::Node;
use serde_json::{json, Value};
use sluice_model::{KinesisError, Operation, Request};
use sluice_security::audit::{AuditEvent, CallRecord, UserIdentity, EVENT_SOURCE};

/// What CloudTrail writes in place of sensitive fields.
const HIDDEN: &str = "HIDDEN_DUE_TO_SECURITY_REASONS";

/// The request parameters an event shows, computed before the request is consumed; `None`
/// when nothing is to be recorded (no audit log, or an anonymous caller in open mode).
pub fn parameters(node: &Node, caller: &Caller, request: &Request) -> Option<Value> {
    node.shared.config.security.audit.as_ref()?;
    caller.principal()?;
    Some(match request {
        Request::PutRecord(input) => json!({
            "StreamName": input.stream_name, "StreamARN": input.stream_arn,
            "PartitionKey": input.partition_key, "Data": HIDDEN,
        }),
        Request::PutRecords(input) => json!({
            "StreamName": input.stream_name, "StreamARN": input.stream_arn,
            "Records": input.records.iter()
                .map(|entry| json!({"PartitionKey": entry.partition_key, "Data": HIDDEN}))
                .collect::<Vec<_>>(),
        }),
        other => serde_json::to_value(other).unwrap_or(Value::Null),
    })
}

/// Records a call of an authenticated caller and its outcome.
pub fn record_call(
    node: &Node,
    caller: &Caller,
    operation: Operation,
    parameters: Value,
    outcome: Result<(), &KinesisError>,
) {
    let (Some(log), Some(principal)) = (&node.shared.config.security.audit, caller.principal()) else { return };
    let source = match caller {
        Caller::Principal(authenticated) => &authenticated.source,
        Caller::Anonymous => return,
    };
    let outcome =
        outcome.map(|()| Value::Null).map_err(|error| (error.kind.exception_name().to_string(), error.message.clone()));
    log.record(event(node, operation.name(), UserIdentity::of(principal), source, parameters, outcome));
}

/// CloudTrail's `eventSource` of Firehose's calls (Kinesis' is the log's own,
/// `sluice_security::audit::EVENT_SOURCE`).
pub const FIREHOSE_EVENT_SOURCE: &str = "firehose.amazonaws.com";

/// Records a call of an authenticated caller to a Kinesis operation served outside the Kinesis
/// model (the channels): `parameters` as the caller sent them, with [`hide_sensitive`] applied;
/// the outcome as AWS's exception name and message.
pub fn record_named_call(
    node: &Node,
    caller: &Caller,
    operation: &str,
    parameters: Value,
    outcome: Result<(), (&str, &str)>,
) {
    record_named(node, caller, operation, parameters, outcome, EVENT_SOURCE);
}

/// [`record_named_call`] for a Firehose operation: its event's `eventSource` is
/// `firehose.amazonaws.com`, as CloudTrail writes it.
pub fn record_firehose_call(
    node: &Node,
    caller: &Caller,
    operation: &str,
    parameters: Value,
    outcome: Result<(), (&str, &str)>,
) {
    record_named(node, caller, operation, parameters, outcome, FIREHOSE_EVENT_SOURCE);
}

/// CloudTrail's `eventSource` of AWS Glue's calls.
pub const GLUE_EVENT_SOURCE: &str = "glue.amazonaws.com";

/// [`record_named_call`] for a Glue Data Catalog operation (`eventSource` `glue.amazonaws.com`).
pub fn record_glue_call(
    node: &Node,
    caller: &Caller,
    operation: &str,
    parameters: Value,
    outcome: Result<(), (&str, &str)>,
) {
    record_named(node, caller, operation, parameters, outcome, GLUE_EVENT_SOURCE);
}

fn record_named(
    node: &Node,
    caller: &Caller,
    operation: &str,
    mut parameters: Value,
    outcome: Result<(), (&str, &str)>,
    event_source: &'static str,
) {
    let (Some(log), Some(principal)) = (&node.shared.config.security.audit, caller.principal()) else { return };
    let Caller::Principal(authenticated) = caller else { return };
    hide_sensitive(&mut parameters);
    let outcome = outcome.map(|()| Value::Null).map_err(|(code, message)| (code.to_string(), message.to_string()));
    let mut event = event(node, operation, UserIdentity::of(principal), &authenticated.source, parameters, outcome);
    event.event_source = event_source;
    log.record(event);
}

/// Whether the audit log would record a call of `caller` (so a caller of
/// [`record_named_call`] can skip building its parameters).
pub fn records(node: &Node, caller: &Caller) -> bool {
    node.shared.config.security.audit.is_some() && caller.principal().is_some()
}

/// Replaces, at any depth, what CloudTrail never shows: record `Data` and an HTTP endpoint's
/// `AccessKey`.
fn hide_sensitive(value: &mut Value) {
    match value {
        Value::Object(members) => {
            for (key, member) in members.iter_mut() {
                if key == "Data" || key == "AccessKey" {
                    *member = Value::String(HIDDEN.to_string());
                } else {
                    hide_sensitive(member);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(hide_sensitive),
        _ => {}
    }
}

/// Records a request refused before it had a caller: its signature was missing or wrong.
pub fn record_refusal(
    node: &Node,
    operation: &str,
    access_key_id: Option<&str>,
    source: &CallSource,
    exception: &str,
    message: &str,
) {
    let Some(log) = &node.shared.config.security.audit else { return };
    let outcome = Err((exception.to_string(), message.to_string()));
    log.record(event(node, operation, UserIdentity::anonymous(access_key_id), source, Value::Null, outcome));
}

fn event(
    node: &Node,
    operation: &str,
    identity: UserIdentity,
    source: &CallSource,
    request_parameters: Value,
    outcome: Result<Value, (String, String)>,
) -> AuditEvent {
    AuditEvent::from_call(CallRecord {
        now_ms: node.now_ms(),
        operation: operation.to_string(),
        region: node.identity().region().to_string(),
        account_id: node.identity().account_id().to_string(),
        source_ip: source.source_ip.map(|ip| ip.to_string()).unwrap_or_default(),
        user_agent: source.user_agent.clone(),
        identity,
        request_parameters,
        outcome,
        request_id: source.request_id.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
    })
}
