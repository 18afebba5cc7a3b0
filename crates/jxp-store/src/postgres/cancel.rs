//! Reads whose caller leaves are cancelled on the server. Dropping a `tokio-postgres` query
//! only stops waiting for it: PostgreSQL runs it to the end, and the pooled connection serves
//! the next read only after that. A request that timed out must not leave its scan running,
//! so a read holds its connection through [`Cancelling`], which on an early drop sends
//! PostgreSQL a cancel request and retires the connection instead of pooling it.

use deadpool_postgres::{ClientWrapper, Object};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::StoreError;

/// A pooled connection lent to one read; call [`Cancelling::finished`] once the read has
/// answered, or its drop cancels whatever the connection is running.
pub(crate) struct Cancelling {
    client: Option<Object>,
    tls: MakeRustlsConnect,
}

impl Cancelling {
    pub(crate) fn new(client: Object, tls: &MakeRustlsConnect) -> Self {
        Cancelling {
            client: Some(client),
            tls: tls.clone(),
        }
    }

    /// The connection, to run the read on.
    pub(crate) fn client(&self) -> Result<&ClientWrapper, StoreError> {
        self.client.as_deref().ok_or(StoreError::Closed)
    }

    /// The read answered: the connection goes back to the pool as it is.
    pub(crate) fn finished(mut self) {
        drop(self.client.take());
    }
}

impl Drop for Cancelling {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        // Out of the pool first: a cancel that arrived after this query ended would stop
        // whichever query the connection ran next.
        let client = Object::take(client);
        let token = client.cancel_token();
        let tls = self.tls.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = token.cancel_query(tls).await {
                    tracing::debug!("cannot cancel an abandoned read: {e}");
                }
                drop(client);
            });
        }
    }
}

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use deadpool_postgres::{Manager, ManagerConfig, Pool};

    use super::*;

    /// Whether a query whose text holds `marker` is running anywhere on the server.
    async fn running(client: &ClientWrapper, marker: &str) -> bool {
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE state = 'active' AND query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()",
                &[&marker],
            )
            .await
            .unwrap()
            .get(0);
        n > 0
    }

    #[tokio::test]
    async fn a_read_dropped_before_it_answers_is_cancelled_on_the_server() {
        let Ok(url) = std::env::var("JXP_TEST_DATABASE_URL") else {
            eprintln!("note: JXP_TEST_DATABASE_URL is not set; PostgreSQL cancel test skipped");
            return;
        };
        let (config, tls) = super::super::tls::connect_config(&url).unwrap();
        let manager = Manager::from_config(config, tls.clone(), ManagerConfig::default());
        let pool = Pool::builder(manager).max_size(2).build().unwrap();
        let watcher = pool.get().await.unwrap();
        let marker = format!("jxp_cancel_{}", std::process::id());
        let sql = format!("SELECT pg_sleep(60), '{marker}'");
        let slow = async {
            let client = Cancelling::new(pool.get().await.unwrap(), &tls);
            let rows = client.client()?.query(sql.as_str(), &[]).await;
            client.finished();
            Ok::<_, StoreError>(rows)
        };
        let gave_up = tokio::time::timeout(Duration::from_millis(500), slow).await;
        assert!(
            gave_up.is_err(),
            "a minute's sleep cannot answer in half a second"
        );
        let since = Instant::now();
        while running(&watcher, &marker).await {
            assert!(
                since.elapsed() < Duration::from_secs(10),
                "the abandoned read still runs on the server"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // A read that answers leaves its connection in the pool and nothing cancelled.
        let client = Cancelling::new(pool.get().await.unwrap(), &tls);
        let one: i32 = client
            .client()
            .unwrap()
            .query_one("SELECT 1", &[])
            .await
            .unwrap()
            .get(0);
        client.finished();
        assert_eq!(one, 1);
        assert_eq!(pool.status().size, 2);
    }
}
