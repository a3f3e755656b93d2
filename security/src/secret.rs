//! [`Secret`]: a secret string (secret access key, session token, key material in text form)
//! that never shows itself in `Debug` output, logs or error messages, and whose bytes are
//! overwritten when it is dropped.
//!
//! What it does not protect against: copies made before it took ownership (a TOML parser's
//! input buffer, say; the loaders wipe the files' text they read), swap (run with swap off or
//! encrypted), and core dumps (set `RLIMIT_CORE` to 0 for the daemon).

use serde::{Deserialize, Deserializer};
use std::fmt;
use zeroize::{Zeroize, Zeroizing};

/// A secret string: redacted in `Debug`, no `Display`, no `Serialize`, zeroed on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(Zeroizing::new(value.into()))
    }

    /// The secret itself, for the few places that must use it (key derivation). Never pass
    /// it to a formatter.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Secret, D::Error> {
        let mut text = String::deserialize(deserializer)?;
        let secret = Secret::new(text.as_str());
        text.zeroize();
        Ok(secret)
    }
}

/// Secret bytes (key material): redacted in `Debug`, zeroed on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    pub fn new(bytes: Vec<u8>) -> SecretBytes {
        SecretBytes(Zeroizing::new(bytes))
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes([redacted; {} bytes])", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_secret() {
        let secret = Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
        let shown = format!("{secret:?} {:?} {:#?}", Some(&secret), vec![secret.clone()]);
        assert!(!shown.contains("wJalr"), "{shown}");
        assert!(shown.contains("[redacted]"));
        let bytes = SecretBytes::new(vec![0xAB; 32]);
        let shown = format!("{bytes:?}");
        assert!(!shown.contains("171") && !shown.to_lowercase().contains("ab, "), "{shown}");
    }

    #[test]
    fn deserializes_from_a_string() {
        #[derive(Deserialize, Debug)]
        struct Holder {
            key: Secret,
        }
        let holder: Holder = toml::from_str("key = \"s3cr3t\"").unwrap();
        assert_eq!(holder.key.expose(), "s3cr3t");
        assert!(!format!("{holder:?}").contains("s3cr3t"));
    }
}
