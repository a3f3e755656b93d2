//! StartStreamEncryption / StopStreamEncryption: which master key a stream's new records are
//! sealed under (the catalog keeps it). The sealing itself, on every record's way to and from
//! the journal, is `ops::sealing`.

use crate::ops::cluster::meta::{edit, MetaCommand};
use crate::ops::node::Node;
use crate::ops::records::stream_route;
use crate::ops::sealing::{key_store, kms_error};
use sluice_engine::catalog::StreamEncryption;
use sluice_model::*;
use std::rc::Rc;

type Result<T, E = KinesisError> = std::result::Result<T, E>;

/// StartStreamEncryption: resolves `KeyId` (key id, key ARN, alias, alias ARN,
/// `alias/aws/kinesis`), checks the key is usable by the caller, and records it.
pub async fn start(node: &Rc<Node>, principal_arn: Option<&str>, input: StartStreamEncryptionInput) -> Result<Empty> {
    let name = stream_route(node, input.stream_name.as_deref(), input.stream_arn.as_ref())?.meta.name.clone();
    let key = key_store(node.shared.config.security.keys.as_deref())?.resolve(&input.key_id).map_err(kms_error)?;
    match principal_arn {
        Some(principal_arn) => key.check_usable(principal_arn, "kms:GenerateDataKey"),
        None => key.check_state(),
    }
    .map_err(kms_error)?;
    let encryption = StreamEncryption { key_id: input.key_id, master_key_id: key.key_id.to_string() };
    edit(node, MetaCommand::StartStreamEncryption { now_ms: node.now_ms(), name, encryption }).await?;
    Ok(Empty {})
}

/// StopStreamEncryption: new records are stored in plaintext again.
pub async fn stop(node: &Rc<Node>, input: StopStreamEncryptionInput) -> Result<Empty> {
    let name = stream_route(node, input.stream_name.as_deref(), input.stream_arn.as_ref())?.meta.name.clone();
    // The key may be named in any of its forms; compare the master key it resolves to.
    let key_id = match key_store(node.shared.config.security.keys.as_deref())
        .and_then(|store| store.resolve(&input.key_id).map_err(kms_error))
    {
        Ok(key) => key.key_id.to_string(),
        Err(_) => input.key_id,
    };
    edit(node, MetaCommand::StopStreamEncryption { now_ms: node.now_ms(), name, key_id }).await?;
    Ok(Empty {})
}
