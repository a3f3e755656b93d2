//! Parsing of the two places a SigV4 signature can travel: the `Authorization` header and a
//! presigned URL's query string. Both parsers take untrusted bytes and never panic (fuzzed by
//! `fuzz/fuzz_targets/sigv4_auth.rs`); whatever they accept renders back to text that parses to
//! the same value.
//!
//! The IncompleteSignatureException texts are AWS's, as kinesalite recorded them from the real
//! service: one sentence per missing part, then the header (or a closing sentence).

use super::error::AuthError;
use super::ALGORITHM;
use crate::limits::{AUTHORIZATION_BYTES_MAX, QUERY_BYTES_MAX, SIGNED_HEADERS_MAX};
use percent_encoding::percent_decode_str;

/// `keyid/date/region/service/aws4_request`, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialScope {
    pub access_key_id: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub terminator: String,
}

impl CredentialScope {
    /// Splits a `Credential` value. AWS's text when it does not have five parts.
    pub fn parse(value: &str) -> Result<CredentialScope, AuthError> {
        let parts: Vec<&str> = value.split('/').collect();
        match parts.as_slice() {
            [access_key_id, date, region, service, terminator] => Ok(CredentialScope {
                access_key_id: access_key_id.to_string(),
                date: date.to_string(),
                region: region.to_string(),
                service: service.to_string(),
                terminator: terminator.to_string(),
            }),
            _ => Err(AuthError::incomplete(format!(
                "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{value}'"
            ))),
        }
    }

    /// The scope after the access key id: `date/region/service/terminator`.
    pub fn scope(&self) -> String {
        format!("{}/{}/{}/{}", self.date, self.region, self.service, self.terminator)
    }

    pub fn render(&self) -> String {
        format!("{}/{}", self.access_key_id, self.scope())
    }
}

/// A parsed `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationHeader {
    pub algorithm: String,
    pub credential: CredentialScope,
    /// Lower-case header names, in the order given.
    pub signed_headers: Vec<String>,
    pub signature: String,
}

impl AuthorizationHeader {
    /// Parses the header's value. `has_date_header` says whether the request carries an
    /// `X-Amz-Date` or `Date` header: AWS reports its absence in the same message.
    pub fn parse(header: &str, has_date_header: bool) -> Result<AuthorizationHeader, AuthError> {
        if header.len() > AUTHORIZATION_BYTES_MAX {
            return Err(AuthError::incomplete(format!(
                "Authorization header of {} bytes exceeds the limit of {AUTHORIZATION_BYTES_MAX} bytes",
                header.len()
            )));
        }
        let (algorithm, rest) = header.trim_start().split_once([' ', '\t']).unwrap_or((header.trim_start(), ""));
        let (mut credential, mut signed_headers, mut signature) = (None, None, None);
        for component in rest.split([',', ' ', '\t']).filter(|c| !c.is_empty()) {
            let Some((key, value)) = component.split_once('=') else { continue };
            match key {
                "Credential" => credential = Some(value),
                "SignedHeaders" => signed_headers = Some(value),
                "Signature" => signature = Some(value),
                _ => {}
            }
        }
        let mut message = String::new();
        let credential = credential.filter(|v| !v.is_empty());
        let signature = signature.filter(|v| !v.is_empty());
        let signed_headers = signed_headers.filter(|v| !v.is_empty());
        for (name, value) in [("Credential", credential), ("Signature", signature), ("SignedHeaders", signed_headers)] {
            if value.is_none() {
                message.push_str(&format!("Authorization header requires '{name}' parameter. "));
            }
        }
        if !has_date_header {
            message.push_str("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ");
        }
        if !message.is_empty() {
            message.push_str(&format!("Authorization={header}"));
            return Err(AuthError::incomplete(message));
        }
        let (Some(credential), Some(signed_headers), Some(signature)) = (credential, signed_headers, signature) else {
            unreachable!("each missing part was reported above");
        };
        check_algorithm(algorithm)?;
        Ok(AuthorizationHeader {
            algorithm: algorithm.to_string(),
            credential: CredentialScope::parse(credential)?,
            signed_headers: parse_signed_headers(signed_headers)?,
            signature: signature.to_string(),
        })
    }

    /// The header's value again, as the signer writes it.
    pub fn render(&self) -> String {
        format!(
            "{} Credential={}, SignedHeaders={}, Signature={}",
            self.algorithm,
            self.credential.render(),
            self.signed_headers.join(";"),
            self.signature
        )
    }
}

fn check_algorithm(algorithm: &str) -> Result<(), AuthError> {
    if algorithm == ALGORITHM {
        Ok(())
    } else {
        Err(AuthError::incomplete(format!("Unsupported AWS 'algorithm': '{algorithm}'")))
    }
}

fn parse_signed_headers(value: &str) -> Result<Vec<String>, AuthError> {
    let names: Vec<String> = value.split(';').map(str::to_ascii_lowercase).collect();
    if names.len() > SIGNED_HEADERS_MAX {
        return Err(AuthError::incomplete(format!(
            "SignedHeaders names {} headers; at most {SIGNED_HEADERS_MAX} may be signed",
            names.len()
        )));
    }
    if names.iter().any(|name| name.is_empty() || !name.bytes().all(is_token_byte)) {
        return Err(AuthError::incomplete(format!("SignedHeaders '{value}' is not a list of header names")));
    }
    Ok(names)
}

/// RFC 9110 `tchar`: the bytes a header name may contain.
fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// The SigV4 parameters of a presigned URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedQuery {
    pub algorithm: String,
    pub credential: CredentialScope,
    /// `X-Amz-Date`, as given (checked by the verifier).
    pub date: String,
    /// `X-Amz-Expires`, in seconds, if given.
    pub expires_s: Option<i64>,
    pub signed_headers: Vec<String>,
    pub signature: String,
    pub security_token: Option<String>,
}

/// Whether a query string asks for presigned-URL authentication: it names `X-Amz-Algorithm`
/// (with or without a value), as AWS decides it.
pub fn is_presigned(query: &str) -> bool {
    query_pairs(query).any(|(key, _)| key == "X-Amz-Algorithm")
}

/// `(key, value)` pairs of a query string, percent-decoded (invalid UTF-8 replaced).
pub fn query_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|pair| !pair.is_empty()).map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (
            percent_decode_str(key).decode_utf8_lossy().into_owned(),
            percent_decode_str(value).decode_utf8_lossy().into_owned(),
        )
    })
}

impl PresignedQuery {
    /// Parses the SigV4 parameters of a query string that [`is_presigned`].
    pub fn parse(query: &str) -> Result<PresignedQuery, AuthError> {
        if query.len() > QUERY_BYTES_MAX {
            return Err(AuthError::incomplete(format!(
                "Query string of {} bytes exceeds the limit of {QUERY_BYTES_MAX} bytes",
                query.len()
            )));
        }
        let mut found: [Option<String>; 7] = Default::default();
        const NAMES: [&str; 7] = [
            "X-Amz-Algorithm",
            "X-Amz-Credential",
            "X-Amz-Signature",
            "X-Amz-SignedHeaders",
            "X-Amz-Date",
            "X-Amz-Expires",
            "X-Amz-Security-Token",
        ];
        for (key, value) in query_pairs(query) {
            if let Some(index) = NAMES.iter().position(|name| *name == key) {
                found[index] = Some(value);
            }
        }
        let mut message = String::new();
        for (index, name) in NAMES.iter().enumerate().take(5) {
            if found[index].as_deref().is_none_or(str::is_empty) {
                message.push_str(&format!("AWS query-string parameters must include '{name}'. "));
            }
        }
        if !message.is_empty() {
            message.push_str("Re-examine the query-string parameters.");
            return Err(AuthError::incomplete(message));
        }
        let [algorithm, credential, signature, signed_headers, date, expires, token] =
            found.map(Option::unwrap_or_default);
        check_algorithm(&algorithm)?;
        let expires_s = if expires.is_empty() {
            None
        } else {
            let seconds = expires.parse::<i64>().ok().filter(|s| *s >= 0);
            let Some(seconds) = seconds else {
                return Err(AuthError::incomplete(format!(
                    "X-Amz-Expires must be a non-negative number of seconds, got '{expires}'"
                )));
            };
            if seconds > crate::limits::PRESIGNED_EXPIRES_S_MAX {
                return Err(AuthError::incomplete(format!(
                    "X-Amz-Expires must be less than a week (in seconds) that is {}",
                    crate::limits::PRESIGNED_EXPIRES_S_MAX
                )));
            }
            Some(seconds)
        };
        Ok(PresignedQuery {
            algorithm,
            credential: CredentialScope::parse(&credential)?,
            date,
            expires_s,
            signed_headers: parse_signed_headers(&signed_headers)?,
            signature,
            security_token: (!token.is_empty()).then_some(token),
        })
    }

    /// The parameters as a query string, encoded as the signer writes them.
    pub fn render(&self) -> String {
        use super::canonical::uri_encode;
        let mut pairs = vec![
            ("X-Amz-Algorithm", self.algorithm.clone()),
            ("X-Amz-Credential", self.credential.render()),
            ("X-Amz-Date", self.date.clone()),
        ];
        if let Some(expires) = self.expires_s {
            pairs.push(("X-Amz-Expires", expires.to_string()));
        }
        if let Some(token) = &self.security_token {
            pairs.push(("X-Amz-Security-Token", token.clone()));
        }
        pairs.push(("X-Amz-SignedHeaders", self.signed_headers.join(";")));
        pairs.push(("X-Amz-Signature", self.signature.clone()));
        pairs.iter().map(|(key, value)| format!("{key}={}", uri_encode(value))).collect::<Vec<_>>().join("&")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sigv4::AuthErrorKind;

    /// AWS's answers to malformed headers, as kinesalite's tests recorded them.
    #[test]
    fn incomplete_headers_get_aws_texts() {
        let all_missing = "Authorization header requires 'Credential' parameter. \
            Authorization header requires 'Signature' parameter. \
            Authorization header requires 'SignedHeaders' parameter. \
            Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. \
            Authorization=X";
        let error = AuthorizationHeader::parse("X", false).unwrap_err();
        assert_eq!((error.kind, error.message.as_str()), (AuthErrorKind::IncompleteSignature, all_missing));
        for header in
            ["AWS4- Signature=b Credential=a", "AWS4- Signature=b,Credential=a", "AWS4- Signature=b, Credential=a"]
        {
            let error = AuthorizationHeader::parse(header, true).unwrap_err();
            assert_eq!(
                error.message,
                format!("Authorization header requires 'SignedHeaders' parameter. Authorization={header}")
            );
        }
        let error =
            AuthorizationHeader::parse("AWS4- Signature=b, Credential=a, SignedHeaders=host", true).unwrap_err();
        assert_eq!(error.message, "Unsupported AWS 'algorithm': 'AWS4-'");
        let error = AuthorizationHeader::parse("AWS4-HMAC-SHA256 Signature=b, Credential=a, SignedHeaders=host", true)
            .unwrap_err();
        assert_eq!(
            error.message,
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got 'a'"
        );
    }

    #[test]
    fn incomplete_queries_get_aws_texts() {
        let error = PresignedQuery::parse("X-Amz-Algorithm").unwrap_err();
        assert_eq!(error.kind, AuthErrorKind::IncompleteSignature);
        assert_eq!(
            error.message,
            "AWS query-string parameters must include 'X-Amz-Algorithm'. \
             AWS query-string parameters must include 'X-Amz-Credential'. \
             AWS query-string parameters must include 'X-Amz-Signature'. \
             AWS query-string parameters must include 'X-Amz-SignedHeaders'. \
             AWS query-string parameters must include 'X-Amz-Date'. \
             Re-examine the query-string parameters."
        );
        assert!(is_presigned("a=1&X-Amz-Algorithm"));
        assert!(!is_presigned("X-Amz-Credential=a&X-Amz-Signature=b&X-Amz-SignedHeaders=c&X-Amz-Date=d"));
        assert!(!is_presigned("X-Amz-Algorith"));
    }

    #[test]
    fn parses_a_real_header_and_renders_it_back() {
        let header = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
                      SignedHeaders=content-type;host;x-amz-date, \
                      Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";
        let parsed = AuthorizationHeader::parse(header, true).unwrap();
        assert_eq!(parsed.credential.access_key_id, "AKIDEXAMPLE");
        assert_eq!(parsed.credential.scope(), "20150830/us-east-1/iam/aws4_request");
        assert_eq!(parsed.signed_headers, ["content-type", "host", "x-amz-date"]);
        assert_eq!(AuthorizationHeader::parse(&parsed.render(), true).unwrap(), parsed);
    }

    #[test]
    fn parses_a_presigned_query_and_renders_it_back() {
        let query = "Action=ListStreams&X-Amz-Algorithm=AWS4-HMAC-SHA256\
                     &X-Amz-Credential=AKID%2F20150830%2Fus-east-1%2Fkinesis%2Faws4_request\
                     &X-Amz-Date=20150830T123600Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host\
                     &X-Amz-Security-Token=tok%2Fen&X-Amz-Signature=abcd";
        let parsed = PresignedQuery::parse(query).unwrap();
        assert_eq!(parsed.credential.access_key_id, "AKID");
        assert_eq!(parsed.expires_s, Some(300));
        assert_eq!(parsed.security_token.as_deref(), Some("tok/en"));
        assert_eq!(PresignedQuery::parse(&parsed.render()).unwrap(), parsed);
        for (expires, text) in [
            ("-1", "X-Amz-Expires must be a non-negative number of seconds, got '-1'"),
            ("604801", "X-Amz-Expires must be less than a week (in seconds) that is 604800"),
        ] {
            let bad = query.replace("X-Amz-Expires=300", &format!("X-Amz-Expires={expires}"));
            assert_eq!(PresignedQuery::parse(&bad).unwrap_err().message, text);
        }
    }

    #[test]
    fn oversized_and_odd_input_is_refused_not_panicked_on() {
        let long = format!("AWS4-HMAC-SHA256 Credential={}", "a".repeat(AUTHORIZATION_BYTES_MAX));
        assert!(AuthorizationHeader::parse(&long, true).is_err());
        let many = format!(
            "AWS4-HMAC-SHA256 Credential=a/b/c/d/e, Signature=x, SignedHeaders={}",
            vec!["h"; SIGNED_HEADERS_MAX + 1].join(";")
        );
        assert!(AuthorizationHeader::parse(&many, true).is_err());
        for odd in [
            "",
            " ",
            "=",
            "AWS4-HMAC-SHA256 ==,,",
            "\u{0}é",
            "AWS4-HMAC-SHA256 Credential=a/b/c/d/e, Signature=x, SignedHeaders=a;;b",
        ] {
            let _ = AuthorizationHeader::parse(odd, true);
            let _ = PresignedQuery::parse(odd);
        }
    }
}
