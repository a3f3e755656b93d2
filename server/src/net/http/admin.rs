//! Sluice's admin operations over HTTP (`X-Amz-Target: SluiceAdmin_20261201.<Operation>`, AWS
//! JSON 1.1, SigV4 for the service `kinesis`, as the Kinesis operations): the cluster's
//! membership (`ops::cluster::membership`). Each call is authorized for the IAM action
//! `sluice:<Operation>` on the cluster's ARN (`arn:aws:sluice:REGION:ACCOUNT:cluster`), which
//! `kinesis:*` does not grant, and audited.
//!
//! - `ReplaceClusterMember` `{"OldNodeId", "NewNodeId", "PeerAddress", "NativeAddress"?,
//!   "HttpAddress"?}`: answered by the node leading the catalog (another names it: retry there);
//!   refused (ResourceInUseException) until every group finished the last change.
//! - `AddClusterMember` `{"NewNodeId", "PeerAddress", "NativeAddress"?, "HttpAddress"?}` and
//!   `RemoveClusterMember` `{"OldNodeId"}`: the same, for one more member or one fewer.
//! - `DescribeCluster` `{}`: this node's view of the members and of its groups' memberships.

use crate::net::http::{document, Body, Refusal};
use crate::ops::audit;
use crate::ops::auth::{self, Caller};
use crate::ops::cluster::membership::{self, MemberAddresses};
use crate::ops::node::Node;
use http::{Response, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use sluice_model::KinesisError;
use std::net::SocketAddr;
use std::rc::Rc;

pub const TARGET_PREFIX: &str = "SluiceAdmin_20261201.";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    ReplaceClusterMember,
    AddClusterMember,
    RemoveClusterMember,
    DescribeCluster,
}

impl Operation {
    const ALL: [Operation; 4] = [
        Operation::ReplaceClusterMember,
        Operation::AddClusterMember,
        Operation::RemoveClusterMember,
        Operation::DescribeCluster,
    ];

    pub fn from_name(name: &str) -> Option<Operation> {
        Operation::ALL.into_iter().find(|operation| operation.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Operation::ReplaceClusterMember => "ReplaceClusterMember",
            Operation::AddClusterMember => "AddClusterMember",
            Operation::RemoveClusterMember => "RemoveClusterMember",
            Operation::DescribeCluster => "DescribeCluster",
        }
    }

    fn iam_action(self) -> String {
        format!("sluice:{}", self.name())
    }
}

/// The member leaving and the node joining (with its addresses) that a call names.
type Change = (Option<u64>, Option<(u64, MemberAddresses)>);

/// ReplaceClusterMember's input; AddClusterMember's is the same without `OldNodeId`,
/// RemoveClusterMember's only `OldNodeId`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct ChangeInput {
    old_node_id: Option<u64>,
    new_node_id: Option<u64>,
    peer_address: Option<String>,
    native_address: Option<String>,
    http_address: Option<String>,
}

impl ChangeInput {
    /// The member leaving and the node joining that `operation`'s input names, each required
    /// where the operation needs it and refused where it does not take it.
    fn change(self, operation: Operation) -> Result<Change, KinesisError> {
        let name = operation.name();
        let (wants_old, wants_new) = match operation {
            Operation::ReplaceClusterMember => (true, true),
            Operation::AddClusterMember => (false, true),
            Operation::RemoveClusterMember => (true, false),
            Operation::DescribeCluster => (false, false),
        };
        let field = |wanted: bool, given: bool, field: &str| match (wanted, given) {
            (true, false) => {
                let path = format!("{}{}", field[..1].to_lowercase(), &field[1..]);
                Err(KinesisError::validation(sluice_model::Violation::null(&path)))
            }
            (false, true) => Err(KinesisError::serialization(format!("{name} takes no {field}"))),
            _ => Ok(()),
        };
        field(wants_old, self.old_node_id.is_some(), "OldNodeId")?;
        field(wants_new, self.new_node_id.is_some(), "NewNodeId")?;
        field(wants_new, self.peer_address.is_some(), "PeerAddress")?;
        if !wants_new {
            field(false, self.native_address.is_some(), "NativeAddress")?;
            field(false, self.http_address.is_some(), "HttpAddress")?;
        }
        let address = |field: &str, text: &str| {
            text.parse::<SocketAddr>().map_err(|_| {
                KinesisError::invalid_argument(format!("{field} `{text}` is not HOST:PORT (an IP address and a port)"))
            })
        };
        let joining = match (self.new_node_id, self.peer_address) {
            (Some(new), Some(peer)) => Some((
                new,
                MemberAddresses {
                    peer: address("PeerAddress", &peer)?,
                    native: self.native_address.as_deref().map(|text| address("NativeAddress", text)).transpose()?,
                    http: self.http_address.as_deref().map(|text| address("HttpAddress", text)).transpose()?,
                },
            )),
            _ => None,
        };
        Ok((self.old_node_id, joining))
    }
}

/// Authorizes, runs and audits one admin call for `caller`.
pub async fn respond(
    node: &Rc<Node>,
    caller: &Caller,
    operation: Operation,
    body: &[u8],
) -> Result<Response<Body>, Refusal> {
    let outcome = run(node, caller, operation, body).await;
    if audit::records(node, caller) {
        let parameters = serde_json::from_slice(body).unwrap_or(Value::Null);
        let recorded =
            outcome.as_ref().map(|_| ()).map_err(|error| (error.kind.exception_name(), error.message.as_str()));
        audit::record_named_call(node, caller, operation.name(), parameters, recorded);
    }
    let answer = outcome?;
    Ok(document(
        StatusCode::OK,
        "application/x-amz-json-1.1",
        serde_json::to_vec(&answer).expect("JSON values serialize"),
    ))
}

async fn run(node: &Rc<Node>, caller: &Caller, operation: Operation, body: &[u8]) -> Result<Value, KinesisError> {
    let identity = node.identity();
    let cluster = format!("arn:aws:sluice:{}:{}:cluster", identity.region(), identity.account_id());
    auth::authorize_arns(node, caller, &operation.iam_action(), &[cluster], std::iter::empty::<(&str, &str)>())?;
    match operation {
        Operation::DescribeCluster => membership::describe(node).await,
        Operation::ReplaceClusterMember | Operation::AddClusterMember | Operation::RemoveClusterMember => {
            let input: ChangeInput = serde_json::from_slice(body)
                .map_err(|error| KinesisError::serialization(format!("{}'s input: {error}", operation.name())))?;
            let (leaving, joining) = input.change(operation)?;
            membership::change_members(node, leaving, joining).await?;
            Ok(Value::Object(Default::default()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_model::ErrorKind;

    fn change(operation: Operation, body: &str) -> Result<Change, KinesisError> {
        serde_json::from_str::<ChangeInput>(body).unwrap().change(operation)
    }

    #[test]
    fn each_membership_call_takes_its_own_fields() {
        let (leaving, joining) =
            change(Operation::ReplaceClusterMember, r#"{"OldNodeId":3,"NewNodeId":4,"PeerAddress":"10.0.0.4:7000"}"#)
                .unwrap();
        assert_eq!(leaving, Some(3));
        assert_eq!(joining.map(|(id, member)| (id, member.peer.port(), member.http)), Some((4, 7000, None)));
        let (leaving, joining) = change(
            Operation::AddClusterMember,
            r#"{"NewNodeId":4,"PeerAddress":"10.0.0.4:7000","HttpAddress":"10.0.0.4:4567"}"#,
        )
        .unwrap();
        assert_eq!((leaving, joining.and_then(|(_, member)| member.http).map(|http| http.port())), (None, Some(4567)));
        assert_eq!(change(Operation::RemoveClusterMember, r#"{"OldNodeId":1}"#).unwrap(), (Some(1), None));

        let missing = change(Operation::AddClusterMember, r#"{"NewNodeId":4}"#).unwrap_err();
        assert_eq!(missing.kind, ErrorKind::Validation);
        assert!(missing.message.contains("'peerAddress'"), "{}", missing.message);
        let extra =
            change(Operation::AddClusterMember, r#"{"OldNodeId":1,"NewNodeId":4,"PeerAddress":"10.0.0.4:7000"}"#);
        assert_eq!(extra.unwrap_err().kind, ErrorKind::Serialization);
        let extra = change(Operation::RemoveClusterMember, r#"{"OldNodeId":1,"HttpAddress":"10.0.0.4:4567"}"#);
        assert_eq!(extra.unwrap_err().kind, ErrorKind::Serialization);
        let bad = change(Operation::RemoveClusterMember, r#"{}"#).unwrap_err();
        assert!(bad.message.contains("'oldNodeId'"), "{}", bad.message);
        let bad = change(Operation::AddClusterMember, r#"{"NewNodeId":4,"PeerAddress":"node4:7000"}"#).unwrap_err();
        assert_eq!(bad.kind, ErrorKind::InvalidArgument);
        assert_eq!(Operation::from_name("RemoveClusterMember"), Some(Operation::RemoveClusterMember));
        assert_eq!(Operation::RemoveClusterMember.iam_action(), "sluice:RemoveClusterMember");
    }
}
