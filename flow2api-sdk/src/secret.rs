//! Secrets (session tokens, access tokens, API keys, captcha tokens) as a newtype that never
//! prints its value.

use std::fmt;

/// A secret string. `Debug` prints `Secret([redacted])`; there is no `Display`; read it with
/// [`Secret::expose`]. Serde writes it in clear, because storage must keep it.
#[derive(Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A masked form for list responses: the first 6 characters, `…`, the last 4.
    pub fn masked(&self) -> String {
        let chars: Vec<char> = self.0.chars().collect();
        if chars.len() <= 12 {
            return "…".to_owned();
        }
        let head: String = chars[..6].iter().collect();
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("{head}…{tail}")
    }

    /// Compares with `other` in constant time (for API keys and passwords).
    pub fn ct_eq(&self, other: &str) -> bool {
        use sha2::Digest;
        use subtle::ConstantTimeEq;
        // Hashing first makes the comparison independent of both lengths.
        let a = sha2::Sha256::digest(self.0.as_bytes());
        let b = sha2::Sha256::digest(other.as_bytes());
        a.ct_eq(&b).into()
    }

    /// True when the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted_and_mask_keeps_ends() {
        let s = Secret::new("ya29.abcdefghijklmnop");
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
        assert_eq!(s.masked(), "ya29.a…mnop");
        assert_eq!(Secret::new("short").masked(), "…");
        assert!(s.ct_eq("ya29.abcdefghijklmnop"));
        assert!(!s.ct_eq("ya29.abcdefghijklmnoq"));
    }
}
