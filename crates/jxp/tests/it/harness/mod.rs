//! What every integration test starts from: a server of its own (`server`), requests to it with
//! or without credentials (`http`), accounts, logins and writes as a user (`accounts`), and
//! real `jxp serve` processes (`process`), and a headless Chromium to drive (`browser`).

mod accounts;
pub mod browser;
mod http;
mod process;
mod server;

use serde_json::Value;

pub use accounts::*;
pub use http::*;
pub use process::*;
pub use server::*;

/// The keys of a JSON object, sorted; fails the test if `doc` is not an object.
#[track_caller]
pub fn keys_of(doc: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = doc
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {doc}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}
