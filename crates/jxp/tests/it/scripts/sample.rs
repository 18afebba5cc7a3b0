//! The example script `jxp init` writes (`models/test.js`) runs on the sample models as its
//! comments say.

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{self, Auth, TestServer};

const SAMPLE_TEST: &str = include_str!("../../../../../models/test.toml");
const SAMPLE_LINK: &str = include_str!("../../../../../models/link.toml");
const SAMPLE_SCRIPT: &str = include_str!("../../../../../models/test.js");

#[tokio::test]
async fn the_sample_script_trims_refuses_and_serves_its_function() {
    let s = TestServer::start_scripted(
        &[("test", SAMPLE_TEST), ("link", SAMPLE_LINK)],
        &[("test.js", SAMPLE_SCRIPT)],
        &[],
    )
    .await;
    let admin = harness::setup_admin(&s).await;
    let auth = admin.basic();
    let got = harness::post(&s, "/api/test", &auth, json!({"foo": "  padded  ", "n": 3})).await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    assert_eq!(got.1["data"]["foo"], "padded", "{}", got.1);
    harness::post(&s, "/api/test", &auth, json!({"foo": "small", "n": 1})).await;

    let got = harness::post(&s, "/api/test", &auth, json!({"foo": " forbidden "})).await;
    harness::assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "may not be 'forbidden'",
    );

    let got = harness::get(&s, "/call/test/summary?min=2", &auth).await;
    assert_eq!(
        got,
        (StatusCode::OK, json!({"data": {"total": 2, "at_least": 1}}))
    );
    // Anonymous callers may read `test`, so they may call it with GET too.
    let got = harness::get(&s, "/call/test/summary", &Auth::None).await;
    assert_eq!(got.1["data"]["total"], 2, "{}", got.1);
}
