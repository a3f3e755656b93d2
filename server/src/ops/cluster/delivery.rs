//! The delivery state's group (consumer groups, queues: `ops::delivery`) on a replicated node:
//! how the state proposes through it ([`DeliveryGroup`], its `Replication`), and what its
//! leader alone does ([`lead`]). The group itself is a shard's group over core 0's internal
//! shard (`records::ShardGroup`, started by `cluster::start`).

use crate::ops::cluster::records;
use crate::ops::delivery::Replication;
use crate::ops::node::Node;
use sluice_engine::AppendRecord;
use sluice_model::KinesisError;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

/// How often core 0 checks whether it leads the delivery group and has something to do as
/// its leader ([`lead`]).
const LEAD_CHECK_INTERVAL_MS: u64 = 500;

/// The delivery state's `Replication` on a replicated node: proposals go to the delivery group
/// of this core (core 0).
pub struct DeliveryGroup;

impl Replication for DeliveryGroup {
    fn leads(&self) -> bool {
        crate::ops::cluster::leads_delivery()
    }

    fn propose(&self, now_ms: i64, record: AppendRecord) -> Pin<Box<dyn Future<Output = Result<u64, KinesisError>>>> {
        Box::pin(propose(now_ms, record))
    }
}

/// Proposes `record` to the delivery group, which this member must lead (a request reaching a
/// member that does not lead is forwarded before it gets here; one that could not be, with no
/// leader known or no address to forward to, is refused with the leader named).
async fn propose(now_ms: i64, record: AppendRecord) -> Result<u64, KinesisError> {
    let core =
        crate::ops::cluster::core().ok_or_else(|| KinesisError::internal("replication is not running on this node"))?;
    let group =
        core.delivery().ok_or_else(|| KinesisError::internal("the delivery state's group is not running here"))?;
    let leader = group.host.leader();
    if leader != core.config.node_id {
        return Err(core.not_leader("the delivery state (consumer groups, queues)", leader));
    }
    let acks = records::propose(&core, &group, now_ms, &[record])
        .await?
        .ok_or_else(|| KinesisError::internal("the delivery state's log is sealed"))?;
    acks.first()
        .map(|ack| ack.sequence_number.record_index())
        .ok_or_else(|| KinesisError::internal("the delivery state's entry was stored without an index"))
}

/// On core 0 of every member, for the executor's life: while this member leads the delivery
/// group, gives an empty log its `Init` (through `Delivery::barrier`, which a log already
/// initialised refuses) and appends the stream events the state has not followed yet
/// (`leases::follow_streams`, `queues::follow_streams`): the catalog's changes reach every
/// member, but only the leader proposes what they mean for the delivery state.
pub async fn lead(core0: Rc<Node>) {
    let Some(delivery) = core0.delivery.clone() else { return };
    loop {
        glommio::timer::sleep(Duration::from_millis(LEAD_CHECK_INTERVAL_MS)).await;
        if !delivery.proposes_here() {
            continue;
        }
        if delivery.state().handle_key().is_none() {
            if let Err(error) = delivery.barrier(&core0.journal, core0.now_ms()).await {
                tracing::debug!(%error, "the delivery state's Init was not applied; again");
                continue;
            }
        }
        let followed = async {
            crate::ops::leases::follow_streams(&core0).await?;
            crate::ops::queues::follow_streams(&core0).await
        };
        if let Err(error) = followed.await {
            tracing::debug!(%error, "the delivery state did not follow the catalog; again");
        }
    }
}
