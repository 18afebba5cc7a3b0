//! TLS to PostgreSQL, with libpq's `sslmode` meanings, so a URL copied from a hosting
//! provider works as it does with `psql`:
//! - `disable`: no TLS;
//! - `prefer` (the default) and `allow`: TLS if the server offers it, else plain;
//! - `require`: TLS or no connection;
//! - `verify-ca`: TLS, and the server's certificate must chain to a trusted root;
//! - `verify-full`: that, and the certificate must name the host connected to.
//!
//! As with libpq, `prefer` and `require` encrypt without checking who answers, unless
//! `sslrootcert` names a CA file, which makes them `verify-ca`. The trusted roots are that
//! file (PEM), or the Mozilla roots (`webpki-roots`) when it is absent or `system`.
//! `sslrootcert` and the `verify-*` modes are read here; what tokio-postgres is given is the
//! URL with `sslmode` as it knows it (`prefer` or `require`) and without `sslrootcert`.

use std::str::FromStr;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::StoreError;

/// How the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// Not at all (encryption only), as libpq's `prefer` and `require`.
    Nothing,
    /// It must chain to a trusted root.
    Chain,
    /// It must chain to a trusted root and name the host.
    Full,
}

/// The parts of a URL's query that concern TLS.
#[derive(Debug, PartialEq, Eq)]
struct Wanted {
    /// The URL for tokio-postgres.
    url: String,
    check: Check,
    /// The `sslrootcert` file, unless absent or `system`.
    root_file: Option<String>,
}

/// The connection settings and the TLS connector for `url`.
pub(crate) fn connect_config(
    url: &str,
) -> Result<(tokio_postgres::Config, MakeRustlsConnect), StoreError> {
    let wanted = read_url(url)?;
    let config = tokio_postgres::Config::from_str(&wanted.url)
        .map_err(|e| StoreError::Database(format!("bad DATABASE_URL: {e}")))?;
    let tls = connector(wanted.check, wanted.root_file.as_deref())?;
    Ok((config, tls))
}

fn bad(why: impl std::fmt::Display) -> StoreError {
    StoreError::Database(format!("bad DATABASE_URL: {why}"))
}

/// Reads `sslmode` and `sslrootcert` from the query of `url`.
fn read_url(url: &str) -> Result<Wanted, StoreError> {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, query),
        None => (url, ""),
    };
    let mut mode = "prefer".to_owned();
    let mut root: Option<String> = None;
    let mut kept: Vec<&str> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "sslmode" => mode = percent_decode(value)?,
            "sslrootcert" => root = Some(percent_decode(value)?),
            _ => kept.push(pair),
        }
    }
    let root_file = root.filter(|r| r != "system" && !r.is_empty());
    let (pg_mode, check) = match mode.as_str() {
        "disable" => ("disable", Check::Nothing),
        "allow" | "prefer" if root_file.is_some() => ("prefer", Check::Chain),
        "allow" | "prefer" => ("prefer", Check::Nothing),
        "require" if root_file.is_some() => ("require", Check::Chain),
        "require" => ("require", Check::Nothing),
        "verify-ca" => ("require", Check::Chain),
        "verify-full" => ("require", Check::Full),
        other => {
            return Err(bad(format_args!(
                "sslmode={other} is not one of disable, allow, prefer, require, verify-ca, \
                 verify-full"
            )));
        }
    };
    kept.push(match pg_mode {
        "disable" => "sslmode=disable",
        "prefer" => "sslmode=prefer",
        _ => "sslmode=require",
    });
    Ok(Wanted {
        url: format!("{base}?{}", kept.join("&")),
        check,
        root_file,
    })
}

/// `%XX` escapes and `+` of a query value.
fn percent_decode(value: &str) -> Result<String, StoreError> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| bad(format_args!("bad %-escape in {value:?}")))?;
                out.push(hex);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| bad(format_args!("{value:?} is not UTF-8")))
}

fn connector(check: Check, root_file: Option<&str>) -> Result<MakeRustlsConnect, StoreError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let setup = |e: &dyn std::fmt::Display| StoreError::Database(format!("cannot set up TLS: {e}"));
    let chain = match check {
        Check::Nothing => None,
        Check::Chain | Check::Full => Some(
            WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots(root_file)?),
                provider.clone(),
            )
            .build()
            .map_err(|e| setup(&e))?,
        ),
    };
    let verifier = Verifier {
        chain,
        name: check == Check::Full,
        algorithms: provider.signature_verification_algorithms,
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| setup(&e))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// The trusted roots: the certificates of `file` (PEM), or the Mozilla roots.
fn roots(file: Option<&str>) -> Result<RootCertStore, StoreError> {
    let Some(file) = file else {
        return Ok(RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        });
    };
    let cannot = |why: &dyn std::fmt::Display| {
        StoreError::Database(format!("cannot read sslrootcert {file}: {why}"))
    };
    let mut store = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(file).map_err(|e| cannot(&e))? {
        store
            .add(cert.map_err(|e| cannot(&e))?)
            .map_err(|e| cannot(&e))?;
    }
    if store.is_empty() {
        return Err(cannot(&"no certificate in it"));
    }
    Ok(store)
}

/// Checks the server's certificate as the mode says: the chain (if `chain`), the name (if
/// `name`), or nothing (libpq's `prefer`/`require` without a root file: encrypted, whoever
/// answers). The handshake's signatures are always checked against the certificate.
#[derive(Debug)]
struct Verifier {
    chain: Option<Arc<WebPkiServerVerifier>>,
    name: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_and_sslrootcert_are_read_and_the_rest_kept() {
        let w = read_url("postgres://u:p@db.example.com:5432/app").unwrap();
        assert_eq!(
            w.url,
            "postgres://u:p@db.example.com:5432/app?sslmode=prefer"
        );
        assert_eq!((w.check, w.root_file), (Check::Nothing, None));

        let w = read_url(
            "postgres://u@h/db?options=-c%20search_path%3Dx&sslmode=verify-full\
             &sslrootcert=%2Fetc%2Fca.pem",
        )
        .unwrap();
        assert_eq!(
            w.url,
            "postgres://u@h/db?options=-c%20search_path%3Dx&sslmode=require"
        );
        assert_eq!(w.check, Check::Full);
        assert_eq!(w.root_file.as_deref(), Some("/etc/ca.pem"));

        let w = read_url("postgres://u@h/db?sslmode=verify-ca&sslrootcert=system").unwrap();
        assert_eq!((w.check, w.root_file), (Check::Chain, None));
        // A root file makes `require` check the chain, as libpq does.
        let w = read_url("postgres://u@h/db?sslmode=require&sslrootcert=/ca.pem").unwrap();
        assert_eq!(w.check, Check::Chain);
        let w = read_url("postgres://u@h/db?sslmode=disable").unwrap();
        assert!(w.url.ends_with("?sslmode=disable"));
    }

    #[test]
    fn bad_tls_settings_are_named() {
        let e = read_url("postgres://u@h/db?sslmode=always").unwrap_err();
        assert!(e.to_string().contains("sslmode=always"), "{e}");
        let e = read_url("postgres://u@h/db?sslrootcert=%zz").unwrap_err();
        assert!(e.to_string().contains("%-escape"), "{e}");
        let e = connect_config("postgres://u@h/db?sslmode=verify-ca&sslrootcert=/nonexistent/ca")
            .err()
            .unwrap();
        assert!(e.to_string().contains("/nonexistent/ca"), "{e}");
    }
}
