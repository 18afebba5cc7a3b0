//! The request path as the access log shows it: the query string's credentials (`apikey`,
//! tokens, passwords, anything named like a key or secret) replaced by `[redacted]`, written
//! straight to the log's line or formatter without building a string.

use std::fmt;

use axum::http::Uri;

/// What a redacted value reads as.
const MASK: &str = "[redacted]";

/// Parts of a query parameter's name that mark its value as a credential. Matched anywhere in
/// the lower-cased, percent-decoded name, so `api_key`, `access_token`, `filter[password]` and
/// `X-Api-Key` all count; a harmless name that matches only loses its value in the log.
const SECRET_PARTS: &[&str] = &[
    "key",
    "token",
    "password",
    "passwd",
    "secret",
    "auth",
    "jwt",
    "session",
    "signature",
    "credential",
];

/// Longest parameter name checked byte by byte; a longer one is redacted unread.
const NAME_MAX: usize = 128;

/// Bytes of path and query a [`Target`] holds in place.
const INLINE: usize = 128;

/// What the access log keeps of a request's URI while the request is handled: its path and
/// query, copied in place when they fit (no allocation, and no reference count of the
/// request's buffer to take and give back), else the URI itself.
pub(crate) enum Target {
    Inline { len: u8, bytes: [u8; INLINE] },
    Uri(Uri),
}

impl Target {
    pub(crate) fn of(uri: &Uri) -> Self {
        let text = path_and_query(uri).as_bytes();
        match u8::try_from(text.len()) {
            Ok(len) if text.len() <= INLINE => {
                let mut bytes = [0; INLINE];
                bytes[..text.len()].copy_from_slice(text);
                Target::Inline { len, bytes }
            }
            _ => Target::Uri(uri.clone()),
        }
    }

    /// The path, then `?` and the query if it has one.
    pub(crate) fn as_str(&self) -> &str {
        match self {
            // A URI's path and query are ASCII, so a copy of them is text.
            Target::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or("?")
            }
            Target::Uri(uri) => path_and_query(uri),
        }
    }
}

/// A URI's path, then `?` and its query if it has one.
fn path_and_query(uri: &Uri) -> &str {
    uri.path_and_query().map_or(uri.path(), |pq| pq.as_str())
}

/// Displays a request's path and query (as [`Target::as_str`] gives them) with credentials
/// masked.
pub(crate) struct Redacted<'a>(pub &'a str);

impl Redacted<'_> {
    /// Hands the path and query, credentials masked, to `out` piece by piece: the access
    /// log's writer copies them into its line without going through `fmt`.
    pub(crate) fn pieces(&self, mut out: impl FnMut(&str)) {
        // A path holds no `?`: the first one starts the query.
        let Some((path, query)) = self.0.split_once('?') else {
            out(self.0);
            return;
        };
        out(path);
        out("?");
        for (i, pair) in query.split('&').enumerate() {
            if i > 0 {
                out("&");
            }
            match pair.split_once('=') {
                Some((name, _)) if is_secret(name) => {
                    out(name);
                    out("=");
                    out(MASK);
                }
                _ => out(pair),
            }
        }
    }
}

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut result = Ok(());
        self.pieces(|piece| {
            if result.is_ok() {
                result = f.write_str(piece);
            }
        });
        result
    }
}

/// Whether a (still percent-encoded) parameter name names a credential.
fn is_secret(name: &str) -> bool {
    let mut buf = [0u8; NAME_MAX];
    let Some(len) = decode_lower(name.as_bytes(), &mut buf) else {
        return true;
    };
    let name = &buf[..len];
    SECRET_PARTS
        .iter()
        .any(|part| name.windows(part.len()).any(|w| w == part.as_bytes()))
}

/// Percent-decodes and lower-cases `raw` into `out`; `None` when it does not fit.
fn decode_lower(raw: &[u8], out: &mut [u8]) -> Option<usize> {
    let mut len = 0;
    let mut i = 0;
    while i < raw.len() {
        let byte = match raw[i] {
            b'%' => match (hex(raw.get(i + 1)), hex(raw.get(i + 2))) {
                (Some(h), Some(l)) => {
                    i += 2;
                    h * 16 + l
                }
                _ => b'%',
            },
            b => b,
        };
        *out.get_mut(len)? = byte.to_ascii_lowercase();
        len += 1;
        i += 1;
    }
    Some(len)
}

fn hex(b: Option<&u8>) -> Option<u8> {
    let b = *b?;
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
mod tests {
    use super::*;

    fn shown(uri: &str) -> String {
        let target = Target::of(&uri.parse::<Uri>().unwrap());
        Redacted(target.as_str()).to_string()
    }

    #[test]
    fn a_target_keeps_the_path_and_query_however_long() {
        for uri in [
            "/api/test".to_owned(),
            "/api/test?limit=5&page=2".to_owned(),
            "/x?".to_owned(),
            format!("/api/test?filter[foo]={}", "a".repeat(INLINE)),
            format!("/{}", "b".repeat(INLINE - 1)),
            "http://example.com/api/test?n=1".to_owned(),
        ] {
            let parsed = uri.parse::<Uri>().unwrap();
            let target = Target::of(&parsed);
            let expected = parsed.path_and_query().unwrap().as_str();
            assert_eq!(target.as_str(), expected);
            assert_eq!(
                matches!(target, Target::Inline { .. }),
                expected.len() <= INLINE,
                "{uri}"
            );
        }
    }

    #[test]
    fn credentials_in_the_query_are_masked() {
        assert_eq!(
            shown("/api/test?apikey=abc123&limit=5"),
            "/api/test?apikey=[redacted]&limit=5"
        );
        assert_eq!(
            shown("/api/test?limit=5&token=t0k&access_token=x&password=hunter2"),
            "/api/test?limit=5&token=[redacted]&access_token=[redacted]&password=[redacted]"
        );
        assert_eq!(
            shown("/x?API_KEY=1&X-Api-Key=2&client_secret=3&jwt=4"),
            "/x?API_KEY=[redacted]&X-Api-Key=[redacted]&client_secret=[redacted]&jwt=[redacted]"
        );
    }

    #[test]
    fn percent_encoded_names_are_decoded_before_the_check() {
        assert_eq!(shown("/x?api%6Bey=s3cret"), "/x?api%6Bey=[redacted]");
        assert_eq!(
            shown("/api/user?filter%5Bpassword%5D=pw"),
            "/api/user?filter%5Bpassword%5D=[redacted]"
        );
        assert_eq!(shown("/x?a%=1&b%4=2"), "/x?a%=1&b%4=2");
    }

    #[test]
    fn other_parameters_and_paths_are_kept() {
        assert_eq!(shown("/api/test"), "/api/test");
        assert_eq!(
            shown("/api/test?filter[foo]=bar&sort=-n&page=2"),
            "/api/test?filter[foo]=bar&sort=-n&page=2"
        );
        assert_eq!(shown("/api/test?flag&apikey"), "/api/test?flag&apikey");
        let long = format!("/x?{}=v", "a".repeat(NAME_MAX + 1));
        assert!(shown(&long).ends_with("=[redacted]"));
    }
}
