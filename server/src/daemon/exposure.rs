//! Safe defaults: who can reach the listeners decides what protection `sluiced` insists on.
//!
//! Without `--credentials` every caller may call every operation (DeleteStream included), and
//! without TLS records and signatures cross the network in clear text. Both are fine on a
//! loopback address, where only processes of the same host connect; on any other address they
//! are a mistake a new user makes by changing `--listen`, so the daemon refuses to start and
//! names the flags to add. `--insecure` serves anyway, with a warning at every start.
//!
//! The metrics port is not checked: it serves counters and health only, no operation, and a
//! Prometheus server on another host is its usual reader (docs/security.md says what it shows).

use std::net::SocketAddr;

/// What the listeners need, from the addresses and the protection configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exposure<'a> {
    /// The native and HTTP listeners, with their names for messages.
    pub listeners: [(&'a str, SocketAddr); 2],
    pub credentials: bool,
    pub tls: bool,
    pub insecure: bool,
}

/// A listener reachable from other hosts that lacks some protection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unprotected {
    /// `--listen 0.0.0.0:4568`, … : the flags and addresses that reach beyond the host.
    pub exposed: Vec<String>,
    /// The flags to add, in the order a user would add them.
    pub missing: Vec<&'static str>,
}

impl std::fmt::Display for Unprotected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match (self.missing.len(), self.missing.first()) {
            (2, _) => "without credentials or TLS: anyone who can reach it could call every operation, in clear text",
            (_, Some(&FLAG_CREDENTIALS)) => "without credentials: anyone who can reach it could call every operation",
            _ => "without TLS: records and signatures would cross the network in clear text",
        };
        write!(
            f,
            "refusing to serve {} {what}; add {} (docs/security.md), listen on a loopback address, or pass \
             --insecure to serve it anyway",
            self.exposed.join(" and "),
            self.missing.join(" and ")
        )
    }
}

impl std::error::Error for Unprotected {}

/// The flag that turns on authentication.
pub const FLAG_CREDENTIALS: &str = "--credentials FILE";
/// The flags that turn on TLS.
pub const FLAG_TLS: &str = "--tls-cert FILE --tls-key FILE";

/// Loopback, IPv4-mapped IPv6 loopback included. `0.0.0.0` and `::` are every address, so not.
pub fn is_loopback(address: SocketAddr) -> bool {
    address.ip().to_canonical().is_loopback()
}

impl Exposure<'_> {
    /// `None` when the configuration is safe (or `--insecure` was given), else what is
    /// exposed and what is missing.
    pub fn unprotected(&self) -> Option<Unprotected> {
        let exposed: Vec<String> = self
            .listeners
            .iter()
            .filter(|(_, address)| !is_loopback(*address))
            .map(|(flag, address)| format!("{flag} {address}"))
            .collect();
        let mut missing = Vec::new();
        if !self.credentials {
            missing.push(FLAG_CREDENTIALS);
        }
        if !self.tls {
            missing.push(FLAG_TLS);
        }
        (!exposed.is_empty() && !missing.is_empty()).then_some(Unprotected { exposed, missing })
    }

    /// The start-up check: an error names the flags to add, unless `--insecure`.
    pub fn check(&self) -> Result<(), Unprotected> {
        match self.unprotected() {
            Some(unprotected) if !self.insecure => Err(unprotected),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exposure(native: &str, http: &str, credentials: bool, tls: bool) -> Exposure<'static> {
        Exposure {
            listeners: [("--listen", native.parse().unwrap()), ("--http-listen", http.parse().unwrap())],
            credentials,
            tls,
            insecure: false,
        }
    }

    #[test]
    fn loopback_needs_nothing_and_other_addresses_need_credentials_and_tls() {
        let check = |native, http, credentials, tls| {
            exposure(native, http, credentials, tls).check().map_err(|unprotected| unprotected.missing)
        };
        assert_eq!(check("127.0.0.1:1", "127.0.0.1:2", false, false), Ok(()));
        assert_eq!(check("[::1]:1", "127.0.0.2:2", false, false), Ok(()));
        assert_eq!(check("[::ffff:127.0.0.1]:1", "127.0.0.1:2", false, false), Ok(()));
        assert_eq!(check("0.0.0.0:1", "127.0.0.1:2", false, false), Err(vec![FLAG_CREDENTIALS, FLAG_TLS]));
        assert_eq!(check("127.0.0.1:1", "[::]:2", true, false), Err(vec![FLAG_TLS]));
        assert_eq!(check("10.1.2.3:1", "127.0.0.1:2", false, true), Err(vec![FLAG_CREDENTIALS]));
        assert_eq!(check("10.1.2.3:1", "10.1.2.3:2", true, true), Ok(()));
    }

    #[test]
    fn insecure_serves_anyway_but_still_reports_what_is_unprotected() {
        let mut open = exposure("0.0.0.0:1", "0.0.0.0:2", false, false);
        open.insecure = true;
        assert_eq!(open.check(), Ok(()));
        assert_eq!(open.unprotected().unwrap().exposed, ["--listen 0.0.0.0:1", "--http-listen 0.0.0.0:2"]);
    }

    #[test]
    fn the_message_names_the_addresses_and_the_flags() {
        let message = exposure("0.0.0.0:4568", "127.0.0.1:4567", false, false).check().unwrap_err().to_string();
        assert!(message.starts_with("refusing to serve --listen 0.0.0.0:4568 without credentials or TLS"), "{message}");
        assert!(message.contains("add --credentials FILE and --tls-cert FILE --tls-key FILE"), "{message}");
        assert!(message.contains("--insecure"), "{message}");
        let message = exposure("0.0.0.0:4568", "127.0.0.1:4567", true, false).check().unwrap_err().to_string();
        assert!(
            message.contains("without TLS") && message.contains("add --tls-cert FILE --tls-key FILE ("),
            "{message}"
        );
    }
}
