//! One runtime on its own, without an app: the limits, promises and the sandbox.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use crate::engine::{Caps, Engine, Failure, Source, Target};

fn engine(text: &str, caps: Caps) -> Engine {
    let source = Source {
        key: "m".into(),
        file: PathBuf::from("models/m.js"),
        text: text.into(),
    };
    match Engine::new(&[source], caps) {
        Ok(e) => e,
        Err((_, f)) => panic!("did not load: {}", f.message),
    }
}

fn caps() -> Caps {
    Caps {
        timeout: Duration::from_millis(300),
        memory_bytes: 16 << 20,
    }
}

fn export(name: &str) -> Target {
    Target::Export {
        key: "m".into(),
        name: name.into(),
    }
}

#[test]
fn async_exports_are_awaited_and_answer_json() {
    let mut e = engine(
        "export async function pre_post(ctx) { const n = await Promise.resolve(ctx.n); return { twice: n * 2, at: new Date(0) }; }",
        caps(),
    );
    let out = e.call(&export("pre_post"), &json!({"n": 21})).unwrap();
    assert_eq!(out, json!({"twice": 42, "at": "1970-01-01T00:00:00.000Z"}));
}

#[test]
fn a_spinning_call_is_interrupted_and_the_runtime_is_not_reused() {
    let mut e = engine("export function pre_get() { for (;;) {} }", caps());
    assert!(matches!(
        e.call(&export("pre_get"), &json!({})),
        Err(Failure::TimedOut)
    ));
    assert!(e.spoiled);
}

#[test]
fn a_runtime_cannot_take_more_than_its_memory() {
    let mut e = engine(
        "export function pre_get() { const a = []; for (;;) a.push(new Array(100000).fill(1)); }",
        Caps {
            timeout: Duration::from_secs(10),
            memory_bytes: 8 << 20,
        },
    );
    match e.call(&export("pre_get"), &json!({})) {
        Err(Failure::Failed(detail)) => assert!(detail.contains("out of memory"), "{detail}"),
        other => panic!("expected out of memory, got {other:?}"),
    }
}

#[test]
fn jxp_error_carries_its_status_and_other_errors_their_detail() {
    let mut e = engine(
        "export function pre_post() { throw new JxpError(418, 'teapot'); }\nexport function pre_put() { null.x; }",
        caps(),
    );
    match e.call(&export("pre_post"), &json!({})) {
        Err(Failure::Refused {
            status, message, ..
        }) => assert_eq!((status, message.as_str()), (418, "teapot")),
        other => panic!("{other:?}"),
    }
    match e.call(&export("pre_put"), &json!({})) {
        Err(Failure::Failed(detail)) => assert!(detail.contains("TypeError"), "{detail}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_idle_runtime_is_small() {
    let e = engine("export function pre_get() { return null; }", caps());
    let used = e.memory_used();
    assert!(used < 2 << 20, "an idle runtime holds {used} bytes");
}
