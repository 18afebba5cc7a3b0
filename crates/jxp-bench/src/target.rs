//! The server under test: a validated, loopback-only base URL and the URLs derived from it.

use anyhow::{Context, Result, bail};
use reqwest::Url;

/// Hosts a benchmark may target: this machine only.
const LOOPBACK_HOSTS: [&str; 3] = ["127.0.0.1", "localhost", "[::1]"];

/// A checked base URL, without a trailing slash (e.g. `http://127.0.0.1:4001`).
#[derive(Clone, Debug)]
pub struct Target {
    base: String,
}

impl Target {
    /// Parses `--base`, refusing anything that is not plain http(s) on a loopback host.
    pub fn parse(base: &str) -> Result<Self> {
        let url =
            Url::parse(base).with_context(|| format!("--base {base:?} is not a valid URL"))?;
        if !matches!(url.scheme(), "http" | "https") {
            bail!("--base {base:?}: scheme must be http or https");
        }
        let host = url.host_str().unwrap_or_default();
        if !LOOPBACK_HOSTS.contains(&host) {
            bail!(
                "--base {base:?}: host {host:?} refused; benchmarks may only target this machine \
                 (127.0.0.1, localhost or [::1])"
            );
        }
        if !url.username().is_empty() || url.password().is_some() {
            bail!(
                "--base {base:?}: credentials in the URL are not supported, use --email/--password"
            );
        }
        if url.query().is_some() || url.fragment().is_some() {
            bail!("--base {base:?}: must not have a query or fragment");
        }
        let base = url.as_str().trim_end_matches('/').to_owned();
        Ok(Self { base })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// `<base><path>`; `path` starts with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `<base>/api/<model>`.
    pub fn collection(&self, model: &str) -> String {
        self.url(&format!("/api/{model}"))
    }

    /// The realtime feed on the same host and port: `ws://<host>[/prefix]/websocket`.
    /// An `https` base is refused (jxp-bench has no TLS for WebSockets).
    pub fn websocket_url(&self) -> Result<String> {
        match self.base.strip_prefix("http://") {
            Some(rest) => Ok(format!("ws://{rest}/websocket")),
            None => bail!(
                "--base {}: the realtime scenarios need a plain http:// base (no wss support)",
                self.base
            ),
        }
    }
}

/// Checks that a model name or document id can be put in a URL path as is.
pub fn check_path_segment(what: &str, s: &str) -> Result<()> {
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !ok {
        bail!("{what} {s:?} is not a plain URL path segment ([A-Za-z0-9_-], 1-128 chars)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_loopback() {
        for (input, want) in [
            ("http://127.0.0.1:4001", "http://127.0.0.1:4001"),
            ("http://127.0.0.1:4001/", "http://127.0.0.1:4001"),
            (
                "http://LOCALHOST:8080/prefix/",
                "http://localhost:8080/prefix",
            ),
            ("http://[::1]:4001", "http://[::1]:4001"),
            ("http://[0:0:0:0:0:0:0:1]:4001", "http://[::1]:4001"),
        ] {
            let t = Target::parse(input).map(|t| t.base().to_owned()).ok();
            assert_eq!(t.as_deref(), Some(want), "{input}");
        }
    }

    #[test]
    fn refuses_other_hosts() {
        for input in [
            "http://10.0.0.1:4001",
            "http://example.com",
            "http://localhost.example.com",
            "http://127.0.0.1.nip.io",
            "http://0.0.0.0:4001",
            "ftp://127.0.0.1",
            "http://user:pw@127.0.0.1",
            "127.0.0.1:4001",
            "not a url",
        ] {
            assert!(Target::parse(input).is_err(), "{input} should be refused");
        }
    }

    #[test]
    fn urls() -> Result<()> {
        let t = Target::parse("http://127.0.0.1:4001/")?;
        assert_eq!(t.url("/healthz"), "http://127.0.0.1:4001/healthz");
        assert_eq!(t.collection("test"), "http://127.0.0.1:4001/api/test");
        assert_eq!(t.websocket_url()?, "ws://127.0.0.1:4001/websocket");
        let t = Target::parse("http://[::1]:4001/p/")?;
        assert_eq!(t.websocket_url()?, "ws://[::1]:4001/p/websocket");
        assert!(
            Target::parse("https://localhost:4001")?
                .websocket_url()
                .is_err()
        );
        Ok(())
    }

    #[test]
    fn path_segments() {
        assert!(check_path_segment("model", "test").is_ok());
        assert!(check_path_segment("id", "65a1b2c3d4e5f60718293a4b").is_ok());
        for bad in ["", "a/b", "a b", "..", "x?y"] {
            assert!(check_path_segment("model", bad).is_err(), "{bad:?}");
        }
    }
}
