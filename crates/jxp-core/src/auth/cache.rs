//! A cache of resolved identities, so an authenticated request costs no extra queries. Keys
//! are salted SHA-256 digests of the credentials (never the credentials). Every committed write
//! to a model that decides identities (`user`, `usergroups`, `token`, `apikey`,
//! `refreshtoken`) empties the cache before the write is answered, and a lookup that raced with
//! such a write does not store its result, so a logout or a group change applies at once.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use jxp_model::sync as locks;
use sha2::{Digest, Sha256};

use super::credentials::Credentials;
use crate::error::CoreError;
use crate::identity::Identity;

/// Models whose changes can change who a credential is.
pub const IDENTITY_MODELS: &[&str] = &["user", "usergroups", "token", "apikey", "refreshtoken"];

/// Entries kept at most; past it the cache starts over.
const MAX_ENTRIES: usize = 100_000;

struct Entry {
    identity: Identity,
    /// Unix milliseconds after which the credential is no longer valid.
    expires_ms: Option<i64>,
}

pub struct IdentityCache {
    salt: [u8; 32],
    generation: AtomicU64,
    entries: RwLock<HashMap<[u8; 32], Entry>>,
}

impl IdentityCache {
    pub fn new() -> Result<Self, CoreError> {
        let mut salt = [0u8; 32];
        getrandom::fill(&mut salt)
            .map_err(|e| CoreError::Internal(format!("no OS randomness: {e}")))?;
        Ok(IdentityCache {
            salt,
            generation: AtomicU64::new(0),
            entries: RwLock::new(HashMap::new()),
        })
    }

    /// The cache key of some credentials; `None` for no credentials.
    pub fn key(&self, creds: &Credentials) -> Option<[u8; 32]> {
        let mut h = Sha256::new();
        h.update(self.salt);
        match creds {
            Credentials::None => return None,
            Credentials::Basic { email, password } => {
                h.update(b"basic\0");
                h.update(email.trim().to_lowercase().as_bytes());
                h.update(b"\0");
                h.update(password.as_bytes());
            }
            Credentials::Bearer(t) => {
                h.update(b"bearer\0");
                h.update(t.as_bytes());
            }
            Credentials::ApiKey(k) => {
                h.update(b"apikey\0");
                h.update(k.as_bytes());
            }
        }
        Some(h.finalize().into())
    }

    /// The current generation, read before a lookup starts.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn get(&self, key: &[u8; 32], now_ms: i64) -> Option<Identity> {
        let entries = locks::read(&self.entries);
        let entry = entries.get(key)?;
        if entry.expires_ms.is_some_and(|e| e <= now_ms) {
            return None;
        }
        Some(entry.identity.clone())
    }

    /// Stores a lookup's result unless an identity-changing write committed since `generation`.
    pub fn insert(
        &self,
        generation: u64,
        key: [u8; 32],
        identity: Identity,
        expires_ms: Option<i64>,
    ) {
        let mut entries = locks::write(&self.entries);
        // Checked under the write lock, which `invalidate` also takes.
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(
            key,
            Entry {
                identity,
                expires_ms,
            },
        );
    }

    /// Forgets every identity; called after a write to an identity model commits.
    pub fn invalidate(&self) {
        let mut entries = locks::write(&self.entries);
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.clear();
    }
}

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalidation_beats_a_racing_lookup() {
        let cache = IdentityCache::new().unwrap();
        let key = cache.key(&Credentials::Bearer("t".into())).unwrap();
        let generation = cache.generation();
        cache.invalidate();
        cache.insert(generation, key, Identity::anonymous(), None);
        assert!(
            cache.get(&key, 0).is_none(),
            "a lookup that raced with a revoke is not cached"
        );
        let generation = cache.generation();
        cache.insert(generation, key, Identity::anonymous(), Some(1000));
        assert!(cache.get(&key, 999).is_some());
        assert!(cache.get(&key, 1000).is_none(), "expired");
        assert_ne!(
            key,
            cache.key(&Credentials::ApiKey("t".into())).unwrap(),
            "kinds do not collide"
        );
        assert!(cache.key(&Credentials::None).is_none());
    }
}
