//! XXH3-64, the one checksum of every byte the engine writes, behind one small interface so
//! the implementation is chosen in one place.
//!
//! The implementation is `twox-hash`'s: it picks the widest vector instructions the CPU
//! offers at run time (AVX2, else SSE2 on x86-64; NEON on aarch64), so one binary runs on any
//! x86-64 and still uses AVX2 where there is one. `xxhash-rust`, used before, chooses at
//! compile time, so a portable build hashed with SSE2 only: 1.6× slower on 1 MiB here
//! (`bench/benches/micro.rs`, `docs/benchmarks.md`). Both compute the same XXH3-64 (tested below
//! against the implementation that wrote the earlier data).

use std::hash::Hasher as _;
use twox_hash::XxHash3_64;

/// XXH3-64 of `bytes` with seed 0.
#[inline]
pub fn xxh3_64(bytes: &[u8]) -> u64 {
    XxHash3_64::oneshot(bytes)
}

/// XXH3-64 of `bytes` with `seed`.
#[inline]
pub fn xxh3_64_with_seed(bytes: &[u8], seed: u64) -> u64 {
    XxHash3_64::oneshot_with_seed(seed, bytes)
}

/// XXH3-64 (seed 0) of bytes given in pieces: the same value as [`xxh3_64`] of their
/// concatenation.
pub struct Xxh3Stream(XxHash3_64);

impl Xxh3Stream {
    pub fn new() -> Xxh3Stream {
        Xxh3Stream(XxHash3_64::new())
    }

    #[inline]
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.write(bytes);
    }

    pub fn digest(&self) -> u64 {
        self.0.finish()
    }
}

impl Default for Xxh3Stream {
    fn default() -> Xxh3Stream {
        Xxh3Stream::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Same values as `xxhash-rust`, which wrote every checksum before (so data written
    /// then still verifies), over every length class of XXH3 (0, 1-3, 4-8, 9-16, 17-128,
    /// 129-240, then the long loop with and without a partial stripe and block) and seeds.
    #[test]
    fn matches_the_implementation_that_wrote_earlier_data() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let buffer: Vec<u8> = (0..5000)
            .map(|_| {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                (x >> 56) as u8
            })
            .collect();
        for len in (0..300).chain([511, 512, 1023, 1024, 1025, 1040, 2048, 4096, 4999]) {
            let input = &buffer[..len];
            for seed in [0, 1, 0x5eed_5eed_5eed_5eed, u64::MAX] {
                let expected = xxhash_rust::xxh3::xxh3_64_with_seed(input, seed);
                assert_eq!(xxh3_64_with_seed(input, seed), expected, "len {len} seed {seed:#x}");
            }
            assert_eq!(xxh3_64(input), xxhash_rust::xxh3::xxh3_64(input), "len {len}");
            let mut stream = Xxh3Stream::new();
            for piece in input.chunks(1 + len % 37) {
                stream.update(piece);
            }
            assert_eq!(stream.digest(), xxhash_rust::xxh3::xxh3_64(input), "streamed, len {len}");
        }
    }
}
