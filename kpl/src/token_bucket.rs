//! A token bucket on explicit time, for the producer's per-shard rate limit.
//!
//! Balances are kept in thousandths of a token so that one millisecond of refill at
//! `refill_per_s` is exactly `refill_per_s` thousandths: integer arithmetic, no drift. Time
//! only moves forward: an earlier `now_ms` than the last one refills nothing.

/// Thousandths of a token per token.
const MILLI_PER_UNIT: u64 = 1_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBucket {
    capacity_milli: u64,
    refill_per_s: u64,
    tokens_milli: u64,
    last_ms: u64,
}

impl TokenBucket {
    /// A full bucket of `capacity` tokens refilled at `refill_per_s`.
    ///
    /// # Panics
    ///
    /// If either is zero: the producer's configuration validation refuses that first.
    pub fn new_full(capacity: u64, refill_per_s: u64, now_ms: u64) -> TokenBucket {
        assert!(capacity > 0 && refill_per_s > 0, "a token bucket needs a capacity and a refill");
        let capacity_milli = capacity.saturating_mul(MILLI_PER_UNIT);
        TokenBucket { capacity_milli, refill_per_s, tokens_milli: capacity_milli, last_ms: now_ms }
    }

    fn refill(&mut self, now_ms: u64) {
        if now_ms > self.last_ms {
            let minted = (now_ms - self.last_ms).saturating_mul(self.refill_per_s);
            self.tokens_milli = self.tokens_milli.saturating_add(minted).min(self.capacity_milli);
            self.last_ms = now_ms;
        }
    }

    /// Whole tokens available at `now_ms`.
    pub fn available(&mut self, now_ms: u64) -> u64 {
        self.refill(now_ms);
        self.tokens_milli / MILLI_PER_UNIT
    }

    /// Takes `amount` tokens, which the caller checked are available.
    pub fn take(&mut self, now_ms: u64, amount: u64) {
        self.refill(now_ms);
        let amount_milli = amount.saturating_mul(MILLI_PER_UNIT);
        assert!(amount_milli <= self.tokens_milli, "took {amount} tokens the bucket does not hold");
        self.tokens_milli -= amount_milli;
    }

    /// Milliseconds from `now_ms` until `amount` tokens are available (zero if they are now).
    /// An amount above the capacity is capped to it: a full bucket is the most there will be.
    pub fn wait_ms(&mut self, now_ms: u64, amount: u64) -> u64 {
        self.refill(now_ms);
        let wanted = amount.saturating_mul(MILLI_PER_UNIT).min(self.capacity_milli);
        wanted.saturating_sub(self.tokens_milli).div_ceil(self.refill_per_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_full_drains_and_refills_exactly() {
        let mut bucket = TokenBucket::new_full(1_000, 1_500, 0);
        assert_eq!(bucket.available(0), 1_000);
        bucket.take(0, 1_000);
        assert_eq!(bucket.available(0), 0);
        assert_eq!(bucket.wait_ms(0, 3), 2); // 3 tokens at 1.5/ms
        assert_eq!(bucket.available(2), 3);
        assert_eq!(bucket.available(10_000), 1_000, "capped at capacity");
    }

    #[test]
    fn time_going_backwards_mints_nothing() {
        let mut bucket = TokenBucket::new_full(10, 1_000, 100);
        bucket.take(100, 10);
        assert_eq!(bucket.available(50), 0);
        assert_eq!(bucket.available(101), 1);
    }

    #[test]
    fn a_wait_for_more_than_capacity_is_a_wait_for_a_full_bucket() {
        let mut bucket = TokenBucket::new_full(10, 1_000, 0);
        bucket.take(0, 10);
        assert_eq!(bucket.wait_ms(0, 1_000), 10);
    }
}
