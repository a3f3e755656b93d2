//! The cluster's members as the catalog keeps them on a replicated node (issue 13): the pure
//! effect of the catalog commands ReplaceMember, AddMember and RemoveMember
//! (`ops::cluster::membership` drives them).

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

/// A membership change: member `leaving` leaves the cluster, node `joining` (at its addresses)
/// joins it, or both at once (a replacement).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change<'a> {
    pub leaving: Option<u64>,
    pub joining: Option<(u64, &'a MemberAddresses)>,
}

/// The catalog command ReplaceMember applied to `catalog` (the same on every node).
pub fn replace(
    catalog: &mut Catalog,
    old: u64,
    new: u64,
    member: &MemberAddresses,
    before: &[(u64, MemberAddresses)],
) -> Result<(), KinesisError> {
    change(catalog, Change { leaving: Some(old), joining: Some((new, member)) }, before)
}

/// Whether `change` can be made to a cluster of the members `ids`: the member leaving is one,
/// the node joining is none, and the last member stays. The proposer checks it before the
/// command, and [`change`] again when it applies it.
pub fn check(ids: &[u64], change: &Change<'_>) -> Result<(), KinesisError> {
    if let Some(old) = change.leaving {
        if !ids.contains(&old) {
            return Err(KinesisError::resource_not_found(format!("Node {old} is not a member of the cluster")));
        }
        if change.joining.is_none() && ids.len() == 1 {
            return Err(KinesisError::invalid_argument("The cluster's last member cannot leave it"));
        }
    }
    if let Some((new, _)) = change.joining {
        if ids.contains(&new) {
            return Err(KinesisError::resource_in_use(format!("Node {new} is a member of the cluster already")));
        }
    }
    Ok(())
}

/// A membership change applied to `catalog` (the same on every node). `before` is the
/// membership the proposer saw, which the catalog takes if it holds none yet (`--peers`'),
/// and which must be the catalog's: a change proposed before another was applied is refused
/// here, on every node alike, however the proposers' own checks raced. A node that joins
/// founds the groups of the shards created from now on, and joins the older ones by
/// snapshots. The last member cannot leave.
pub fn change(
    catalog: &mut Catalog,
    change: Change<'_>,
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
    check(&members.keys().copied().collect::<Vec<_>>(), &change)?;
    let seen: Vec<(u64, MemberAddresses)> = members
        .iter()
        .map(|(&id, member)| (id, MemberAddresses { peer: member.peer, native: member.native, http: member.http }))
        .collect();
    if seen != before {
        return Err(KinesisError::resource_in_use(
            "The cluster's members changed after this call read them (another change was applied first). Call \
             again once DescribeCluster says Settled",
        ));
    }
    if let Some(old) = change.leaving {
        members.remove(&old);
    }
    if let Some((new, member)) = change.joining {
        members.insert(new, CatalogMember { first_shard_uid: catalog.next_shard_uid, ..founder(member) });
    }
    catalog.members = Some(members);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addresses(port: u16) -> MemberAddresses {
        MemberAddresses { peer: SocketAddr::from(([127, 0, 0, 1], port)), native: None, http: None }
    }

    /// The members as a proposer reads them from `catalog`.
    fn seen(catalog: &Catalog) -> Vec<(u64, MemberAddresses)> {
        let members = catalog.members.clone().unwrap_or_default();
        members
            .iter()
            .map(|(&id, member)| (id, MemberAddresses { peer: member.peer, native: member.native, http: member.http }))
            .collect()
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
        // A second change whose proposer read the members before the first was applied: valid
        // on its own, refused because it did not see the first.
        let raced = replace(&mut catalog, 2, 5, &addresses(7500), &before).unwrap_err();
        assert_eq!(raced.kind, sluice_model::ErrorKind::ResourceInUse, "{}", raced.message);
        assert_eq!(catalog, again);
        // The catalog's members, not `before`, are the base from now on.
        let before = seen(&catalog);
        replace(&mut catalog, 2, 5, &addresses(7500), &before).unwrap();
        assert_eq!(catalog.members.unwrap().keys().copied().collect::<Vec<_>>(), vec![1, 4, 5]);
    }

    #[test]
    fn members_join_and_leave_one_at_a_time_and_the_last_stays() {
        let ids = |catalog: &Catalog| catalog.members.clone().unwrap().keys().copied().collect::<Vec<_>>();
        let mut catalog = Catalog::new(1);
        catalog.next_shard_uid = 9;
        let before: Vec<(u64, MemberAddresses)> = (1..=3).map(|id| (id, addresses(7000 + id as u16))).collect();
        let joining = addresses(7400);
        change(&mut catalog, Change { leaving: None, joining: Some((4, &joining)) }, &before).unwrap();
        assert_eq!(ids(&catalog), vec![1, 2, 3, 4]);
        assert_eq!(catalog.members.clone().unwrap()[&4].first_shard_uid, 9, "it founds the groups of later shards");
        let before = seen(&catalog);
        let again = change(&mut catalog, Change { leaving: None, joining: Some((4, &joining)) }, &before);
        assert_eq!(again.unwrap_err().kind, sluice_model::ErrorKind::ResourceInUse);
        for (old, left) in [(1, vec![2, 3, 4]), (4, vec![2, 3]), (2, vec![3])] {
            let before = seen(&catalog);
            change(&mut catalog, Change { leaving: Some(old), joining: None }, &before).unwrap();
            assert_eq!(ids(&catalog), left);
        }
        let before = seen(&catalog);
        let gone = change(&mut catalog, Change { leaving: Some(1), joining: None }, &before);
        assert_eq!(gone.unwrap_err().kind, sluice_model::ErrorKind::ResourceNotFound);
        let last = catalog.clone();
        let before = seen(&catalog);
        assert!(change(&mut catalog, Change { leaving: Some(3), joining: None }, &before).is_err());
        assert_eq!(catalog, last, "the last member stays");
    }
}
