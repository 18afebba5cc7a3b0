//! Cross-origin access (`CORS_ORIGINS`): which browser origins may call the API, the
//! `tower-http` layer that answers their preflights and adds the `Access-Control-*` headers to
//! every answer, and the same rule applied to the `Origin` of a WebSocket upgrade, which
//! browsers do not guard with CORS.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

/// How long a browser may reuse a preflight's answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(3600);

/// Which other origins a browser page may call the API from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CorsOrigins {
    /// `CORS_ORIGINS` unset: same-origin pages only, and no CORS headers at all.
    #[default]
    SameOrigin,
    /// `*`: any origin, without credentials (browsers refuse them with `*`; tokens and API keys
    /// in request headers still work).
    Any,
    /// These origins, each as a browser sends it (`scheme://host[:port]`, lower case, no
    /// default port); their answers allow credentials.
    List(Vec<String>),
}

/// An entry of `CORS_ORIGINS` that is not an origin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{entry:?} is not an origin: {why}")]
pub struct BadOrigin {
    pub entry: String,
    pub why: &'static str,
}

impl CorsOrigins {
    /// Reads `CORS_ORIGINS`: empty for same-origin only, `*`, or origins separated by commas.
    pub fn parse(raw: &str) -> Result<Self, BadOrigin> {
        let entries: Vec<&str> = raw
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .collect();
        if entries.is_empty() {
            return Ok(CorsOrigins::SameOrigin);
        }
        if entries.contains(&"*") {
            if entries.len() > 1 {
                return Err(BadOrigin {
                    entry: raw.trim().to_owned(),
                    why: "* allows every origin and stands alone",
                });
            }
            return Ok(CorsOrigins::Any);
        }
        let mut origins = Vec::with_capacity(entries.len());
        for entry in entries {
            let origin = normalise(entry).map_err(|why| BadOrigin {
                entry: entry.to_owned(),
                why,
            })?;
            if !origins.contains(&origin) {
                origins.push(origin);
            }
        }
        Ok(CorsOrigins::List(origins))
    }

    /// Whether a page of `origin` may call the API from another origin.
    pub fn allows(&self, origin: &[u8]) -> bool {
        match self {
            CorsOrigins::SameOrigin => false,
            CorsOrigins::Any => true,
            CorsOrigins::List(list) => list
                .iter()
                .any(|o| o.as_bytes().eq_ignore_ascii_case(origin)),
        }
    }
}

/// An origin as browsers send it in `Origin`: scheme and host in lower case, the scheme's
/// default port left out; or why `entry` is not one.
fn normalise(entry: &str) -> Result<String, &'static str> {
    let (scheme, authority) = entry
        .split_once("://")
        .ok_or("expected scheme://host[:port], such as https://app.example.com")?;
    let scheme = scheme.to_ascii_lowercase();
    let mut chars = scheme.chars();
    if !chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        || !chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        return Err("the scheme must be a name such as http or https");
    }
    if authority.contains(['/', '?', '#']) {
        return Err("an origin has no path, query or trailing slash");
    }
    if authority.contains('@') {
        return Err("an origin has no user name or password");
    }
    let (host, port) = split_port(authority)?;
    let host_ok = if let Some(inner) = host.strip_prefix('[') {
        inner
            .strip_suffix(']')
            .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok())
    } else {
        !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    };
    if !host_ok {
        return Err("the host must be a name, an IPv4 address or a [bracketed] IPv6 address");
    }
    let host = host.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    };
    Ok(match port {
        Some(p) if Some(p) != default_port => format!("{scheme}://{host}:{p}"),
        _ => format!("{scheme}://{host}"),
    })
}

/// `host[:port]` split, the port checked.
fn split_port(authority: &str) -> Result<(&str, Option<u16>), &'static str> {
    // A colon after the last `]` separates the port; inside brackets it is IPv6.
    let after_host = authority.rfind(']').map_or(0, |i| i + 1);
    match authority[after_host..].rfind(':') {
        None => Ok((authority, None)),
        Some(i) => {
            let (host, port) = authority.split_at(after_host + i);
            let port = port[1..]
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or("the port must be a number from 1 to 65535")?;
            Ok((host, Some(port)))
        }
    }
}

/// Request headers a cross-origin page may send beyond the ones browsers always allow.
fn allowed_request_headers() -> [HeaderName; 3] {
    [
        header::AUTHORIZATION,
        header::CONTENT_TYPE,
        HeaderName::from_static("x-api-key"),
    ]
}

/// Answer headers a cross-origin page may read beyond the ones browsers always expose.
fn exposed_headers() -> [HeaderName; 4] {
    [
        header::RETRY_AFTER,
        header::CONTENT_DISPOSITION,
        HeaderName::from_static("jxp-cache"),
        HeaderName::from_static("jxp-cache-key"),
    ]
}

/// The layer for `origins`, or none when only same-origin pages are served.
pub(crate) fn layer(origins: &CorsOrigins) -> Option<CorsLayer> {
    let common = CorsLayer::new()
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers(allowed_request_headers())
        .expose_headers(exposed_headers())
        .max_age(PREFLIGHT_MAX_AGE);
    match origins {
        CorsOrigins::SameOrigin => None,
        CorsOrigins::Any => Some(common.allow_origin(Any)),
        CorsOrigins::List(_) => {
            let origins = origins.clone();
            Some(
                common
                    .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| {
                        origins.allows(origin.as_bytes())
                    }))
                    .allow_credentials(true),
            )
        }
    }
}

/// Whether a WebSocket upgrade may proceed: clients that send no `Origin` (not a browser) may,
/// and so may a page of the server's own origin (its host equals the request's `Host`, or it
/// is `API_URL`'s origin) or of an origin `CORS_ORIGINS` allows. Anything else would let a
/// page on another site open a socket with the user's credentials.
pub(crate) fn ws_origin_allowed(origins: &CorsOrigins, headers: &HeaderMap, api_url: &str) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    if origins.allows(origin.as_bytes()) {
        return true;
    }
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    host.is_some_and(|host| same_authority(origin, host))
        || origin_of(api_url).is_some_and(|own| own.eq_ignore_ascii_case(origin))
}

/// The origin of a URL such as `API_URL` (which may carry a path), normalised.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.trim().split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    normalise(&format!("{scheme}://{authority}")).ok()
}

/// Whether `origin`'s host and port are `host` (a `Host` header), counting the scheme's
/// default port when either leaves it out.
fn same_authority(origin: &str, host: &str) -> bool {
    let Ok(origin) = normalise(origin) else {
        return false;
    };
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let Ok(host) = normalise(&format!("{scheme}://{host}")) else {
        return false;
    };
    host.split_once("://")
        .is_some_and(|(_, h)| h.eq_ignore_ascii_case(authority))
}

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
mod tests {
    use super::*;

    fn list(origins: &[&str]) -> CorsOrigins {
        CorsOrigins::List(origins.iter().map(|o| (*o).to_owned()).collect())
    }

    #[test]
    fn unset_empty_star_and_lists() {
        assert_eq!(CorsOrigins::parse("").unwrap(), CorsOrigins::SameOrigin);
        assert_eq!(CorsOrigins::parse(" , ").unwrap(), CorsOrigins::SameOrigin);
        assert_eq!(CorsOrigins::parse(" * ").unwrap(), CorsOrigins::Any);
        assert_eq!(
            CorsOrigins::parse("http://localhost:3000, HTTPS://App.Example.com:443,").unwrap(),
            list(&["http://localhost:3000", "https://app.example.com"])
        );
        assert_eq!(
            CorsOrigins::parse("http://[::1]:8080,http://127.0.0.1:80,capacitor://localhost")
                .unwrap(),
            list(&[
                "http://[::1]:8080",
                "http://127.0.0.1",
                "capacitor://localhost"
            ])
        );
    }

    #[test]
    fn a_bad_entry_is_named_with_the_reason() {
        for (raw, entry, reason) in [
            ("http://a.com,localhost:3000", "localhost:3000", "scheme"),
            ("http://a.com/", "http://a.com/", "path"),
            ("https://a.com/app", "https://a.com/app", "path"),
            ("http://a.com:0", "http://a.com:0", "port"),
            ("http://a.com:99999", "http://a.com:99999", "port"),
            ("http://user@a.com", "http://user@a.com", "password"),
            ("http://", "http://", "host"),
            ("http://a b", "http://a b", "host"),
            ("1http://a", "1http://a", "scheme"),
            ("*,http://a.com", "*,http://a.com", "alone"),
        ] {
            let err = CorsOrigins::parse(raw).unwrap_err();
            assert_eq!(err.entry, entry, "{raw}");
            assert!(err.why.contains(reason), "{raw}: {}", err.why);
            assert!(err.to_string().contains(entry));
        }
    }

    #[test]
    fn a_list_allows_its_origins_only() {
        let origins = CorsOrigins::parse("http://localhost:3000").unwrap();
        assert!(origins.allows(b"http://localhost:3000"));
        assert!(!origins.allows(b"http://localhost:3001"));
        assert!(!origins.allows(b"https://localhost:3000"));
        assert!(!origins.allows(b"null"));
        assert!(CorsOrigins::Any.allows(b"null"));
        assert!(!CorsOrigins::SameOrigin.allows(b"http://localhost:3000"));
    }

    #[test]
    fn a_socket_from_another_site_needs_the_list() {
        let api = "http://localhost:4001";
        let (same, any) = (CorsOrigins::SameOrigin, CorsOrigins::Any);
        let listed = CorsOrigins::parse("https://app.example.com").unwrap();
        let local = "127.0.0.1:4001";
        // (allowed origins, Origin, Host, API_URL, may open a socket)
        let cases = [
            // Not a browser, or a page of the server itself.
            (&same, None, local, api, true),
            (&same, Some("http://127.0.0.1:4001"), local, api, true),
            (
                &same,
                Some("https://api.example.com"),
                "api.example.com",
                api,
                true,
            ),
            (
                &same,
                Some("http://api.example.com"),
                "API.example.com:80",
                api,
                true,
            ),
            // Behind a proxy that rewrites Host, the public origin is API_URL's.
            (
                &same,
                Some("https://api.example.com"),
                local,
                "https://api.example.com/v1/",
                true,
            ),
            // Another site, or the same host on another port. (`Host` does not say the
            // scheme: a proxy may end TLS in front of the server.)
            (&same, Some("http://evil.example"), local, api, false),
            (&same, Some("http://127.0.0.1:4002"), local, api, false),
            (&same, Some("null"), local, api, false),
            (&listed, Some("https://app.example.com"), local, api, true),
            (&listed, Some("https://evil.example"), local, api, false),
            (&any, Some("https://evil.example"), local, api, true),
        ];
        for (origins, origin, host, api_url, allowed) in cases {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, HeaderValue::from_str(host).unwrap());
            if let Some(o) = origin {
                headers.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
            }
            assert_eq!(
                ws_origin_allowed(origins, &headers, api_url),
                allowed,
                "{origins:?} {origin:?} from {host} ({api_url})"
            );
        }
    }
}
