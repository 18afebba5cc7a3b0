//! The pool of script runtimes answers every call however the calls arrive: many at once (more
//! than it has threads, so calls queue and threads that answered one watch for the next), and
//! one at a time, each after the threads have gone to sleep.

use std::time::Duration;

use futures_util::future::join_all;
use reqwest::StatusCode;

use super::support::World;
use crate::harness;

/// Far longer than the whole test takes; a call left waiting (a lost wake-up) fails it here
/// instead of hanging the run.
const PATIENCE: Duration = Duration::from_secs(120);

#[tokio::test]
async fn every_call_is_answered_in_bursts_and_one_by_one() {
    tokio::time::timeout(PATIENCE, bursts_and_pauses())
        .await
        .expect("a script call was never answered");
}

async fn bursts_and_pauses() {
    let w = World::start(&[]).await;
    w.widget(serde_json::json!({"name": "one"})).await;
    let auth = w.user_auth();
    for burst in 0..4 {
        // Function calls and reads through `pre_get`, all at once.
        let calls = (0..48).map(|i| {
            let path = if i % 2 == 0 {
                format!("/call/widget/stats?n={i}")
            } else {
                "/api/widget".to_owned()
            };
            let (s, auth) = (&w.s, &auth);
            async move { (i, harness::get(s, &path, auth).await) }
        });
        for (i, (status, body)) in join_all(calls).await {
            assert_eq!(status, StatusCode::OK, "burst {burst}, call {i}: {body}");
            if i % 2 == 0 {
                assert_eq!(body["data"]["params"]["n"], i.to_string(), "{body}");
            } else {
                assert_eq!(body["data"][0]["name"], "one", "{body}");
            }
        }
        // One at a time, each after a pause in which every thread stops watching and sleeps.
        for i in 0..3 {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let got = harness::get(&w.s, &format!("/call/widget/stats?n={i}"), &auth).await;
            assert_eq!(got.0, StatusCode::OK, "{}", got.1);
        }
    }
}
