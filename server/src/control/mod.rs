//! Catalog changes, as pure functions: `fn(&mut Catalog, now_ms, ...) -> Result<_, KinesisError>`.
//!
//! Each function checks the rules that need the catalog (does the stream exist, is it ACTIVE,
//! would a quota be exceeded) and edits it; none does I/O or knows about cores. Core 0 applies
//! them to a copy of its catalog, persists the copy and publishes the new routes
//! (`ops/catalog.rs`), so a function that fails leaves nothing behind. They are unit-tested here
//! on a `Catalog` value, without a daemon.
//!
//! Layer: imports `kinesis` and `limits`.

pub mod consumers;
pub mod encryption;
pub mod members;
pub mod reshard;
pub mod settings;
pub mod streams;

use crate::kinesis::errors::catalog_error;
use sluice_engine::catalog::{Catalog, StreamMeta};
use sluice_model::{Identity, KinesisError};

/// What the rules of a change depend on besides the catalog.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    pub identity: &'a Identity,
    pub limits: &'a crate::limits::Limits,
}

/// The stream named `name`, or ResourceNotFound.
pub fn stream_mut<'c>(
    catalog: &'c mut Catalog,
    identity: &Identity,
    name: &str,
) -> Result<&'c mut StreamMeta, KinesisError> {
    catalog.streams.get_mut(name).ok_or_else(|| KinesisError::stream_not_found(identity, name))
}

/// Open shards across the account.
pub fn open_shards(catalog: &Catalog) -> u32 {
    catalog.streams.values().flat_map(|stream| &stream.shards).filter(|shard| shard.is_open()).count() as u32
}

/// ON_DEMAND streams across the account.
pub fn on_demand_streams(catalog: &Catalog) -> u32 {
    catalog.streams.values().filter(|stream| stream.mode == sluice_engine::catalog::CapacityMode::OnDemand).count()
        as u32
}

fn catalog_err(identity: &Identity) -> impl Fn(sluice_engine::catalog::CatalogError) -> KinesisError + '_ {
    move |error| catalog_error(identity, error)
}

#[cfg(test)]
pub(crate) mod test_support {
    use crate::control::Rules;
    use crate::limits::Limits;
    use sluice_model::Identity;
    use std::sync::OnceLock;

    pub const NOW_MS: i64 = 1_767_225_600_000;

    pub fn rules() -> Rules<'static> {
        static IDENTITY: OnceLock<Identity> = OnceLock::new();
        static LIMITS: OnceLock<Limits> = OnceLock::new();
        Rules { identity: IDENTITY.get_or_init(Identity::default), limits: LIMITS.get_or_init(Limits::default) }
    }
}
