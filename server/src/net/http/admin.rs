//! Sluice's admin operations over HTTP (`X-Amz-Target: SluiceAdmin_20261201.<Operation>`, AWS
//! JSON 1.1, SigV4 for the service `kinesis`, as the Kinesis operations): the cluster's
//! membership (`ops::cluster::membership`). Each call is authorized for the IAM action
//! `sluice:<Operation>` on the cluster's ARN (`arn:aws:sluice:REGION:ACCOUNT:cluster`), which
//! `kinesis:*` does not grant, and audited.
//!
//! - `ReplaceClusterMember` `{"OldNodeId", "NewNodeId", "PeerAddress", "NativeAddress"?,
//!   "HttpAddress"?}`: run by the node leading the catalog. Another authorizes the call and
//!   checks its input, then forwards it to the leader's HTTP listener as it came (its
//!   signature covers its `Host` header, not the address it goes to; HTTPS when this node
//!   forwards over TLS), marked with `x-sluice-forwarded-by` so that it goes no further, and
//!   relays the answer. The leader authorizes it again, with the client's address as
//!   `aws:SourceIp` when the forwarding member proved it (`relay`, with a cluster secret), the
//!   forwarding member's otherwise. A leader without an HTTP address in `--peers` is named
//!   instead: retry there. Refused (ResourceInUseException) until every group finished the last change.
//! - `AddClusterMember` `{"NewNodeId", "PeerAddress", "NativeAddress"?, "HttpAddress"?}` and
//!   `RemoveClusterMember` `{"OldNodeId"}`: the same, for one more member or one fewer.
//! - `DescribeCluster` `{}`: this node's view of the members and of its groups' memberships.

use crate::limits::FORWARD_ANSWER_WAIT_MS;
use crate::net::http::{document, relay, Body, Refusal};
use crate::ops::audit;
use crate::ops::auth::{self, Caller};
use crate::ops::cluster::membership::{self, MemberAddresses};
use crate::ops::cluster::META_GROUP;
use crate::ops::node::Node;
use http::{Request, Response, StatusCode};
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

/// Largest answer a forwarded call's leader may send (membership answers are `{}` or an error).
const FORWARDED_ANSWER_BYTES_MAX: usize = 64 << 10;

/// Sends the call to the catalog's leader as it came (`relay`): its status and answer.
async fn forward(
    node: &Node,
    leader: (u64, SocketAddr),
    call: (&Request<()>, &bytes::Bytes, relay::Client),
) -> Result<(StatusCode, bytes::Bytes), KinesisError> {
    let bounds = relay::AnswerBounds { bytes_max: FORWARDED_ANSWER_BYTES_MAX, wait_ms: FORWARD_ANSWER_WAIT_MS };
    let relayed = relay::relay(node, leader, "the catalog", call, bounds).await?;
    Ok((relayed.status, relayed.body))
}

/// What a call's answer is: this node's, or the catalog leader's relayed.
enum Answer {
    Here(Value),
    Relayed(StatusCode, bytes::Bytes),
}

/// Authorizes, runs and audits one admin call for `caller`. A membership change reaching a
/// node that does not lead the catalog is authorized here, then forwarded to the leader
/// ([`forward`]), which authorizes it again and runs it.
pub async fn respond(
    node: &Rc<Node>,
    caller: &Caller,
    operation: Operation,
    (head, body, client): (&Request<()>, &bytes::Bytes, relay::Client),
) -> Result<Response<Body>, Refusal> {
    let outcome = match catalog_leader_elsewhere(node, operation, head) {
        // Refused here what the leader would refuse for the caller or the input alone.
        Some((leader, http)) => match authorize(node, caller, operation).and_then(|()| change_of(operation, body)) {
            Ok(_) => {
                let call = (head, body, client);
                forward(node, (leader, http), call).await.map(|(status, answer)| Answer::Relayed(status, answer))
            }
            Err(error) => Err(error),
        },
        None => run(node, caller, operation, body).await.map(Answer::Here),
    };
    if audit::records(node, caller) {
        let parameters = serde_json::from_slice(body).unwrap_or(Value::Null);
        let relayed_error = match &outcome {
            Ok(Answer::Relayed(status, answer)) if !status.is_success() => {
                let answer: Value = serde_json::from_slice(answer).unwrap_or(Value::Null);
                let text = |field: &str| answer[field].as_str().unwrap_or_default().to_string();
                Some((text("__type"), text("message")))
            }
            _ => None,
        };
        let recorded = match (&outcome, &relayed_error) {
            (Err(error), _) => Err((error.kind.exception_name(), error.message.as_str())),
            (Ok(_), Some((exception, message))) => Err((exception.as_str(), message.as_str())),
            (Ok(_), None) => Ok(()),
        };
        audit::record_named_call(node, caller, operation.name(), parameters, recorded);
    }
    Ok(match outcome? {
        Answer::Here(answer) => document(
            StatusCode::OK,
            "application/x-amz-json-1.1",
            serde_json::to_vec(&answer).expect("JSON values serialize"),
        ),
        Answer::Relayed(status, answer) => document(status, "application/x-amz-json-1.1", answer.to_vec()),
    })
}

/// The member leading the catalog and its HTTP address, when `operation` changes the members,
/// another member leads, this call was not forwarded already, and the leader has an HTTP
/// address; otherwise the call runs here (and a node that does not lead names the leader).
fn catalog_leader_elsewhere(node: &Node, operation: Operation, head: &Request<()>) -> Option<(u64, SocketAddr)> {
    let config = node.shared.config.cluster.as_ref()?;
    if operation == Operation::DescribeCluster || relay::relayed_here(head) {
        return None;
    }
    let leader = node.shared.leaders.leader(META_GROUP.0).filter(|&leader| leader != config.node_id)?;
    Some((leader, relay::http_address(node, leader)?))
}

/// The membership change a call's input names, or why the input is refused.
fn change_of(operation: Operation, body: &[u8]) -> Result<Change, KinesisError> {
    let input: ChangeInput = serde_json::from_slice(body)
        .map_err(|error| KinesisError::serialization(format!("{}'s input: {error}", operation.name())))?;
    input.change(operation)
}

fn authorize(node: &Node, caller: &Caller, operation: Operation) -> Result<(), KinesisError> {
    let identity = node.identity();
    let cluster = format!("arn:aws:sluice:{}:{}:cluster", identity.region(), identity.account_id());
    auth::authorize_arns(node, caller, &operation.iam_action(), &[cluster], std::iter::empty::<(&str, &str)>())
}

async fn run(node: &Rc<Node>, caller: &Caller, operation: Operation, body: &[u8]) -> Result<Value, KinesisError> {
    authorize(node, caller, operation)?;
    match operation {
        Operation::DescribeCluster => membership::describe(node).await,
        Operation::ReplaceClusterMember | Operation::AddClusterMember | Operation::RemoveClusterMember => {
            let (leaving, joining) = change_of(operation, body)?;
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
