//! Sluice's admin operations over HTTP (`X-Amz-Target: SluiceAdmin_20261201.<Operation>`, AWS
//! JSON 1.1, SigV4 for the service `kinesis`, as the Kinesis operations): the cluster's
//! membership (`ops::cluster::membership`). Each call is authorized for the IAM action
//! `sluice:<Operation>` on the cluster's ARN (`arn:aws:sluice:REGION:ACCOUNT:cluster`), which
//! `kinesis:*` does not grant, and audited.
//!
//! - `ReplaceClusterMember` `{"OldNodeId", "NewNodeId", "PeerAddress", "NativeAddress"?,
//!   "HttpAddress"?}`: answered by the node leading the catalog (another names it: retry there);
//!   refused (ResourceInUseException) until every group finished the last change.
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
    DescribeCluster,
}

impl Operation {
    pub fn from_name(name: &str) -> Option<Operation> {
        match name {
            "ReplaceClusterMember" => Some(Operation::ReplaceClusterMember),
            "DescribeCluster" => Some(Operation::DescribeCluster),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Operation::ReplaceClusterMember => "ReplaceClusterMember",
            Operation::DescribeCluster => "DescribeCluster",
        }
    }

    fn iam_action(self) -> &'static str {
        match self {
            Operation::ReplaceClusterMember => "sluice:ReplaceClusterMember",
            Operation::DescribeCluster => "sluice:DescribeCluster",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct ReplaceInput {
    old_node_id: u64,
    new_node_id: u64,
    peer_address: String,
    native_address: Option<String>,
    http_address: Option<String>,
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
    auth::authorize_arns(node, caller, operation.iam_action(), &[cluster], std::iter::empty::<(&str, &str)>())?;
    match operation {
        Operation::DescribeCluster => membership::describe(node).await,
        Operation::ReplaceClusterMember => {
            let input: ReplaceInput = serde_json::from_slice(body)
                .map_err(|error| KinesisError::serialization(format!("ReplaceClusterMember's input: {error}")))?;
            let address = |field: &str, text: &str| {
                text.parse::<SocketAddr>().map_err(|_| {
                    KinesisError::invalid_argument(format!(
                        "{field} `{text}` is not HOST:PORT (an IP address and a port)"
                    ))
                })
            };
            let member = MemberAddresses {
                peer: address("PeerAddress", &input.peer_address)?,
                native: input.native_address.as_deref().map(|text| address("NativeAddress", text)).transpose()?,
                http: input.http_address.as_deref().map(|text| address("HttpAddress", text)).transpose()?,
            };
            membership::replace_member(node, input.old_node_id, input.new_node_id, member).await?;
            Ok(Value::Object(Default::default()))
        }
    }
}
