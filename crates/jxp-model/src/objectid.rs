//! ObjectId-layout ids: 4 bytes of seconds, 5 random bytes fixed per process, a 3-byte
//! counter; 24 lower-case hex characters, as MongoDB writes them, so JXP clients see the same
//! shape and ids sort roughly by creation time.

use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// A 12-byte ObjectId.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId([u8; 12]);

fn process_unique() -> &'static ([u8; 5], AtomicU32) {
    static STATE: OnceLock<([u8; 5], AtomicU32)> = OnceLock::new();
    STATE.get_or_init(|| {
        let mut seed = [0u8; 8];
        // Without OS randomness ids stay unique within the process through the counter; the
        // time-derived fallback only weakens uniqueness across processes.
        if getrandom::fill(&mut seed).is_err() {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            seed = (nanos as u64 ^ u64::from(std::process::id())).to_le_bytes();
        }
        let mut unique = [0u8; 5];
        unique.copy_from_slice(&seed[..5]);
        let counter = u32::from_le_bytes([seed[5], seed[6], seed[7], 0]);
        (unique, AtomicU32::new(counter))
    })
}

impl ObjectId {
    /// A fresh id.
    pub fn new() -> Self {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or_default();
        let (unique, counter) = process_unique();
        let count = counter.fetch_add(1, Ordering::Relaxed) & 0x00ff_ffff;
        let mut bytes = [0u8; 12];
        bytes[..4].copy_from_slice(&secs.to_be_bytes());
        bytes[4..9].copy_from_slice(unique);
        bytes[9..].copy_from_slice(&count.to_be_bytes()[1..]);
        ObjectId(bytes)
    }

    /// Parses 24 hex characters (either case).
    pub fn parse(s: &str) -> Option<Self> {
        if s.len() != 24 {
            return None;
        }
        let mut bytes = [0u8; 12];
        for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
            let hi = (chunk[0] as char).to_digit(16)?;
            let lo = (chunk[1] as char).to_digit(16)?;
            bytes[i] = (hi * 16 + lo) as u8;
        }
        Some(ObjectId(bytes))
    }
}

impl Default for ObjectId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Whether `s` is 24 hex characters.
pub fn is_object_id(s: &str) -> bool {
    s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_24_hex_unique_and_parse_back() {
        let a = ObjectId::new();
        let b = ObjectId::new();
        assert_ne!(a, b);
        let s = a.to_string();
        assert_eq!(s.len(), 24);
        assert!(is_object_id(&s));
        assert_eq!(ObjectId::parse(&s), Some(a));
    }

    #[test]
    fn rejects_non_ids() {
        for bad in [
            "",
            "abc",
            "5eb7cf838c9fba641e0e9dcg",
            "5eb7cf838c9fba641e0e9dcb0",
            "é5b7cf838c9fba641e0e9dc",
        ] {
            assert!(!is_object_id(bad), "{bad}");
            assert!(ObjectId::parse(bad).is_none(), "{bad}");
        }
        assert!(is_object_id("5EB7CF838C9FBA641E0E9DCB"));
    }
}
