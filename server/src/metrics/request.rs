//! The metrics port's requests: a request head (untrusted bytes) to what it asks for. Its own
//! module, importing only `limits`, so that the fuzz target (`fuzz/fuzz_targets/metrics_request.rs`)
//! compiles it alone.

use crate::limits::{METRICS_REQUEST_BYTES_MAX, METRICS_REQUEST_HEADERS_MAX};

/// What a request asks of the metrics port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Metrics,
    Live,
    Ready,
    NotFound,
    MethodNotAllowed,
}

/// Why a request head could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// More bytes are needed.
    Partial,
    TooLarge,
    Malformed,
}

/// Parses a request head (untrusted bytes) into what it asks for.
pub fn route(head: &[u8]) -> Result<Route, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; METRICS_REQUEST_HEADERS_MAX];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) if head.len() >= METRICS_REQUEST_BYTES_MAX => return Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => return Err(HeadError::Partial),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(_) => return Err(HeadError::Malformed),
    }
    if !matches!(request.method, Some("GET" | "HEAD")) {
        return Ok(Route::MethodNotAllowed);
    }
    let path = request.path.unwrap_or("/");
    let path = path.split('?').next().unwrap_or(path);
    Ok(match path {
        "/metrics" => Route::Metrics,
        "/health/live" => Route::Live,
        "/health/ready" => Route::Ready,
        _ => Route::NotFound,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_route_and_bad_heads_are_refused() {
        assert_eq!(route(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), Ok(Route::Metrics));
        assert_eq!(route(b"GET /metrics?x=1 HTTP/1.1\r\n\r\n"), Ok(Route::Metrics));
        assert_eq!(route(b"GET /health/ready HTTP/1.0\r\n\r\n"), Ok(Route::Ready));
        assert_eq!(route(b"GET /health/live HTTP/1.1\r\n\r\n"), Ok(Route::Live));
        assert_eq!(route(b"GET / HTTP/1.1\r\n\r\n"), Ok(Route::NotFound));
        assert_eq!(route(b"POST /metrics HTTP/1.1\r\n\r\n"), Ok(Route::MethodNotAllowed));
        assert_eq!(route(b"GET /metrics HTTP/1.1\r\n"), Err(HeadError::Partial));
        assert_eq!(route(b"\x00\x01garbage\r\n\r\n"), Err(HeadError::Malformed));
        let long = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n", "a".repeat(METRICS_REQUEST_BYTES_MAX));
        assert_eq!(route(long.as_bytes()), Err(HeadError::TooLarge));
        let many: String = (0..=METRICS_REQUEST_HEADERS_MAX).map(|i| format!("H{i}: v\r\n")).collect();
        assert_eq!(route(format!("GET /metrics HTTP/1.1\r\n{many}\r\n").as_bytes()), Err(HeadError::TooLarge));
    }
}
