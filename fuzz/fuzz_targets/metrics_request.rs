//! The metrics port's request-head parser on arbitrary bytes: a route or an error, never a
//! panic; a head longer than the bound is never "partial" (it would be buffered without end).
#![no_main]

use libfuzzer_sys::fuzz_target;

// Compiled in from the server's source rather than through the server crate, which would pull
// glommio and hyper into the sanitizer build.
#[path = "../../server/src/limits.rs"]
#[allow(dead_code, reason = "only the metrics port's bounds are used here")]
mod limits;
#[path = "../../server/src/metrics/request.rs"]
mod request;

fuzz_target!(|data: &[u8]| {
    if let Err(request::HeadError::Partial) = request::route(data) {
        assert!(data.len() < limits::METRICS_REQUEST_BYTES_MAX);
    }
});
