//! The cluster's members as the catalog keeps them on a replicated node (issue 13): the
//! catalog command ReplaceMember's pure effect (`ops::cluster::membership` drives it).

use sluice_engine::catalog::{Catalog, CatalogMember};
use sluice_model::KinesisError;
use std::net::SocketAddr;

/// A member's addresses, as a catalog command carries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemberAddresses {
    pub peer: SocketAddr,
    pub native: Option<SocketAddr>,
    pub http: Option<SocketAddr>,
}

/// The catalog command ReplaceMember applied to `catalog` (the same on every node).
pub fn replace(
    catalog: &mut Catalog,
    old: u64,
    new: u64,
    member: &MemberAddresses,
    before: &[(u64, MemberAddresses)],
) -> Result<(), KinesisError> {
    let founder = |addresses: &MemberAddresses| CatalogMember {
        peer: addresses.peer,
        native: addresses.native,
        http: addresses.http,
        first_shard_uid: 0,
    };
    let mut members = catalog
        .members
        .clone()
        .unwrap_or_else(|| before.iter().map(|(id, addresses)| (*id, founder(addresses))).collect());
    if !members.contains_key(&old) {
        return Err(KinesisError::resource_not_found(format!("Node {old} is not a member of the cluster")));
    }
    if members.contains_key(&new) {
        return Err(KinesisError::resource_in_use(format!("Node {new} is a member of the cluster already")));
    }
    members.remove(&old);
    members.insert(new, CatalogMember { first_shard_uid: catalog.next_shard_uid, ..founder(member) });
    catalog.members = Some(members);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addresses(port: u16) -> MemberAddresses {
        MemberAddresses { peer: SocketAddr::from(([127, 0, 0, 1], port)), native: None, http: None }
    }

    #[test]
    fn a_replacement_takes_the_founders_then_changes_one_member() {
        let mut catalog = Catalog::new(1);
        catalog.next_shard_uid = 7;
        let before: Vec<(u64, MemberAddresses)> = (1..=3).map(|id| (id, addresses(7000 + id as u16))).collect();
        replace(&mut catalog, 3, 4, &addresses(7400), &before).unwrap();
        let members = catalog.members.clone().unwrap();
        assert_eq!(members.keys().copied().collect::<Vec<_>>(), vec![1, 2, 4]);
        assert_eq!(members[&1].first_shard_uid, 0);
        assert_eq!(members[&4].first_shard_uid, 7);
        // Applied twice (a crash between the catalog and `meta.applied`): refused, no change.
        let again = catalog.clone();
        assert!(replace(&mut catalog, 3, 4, &addresses(7400), &before).is_err());
        assert_eq!(catalog, again);
        // The catalog's members, not `before`, are the base from now on.
        replace(&mut catalog, 2, 5, &addresses(7500), &[]).unwrap();
        assert_eq!(catalog.members.unwrap().keys().copied().collect::<Vec<_>>(), vec![1, 4, 5]);
    }
}
