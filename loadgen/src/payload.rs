//! The bytes of a load-generator record: a small header carrying the time the record was
//! meant to be sent, then filler up to the requested size.
//!
//! Delivery latency is measured from this embedded time, not from anything the server adds, so
//! both consumer kinds (polling and enhanced fan-out) are timed by the same clock: the load
//! generator's own monotonic clock, in one process.
//!
//! ```text
//! offset  size  field
//! 0       4     MAGIC, little-endian
//! 4       8     intended send time: nanoseconds since the run's epoch (`Clock`), little-endian
//! 12      ..    filler (0x5A)
//! ```
//!
//! The intended time, not the actual one, is embedded: producers run open-loop on a schedule,
//! and a record that went out late because the producer or the connection was stalled must be
//! charged for that stall (coordinated omission; see docs/benchmarks.md).

use std::time::{Duration, Instant};

/// Marks a record as written by this load generator ("SLG1").
pub const MAGIC: u32 = u32::from_le_bytes(*b"SLG1");

/// Bytes of the header; also the smallest record the load generator writes.
pub const HEADER_BYTES: usize = 12;

const FILLER: u8 = 0x5A;

/// The run's time origin, shared by producers and consumers (one process).
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    epoch: Instant,
}

impl Clock {
    pub fn start() -> Clock {
        Clock { epoch: Instant::now() }
    }

    /// Nanoseconds since the origin.
    pub fn now_ns(&self) -> u64 {
        self.ns_at(Instant::now())
    }

    /// Nanoseconds from the origin to `instant` (zero before it).
    pub fn ns_at(&self, instant: Instant) -> u64 {
        u64::try_from(instant.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// The instant `ns` nanoseconds after the origin.
    pub fn instant_at(&self, ns: u64) -> Instant {
        self.epoch + Duration::from_nanos(ns)
    }
}

/// A record of `record_bytes` bytes (at least [`HEADER_BYTES`]) stamped with `send_ns`.
pub fn encode(send_ns: u64, record_bytes: usize) -> Vec<u8> {
    let mut data = vec![FILLER; record_bytes.max(HEADER_BYTES)];
    data[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    data[4..12].copy_from_slice(&send_ns.to_le_bytes());
    data
}

/// The intended send time stamped in `data`, or `None` if the record is not one of ours.
pub fn decode(data: &[u8]) -> Option<u64> {
    let magic = u32::from_le_bytes(data.get(0..4)?.try_into().ok()?);
    if magic != MAGIC {
        return None;
    }
    Some(u64::from_le_bytes(data.get(4..12)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_at_every_size() {
        for (send_ns, size) in [(0, 0), (1, HEADER_BYTES), (u64::MAX, 13), (123_456_789, 1 << 20)] {
            let data = encode(send_ns, size);
            assert_eq!(data.len(), size.max(HEADER_BYTES));
            assert_eq!(decode(&data), Some(send_ns), "size {size}");
        }
    }

    #[test]
    fn foreign_and_short_records_are_not_ours() {
        assert_eq!(decode(b""), None);
        assert_eq!(decode(b"SLG1abc"), None);
        assert_eq!(decode(&[0u8; 64]), None);
    }

    #[test]
    fn clock_maps_instants_both_ways() {
        let clock = Clock::start();
        let later = clock.instant_at(5_000_000);
        assert_eq!(clock.ns_at(later), 5_000_000);
        assert_eq!(clock.ns_at(clock.epoch - Duration::from_secs(1)), 0);
    }
}
