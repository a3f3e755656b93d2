//! Who may call the Kinesis channel operations: with `--credentials`, each channel call is
//! authorized for its caller before `net::http::channels` runs it, and audited.
//!
//! AWS's service authorization reference names no resources for the channel actions yet, so
//! they follow the model's operation names and its `ChannelARN` shape
//! (`arn:aws:kinesis:REGION:ACCOUNT:channel/NAME`), the way Amazon MSK's channel actions are
//! documented ("Channel lifecycle management permissions": create and list on the source,
//! describe, update and delete on the channel):
//!
//! | operation | action | resources |
//! |---|---|---|
//! | CreateChannel | `kinesis:CreateChannel` | the new channel's ARN and each source stream's ARN |
//! | CreateChannel with `Tags` | also `kinesis:TagResource` | the new channel's ARN |
//! | DescribeChannel, UpdateChannel, DeleteChannel | `kinesis:<Operation>` | `ChannelARN` |
//! | ListChannels | `kinesis:ListChannels` | each `StreamFilter` stream's ARN, else `*` |
//!
//! The members the check needs are read from the body by a decoder of their own (every member
//! optional, the same types as the operation's), so the operation's decoder and validation stay
//! in `channels` untouched. A body this decoder cannot read is checked on `*` (fail closed: only
//! a caller allowed the action everywhere gets as far as the operation's own
//! SerializationException).

use crate::net::http::channels::Operation;
use crate::ops::audit;
use crate::ops::auth::{self, Caller};
use crate::ops::firehose::FirehoseError;
use crate::ops::firehose_bodies::{channel_peek, StreamArnOnly};
use crate::ops::node::Node;
use serde_json::Value;
use std::collections::BTreeMap;

/// One IAM action a channel call needs, on these resources (`*` when empty), with the tags it sets.
#[derive(Debug, PartialEq, Eq)]
pub struct ChannelCheck {
    pub action: &'static str,
    pub resources: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

/// The IAM action of `operation`.
pub fn iam_action(operation: Operation) -> &'static str {
    match operation {
        Operation::CreateChannel => "kinesis:CreateChannel",
        Operation::DeleteChannel => "kinesis:DeleteChannel",
        Operation::DescribeChannel => "kinesis:DescribeChannel",
        Operation::ListChannels => "kinesis:ListChannels",
        Operation::UpdateChannel => "kinesis:UpdateChannel",
    }
}

/// What a channel call with `body` needs; `channel_arn` makes a channel's ARN of its name.
pub fn checks(operation: Operation, body: &[u8], channel_arn: impl Fn(&str) -> String) -> Vec<ChannelCheck> {
    let action = iam_action(operation);
    let Some(peek) = channel_peek(body) else {
        return vec![ChannelCheck { action, resources: Vec::new(), tags: BTreeMap::new() }];
    };
    let streams = |list: Option<Vec<StreamArnOnly>>| -> Vec<String> {
        list.unwrap_or_default().into_iter().filter_map(|stream| stream.stream_arn).collect()
    };
    match operation {
        Operation::CreateChannel => {
            let channel = peek.channel_name.as_deref().map(&channel_arn);
            let tags = peek.tags.unwrap_or_default();
            let mut resources: Vec<String> = channel.iter().cloned().collect();
            resources.extend(streams(peek.stream_configuration_list));
            let mut checks = vec![ChannelCheck { action, resources, tags: tags.clone() }];
            if !tags.is_empty() {
                let resources = channel.into_iter().collect();
                checks.push(ChannelCheck { action: "kinesis:TagResource", resources, tags });
            }
            checks
        }
        Operation::ListChannels => {
            vec![ChannelCheck { action, resources: streams(peek.stream_filter), tags: BTreeMap::new() }]
        }
        Operation::DescribeChannel | Operation::UpdateChannel | Operation::DeleteChannel => {
            vec![ChannelCheck { action, resources: peek.channel_arn.into_iter().collect(), tags: BTreeMap::new() }]
        }
    }
}

/// Checks `caller` for every action the channel call needs (AccessDeniedException otherwise).
pub fn authorize(node: &Node, caller: &Caller, operation: Operation, body: &[u8]) -> Result<(), FirehoseError> {
    if matches!(caller, Caller::Anonymous) {
        return Ok(());
    }
    let identity = node.identity();
    let arn_of = |name: &str| format!("arn:aws:kinesis:{}:{}:channel/{name}", identity.region(), identity.account_id());
    for check in checks(operation, body, arn_of) {
        let tags = check.tags.iter().map(|(key, value)| (key.as_str(), value.as_str()));
        auth::authorize_arns(node, caller, check.action, &check.resources, tags)
            .map_err(|error| FirehoseError::new(error.kind.exception_name(), error.message))?;
    }
    Ok(())
}

/// Records a channel call of an authenticated caller in the audit log.
pub fn record(node: &Node, caller: &Caller, operation: Operation, body: &[u8], outcome: Result<(), &FirehoseError>) {
    if !audit::records(node, caller) {
        return;
    }
    let parameters = serde_json::from_slice(body).unwrap_or(Value::Null);
    let outcome = outcome.map_err(|error| (error.exception, error.message.as_str()));
    audit::record_named_call(node, caller, operation.name(), parameters, outcome);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(operation: Operation, body: &str, want: &[(&str, &[&str])]) {
        let got = checks(operation, body.as_bytes(), |name| format!("arn:channel/{name}"));
        let got: Vec<(&str, Vec<&str>)> =
            got.iter().map(|check| (check.action, check.resources.iter().map(String::as_str).collect())).collect();
        let want: Vec<(&str, Vec<&str>)> = want.iter().map(|(action, arns)| (*action, arns.to_vec())).collect();
        assert_eq!(got, want, "{body}");
    }

    #[test]
    fn each_operation_names_its_action_and_resources() {
        check(
            Operation::CreateChannel,
            r#"{"ChannelName": "c", "StreamConfigurationList": [{"StreamARN": "s1"}, {"StreamARN": "s2"}]}"#,
            &[("kinesis:CreateChannel", &["arn:channel/c", "s1", "s2"])],
        );
        check(
            Operation::CreateChannel,
            r#"{"ChannelName": "c", "Tags": {"team": "a"}}"#,
            &[("kinesis:CreateChannel", &["arn:channel/c"]), ("kinesis:TagResource", &["arn:channel/c"])],
        );
        check(Operation::DescribeChannel, r#"{"ChannelARN": "x"}"#, &[("kinesis:DescribeChannel", &["x"])]);
        check(Operation::UpdateChannel, r#"{"ChannelARN": "x"}"#, &[("kinesis:UpdateChannel", &["x"])]);
        check(Operation::DeleteChannel, r#"{"ChannelARN": "x"}"#, &[("kinesis:DeleteChannel", &["x"])]);
        check(Operation::ListChannels, "", &[("kinesis:ListChannels", &[])]);
        check(
            Operation::ListChannels,
            r#"{"StreamFilter": [{"StreamARN": "s"}]}"#,
            &[("kinesis:ListChannels", &["s"])],
        );
    }

    #[test]
    fn an_unreadable_body_is_checked_on_every_resource() {
        check(Operation::DeleteChannel, "not json", &[("kinesis:DeleteChannel", &[])]);
        check(Operation::DeleteChannel, r#"{"ChannelARN": 7}"#, &[("kinesis:DeleteChannel", &[])]);
    }
}
