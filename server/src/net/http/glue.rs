//! The AWS Glue Data Catalog over HTTP (`X-Amz-Target: AWSGlue.<Operation>`, AWS JSON 1.1, SigV4
//! for the service `glue`), so boto3's `glue` client works unchanged: CreateDatabase,
//! GetDatabase, GetDatabases, DeleteDatabase, CreateTable, GetTable, GetTables, UpdateTable,
//! DeleteTable. Decoding, checks and the catalog are `sluice_firehose::glue`; authorization,
//! persistence and the audit log are `ops::glue`.

use crate::net::http::{document, Body, Refusal};
use crate::ops::auth::Caller;
use crate::ops::glue::Glue;
use crate::ops::node::Node;
use http::{Response, StatusCode};
use sluice_firehose::glue::GlueError;

pub use sluice_firehose::glue::{Operation, TARGET_PREFIX};

/// The signing name of the Glue API (SigV4's `service` in the credential scope).
pub const SIGNING_SERVICE: &str = "glue";

impl From<GlueError> for Refusal {
    fn from(error: GlueError) -> Refusal {
        Refusal {
            status: StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_REQUEST),
            exception: error.exception,
            message: error.message,
        }
    }
}

/// Answers one Glue call for `caller`.
pub fn respond(
    node: &Node,
    caller: &Caller,
    glue: &Glue,
    operation: Operation,
    body: &[u8],
) -> Result<Response<Body>, Refusal> {
    let answer = glue.respond(node, caller, operation, body)?;
    Ok(document(
        StatusCode::OK,
        "application/x-amz-json-1.1",
        serde_json::to_vec(&answer).expect("JSON values serialize"),
    ))
}
