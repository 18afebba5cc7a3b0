//! The optional response cache (`CACHE_ENABLED`, `CACHE_TTL`): GET answers of `/api` are kept
//! per caller and URL, and an entry is used only while its model's write generation is the one
//! it was made at, so a committed write makes every cached answer about that model stale at
//! once. Answers say `jxp-cache: hit|miss` and `jxp-cache-key` (a fingerprint of the key).
//! Models with read hooks are not cached (see `routes/api.rs`). Admins read its statistics
//! and clear it at `/cache/stats` and `/cache/clear`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::HeaderValue;
use jxp_core::Identity;
use jxp_model::sync::lock;

/// Entries kept at most; past it the cache starts over.
const MAX_ENTRIES: usize = 10_000;

struct Entry {
    generation: u64,
    expires: Instant,
    body: Bytes,
}

/// The response cache; disabled unless configured.
pub struct ResponseCache {
    enabled: bool,
    ttl: Duration,
    entries: Mutex<HashMap<String, Entry>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl ResponseCache {
    pub fn new(enabled: bool, ttl: Duration) -> Self {
        ResponseCache {
            enabled,
            ttl,
            entries: Mutex::new(HashMap::new()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The key of an answer: who asked (their answers differ by identity) and what.
    pub fn key(who: &Identity, uri: &str) -> String {
        let caller = match &who.user {
            None if who.system => "system".to_owned(),
            None => "anonymous".to_owned(),
            Some(u) => {
                let mut groups = u.groups.clone();
                groups.sort();
                format!("{}:{}:{}", u.id, u.admin, groups.join(","))
            }
        };
        format!("{caller}\0{uri}")
    }

    /// The `jxp-cache-key` header of an answer: a fingerprint of its key (the key itself holds
    /// the caller's id and groups, which need not travel, and may not be header-safe).
    pub fn key_header(key: &str) -> HeaderValue {
        // FNV-1a: stable across processes and releases, unlike std's hasher.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in key.as_bytes() {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        HeaderValue::from_str(&format!("{h:016x}")).unwrap_or(HeaderValue::from_static("0"))
    }

    /// A fresh cached body, if any.
    pub fn get(&self, key: &str, generation: u64) -> Option<Bytes> {
        let entries = lock(&self.entries);
        let hit = entries
            .get(key)
            .filter(|e| e.generation == generation && e.expires > Instant::now())
            .map(|e| e.body.clone());
        drop(entries);
        match &hit {
            Some(_) => self.hits.fetch_add(1, Ordering::Relaxed),
            None => self.misses.fetch_add(1, Ordering::Relaxed),
        };
        hit
    }

    /// Counts a miss that did not look (a write to the model was under way).
    pub fn missed(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }

    pub fn put(&self, key: String, generation: u64, body: Bytes) {
        let mut entries = lock(&self.entries);
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(
            key,
            Entry {
                generation,
                expires: Instant::now() + self.ttl,
                body,
            },
        );
    }

    pub fn clear(&self) {
        lock(&self.entries).clear();
    }

    /// `(hits, misses, keys)`.
    pub fn stats(&self) -> (u64, u64, usize) {
        let keys = lock(&self.entries).len();
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
            keys,
        )
    }
}
