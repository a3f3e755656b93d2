//! The SigV4 parsers on arbitrary text: the `Authorization` header parser and the presigned
//! query parser must answer Ok or Err, never panic; whatever they accept renders back to text
//! that parses to the same value; the canonical query and URI never panic and the canonical
//! query is a fixed point.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_security::limits::{AUTHORIZATION_BYTES_MAX, QUERY_BYTES_MAX};
use sluice_security::sigv4::{
    canonical_query, canonical_uri, AuthorizationHeader, HttpRequest, PresignedQuery, SignedRequest,
};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for has_date in [true, false] {
        if let Ok(parsed) = AuthorizationHeader::parse(&text, has_date) {
            let rendered = parsed.render();
            if rendered.len() <= AUTHORIZATION_BYTES_MAX {
                assert_eq!(AuthorizationHeader::parse(&rendered, has_date).as_ref(), Ok(&parsed), "{rendered:?}");
            }
        }
    }
    if let Ok(parsed) = PresignedQuery::parse(&text) {
        let rendered = parsed.render();
        if rendered.len() <= QUERY_BYTES_MAX {
            assert_eq!(PresignedQuery::parse(&rendered).as_ref(), Ok(&parsed), "{rendered:?}");
        }
    }
    let once = canonical_query(&text, None);
    assert_eq!(canonical_query(&once, None), once);
    let _ = canonical_uri(&text);
    // The whole request-level parse, with the text as the header and as the query.
    let (header, query) = text.split_once('\n').unwrap_or((&text, ""));
    let request = HttpRequest {
        method: "POST",
        path: "/",
        query,
        headers: vec![("authorization", header.as_bytes()), ("x-amz-date", b"20261201T100000Z")],
    };
    let _ = SignedRequest::parse(&request);
    let request = HttpRequest { headers: vec![("host", b"h")], ..request };
    let _ = SignedRequest::parse(&request);
});
