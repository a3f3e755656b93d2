//! The canonical request, the string to sign and the signing key, as AWS's SigV4
//! specification defines them for every service but S3 (paths normalised and encoded twice).
//!
//! Both directions use these functions: the signer on what it is about to send, the verifier
//! on what arrived. Each step is a pure function of bytes.

use super::ALGORITHM;
use hmac::{Hmac, Mac};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

type HmacSha256 = Hmac<Sha256>;

/// Everything but SigV4's unreserved characters (`A-Z a-z 0-9 - . _ ~`) is percent-encoded,
/// with upper-case hex digits.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
/// In paths, `/` stays as it is too.
const UNRESERVED_AND_SLASH: &AsciiSet = &UNRESERVED.remove(b'/');

/// One HTTP request as SigV4 sees it: the method, the path and query exactly as they were on
/// the wire (still percent-encoded), and the headers (names in any case, in arrival order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: Vec<(&'a str, &'a [u8])>,
}

impl<'a> HttpRequest<'a> {
    /// The request's parts from an `http` request, as hyper hands it to the server. An
    /// HTTP/2 request carries its host as the `:authority` pseudo-header, which `http` keeps in
    /// the URI: it stands in for a missing `host` header, as AWS accepts.
    pub fn from_http<B>(request: &'a http::Request<B>) -> HttpRequest<'a> {
        let mut headers: Vec<(&str, &[u8])> =
            request.headers().iter().map(|(name, value)| (name.as_str(), value.as_bytes())).collect();
        if request.headers().get(http::header::HOST).is_none() {
            if let Some(authority) = request.uri().authority() {
                headers.push(("host", authority.as_str().as_bytes()));
            }
        }
        HttpRequest {
            method: request.method().as_str(),
            path: request.uri().path(),
            query: request.uri().query().unwrap_or(""),
            headers,
        }
    }

    /// The values of one header (`name` in lower case), in arrival order.
    pub fn header_values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a [u8]> + 's {
        self.headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| *v)
    }

    /// The first value of one header, if it is text.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.header_values(name).next().and_then(|value| std::str::from_utf8(value).ok())
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0xF)] as char);
    }
    out
}

/// The hex SHA-256 of a payload: the last line of the canonical request.
pub fn payload_hash(payload: &[u8]) -> String {
    hex(&Sha256::digest(payload))
}

/// SigV4's URI encoding of one query key or value (everything but the unreserved characters).
pub fn uri_encode(bytes: &str) -> String {
    utf8_percent_encode(bytes, UNRESERVED).to_string()
}

/// The canonical URI of a path as it was on the wire: dot segments removed and runs of
/// slashes collapsed (as AWS's services and SDKs do for every service but S3), then every
/// byte but the unreserved characters and `/` percent-encoded, so the path's own
/// `%XX` escapes are encoded a second time.
pub fn canonical_uri(path: &str) -> String {
    utf8_percent_encode(&normalize_path(path), UNRESERVED_AND_SLASH).to_string()
}

/// RFC 3986 section 5.2.4 dot-segment removal, with empty segments dropped: `/a/./b/../c//d/`
/// becomes `/a/c/d/`; an empty path becomes `/`.
pub fn normalize_path(path: &str) -> String {
    if path.is_empty() {
        return "/".to_string();
    }
    let mut kept: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                kept.pop();
            }
            segment => kept.push(segment),
        }
    }
    let mut out = String::with_capacity(path.len());
    if path.starts_with('/') {
        out.push('/');
    }
    out.push_str(&kept.join("/"));
    if path.ends_with('/') && !kept.is_empty() {
        out.push('/');
    }
    // A path of dots alone (never seen on the wire, where paths start with `/`) is the root.
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// The canonical query string: each `key=value` pair decoded and encoded again with SigV4's
/// rules, sorted by key and then value; `skip` names a parameter left out (`X-Amz-Signature`
/// for presigned URLs). Empty pairs (`a=1&&b=2`) are dropped.
pub fn canonical_query(query: &str, skip: Option<&str>) -> String {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = recode(key);
        if skip.is_some_and(|skip| key == uri_encode(skip)) {
            continue;
        }
        pairs.push((key, recode(value)));
    }
    pairs.sort();
    let mut out = String::with_capacity(query.len() + 16);
    for (index, (key, value)) in pairs.iter().enumerate() {
        if index > 0 {
            out.push('&');
        }
        out.push_str(key);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// Percent-decodes and encodes again with SigV4's rules, so `%7e`, `~` and `%7E` all become
/// `~`. Bytes that do not decode to UTF-8 are encoded byte by byte.
fn recode(component: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(component.len() + 8);
    for byte in percent_decode_str(component) {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(byte >> 4)] as char);
            out.push(HEX[usize::from(byte & 0xF)] as char);
        }
    }
    out
}

/// A header value as it goes into the canonical request: leading and trailing white space
/// removed and each run of white space inside turned into one space.
fn trimall(value: &[u8], out: &mut Vec<u8>) {
    let mut pending_space = false;
    let mut started = false;
    for &byte in value {
        if matches!(byte, b' ' | b'\t' | b'\r' | b'\n' | 0x0B | 0x0C) {
            pending_space = started;
        } else {
            if pending_space {
                out.push(b' ');
                pending_space = false;
            }
            out.push(byte);
            started = true;
        }
    }
}

/// The canonical request: method, canonical URI, canonical query, the signed headers (each
/// `name:value` with repeated headers joined by commas), the signed header list, and the
/// payload hash. `signed_headers` are lower-case names in the order they are signed.
pub fn canonical_request(
    request: &HttpRequest<'_>,
    canonical_query: &str,
    signed_headers: &[&str],
    payload_hash: &str,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(request.method.to_ascii_uppercase().as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_uri(request.path).as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_query.as_bytes());
    out.push(b'\n');
    for name in signed_headers {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        for (index, value) in request.header_values(name).enumerate() {
            if index > 0 {
                out.push(b',');
            }
            trimall(value, &mut out);
        }
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(signed_headers.join(";").as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload_hash.as_bytes());
    out
}

/// `date/region/service/aws4_request`.
pub fn credential_scope(date_stamp: &str, region: &str, service: &str) -> String {
    format!("{date_stamp}/{region}/{service}/aws4_request")
}

/// The string to sign: algorithm, request time, credential scope and the hex SHA-256 of the
/// canonical request, one per line.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &[u8]) -> String {
    format!("{ALGORITHM}\n{amz_date}\n{scope}\n{}", hex(&Sha256::digest(canonical_request)))
}

/// A derived signing key: HMAC chain over date, region, service and `aws4_request`, keyed
/// first with `AWS4` + the secret access key. Zeroed on drop.
pub type SigningKey = Zeroizing<[u8; 32]>;

pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

pub fn signing_key(secret: &str, date_stamp: &str, region: &str, service: &str) -> SigningKey {
    let mut first = Zeroizing::new(Vec::with_capacity(4 + secret.len()));
    first.extend_from_slice(b"AWS4");
    first.extend_from_slice(secret.as_bytes());
    let date = Zeroizing::new(hmac_sha256(&first, date_stamp.as_bytes()));
    let region = Zeroizing::new(hmac_sha256(&*date, region.as_bytes()));
    let service = Zeroizing::new(hmac_sha256(&*region, service.as_bytes()));
    Zeroizing::new(hmac_sha256(&*service, b"aws4_request"))
}

/// The hex signature of a string to sign.
pub fn signature(key: &[u8; 32], string_to_sign: &str) -> String {
    hex(&hmac_sha256(key, string_to_sign.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn paths_are_normalised_and_encoded_twice() {
        for (path, expected) in [
            ("", "/"),
            ("/", "/"),
            ("/a/./b/../c//d/", "/a/c/d/"),
            ("//", "/"),
            ("/..", "/"),
            ("/a b", "/a%20b"),
            ("/a%20b", "/a%2520b"),
            ("/~user/x-y_z.txt", "/~user/x-y_z.txt"),
            ("/ümlaut", "/%C3%BCmlaut"),
            ("/a+b=c", "/a%2Bb%3Dc"),
        ] {
            assert_eq!(canonical_uri(path), expected, "{path:?}");
        }
    }

    #[test]
    fn queries_are_recoded_and_sorted() {
        for (query, expected) in [
            ("", ""),
            ("b=2&a=1", "a=1&b=2"),
            ("a=2&a=1&a=10", "a=1&a=10&a=2"),
            ("acl", "acl="),
            ("a=%7e&b=~&c=%7E", "a=~&b=~&c=~"),
            ("k=a%2fb&k2=a/b", "k=a%2Fb&k2=a%2Fb"),
            ("x=1&&y=2", "x=1&y=2"),
            ("sp=a%20b&plus=a+b", "plus=a%2Bb&sp=a%20b"),
            ("Z=1&a=1", "Z=1&a=1"),
        ] {
            assert_eq!(canonical_query(query, None), expected, "{query:?}");
        }
        assert_eq!(canonical_query("X-Amz-Signature=abc&a=1", Some("X-Amz-Signature")), "a=1");
    }

    #[test]
    fn header_values_are_trimmed_and_folded() {
        let request = HttpRequest {
            method: "post",
            path: "/",
            query: "",
            headers: vec![
                ("Host", b"example.com"),
                ("X-Multi", b"  a   b  "),
                ("x-multi", b"c\t\td"),
                ("X-Empty", b""),
            ],
        };
        let canonical = canonical_request(&request, "", &["host", "x-empty", "x-multi"], "UNSIGNED-PAYLOAD");
        assert_eq!(
            String::from_utf8(canonical).unwrap(),
            "POST\n/\n\nhost:example.com\nx-empty:\nx-multi:a b,c d\n\nhost;x-empty;x-multi\nUNSIGNED-PAYLOAD"
        );
    }

    /// The worked example of AWS's SigV4 documentation ("Examples of the complete Signature
    /// Version 4 signing process", IAM ListUsers, 2015-08-30), reproduced step by step.
    #[test]
    fn matches_the_aws_documentation_example() {
        let request = HttpRequest {
            method: "GET",
            path: "/",
            query: "Action=ListUsers&Version=2010-05-08",
            headers: vec![
                ("Host", b"iam.amazonaws.com"),
                ("Content-Type", b"application/x-www-form-urlencoded; charset=utf-8"),
                ("X-Amz-Date", b"20150830T123600Z"),
            ],
        };
        let canonical = canonical_request(
            &request,
            &canonical_query(request.query, None),
            &["content-type", "host", "x-amz-date"],
            &payload_hash(b""),
        );
        assert_eq!(
            hex(&Sha256::digest(&canonical)),
            "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
        );
        let scope = credential_scope("20150830", "us-east-1", "iam");
        let to_sign = string_to_sign("20150830T123600Z", &scope, &canonical);
        let key = signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830", "us-east-1", "iam");
        assert_eq!(hex(&*key), "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9");
        assert_eq!(signature(&key, &to_sign), "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
    }

    proptest! {
        #[test]
        fn normalised_paths_are_fixed_points(path in "(/|[a-z.%20]{0,3}){0,12}") {
            let once = normalize_path(&path);
            prop_assert_eq!(normalize_path(&once), once.clone());
            prop_assert!(!once.contains("//"), "{}", once);
            prop_assert!(!once.split('/').any(|s| s == "." || s == ".."), "{}", once);
        }

        #[test]
        fn canonical_queries_are_fixed_points(query in "[a-zA-Z0-9%=&~+ ._-]{0,40}") {
            let once = canonical_query(&query, None);
            prop_assert_eq!(canonical_query(&once, None), once);
        }

        #[test]
        fn uri_encoding_decodes_back(text in "\\PC{0,20}") {
            let encoded = uri_encode(&text);
            prop_assert!(encoded.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)));
            let decoded = percent_decode_str(&encoded).decode_utf8().unwrap();
            prop_assert_eq!(decoded, text);
        }
    }
}
