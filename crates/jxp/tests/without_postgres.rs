//! A build without the `postgres` feature: a `postgres://` `DATABASE_URL` is refused at start
//! with an error that says how to get PostgreSQL, not a panic. (With the feature, this file is
//! empty; the suite in `it/` covers PostgreSQL.)

#![cfg(not(feature = "postgres"))]
#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code fails loudly.

#[tokio::test]
async fn a_postgres_url_is_refused_with_a_clear_error() {
    let models = tempfile::tempdir().unwrap();
    let vars = [
        ("MODEL_DIR", models.path().display().to_string()),
        ("DATABASE_URL", "postgres://u@127.0.0.1:1/db".to_owned()),
    ];
    let config = jxp::Config::from_vars(vars.map(|(k, v)| (k.to_owned(), v))).unwrap();
    let err = jxp::build_app(&config).await.err().unwrap();
    assert!(
        format!("{err:#}")
            .contains("this build has no PostgreSQL support; build with --features postgres"),
        "{err:#}"
    );
}
