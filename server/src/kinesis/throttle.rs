//! The Kinesis per-shard throughput quotas, as token buckets.
//!
//! This module owns the arithmetic of throttling and nothing else (the quotas themselves are in
//! `limits.rs`): it does no I/O, reads no
//! clock (every call takes `now_ms`, epoch milliseconds) and is deterministic, so it is tested
//! by passing times by hand. The shard's owning core keeps one [`ShardLimits`] per shard and
//! one [`EfoLimit`] per (enhanced fan-out consumer, shard) and answers
//! `ProvisionedThroughputExceededException` when a method says no.
//!
//! # Buckets
//!
//! Every quota is a [`TokenBucket`] holding one second of quota ([`BUCKET_CAPACITY_S`]) that
//! starts full: a fresh or idle shard may take a one-second burst at once, as AWS lets it, and
//! over any window the admitted amount is at most one second of quota plus the rate times the
//! window. Balances are kept in thousandths of a token, so that one millisecond of refill is
//! exactly `refill_per_s` thousandths: integer arithmetic, no rounding, no drift however long
//! the daemon runs.
//!
//! Only forward steps of the clock refill a bucket. When `now_ms` goes backwards (an NTP step
//! of the wall clock) the bucket mints nothing and re-bases on the earlier time, so the clock
//! moving back by an hour costs at most the refill of the step itself, instead of stalling the
//! shard for an hour until the clock passes its old high-water mark. All the buckets of a
//! shard are brought up to date on every call, whichever of them the call consults, so that
//! each has seen every forward step before a backwards one re-bases it.
//!
//! # GetRecords: the debt rule and the 10 MiB penalty
//!
//! GetRecords cannot know how many bytes a call costs until it has read them, so it is charged
//! in two steps: [`ShardLimits::admit_get_records_call`] before reading, and
//! [`ShardLimits::charge_read_bytes`] after. The read-bytes bucket may go into debt: a call is
//! admitted while the balance is positive, takes whatever it read, and later calls are refused
//! until the debt is repaid at 2 MiB/s. That is the general rule, and the one that holds a
//! polling consumer to 2 MiB/s on average.
//!
//! AWS also documents a specific one: after a GetRecords response of 10 MiB, calls in the next
//! 5 seconds are throttled. Both are enforced, because neither implies the other: from a full
//! bucket, a 10 MiB response leaves 8 MiB of debt, repaid in 4 s, not 5; and the 5 s rule alone
//! would let a consumer read just under 10 MiB five times a second. The two agree on the
//! price, 10 MiB at 2 MiB/s is 5 s of quota (checked below at compile time), and after a
//! 10 MiB response calls are refused for whichever is longer.

use crate::limits::{
    BUCKET_CAPACITY_S, EFO_BYTES_PER_S, GET_RECORDS_CALLS_PER_S, GET_RECORDS_PENALTY_BYTES_MIN, GET_RECORDS_PENALTY_MS,
    GET_SHARD_ITERATOR_CALLS_PER_S, READ_BYTES_PER_S, WRITE_BYTES_PER_S, WRITE_RECORDS_PER_S,
};

/// Balances are counted in thousandths of a token, so one millisecond refills exactly
/// `refill_per_s` thousandths.
const MILLI_PER_UNIT: u64 = 1_000;

/// Largest capacity or rate a [`TokenBucket`] takes: keeps a balance in thousandths, plus a
/// refill and a debt of the same size, far inside `i64`.
pub const TOKEN_BUCKET_UNITS_MAX: u64 = i64::MAX as u64 / 8 / MILLI_PER_UNIT;

// Every quota fits a bucket.
const _: () = assert!(READ_BYTES_PER_S * BUCKET_CAPACITY_S <= TOKEN_BUCKET_UNITS_MAX);
const _: () = assert!(EFO_BYTES_PER_S * BUCKET_CAPACITY_S <= TOKEN_BUCKET_UNITS_MAX);

/// Milliseconds from `*last_ms` forward to `now_ms` (zero when the clock went backwards),
/// moving `*last_ms` to `now_ms` either way.
fn forward_ms(last_ms: &mut i64, now_ms: i64) -> u64 {
    let elapsed_ms = now_ms.saturating_sub(*last_ms);
    *last_ms = now_ms;
    u64::try_from(elapsed_ms).unwrap_or(0)
}

/// `units` in thousandths, saturating: amounts beyond [`TOKEN_BUCKET_UNITS_MAX`] are never
/// admitted anyway, and a saturated debt takes millennia to repay rather than wrapping.
fn to_milli(units: u64) -> i64 {
    i64::try_from(units.saturating_mul(MILLI_PER_UNIT)).unwrap_or(i64::MAX)
}

/// A token bucket of `capacity` tokens refilled at `refill_per_s`, in exact integer arithmetic.
///
/// [`try_take`](Self::try_take) admits only what the balance covers;
/// [`charge`](Self::charge) takes unconditionally and may leave the bucket in debt, which
/// refills like any other deficit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBucket {
    capacity: u64,
    refill_per_s: u64,
    /// The balance in thousandths of a token; negative while in debt, never above capacity.
    tokens_milli: i64,
    /// The time the balance was last brought up to date.
    last_ms: i64,
}

impl TokenBucket {
    /// A full bucket.
    ///
    /// # Panics
    ///
    /// If `capacity` or `refill_per_s` is zero or above [`TOKEN_BUCKET_UNITS_MAX`]: the quotas
    /// are constants of this module, so that is a bug.
    pub fn new_full(capacity: u64, refill_per_s: u64, now_ms: i64) -> TokenBucket {
        assert!((1..=TOKEN_BUCKET_UNITS_MAX).contains(&capacity), "bucket capacity {capacity} out of range");
        assert!((1..=TOKEN_BUCKET_UNITS_MAX).contains(&refill_per_s), "bucket refill {refill_per_s}/s out of range");
        TokenBucket { capacity, refill_per_s, tokens_milli: to_milli(capacity), last_ms: now_ms }
    }

    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    pub fn refill_per_s(&self) -> u64 {
        self.refill_per_s
    }

    /// Whole tokens in the bucket at `now_ms`, rounded down; negative while in debt.
    pub fn tokens(&mut self, now_ms: i64) -> i64 {
        self.refill(now_ms);
        self.tokens_milli.div_euclid(MILLI_PER_UNIT as i64)
    }

    /// Takes `amount` tokens if the bucket holds them. An amount above the capacity is never
    /// admitted.
    pub fn try_take(&mut self, now_ms: i64, amount: u64) -> bool {
        self.refill(now_ms);
        let admitted = self.covers(amount);
        if admitted {
            self.take(amount);
        }
        admitted
    }

    /// Takes `amount` tokens whatever the balance, going into debt if it falls short.
    pub fn charge(&mut self, now_ms: i64, amount: u64) {
        self.refill(now_ms);
        self.take(amount);
    }

    /// Whether the balance is above zero at `now_ms`: not in debt, and not exactly empty.
    pub fn in_credit(&mut self, now_ms: i64) -> bool {
        self.refill(now_ms);
        self.tokens_milli > 0
    }

    /// Milliseconds after the last update until the balance is back to zero or more; zero if
    /// it is not in debt. Rounded up, so that waiting this long always suffices.
    pub fn debt_repaid_in_ms(&self) -> u64 {
        let debt_milli = u64::try_from(self.tokens_milli.saturating_neg()).unwrap_or(0);
        debt_milli.div_ceil(self.refill_per_s)
    }

    /// Whether the bucket is full at `now_ms`.
    fn is_full(&mut self, now_ms: i64) -> bool {
        self.refill(now_ms);
        self.tokens_milli >= to_milli(self.capacity)
    }

    /// Whether the balance (already refilled) covers `amount`.
    fn covers(&self, amount: u64) -> bool {
        amount <= self.capacity && to_milli(amount) <= self.tokens_milli
    }

    fn take(&mut self, amount: u64) {
        self.tokens_milli = self.tokens_milli.saturating_sub(to_milli(amount));
    }

    fn refill(&mut self, now_ms: i64) {
        let elapsed_ms = forward_ms(&mut self.last_ms, now_ms);
        let capacity_milli = to_milli(self.capacity);
        if elapsed_ms == 0 || self.tokens_milli >= capacity_milli {
            return;
        }
        // One millisecond refills `refill_per_s` thousandths. Saturating: a refill that large
        // fills the bucket anyway (the rate is at most TOKEN_BUCKET_UNITS_MAX per second).
        let minted_milli = i64::try_from(elapsed_ms.saturating_mul(self.refill_per_s)).unwrap_or(i64::MAX);
        self.tokens_milli = self.tokens_milli.saturating_add(minted_milli).min(capacity_milli);
    }
}

/// Which limits the daemon enforces, chosen by its `--limits` flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LimitsProfile {
    /// The per-shard quotas of a provisioned Kinesis stream, so that an application tested
    /// against Sluice is throttled where AWS would throttle it.
    #[default]
    Kinesis,
    /// No throttling at all: for benchmarks and for workloads that only want the API.
    Unlimited,
}

impl LimitsProfile {
    /// The flag value naming this profile.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitsProfile::Kinesis => "kinesis",
            LimitsProfile::Unlimited => "unlimited",
        }
    }
}

impl std::fmt::Display for LimitsProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for LimitsProfile {
    type Err = String;

    fn from_str(s: &str) -> Result<LimitsProfile, String> {
        match s {
            "kinesis" => Ok(LimitsProfile::Kinesis),
            "unlimited" => Ok(LimitsProfile::Unlimited),
            _ => Err(format!("unknown limits profile {s:?} (expected \"kinesis\" or \"unlimited\")")),
        }
    }
}

/// A span of time during which calls are refused, counted down by forward clock steps only
/// (like the buckets), so a backwards step of the clock neither ends nor extends it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cooldown {
    remaining_ms: u64,
    last_ms: i64,
}

impl Cooldown {
    fn new(now_ms: i64) -> Cooldown {
        Cooldown { remaining_ms: 0, last_ms: now_ms }
    }

    fn start(&mut self, now_ms: i64, duration_ms: u64) {
        self.advance(now_ms);
        self.remaining_ms = self.remaining_ms.max(duration_ms);
    }

    fn is_active(&mut self, now_ms: i64) -> bool {
        self.advance(now_ms);
        self.remaining_ms > 0
    }

    fn advance(&mut self, now_ms: i64) {
        let elapsed_ms = forward_ms(&mut self.last_ms, now_ms);
        self.remaining_ms = self.remaining_ms.saturating_sub(elapsed_ms);
    }
}

/// The buckets of one shard under [`LimitsProfile::Kinesis`].
#[derive(Debug, Clone, PartialEq, Eq)]
struct ShardBuckets {
    write_bytes: TokenBucket,
    write_records: TokenBucket,
    get_records_calls: TokenBucket,
    read_bytes: TokenBucket,
    get_records_penalty: Cooldown,
    get_shard_iterator_calls: TokenBucket,
}

impl ShardBuckets {
    /// Brings every bucket up to `now_ms` at once. A bucket that a call does not consult must
    /// still see the time pass: otherwise, after a backwards clock step, it would re-base on
    /// the earlier time having never been refilled for the time before the step.
    fn advance(&mut self, now_ms: i64) -> &mut ShardBuckets {
        self.write_bytes.refill(now_ms);
        self.write_records.refill(now_ms);
        self.get_records_calls.refill(now_ms);
        self.read_bytes.refill(now_ms);
        self.get_records_penalty.advance(now_ms);
        self.get_shard_iterator_calls.refill(now_ms);
        self
    }
}

/// The throughput quotas of one shard, owned by the shard's core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardLimits {
    /// `None` under [`LimitsProfile::Unlimited`].
    buckets: Option<ShardBuckets>,
}

impl ShardLimits {
    /// The limits of a shard created (or loaded) at `now_ms`, with every bucket full.
    pub fn new(profile: LimitsProfile, now_ms: i64) -> ShardLimits {
        let full = |per_s: u64| TokenBucket::new_full(per_s * BUCKET_CAPACITY_S, per_s, now_ms);
        let buckets = match profile {
            LimitsProfile::Unlimited => None,
            LimitsProfile::Kinesis => Some(ShardBuckets {
                write_bytes: full(WRITE_BYTES_PER_S),
                write_records: full(WRITE_RECORDS_PER_S),
                get_records_calls: full(GET_RECORDS_CALLS_PER_S),
                read_bytes: full(READ_BYTES_PER_S),
                get_records_penalty: Cooldown::new(now_ms),
                get_shard_iterator_calls: full(GET_SHARD_ITERATOR_CALLS_PER_S),
            }),
        };
        ShardLimits { buckets }
    }

    pub fn profile(&self) -> LimitsProfile {
        match self.buckets {
            Some(_) => LimitsProfile::Kinesis,
            None => LimitsProfile::Unlimited,
        }
    }

    /// Admits one record of `record_bytes` (data plus partition key) for PutRecord or one
    /// entry of PutRecords. It takes one record and `record_bytes` bytes, or nothing: a record
    /// refused for bytes leaves the record count alone, and the other way round.
    ///
    /// A record larger than the write bucket (possible only once a stream's MaxRecordSizeInKiB
    /// is raised above 1 MiB, up to 10 MiB) is admitted when the bucket is full and leaves it in
    /// debt: AWS documents that such records are taken by "temporarily bursting beyond" the
    /// 1 MiB/s, which is then repaid before further writes, so the average stays 1 MiB/s.
    pub fn admit_write(&mut self, now_ms: i64, record_bytes: u64) -> bool {
        let Some(b) = &mut self.buckets else { return true };
        let b = b.advance(now_ms);
        let bytes_fit = if record_bytes <= b.write_bytes.capacity() {
            b.write_bytes.covers(record_bytes)
        } else {
            b.write_bytes.is_full(now_ms)
        };
        let admitted = bytes_fit && b.write_records.covers(1);
        if admitted {
            b.write_bytes.take(record_bytes);
            b.write_records.take(1);
        }
        admitted
    }

    /// Admits a GetRecords call, before it reads: refused during the 10 MiB penalty, while the
    /// read bytes are not in credit (in debt, or exactly spent), or past 5 calls/s. A refused
    /// call takes nothing, not even a call.
    ///
    /// An admitted call may read up to 10 MiB whatever the credit; it must then report what it
    /// read with [`charge_read_bytes`](Self::charge_read_bytes). Calls admitted while another
    /// call's read is in flight are all charged afterwards, and the debt they run up is repaid
    /// before the next call is admitted.
    pub fn admit_get_records_call(&mut self, now_ms: i64) -> bool {
        let Some(b) = &mut self.buckets else { return true };
        let b = b.advance(now_ms);
        if b.get_records_penalty.is_active(now_ms) || !b.read_bytes.in_credit(now_ms) {
            return false;
        }
        b.get_records_calls.try_take(now_ms, 1)
    }

    /// Charges the bytes an admitted GetRecords call returned (data plus partition keys), and
    /// starts the 5 s penalty if they reach 10 MiB.
    pub fn charge_read_bytes(&mut self, now_ms: i64, bytes: u64) {
        let Some(b) = &mut self.buckets else { return };
        let b = b.advance(now_ms);
        b.read_bytes.charge(now_ms, bytes);
        if bytes >= GET_RECORDS_PENALTY_BYTES_MIN {
            b.get_records_penalty.start(now_ms, GET_RECORDS_PENALTY_MS);
        }
    }

    /// Admits a GetShardIterator call on this shard (5 per second).
    pub fn admit_get_shard_iterator(&mut self, now_ms: i64) -> bool {
        let Some(b) = &mut self.buckets else { return true };
        let b = b.advance(now_ms);
        b.get_shard_iterator_calls.try_take(now_ms, 1)
    }
}

/// The read throughput of one enhanced fan-out consumer on one shard: 2 MiB/s, independent of
/// every other consumer. A push over the quota is delayed, not refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EfoLimit {
    /// `None` under [`LimitsProfile::Unlimited`].
    bucket: Option<TokenBucket>,
}

impl EfoLimit {
    /// The limit of a subscription that starts at `now_ms`, with a full bucket.
    pub fn new(profile: LimitsProfile, now_ms: i64) -> EfoLimit {
        let bucket = match profile {
            LimitsProfile::Kinesis => {
                Some(TokenBucket::new_full(EFO_BYTES_PER_S * BUCKET_CAPACITY_S, EFO_BYTES_PER_S, now_ms))
            }
            LimitsProfile::Unlimited => None,
        };
        EfoLimit { bucket }
    }

    /// How long, from `now_ms`, a push of `bytes` must wait to stay within 2 MiB/s.
    ///
    /// The bytes are charged at once, as a reservation: the caller must wait the delay and
    /// then push, and a later call's delay counts this push as already made. A push is never
    /// refused; one larger than the bucket simply waits longer.
    pub fn delay_ms(&mut self, now_ms: i64, bytes: u64) -> u64 {
        let Some(bucket) = &mut self.bucket else { return 0 };
        bucket.charge(now_ms, bytes);
        bucket.debt_repaid_in_ms()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
    const KIB: u64 = 1 << 10;
    const MIB: u64 = 1 << 20;

    /// Calls `admit` up to `attempts` times at the same instant and counts the admissions.
    fn count(attempts: u64, mut admit: impl FnMut() -> bool) -> u64 {
        (0..attempts).filter(|_| admit()).count() as u64
    }

    fn kinesis() -> ShardLimits {
        ShardLimits::new(LimitsProfile::Kinesis, T0)
    }

    #[test]
    fn bucket_starts_full_and_refills_exactly() {
        let mut bucket = TokenBucket::new_full(5, 5, T0);
        assert_eq!(bucket.tokens(T0), 5);
        assert_eq!(count(10, || bucket.try_take(T0, 1)), 5);
        // 5 per second is one per 200 ms: nothing at 199 ms, one at 200 ms.
        assert!(!bucket.try_take(T0 + 199, 1));
        assert!(bucket.try_take(T0 + 200, 1));
        assert!(!bucket.try_take(T0 + 200, 1));
        // Never more than the capacity, whatever the amount.
        assert!(!bucket.try_take(T0 + 1_000_000, 6));
        assert_eq!(bucket.tokens(T0 + 1_000_000), 5);
    }

    #[test]
    fn fractional_refill_does_not_drift() {
        // 1 MiB/s is 1048.576 bytes per millisecond: over a million one-millisecond steps the
        // refill must add up to exactly 1000 s of quota, with no rounding lost on the way.
        let mut bucket = TokenBucket::new_full(MIB, MIB, T0);
        let mut taken = MIB;
        assert!(bucket.try_take(T0, MIB));
        for ms in 1..=1_000_000 {
            let now = T0 + ms;
            let available = bucket.tokens(now);
            if available > 0 {
                assert!(bucket.try_take(now, available as u64));
                taken += available as u64;
            }
        }
        assert_eq!(taken, MIB + 1_000 * MIB);
    }

    #[test]
    fn backwards_clock_mints_nothing() {
        let mut bucket = TokenBucket::new_full(1_000, 1_000, T0);
        assert!(bucket.try_take(T0 + 10_000, 1_000));
        // An hour back: no refill, and no stall either.
        assert_eq!(bucket.tokens(T0 + 10_000 - 3_600_000), 0);
        assert_eq!(bucket.tokens(T0 + 10_000 - 3_600_000 + 300), 300);
        // The far past, where `now - last` would overflow naive arithmetic.
        assert_eq!(bucket.tokens(i64::MIN), 300);
        assert_eq!(bucket.tokens(i64::MAX), 1_000);
        assert_eq!(bucket.tokens(i64::MIN), 1_000);
    }

    #[test]
    fn debt_is_repaid_at_the_refill_rate() {
        let mut bucket = TokenBucket::new_full(2 * MIB, 2 * MIB, T0);
        bucket.charge(T0, 5 * MIB);
        assert_eq!(bucket.tokens(T0), -(3 * MIB as i64));
        assert_eq!(bucket.debt_repaid_in_ms(), 1_500);
        assert!(!bucket.in_credit(T0 + 1_500));
        assert_eq!(bucket.debt_repaid_in_ms(), 0);
        assert!(bucket.in_credit(T0 + 1_501));
    }

    #[test]
    fn records_limit_admits_exactly_1000_per_second_for_60_seconds() {
        let mut limits = kinesis();
        for second in 0..60 {
            let now = T0 + second * 1_000;
            assert_eq!(count(1_000, || limits.admit_write(now, 1)), 1_000, "second {second}");
            assert!(!limits.admit_write(now, 1), "the 1,001st record of second {second}");
        }
    }

    #[test]
    fn bytes_limit_with_kib_and_mib_records() {
        // 1 KiB records: the records quota binds first (1,000 KiB < 1 MiB).
        let mut limits = kinesis();
        for second in 0..10 {
            assert_eq!(count(2_000, || limits.admit_write(T0 + second * 1_000, KIB)), 1_000);
        }
        // 2 KiB records: the bytes quota binds first, at 512 a second.
        let mut limits = kinesis();
        for second in 0..10 {
            assert_eq!(count(2_000, || limits.admit_write(T0 + second * 1_000, 2 * KIB)), 512);
        }
        // 1 MiB records: one a second, and half a second of refill is not enough.
        let mut limits = kinesis();
        assert!(limits.admit_write(T0, MIB));
        assert!(!limits.admit_write(T0, 1));
        assert!(!limits.admit_write(T0 + 500, MIB));
        assert!(limits.admit_write(T0 + 1_000, MIB));
        assert!(!limits.admit_write(T0 + 1_999, MIB));
        assert!(limits.admit_write(T0 + 2_000, MIB));
    }

    #[test]
    fn write_admission_takes_both_buckets_or_neither() {
        let mut limits = kinesis();
        // Spend the bytes with one large record: 999 records remain.
        assert!(limits.admit_write(T0, MIB));
        assert_eq!(count(5_000, || limits.admit_write(T0, 1)), 0);
        let b = limits.buckets.as_mut().unwrap();
        assert_eq!(b.write_records.tokens(T0), 999, "refused records took a record token");
        // Spend the records with small ones: the bytes they did not use remain.
        let mut limits = kinesis();
        assert_eq!(count(1_000, || limits.admit_write(T0, 10)), 1_000);
        assert_eq!(count(100, || limits.admit_write(T0, 10)), 0);
        let b = limits.buckets.as_mut().unwrap();
        assert_eq!(b.write_bytes.tokens(T0), (MIB - 10_000) as i64, "refused records took bytes");
    }

    #[test]
    fn large_records_burst_then_repay() {
        let mut limits = kinesis();
        assert!(limits.admit_write(T0, 1));
        // A 10 MiB record needs a full bucket...
        assert!(!limits.admit_write(T0, 10 * MIB));
        assert!(limits.admit_write(T0 + 1_000, 10 * MIB));
        // ...and leaves 9 MiB of debt: nothing more for 9 s, then a full bucket at 10 s.
        assert!(!limits.admit_write(T0 + 10_000, 1));
        assert!(limits.admit_write(T0 + 10_001, 1));
        assert!(!limits.admit_write(T0 + 11_000, 10 * MIB));
        assert!(limits.admit_write(T0 + 11_001, 10 * MIB));
    }

    #[test]
    fn refill_after_idle_is_one_second_of_quota() {
        let mut limits = kinesis();
        assert_eq!(count(2_000, || limits.admit_write(T0, 1)), 1_000);
        let later = T0 + 24 * 3_600 * 1_000;
        assert_eq!(count(2_000, || limits.admit_write(later, 1)), 1_000);
        assert_eq!(count(10, || limits.admit_get_shard_iterator(later)), 5);
        assert_eq!(count(10, || limits.admit_get_records_call(later)), 5);
    }

    #[test]
    fn get_records_calls_are_limited_to_5_per_second() {
        let mut limits = kinesis();
        for second in 0..60 {
            let now = T0 + second * 1_000;
            assert_eq!(count(10, || limits.admit_get_records_call(now)), 5);
            limits.charge_read_bytes(now, 0);
        }
    }

    #[test]
    fn get_records_read_bytes_go_into_debt() {
        let mut limits = kinesis();
        // One call reads 4 MiB from a 2 MiB bucket: 2 MiB of debt, repaid in one second.
        assert!(limits.admit_get_records_call(T0));
        limits.charge_read_bytes(T0, 4 * MIB);
        assert!(!limits.admit_get_records_call(T0 + 1));
        assert!(!limits.admit_get_records_call(T0 + 1_000));
        assert!(limits.admit_get_records_call(T0 + 1_001));
        // Sustained polling is held to 2 MiB/s on average: 1 MiB per call, 2 calls a second.
        let mut limits = kinesis();
        let mut read = 0;
        for ms in (0..60_000).step_by(50) {
            if limits.admit_get_records_call(T0 + ms) {
                limits.charge_read_bytes(T0 + ms, MIB);
                read += MIB;
            }
        }
        assert!(read <= 2 * MIB + 60 * 2 * MIB + MIB, "read {read} bytes");
        assert!(read >= 60 * 2 * MIB, "read {read} bytes");
    }

    #[test]
    fn ten_mib_response_throttles_the_next_five_seconds() {
        let mut limits = kinesis();
        assert!(limits.admit_get_records_call(T0));
        limits.charge_read_bytes(T0, 10 * MIB);
        // The debt (8 MiB) is repaid after 4 s; the penalty lasts 5 s.
        for ms in [0, 1, 1_000, 4_000, 4_001, 4_999] {
            assert!(!limits.admit_get_records_call(T0 + ms), "admitted {ms} ms after a 10 MiB response");
        }
        // Refused calls took no call tokens: all five are there at 5 s.
        assert_eq!(count(10, || limits.admit_get_records_call(T0 + 5_000)), 5);

        // One byte under 10 MiB: only the debt rule, which leaves a byte of credit at 4 s.
        let mut limits = kinesis();
        assert!(limits.admit_get_records_call(T0));
        limits.charge_read_bytes(T0, 10 * MIB - 1);
        assert!(!limits.admit_get_records_call(T0 + 3_999));
        assert!(limits.admit_get_records_call(T0 + 4_000));

        // A penalty is not shortened by a backwards clock step, nor stretched by it.
        let mut limits = kinesis();
        assert!(limits.admit_get_records_call(T0));
        limits.charge_read_bytes(T0, 10 * MIB);
        assert!(!limits.admit_get_records_call(T0 + 2_000));
        assert!(!limits.admit_get_records_call(T0 - 60_000));
        assert!(!limits.admit_get_records_call(T0 - 60_000 + 2_999));
        assert!(limits.admit_get_records_call(T0 - 60_000 + 3_000));
    }

    #[test]
    fn get_shard_iterator_is_limited_to_5_per_second() {
        let mut limits = kinesis();
        for second in 0..60 {
            let now = T0 + second * 1_000;
            assert_eq!(count(10, || limits.admit_get_shard_iterator(now)), 5);
        }
        // One call per 200 ms after the last drain.
        assert!(limits.admit_get_shard_iterator(T0 + 59_000 + 200));
        assert!(!limits.admit_get_shard_iterator(T0 + 59_000 + 399));
    }

    #[test]
    fn efo_delays_pushes_to_2_mib_per_second_per_consumer() {
        let mut a = EfoLimit::new(LimitsProfile::Kinesis, T0);
        let mut b = EfoLimit::new(LimitsProfile::Kinesis, T0);
        assert_eq!(a.delay_ms(T0, 2 * MIB), 0);
        assert_eq!(a.delay_ms(T0, 2 * MIB), 1_000);
        // Another consumer of the same shard is not affected.
        assert_eq!(b.delay_ms(T0, 2 * MIB), 0);
        // After waiting, a's bucket is at zero: 1 MiB waits half a second.
        assert_eq!(a.delay_ms(T0 + 1_000, MIB), 500);
        // A push larger than the bucket waits for its excess.
        assert_eq!(b.delay_ms(T0 + 1_000, 10 * MIB), 4_000);
        // Fractional rates round the wait up: 1 byte at 2 MiB/s is under a millisecond.
        let mut c = EfoLimit::new(LimitsProfile::Kinesis, T0);
        assert_eq!(c.delay_ms(T0, 2 * MIB + 1), 1);
    }

    #[test]
    fn efo_sustained_pushes_stay_within_quota() {
        // A consumer pushing 64 KiB as soon as allowed, for 60 s: bytes pushed by any time t
        // are at most the burst plus 2 MiB/s since the start.
        let mut limit = EfoLimit::new(LimitsProfile::Kinesis, T0);
        let (mut now, mut pushed) = (T0, 0);
        while now < T0 + 60_000 {
            now += limit.delay_ms(now, 64 * KIB) as i64;
            pushed += 64 * KIB;
            let elapsed_ms = (now - T0) as u64;
            assert!(pushed * 1_000 <= 2 * MIB * 1_000 + 2 * MIB * elapsed_ms, "{pushed} bytes by {elapsed_ms} ms");
        }
        assert!(pushed >= 60 * 2 * MIB);
    }

    #[test]
    fn unlimited_never_throttles() {
        let mut limits = ShardLimits::new(LimitsProfile::Unlimited, T0);
        assert_eq!(limits.profile(), LimitsProfile::Unlimited);
        assert_eq!(count(100_000, || limits.admit_write(T0, MIB)), 100_000);
        assert_eq!(count(1_000, || limits.admit_get_shard_iterator(T0)), 1_000);
        for _ in 0..1_000 {
            assert!(limits.admit_get_records_call(T0));
            limits.charge_read_bytes(T0, 10 * MIB);
        }
        let mut efo = EfoLimit::new(LimitsProfile::Unlimited, T0);
        assert_eq!(efo.delay_ms(T0, u64::MAX), 0);
    }

    #[test]
    fn profile_parses_from_its_flag_value() {
        for profile in [LimitsProfile::Kinesis, LimitsProfile::Unlimited] {
            assert_eq!(profile.as_str().parse::<LimitsProfile>(), Ok(profile));
        }
        assert!("Kinesis".parse::<LimitsProfile>().is_err());
        assert_eq!(LimitsProfile::default(), LimitsProfile::Kinesis);
    }

    /// Steps of a simulated client: advance the clock by `.0` ms (sometimes backwards), then
    /// ask for `.1`.
    fn steps(size_max: u64) -> impl Strategy<Value = Vec<(i64, u64)>> {
        let advance = prop_oneof![4 => 0i64..50, 2 => 0i64..3_000, 1 => -5_000i64..0];
        prop::collection::vec((advance, 1..=size_max), 1..400)
    }

    proptest! {
        #[test]
        fn bucket_never_admits_more_than_capacity_plus_refill(
            capacity in 1u64..5_000_000, refill_per_s in 1u64..5_000_000, steps in steps(6_000_000),
        ) {
            let mut bucket = TokenBucket::new_full(capacity, refill_per_s, T0);
            let (mut now, mut forward_ms, mut admitted) = (T0, 0u64, 0u64);
            for (advance_ms, amount) in steps {
                now += advance_ms;
                forward_ms += advance_ms.max(0) as u64;
                if bucket.try_take(now, amount) {
                    admitted += amount;
                }
                // In thousandths, to compare exactly with a fractional refill.
                let bound = u128::from(capacity) * 1_000 + u128::from(refill_per_s) * u128::from(forward_ms);
                prop_assert!(u128::from(admitted) * 1_000 <= bound);
                prop_assert!(bucket.tokens(now) <= capacity as i64);
                prop_assert!(bucket.tokens(now) >= 0);
            }
        }

        #[test]
        fn writes_never_exceed_either_quota(steps in steps(MIB)) {
            let mut limits = kinesis();
            let (mut now, mut forward_ms, mut records, mut bytes) = (T0, 0u64, 0u64, 0u64);
            for (advance_ms, size) in steps {
                now += advance_ms;
                forward_ms += advance_ms.max(0) as u64;
                // Small sizes often, so that the records quota is reached too.
                let size = if size % 2 == 0 { size % 100 + 1 } else { size };
                if limits.admit_write(now, size) {
                    records += 1;
                    bytes += size;
                }
                prop_assert!(records * 1_000 <= WRITE_RECORDS_PER_S * 1_000 + WRITE_RECORDS_PER_S * forward_ms);
                prop_assert!(bytes * 1_000 <= WRITE_BYTES_PER_S * 1_000 + WRITE_BYTES_PER_S * forward_ms);
            }
        }

        #[test]
        fn reads_never_exceed_quota_plus_one_response(steps in steps(GET_RECORDS_PENALTY_BYTES_MIN)) {
            let mut limits = kinesis();
            let (mut now, mut forward_ms, mut calls, mut bytes) = (T0, 0u64, 0u64, 0u64);
            for (advance_ms, size) in steps {
                now += advance_ms;
                forward_ms += advance_ms.max(0) as u64;
                if limits.admit_get_records_call(now) {
                    limits.charge_read_bytes(now, size);
                    calls += 1;
                    bytes += size;
                }
                prop_assert!(calls * 1_000 <= GET_RECORDS_CALLS_PER_S * 1_000 + GET_RECORDS_CALLS_PER_S * forward_ms);
                // The last response may overdraw the bucket by up to its own size.
                let bound = READ_BYTES_PER_S * 1_000 + READ_BYTES_PER_S * forward_ms + GET_RECORDS_PENALTY_BYTES_MIN * 1_000;
                prop_assert!(bytes * 1_000 <= bound);
            }
        }
    }
}
