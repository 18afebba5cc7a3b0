//! `GET /metrics`: who may read it, that it is Prometheus' text format, and that its counters
//! follow the traffic. The recorder is the process's, shared by the servers tests run at the
//! same time, so counts are compared before and after and only ever asserted to have grown
//! by at least this test's share; model names are this test's own.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::prometheus::{Sample, parse, value};
use crate::harness::TestServer;
use crate::harness::start;
use crate::harness::{Auth, send};
use crate::harness::{create_user, setup_admin};
use crate::realtime::client::WsClient;

const METERED: &str = r#"
name = "Metered"
[fields]
title = "String"
[perms]
all = "crud"
"#;

const TOKEN: &str = "metrics-token-0123456789";

async fn scrape(s: &TestServer, auth: &Auth) -> Vec<Sample> {
    let r = send(s, Method::GET, "/metrics", auth, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let content_type = r.headers["content-type"].to_str().unwrap();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    parse(r.body.as_str().unwrap())
}

/// Scrapes until `check` holds (what it counts is recorded just after the answer the test
/// awaited), failing after 10 s.
async fn scrape_until(
    s: &TestServer,
    what: &str,
    check: impl Fn(&[Sample]) -> bool,
) -> Vec<Sample> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let samples = scrape(s, &Auth::bearer(TOKEN)).await;
        if check(&samples) {
            return samples;
        }
        assert!(Instant::now() < deadline, "metrics never showed {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn metrics_are_for_admins_and_the_metrics_token() {
    let s = start(&[("metered", METERED)], &[("METRICS_TOKEN", TOKEN)]).await;
    let admin = setup_admin(&s).await;
    let user = create_user(&s, &admin.basic(), "Ursula").await;

    let anonymous = send(&s, Method::GET, "/metrics", &Auth::None, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.body["code"], "Unauthorized", "{}", anonymous.body);
    assert!(anonymous.body["message"].is_string());

    let refused = send(&s, Method::GET, "/metrics", &user.basic(), None).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert_eq!(refused.body["code"], "Forbidden");
    let wrong = send(
        &s,
        Method::GET,
        "/metrics",
        &Auth::bearer("metrics-token-0123456788"),
        None,
    )
    .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN, "{}", wrong.body);

    scrape(&s, &admin.basic()).await;
    scrape(&s, &Auth::bearer(TOKEN)).await;
}

#[tokio::test]
async fn without_a_token_only_admins_read_metrics() {
    let s = start(&[("metered", METERED)], &[]).await;
    let admin = setup_admin(&s).await;
    let guess = send(&s, Method::GET, "/metrics", &Auth::bearer(TOKEN), None).await;
    assert_eq!(guess.status, StatusCode::FORBIDDEN, "{}", guess.body);
    scrape(&s, &admin.basic()).await;
}

#[tokio::test]
async fn metrics_can_be_turned_off() {
    let s = start(
        &[("metered", METERED)],
        &[("METRICS_ENABLED", "false"), ("METRICS_TOKEN", TOKEN)],
    )
    .await;
    let r = send(&s, Method::GET, "/metrics", &Auth::bearer(TOKEN), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
}

#[tokio::test]
async fn counters_follow_requests_socket_events_and_write_batches() {
    let s = start(&[("metered", METERED)], &[("METRICS_TOKEN", TOKEN)]).await;
    let before = scrape(&s, &Auth::bearer(TOKEN)).await;
    let created = |samples: &[Sample]| {
        value(
            samples,
            "jxp_http_requests_total",
            &[
                ("route", "/api/{model}"),
                ("method", "POST"),
                ("status", "200"),
            ],
        )
    };
    let delivered = |samples: &[Sample]| value(samples, "jxp_ws_events_delivered_total", &[]);
    let batches = |samples: &[Sample]| value(samples, "jxp_store_write_batches_total", &[]);
    let batched = |samples: &[Sample]| value(samples, "jxp_store_write_batch_size_count", &[]);

    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(
            s.create("metered", json!({ "title": format!("t{n}") }))
                .await,
        );
    }
    let (status, _) = s.get(&format!("/api/metered/{}", ids[0])).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s.get("/no/such/route/here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let after = scrape_until(&s, "the model's last seq", |m| {
        value(m, "jxp_model_last_seq", &[("model", "metered")]) >= 3.0
    })
    .await;
    assert!(
        created(&after) >= created(&before) + 3.0,
        "POST /api/{{model}} not counted"
    );
    assert!(
        value(
            &after,
            "jxp_http_request_duration_seconds_count",
            &[("route", "/api/{model}"), ("method", "POST")]
        ) >= 3.0
    );
    assert!(
        value(
            &after,
            "jxp_http_requests_total",
            &[("route", "/api/{model}/{id}"), ("method", "GET")]
        ) >= 1.0
    );
    assert!(
        value(
            &after,
            "jxp_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ) >= 1.0
    );
    assert!(
        batches(&after) >= batches(&before) + 1.0,
        "no write batch counted"
    );
    assert!(
        batched(&after) >= batched(&before) + 1.0,
        "no batch size recorded"
    );
    // The latency histogram of the POSTs: buckets by `le`, cumulative, up to `+Inf`, which
    // is the count. (The counter is counted apart from it, and other tests' requests may fall
    // between the two.)
    let post = [
        ("route", "/api/{model}"),
        ("method", "POST"),
        ("status", "200"),
    ];
    let buckets: Vec<(f64, f64)> = after
        .iter()
        .filter(|m| m.name == "jxp_http_request_duration_seconds_bucket")
        .filter(|m| {
            post.iter()
                .all(|(k, v)| m.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|m| {
            let le = m.labels["le"].as_str();
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            (bound, m.value)
        })
        .collect();
    assert_eq!(buckets.len(), 15, "{buckets:?}");
    assert!(
        buckets
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
        "{buckets:?}"
    );
    let count = value(&after, "jxp_http_request_duration_seconds_count", &post);
    assert_eq!(buckets[14], (f64::INFINITY, count));
    assert!(value(&after, "jxp_http_request_duration_seconds_sum", &post) > 0.0);
    // Label values are route templates, never the paths clients sent.
    for sample in after.iter().filter(|m| m.name.starts_with("jxp_http_")) {
        let route = &sample.labels["route"];
        assert!(
            !route.contains(&ids[0]) && !route.contains("no/such"),
            "{route}"
        );
    }

    // Events delivered over a socket.
    let admin = setup_admin(&s).await;
    let mut ws = WsClient::connect(&s).await;
    ws.auth_ok(admin.creds()).await;
    ws.subscribe_ok(json!({ "model": "metered" })).await;
    let counted = scrape(&s, &Auth::bearer(TOKEN)).await;
    assert!(value(&counted, "jxp_ws_connections_open", &[]) >= 1.0);
    assert!(value(&counted, "jxp_ws_subscriptions", &[]) >= 1.0);
    s.create("metered", json!({ "title": "seen" })).await;
    ws.event().await;
    let floor = delivered(&counted) + 1.0;
    scrape_until(&s, "the delivered event", |m| delivered(m) >= floor).await;
    drop(ws);
    scrape_until(&s, "the closed socket", |m| {
        value(m, "jxp_ws_closed_total", &[]) >= 1.0
    })
    .await;
}

/// On PostgreSQL, a process learns of another's writes through notifications; how late it
/// reads them is its `jxp_pg_notification_lag_seconds`.
#[tokio::test]
async fn the_notification_lag_is_measured_on_postgresql() {
    if crate::harness::test_postgres().is_none() {
        eprintln!("SKIPPED: needs JXP_TEST_DATABASE_URL (PostgreSQL)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("models")).unwrap();
    std::fs::write(dir.path().join("models/metered.toml"), METERED).unwrap();
    let url = crate::harness::fresh_database_url(dir.path()).await;
    let env = [("METRICS_TOKEN", TOKEN)];
    let writer = crate::harness::spawn_with(dir.path(), &url, "writer", &env).await;
    let reader = crate::harness::spawn_with(dir.path(), &url, "reader", &env).await;
    let client = reqwest::Client::new();
    for n in 0..3 {
        let r = client
            .post(format!("{}/api/metered", writer.base))
            .json(&json!({ "title": format!("t{n}") }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = client
            .get(format!("{}/metrics", reader.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let samples = parse(&text);
        let lagged = value(&samples, "jxp_pg_notification_lag_seconds_count", &[]);
        let seen = value(&samples, "jxp_model_last_seq", &[("model", "metered")]);
        if lagged >= 3.0 && seen >= 3.0 {
            let sum = value(&samples, "jxp_pg_notification_lag_seconds_sum", &[]);
            assert!((0.0..30.0).contains(&sum), "{sum}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the reader never measured the lag:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
