//! What every destination's delivery has, whichever the destination: when a buffer is
//! delivered ([`BufferLimits`]) and where records that fail go ([`ErrorTarget`]). The plan
//! builds them; the engine and the Iceberg writer use them.

use std::time::Duration;

use crate::config::BufferingHints;
use crate::prefix::PrefixTemplate;
use crate::store::Bucket;

/// When a buffer is delivered: whichever comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferLimits {
    pub size_bytes: usize,
    pub interval: Duration,
}

impl BufferLimits {
    pub(crate) fn from_hints(hints: Option<&BufferingHints>, size_mib_default: u32, interval_s_default: u32) -> Self {
        let size = hints.and_then(|h| h.size_in_mbs).unwrap_or(size_mib_default as i64) as usize;
        let interval = hints.and_then(|h| h.interval_in_seconds).unwrap_or(interval_s_default as i64) as u64;
        BufferLimits { size_bytes: size << 20, interval: Duration::from_secs(interval) }
    }
}

/// Where records that fail go (`ErrorOutputPrefix`, or the channel's dead-letter queue).
#[derive(Debug, Clone)]
pub struct ErrorTarget {
    pub bucket: Bucket,
    pub prefix: PrefixTemplate,
}
