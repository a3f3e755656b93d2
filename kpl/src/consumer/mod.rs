//! The consumer core: what a KCL worker decides, without the I/O.
//!
//! - [`records`]: received records to user records (KPL aggregates split with their
//!   sub-sequence numbers, plain records passed through, the KCL's shard-range rule).
//! - [`checkpoint`]: positions, checkpoints and the tracker of what may be checkpointed while
//!   records are in flight.
//! - [`lease`]: the lease balancer of one worker (the KCL lease taker) as a pure function, and
//!   the expiry judge for lease stores that keep expiry times (`ExpiryObserver`).
//! - [`processor`]: a record processor's lifecycle on one lease as a state machine.
//!
//! No I/O: the lease store is `sluiced` (durable, fenced leases and checkpoints) and the driver
//! is `sluice_client::worker`; see docs/clients.md.

pub mod checkpoint;
pub mod lease;
pub mod processor;
pub mod records;
