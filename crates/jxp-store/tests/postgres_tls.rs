//! TLS to PostgreSQL (`sslmode`, `sslrootcert` in `DATABASE_URL`), against the test server
//! when it offers TLS: `JXP_TEST_DATABASE_URL` names the server (on 127.0.0.1) and
//! `JXP_TEST_PG_CA` the CA that signed its certificate, which names 127.0.0.1 only.
//! `scripts/test.sh` sets both up. What is checked is what the server sees: whether the
//! store's own connections (its listener's) are encrypted.
//! Built only with the `postgres` feature.

#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // Test helpers fail the test loudly; that is their job.

use jxp_store::{PostgresOptions, PostgresStore, Store, postgres_schema_url};
use tokio_postgres::NoTls;

/// The server URL and the CA file, when the test server offers TLS.
fn server() -> Option<(String, String)> {
    let url = std::env::var("JXP_TEST_DATABASE_URL").ok()?;
    let ca = std::env::var("JXP_TEST_PG_CA").ok()?;
    Some((url, ca))
}

/// A fresh schema on the server; answers the URL of the server with `params` and that schema.
async fn schema_url(base: &str, name: &str, params: &str) -> String {
    let plain = format!("{base}?sslmode=disable");
    postgres_schema_url(&plain, name).await.unwrap();
    format!("{base}?{params}&options=-c%20search_path%3D{name}")
}

/// Whether the listener connection of the store working in schema `name` is encrypted.
async fn listener_uses_tls(base: &str, name: &str) -> bool {
    let (client, conn) = tokio_postgres::connect(&format!("{base}?sslmode=disable"), NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let row = client
        .query_one(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
             WHERE a.application_name = $1",
            &[&format!("jxp-listener jxp_{name}")],
        )
        .await
        .unwrap();
    row.get(0)
}

async fn connect(url: &str) -> Result<PostgresStore, String> {
    PostgresStore::connect(PostgresOptions::new(url))
        .await
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn verify_full_with_the_servers_ca_connects_encrypted() {
    let Some((base, ca)) = server() else { return };
    let name = "tls_verify_full";
    let url = schema_url(
        &base,
        name,
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    )
    .await;
    let store = connect(&url).await.unwrap();
    store.ping().await.unwrap();
    assert!(listener_uses_tls(&base, name).await);
}

#[tokio::test]
async fn the_default_encrypts_when_the_server_offers_it_and_disable_does_not() {
    let Some((base, _)) = server() else { return };
    let name = "tls_default";
    let store = connect(&schema_url(&base, name, "application_name=jxp").await)
        .await
        .unwrap();
    store.ping().await.unwrap();
    assert!(listener_uses_tls(&base, name).await, "prefer: encrypted");
    drop(store);
    let name = "tls_disable";
    let store = connect(&schema_url(&base, name, "sslmode=disable").await)
        .await
        .unwrap();
    store.ping().await.unwrap();
    assert!(
        !listener_uses_tls(&base, name).await,
        "disable: in the clear"
    );
}

#[tokio::test]
async fn verify_full_refuses_a_certificate_for_another_name_and_verify_ca_does_not() {
    let Some((base, ca)) = server() else { return };
    // The certificate names 127.0.0.1; `localhost` is the same server under another name.
    let other = base.replacen("127.0.0.1", "localhost", 1);
    assert_ne!(other, base, "the test server is on 127.0.0.1");
    let name = "tls_names";
    let url = schema_url(
        &other,
        name,
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    )
    .await;
    let refused = connect(&url)
        .await
        .err()
        .expect("verify-full accepted a wrong name");
    assert!(refused.contains("certificate"), "{refused}");
    let url = schema_url(&other, name, &format!("sslmode=verify-ca&sslrootcert={ca}")).await;
    let store = connect(&url).await.unwrap();
    store.ping().await.unwrap();
}

#[tokio::test]
async fn a_certificate_from_an_untrusted_ca_is_refused() {
    let Some((base, _)) = server() else { return };
    // Without sslrootcert the trusted roots are the public ones, which did not sign it.
    let name = "tls_untrusted";
    for mode in ["verify-full", "verify-ca"] {
        let url = schema_url(&base, name, &format!("sslmode={mode}")).await;
        let refused = connect(&url)
            .await
            .err()
            .unwrap_or_else(|| panic!("{mode} accepted an unknown issuer"));
        assert!(refused.contains("UnknownIssuer"), "{mode}: {refused}");
    }
}
