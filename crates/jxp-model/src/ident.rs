//! What counts as a plain identifier: the one rule every SQL renderer and migration uses to
//! decide whether a name may be written into SQL text or must be bound as a value.

/// True for a non-empty name of `A-Z`, `a-z`, `0-9` and `_` only: the characters the model
/// loader allows in model and field names, and so the only ones ever written into SQL text.
pub fn is_ident(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::is_ident;

    #[test]
    fn plain_names_only() {
        for ok in ["a", "_id", "createdAt", "x9_y"] {
            assert!(is_ident(ok), "{ok}");
        }
        for bad in ["", "a.b", "a-b", "a b", "a'", "é", "a\"b", "a;"] {
            assert!(!is_ident(bad), "{bad:?}");
        }
    }
}
