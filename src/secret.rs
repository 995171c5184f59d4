//! A string that must never be printed: app secrets and access tokens.

use std::fmt;

use sha2::{Digest, Sha256};

/// Holds a secret value. `Debug` and `Display` print `MASKED`, so a secret can
/// sit inside any struct that derives `Debug` without ever reaching a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself; call sites that use it are the ones to audit.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A short, non-reversible fingerprint that is safe to log.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(self.0.as_bytes())
    }
}

/// SHA-256 of a value, first 8 bytes in hex: enough to correlate log lines,
/// useless for recovering the value. Kept inline (16 bytes); `Display`
/// and `Debug` print the hex digits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint([u8; 16]);

impl Fingerprint {
    /// The fingerprint of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        let mut hex = [0; 16];
        hex::encode_to_slice(&Sha256::digest(bytes)[..8], &mut hex)
            .expect("8 bytes are 16 hex digits");
        Self(hex)
    }

    /// The 16 hex digits.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MASKED")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MASKED")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("OauthNG.JWS.very-secret");
        assert_eq!(format!("{s:?}"), "MASKED");
        assert_eq!(format!("{s}"), "MASKED");
        assert!(!format!("{:?}", Some(&s)).contains("very-secret"));
        let fingerprint = s.fingerprint();
        assert_eq!(fingerprint.as_str().len(), 16);
        assert!(fingerprint.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(fingerprint.to_string(), fingerprint.as_str());
        assert!(!fingerprint.to_string().contains("very-secret"));
    }
}
