//! A black-box fuzzer over real HTTP and WebSocket connections: thousands of requests built
//! from the API's own words (routes, parameters, operators, bodies good and bad, every way to
//! authenticate) in a seeded, repeatable order, and frames of every shape on sockets. Nothing
//! may answer 500 (SPEC: 500 only for real faults), no socket may go without an answer or a
//! close code, the server answers `/healthz` at the end, and the REST requests leave the
//! serving process's resident memory within a bound. `JXP_FUZZ_REQUESTS` and
//! `JXP_FUZZ_SEED` change how many and which.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::realtime::client::{Frame, WsClient};
use crate::harness::{Account, OPEN_LINK, OPEN_TEST, World, spawn_with};

/// A small, repeatable generator (xorshift64*): the same seed gives the same requests.
struct Rng(u64);

impl Rng {
    /// A generator whose sequence depends on every bit of `seed` (splitmix64 of it).
    fn new(seed: u64) -> Self {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n.max(1) as u64).unwrap_or(0)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

const FIELDS: &[&str] = &[
    "foo",
    "bar",
    "n",
    "flag",
    "when",
    "ref_id",
    "yack",
    "yack.x",
    "shmack",
    "fulltext",
    "address.city",
    "composite_array.afoo",
    "status",
    "_id",
    "_owner_id",
    "createdAt",
    "nope",
    "",
    "a[b",
];

const OPS: &[&str] = &[
    "$eq",
    "$ne",
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$in",
    "$nin",
    "$regex",
    "$exists",
    "$all",
    "$size",
    "$elemMatch",
    "$not",
    "$bogus",
    "",
    "$",
];

/// Keys of filters, updates and pipelines, in groups.
const WORDS: &[&[&str]] = &[
    OPS,
    &[
        "$and", "$or", "$nor", "$set", "$inc", "$push", "$unset", "$rename",
    ],
    &[
        "$match", "$group", "$sort", "$limit", "$project", "$unwind", "$lookup",
    ],
    &[
        "$count",
        "$sum",
        "from",
        "localField",
        "foreignField",
        "as",
        "_id",
    ],
];

const TEXTS: &[&str] = &[
    "",
    "a",
    "draft",
    "0",
    "-1",
    "1e309",
    "NaN",
    "true",
    "null",
    "2024-01-01",
    "not-a-date",
    "0123456789abcdef01234567",
    "zzzzzzzzzzzzzzzzzzzzzzzz",
    "((",
    "[a-",
    ".*",
    "%00",
    "%ff%fe",
    "%25",
    "a%26b%3Dc",
    "\"OR\" NOT( *",
    "é漢字",
    "a,b,c",
    "-foo",
    "foo,-n",
];

fn text(r: &mut Rng) -> String {
    if r.chance(5) {
        return "x".repeat(r.below(5000));
    }
    (*r.pick(TEXTS)).to_owned()
}

fn scalar(r: &mut Rng) -> Value {
    match r.below(8) {
        0 => Value::Null,
        1 => json!(r.chance(50)),
        2 => json!(r.below(2000) as i64 - 500),
        3 => json!(1e308 * 10.0_f64.min(1.0)),
        4 => json!(i64::MIN),
        _ => json!(text(r)),
    }
}

/// A JSON value shaped like a filter, a document, an update or a pipeline, or like nothing.
fn value(r: &mut Rng, depth: usize) -> Value {
    if depth == 0 || r.chance(35) {
        return scalar(r);
    }
    if r.chance(30) {
        return Value::Array((0..r.below(4)).map(|_| value(r, depth - 1)).collect());
    }
    let mut map = serde_json::Map::new();
    for _ in 0..r.below(4) {
        let key = if r.chance(50) {
            (*r.pick(FIELDS)).to_owned()
        } else {
            let words = WORDS[r.below(WORDS.len())];
            (*r.pick(words)).to_owned()
        };
        let v = value(r, depth - 1);
        map.insert(key, v);
    }
    Value::Object(map)
}

fn query_string(r: &mut Rng) -> String {
    let mut pairs = Vec::new();
    for _ in 0..r.below(5) {
        let key = match r.below(10) {
            0 => format!("filter[{}]", r.pick(FIELDS)),
            1 => format!("filter[{}][{}]", r.pick(FIELDS), r.pick(OPS)),
            2 => format!("search[{}]", r.pick(FIELDS)),
            3 => "search".to_owned(),
            4 => "sort".to_owned(),
            5 => (*r.pick(&["limit", "page", "fields", "showDeleted", "count"])).to_owned(),
            6 => format!("populate[{}]", r.pick(FIELDS)),
            7 => (*r.pick(&["populate", "autopopulate", "_permaDelete", "_cascade"])).to_owned(),
            8 => {
                (*r.pick(&["apikey", "_silence", "all", "filter", "filter[", "sort[n]"])).to_owned()
            }
            _ => text(r),
        };
        pairs.push(format!("{key}={}", text(r)));
    }
    if pairs.is_empty() {
        String::new()
    } else {
        format!("?{}", pairs.join("&"))
    }
}

fn path(r: &mut Rng, ids: &[String]) -> String {
    let id = if r.chance(70) && !ids.is_empty() {
        r.pick(ids).clone()
    } else {
        text(r)
    };
    let model = *r.pick(&[
        "test", "link", "user", "token", "apikey", "nope", "Test", "",
    ]);
    match r.below(14) {
        0..=3 => format!("/api/{model}"),
        4..=6 => format!("/api/{model}/{id}"),
        7 => format!("/count/{model}"),
        8 => format!("/query/{model}"),
        9 => format!("/aggregate/{model}"),
        10 => format!("/bulkwrite/{model}"),
        11 => (*r.pick(&[
            "/login",
            "/refresh",
            "/logout",
            "/login/logout",
            "/login/getjwt",
            "/login/recover",
            "/setup",
            "/model",
            "/healthz",
        ]))
        .to_owned(),
        12 => format!("/groups/{id}"),
        _ => format!(
            "/{}",
            r.pick(&[
                "call/test/x",
                "csv/test",
                "cache/stats",
                "..%2f..",
                "api//test",
                "%00"
            ])
        ),
    }
}

/// A method the route takes, mostly.
fn method_for(r: &mut Rng, route: &str) -> Method {
    let parts = route.split('/').filter(|p| !p.is_empty()).count();
    if route.starts_with("/api/") && parts >= 3 {
        r.pick(&[Method::GET, Method::PUT, Method::POST, Method::DELETE])
            .clone()
    } else if route.starts_with("/api/") {
        r.pick(&[Method::GET, Method::POST]).clone()
    } else if [
        "/query",
        "/aggregate",
        "/bulkwrite",
        "/login",
        "/refresh",
        "/setup",
    ]
    .iter()
    .any(|p| route.starts_with(p))
    {
        Method::POST
    } else if route.starts_with("/groups") {
        r.pick(&[Method::GET, Method::PUT, Method::POST, Method::DELETE])
            .clone()
    } else {
        Method::GET
    }
}

fn body(r: &mut Rng) -> (Option<&'static str>, Vec<u8>) {
    match r.below(10) {
        0 => (None, Vec::new()),
        1 => (Some("application/json"), b"{\"foo\": ".to_vec()),
        2 => (
            Some("application/x-www-form-urlencoded"),
            format!("foo={}&n={}", text(r), text(r)).into_bytes(),
        ),
        3 => (Some("text/plain"), text(r).into_bytes()),
        4 => (
            Some("application/json"),
            json!([{"insertOne": {"document": value(r, 3)}}, {"updateOne": {"filter": value(r, 2), "update": value(r, 2)}}])
                .to_string()
                .into_bytes(),
        ),
        _ => (
            Some("application/json"),
            value(r, 4).to_string().into_bytes(),
        ),
    }
}

fn auth(r: &mut Rng, w: &World, token: &str) -> Option<(String, String)> {
    let pick = |a: &Account| a.authorization();
    match r.below(10) {
        0 => None,
        1 | 8 | 9 => Some(("authorization".into(), pick(&w.admin))),
        2 => Some(("authorization".into(), pick(&w.alice))),
        3 => Some(("authorization".into(), format!("Bearer {token}"))),
        4 => Some(("authorization".into(), "Bearer nonsense".into())),
        5 => Some(("authorization".into(), "Basic %%%".into())),
        6 => Some(("x-api-key".into(), text(r))),
        _ => Some(("authorization".into(), text(r))),
    }
}

fn seed() -> u64 {
    std::env::var("JXP_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x6a78_7066_757a_7a21)
}

/// The resident and peak resident memory of process `pid`, in bytes (`VmRSS`, `VmHWM`).
fn memory_of(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

const MB: u64 = 1024 * 1024;

/// How much a `jxp serve` process may grow over the fuzzed requests: each asks for little,
/// so growth beyond this is memory kept after requests end.
const GROWTH_LIMIT: u64 = 256 * MB;

#[tokio::test]
async fn thousands_of_generated_requests_get_no_500_and_the_server_stays_up() {
    let body_limit = [("BODY_LIMIT", "64kb")];
    let mut w = World::start(
        &[("test", OPEN_TEST), ("link", OPEN_LINK)],
        &body_limit,
        ["Alice", "Bob"],
    )
    .await;
    // The requests go to a `jxp serve` process of their own on the same database, whose
    // memory is its own: this test process's is shared with every test running beside it.
    w.s.stop().await;
    let server = spawn_with(w.s.dir.path(), &w.s.database_url, "fuzz", &body_limit).await;
    let base = server.base.clone();
    let count: usize = std::env::var("JXP_FUZZ_REQUESTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let seed = seed();
    let mut r = Rng::new(seed);
    let login =
        w.s.client
            .post(format!("{base}/login"))
            .json(&w.alice.creds())
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
    let token = login["token"].as_str().unwrap_or_default().to_owned();
    let mut ids = Vec::new();
    for i in 0..5 {
        let resp =
            w.s.client
                .post(format!("{base}/api/test"))
                .header("authorization", w.admin.authorization())
                .json(&json!({"foo": format!("seed {i}"), "n": i, "fulltext": "kubla khan"}))
                .send()
                .await
                .unwrap();
        let doc: Value = resp.json().await.unwrap();
        if let Some(id) = doc["data"]["_id"].as_str() {
            ids.push(id.to_owned());
        }
    }
    let methods = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
    ];
    let mut statuses = std::collections::BTreeMap::new();
    let (before, _) = memory_of(server.child.id());
    assert!(before > 0, "the server's memory is readable in /proc");
    for i in 0..count {
        let route = path(&mut r, &ids);
        let method = if r.chance(15) {
            r.pick(&methods).clone()
        } else {
            method_for(&mut r, &route)
        };
        let url = format!("{base}{route}{}", query_string(&mut r));
        let mut req = w.s.client.request(method.clone(), &url);
        if let Some((name, value)) = auth(&mut r, &w, &token) {
            req = req.header(name, value);
        }
        if method != Method::GET || r.chance(10) {
            let (kind, bytes) = body(&mut r);
            if let Some(kind) = kind {
                req = req.header("content-type", kind);
            }
            req = req.body(bytes);
        }
        let resp = match req.send().await {
            Ok(resp) => resp,
            // reqwest refuses some generated URLs and headers before sending: not the server's.
            Err(e) if e.is_builder() => continue,
            Err(e) => panic!("request {i} (seed {seed}) {method} {url}: {e}"),
        };
        let status = resp.status();
        *statuses.entry(status.as_u16()).or_insert(0usize) += 1;
        let text = resp.text().await.unwrap_or_default();
        assert!(
            !status.is_server_error() || status == StatusCode::SERVICE_UNAVAILABLE,
            "request {i} (seed {seed}): {method} {url} answered {status}: {text}"
        );
    }
    let (after, peak) = memory_of(server.child.id());
    eprintln!(
        "fuzzed {count} requests (seed {seed}): statuses {statuses:?}; server RSS {} MB before, \
         {} MB after, peak {} MB",
        before / MB,
        after / MB,
        peak / MB
    );
    assert!(
        after.saturating_sub(before) < GROWTH_LIMIT,
        "the server's RSS grew from {} MB to {} MB over {count} requests",
        before / MB,
        after / MB
    );
    let resp =
        w.s.client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn every_generated_socket_message_is_answered_or_closed_with_a_code() {
    let w = World::start(
        &[("test", OPEN_TEST), ("link", OPEN_LINK)],
        &[],
        ["Alice", "Bob"],
    )
    .await;
    let seed = seed();
    let mut r = Rng::new(seed ^ 0x5757);
    for round in 0..20 {
        let mut c = WsClient::connect(&w.s).await;
        if r.chance(50) {
            c.auth_ok(w.alice.creds()).await;
        }
        for i in 0..15 {
            let frame = match r.below(6) {
                0 => text(&mut r),
                1 => json!({"type": r.pick(&["subscribe", "unsubscribe", "auth", "ping", "bogus"]),
                            "model": r.pick(&["test", "link", "user", "nope"]),
                            "filter": value(&mut r, 3), "since": scalar(&mut r), "id": scalar(&mut r),
                            "msg_id": scalar(&mut r)})
                .to_string(),
                _ => value(&mut r, 4).to_string(),
            };
            if c.try_send_text(frame.clone()).await.is_err() {
                break;
            }
            // Every message gets a reply frame, or the socket ends with a close code.
            match c.next_frame(Duration::from_secs(5)).await {
                Some(Frame::Json(_)) => {}
                Some(Frame::Close(code)) => {
                    assert!(
                        code.is_some_and(|c| c != 1011),
                        "round {round} message {i}: {frame} closed with {code:?}"
                    );
                    break;
                }
                other => panic!(
                    "round {round} message {i} (seed {seed}): {frame} got no answer: {other:?}"
                ),
            }
        }
    }
    let (status, _) = w.s.get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
}
