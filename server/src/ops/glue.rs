//! The AWS Glue Data Catalog inside sluiced (`AWSGlue.*` on the HTTP port): the catalog of
//! databases and tables that delivery streams' Parquet conversion reads its schema from. This
//! module owns its persistence and runs each call authorized and audited; the catalog itself,
//! its shapes and checks are `sluice_firehose::glue` (pure), and the HTTP codec is
//! `net::http::glue`.
//!
//! With `--credentials`, a call needs `glue:<Operation>` on every resource it touches, as AWS
//! Glue asks: the catalog (`arn:aws:glue:REGION:ACCOUNT:catalog`), the database
//! (`…:database/NAME`) and the table (`…:table/DATABASE/NAME`). A refusal is
//! AccessDeniedException with IAM's message; calls of an authenticated caller are audited with
//! `eventSource` `glue.amazonaws.com`.
//!
//! Durability: the whole catalog is kept in `data-dir/firehose/glue-catalog.json`, beside the
//! delivery streams' definitions, replaced atomically (written, fsynced, renamed) before a
//! change is answered, so an acknowledged change survives a SIGKILL. A change is applied to a
//! copy first: a failed write changes nothing.
//!
//! On a replicated node (`--peers`) the changes are refused as the other unreplicated
//! operations are (`cluster::meta::refuse_unreplicated`): the catalog is per node and no
//! metadata command carries it yet. Reads are served from the node's own catalog.
//!
//! Layer: ops.

use crate::ops::audit;
use crate::ops::auth::{self, Caller};
use crate::ops::cluster::meta::refuse_unreplicated;
use crate::ops::node::Node;
use serde_json::Value;
use sluice_engine::catalog::write_atomic;
use sluice_firehose::glue::{Call, Catalog, GlueError, Operation, SharedCatalog};
use sluice_model::Identity;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// The file of the catalog, under the delivery streams' directory (`data-dir/firehose/`).
const CATALOG_FILE: &str = "glue-catalog.json";

/// A node's Data Catalog and where it is kept.
pub struct Glue {
    path: PathBuf,
    catalog: SharedCatalog,
}

/// Why the catalog could not be read at start.
#[derive(Debug, thiserror::Error)]
pub enum GlueOpenError {
    #[error("read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("parse {path}: {source}")]
    Parse { path: PathBuf, source: serde_json::Error },
}

impl Glue {
    /// Reads the catalog kept in `dir` (the delivery streams' directory), if any.
    pub fn open(dir: &Path) -> Result<Glue, GlueOpenError> {
        let path = dir.join(CATALOG_FILE);
        let catalog = match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|source| GlueOpenError::Parse { path: path.clone(), source })?
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Catalog::default(),
            Err(source) => return Err(GlueOpenError::Read { path, source }),
        };
        Ok(Glue { path, catalog: Arc::new(RwLock::new(catalog)) })
    }

    /// The catalog, as the delivery engine reads it.
    pub fn shared(&self) -> SharedCatalog {
        self.catalog.clone()
    }

    /// Authorizes, runs and audits one call for `caller`: the answer in AWS's JSON shape.
    pub fn respond(&self, node: &Node, caller: &Caller, operation: Operation, body: &[u8]) -> Result<Value, GlueError> {
        let answer = self.call(node, caller, operation, body);
        if audit::records(node, caller) {
            let parameters = serde_json::from_slice(body).unwrap_or(Value::Null);
            let outcome = answer.as_ref().map(drop).map_err(|error| (error.exception, error.message.as_str()));
            audit::record_glue_call(node, caller, operation.name(), parameters, outcome);
        }
        answer
    }

    fn call(&self, node: &Node, caller: &Caller, operation: Operation, body: &[u8]) -> Result<Value, GlueError> {
        let identity = node.identity();
        let call = Call::from_json(operation, body, identity.account_id())?;
        authorize(node, caller, operation, &call)?;
        if !operation.changes() {
            return self.catalog.read().expect("the catalog lock is not poisoned").read(call, identity.account_id());
        }
        if node.shared.config.cluster.is_some() {
            return Err(GlueError::new("InternalServiceException", refuse_unreplicated(operation.name()).message));
        }
        // The write lock orders the changes of every core; the engine's readers wait for at
        // most one file replacement.
        let mut catalog = self.catalog.write().expect("the catalog lock is not poisoned");
        let mut changed = catalog.clone();
        let answer = changed.run(call, identity.account_id(), node.now_ms())?;
        let bytes = serde_json::to_vec(&changed).expect("the catalog serializes");
        let failed = |error: &dyn std::fmt::Display| {
            GlueError::new("InternalServiceException", format!("persist the Data Catalog: {error}"))
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|error| failed(&error))?;
        }
        write_atomic(&self.path, &bytes).map_err(|error| failed(&error))?;
        *catalog = changed;
        Ok(answer)
    }
}

/// The ARNs a call touches, as AWS Glue authorizes them: the catalog, then the database and
/// the table it names.
fn resources(identity: &Identity, call: &Call) -> Vec<String> {
    let base = format!("arn:aws:glue:{}:{}", identity.region(), identity.account_id());
    let (database, table) = call.resources();
    let mut arns = vec![format!("{base}:catalog")];
    if let Some(database) = &database {
        arns.push(format!("{base}:database/{database}"));
        if let Some(table) = &table {
            arns.push(format!("{base}:table/{database}/{table}"));
        }
    }
    arns
}

fn authorize(node: &Node, caller: &Caller, operation: Operation, call: &Call) -> Result<(), GlueError> {
    let action = format!("glue:{}", operation.name());
    auth::authorize_arns(node, caller, &action, &resources(node.identity(), call), std::iter::empty::<(&str, &str)>())
        .map_err(|error| GlueError::new(error.kind.exception_name(), error.message))
}
