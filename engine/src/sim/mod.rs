//! Deterministic simulation: a simulated disk behind the [`crate::storage::Storage`] seam, a
//! single-threaded executor that schedules tasks in a seeded random order, and the seeded
//! generator both draw from. Built only with the `simulation` feature (for tests; never in a
//! build that serves).
//!
//! Everything here is a function of one seed: the same seed gives the same schedule, the same
//! faults, the same crash points and the same bytes on the simulated disk, so a failure found
//! by `engine/tests/simulation.rs` replays exactly with `SIMULATION_SEED=N`. Nothing reads the
//! wall clock; the journal's clock is a `ManualClock` the workload moves.
//!
//! Modelled after TigerBeetle's simulator and redb's crash tests: the disk tracks, per file,
//! the bytes written and the bytes durable (fdatasync'd), and per directory the entries live
//! and durable (sync'd); a power loss keeps durable state plus a random subset of the rest.

mod disk;
mod executor;
mod rng;

pub use disk::{DiskConfig, DiskStats, Fault, OpKind, SimBuffer, SimDisk, SimFile, SimStorage, SECTOR_BYTES};
pub use executor::{RunOutcome, SimExecutor, SimTask};
pub use rng::SimRng;
