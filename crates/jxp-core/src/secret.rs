//! Secrets: random tokens from the OS CSPRNG, their SHA-256 at rest, and constant-time
//! comparison. A leaf: authentication and the realtime hub (connection ids) both use it.

use sha2::{Digest, Sha256};

use crate::error::CoreError;

/// A new secret: 32 random bytes (256 bits) as 64 hex characters.
pub fn random_token() -> Result<String, CoreError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| CoreError::Internal(format!("no OS randomness: {e}")))?;
    Ok(hex(&bytes))
}

/// SHA-256 of a secret as hex: what is stored and looked up, never the secret itself.
/// Secrets carry 256 random bits, so a fast hash is enough.
pub fn hash_secret(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// What a `Debug` shows in place of a secret.
pub const REDACTED: &str = "<redacted>";

/// A secret setting as a `Debug` shows it: whether it is set, never its value.
pub fn shown(secret: &Option<String>) -> Option<&'static str> {
    secret.as_ref().map(|_| REDACTED)
}

/// Compares two strings without an early exit on the first difference.
pub fn ct_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_hash_stably() {
        let a = random_token().unwrap();
        let b = random_token().unwrap();
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_eq!(hash_secret(&a), hash_secret(&a));
        assert_ne!(hash_secret(&a), a);
        assert!(ct_eq(&a, &a.clone()));
        assert!(!ct_eq(&a, &b));
        assert!(!ct_eq("abc", "abcd"));
    }
}
