//! The `query` scenarios: reads over a seeded model (`models/benchq.toml`, 100,000 documents
//! unless `--docs` says otherwise, linked to `bencha` and `benchb`), each measured for latency
//! and throughput, with the database's plan of the query (jxp's admin-only `?explain=1`). The
//! same filtered, sorted list runs against PocketBase as the yardstick (`--proto pocketbase`).
//!
//! Seeding is part of the run and is skipped when the collection already holds `--docs`
//! documents: jxp through `/bulkwrite` (1,000 inserts a request), PocketBase through its batch
//! API (500 records a request). For a million documents, `--ndjson FILE` writes them for
//! `jxp import` instead (the linked models still go through the API, since the documents name
//! their ids) and exits.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use reqwest::header::{AUTHORIZATION, HeaderMap};
use reqwest::{Client, Url};
use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::cli::{QueryArgs, QueryProto};
use crate::client::{self, snippet};
use crate::prng::XorShift64;
use crate::report::{pct_ms, round};
use crate::target::Target;
use crate::worker::{self, Plan, Req, Stats, Window};

const MODEL: &str = "benchq";
/// Documents of each linked model.
const LINKED: usize = 1_000;
/// Distinct `cat` values: each matches about 1/50 of the documents.
const CATS: u64 = 50;
/// Insert operations per `/bulkwrite` request while seeding.
const BATCH: usize = 1_000;
/// Prepared variants of each scenario's request.
const VARIANTS: usize = 256;
const SYLLABLES: [&str; 10] = ["ka", "lo", "mi", "ne", "ru", "ta", "vo", "zi", "pe", "du"];

/// Word `i` of a 1,000-word vocabulary (`kalomi`, …), for titles and full-text queries.
fn word(i: u64) -> String {
    let s = |k: u64| SYLLABLES[(k % 10) as usize];
    format!("{}{}{}", s(i), s(i / 10), s(i / 100))
}

/// Document `i` of the model: the same for every run, whatever the target.
fn document(i: u64, a: &[String], b: &[String]) -> Value {
    let mut rng = XorShift64::new(0x5EED ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let words = 3 + rng.below(4);
    let title: Vec<String> = (0..words).map(|_| word(rng.below(1000) as u64)).collect();
    let mut doc = json!({
        "title": title.join(" "),
        "cat": format!("c{}", rng.below(CATS as usize)),
        "n": rng.below(1_000_000),
        "m": rng.below(1_000_000),
    });
    if !a.is_empty() && !b.is_empty() {
        doc["a_id"] = json!(a[rng.below(a.len())]);
        doc["b_id"] = json!(b[rng.below(b.len())]);
    }
    doc
}

/// One measured scenario.
struct Scenario {
    name: &'static str,
    what: &'static str,
    reqs: Vec<Req>,
    /// The URL whose `?explain=1` answer is reported as the plan.
    explain: Option<String>,
    /// Concurrency override (the whole-collection aggregation runs one at a time).
    concurrency: Option<u32>,
    /// Whether the `explain` URL runs the very query measured (a list or count, not an
    /// aggregation), so `--db-time` can set the database's time beside it.
    same_query: bool,
}

pub async fn run(args: QueryArgs) -> Result<()> {
    let target = Target::parse(&args.common.base)?;
    if let Some(file) = &args.ndjson {
        let headers = client::connect(&target, &args.common).await?.headers;
        return write_ndjson(&target, &headers, args.docs, file).await;
    }
    let (headers, scenarios) = match args.proto {
        QueryProto::Jxp => {
            let headers = client::connect(&target, &args.common).await?.headers;
            let scenarios = jxp_setup(&target, &headers, args.docs, args.seed_concurrency).await?;
            (headers, scenarios)
        }
        QueryProto::Pocketbase => {
            let anonymous = client::build(&HeaderMap::new())?;
            let headers = pb_auth(&anonymous, &target, &args).await?;
            let scenarios = pb_setup(&target, &headers, args.docs).await?;
            (headers, scenarios)
        }
    };
    let only: Vec<&str> = args.only.iter().map(String::as_str).collect();
    let explainer = client::build(&headers)?;
    for s in scenarios {
        if !only.is_empty() && !only.contains(&s.name) {
            continue;
        }
        let plan = match &s.explain {
            Some(url) => Some(explain(&explainer, url).await?),
            None => None,
        };
        let db_ms = match (&s.explain, args.db_time && s.same_query) {
            (Some(url), true) => Some(database_ms(&explainer, url).await?),
            _ => None,
        };
        let concurrency = s.concurrency.unwrap_or(args.concurrency);
        let stats = measure(
            &headers,
            s.reqs,
            concurrency,
            args.duration_s,
            args.warmup_s,
        )
        .await?;
        let h = &stats.hist;
        let line = json!({
            "scenario": "query",
            "proto": args.proto.as_str(),
            "name": s.name,
            "what": s.what,
            "docs": args.docs,
            "concurrency": concurrency,
            "duration_s": args.duration_s,
            "requests": stats.ok,
            "errors": stats.errors(),
            "first_error": stats.first_error,
            "rps": round(stats.ok as f64 / args.duration_s.max(1) as f64, 1),
            "p50_ms": pct_ms(h, 50.0),
            "p99_ms": pct_ms(h, 99.0),
            "max_ms": h.max_us().map(|us| us as f64 / 1000.0),
            "db_ms": db_ms.map(|ms| round(ms, 3)),
            "overhead_pct": overhead_pct(pct_ms(h, 50.0), db_ms),
            "plan": plan,
        });
        println!("{line}");
        eprintln!(
            "{:>15}  {:>8.1} req/s  p50 {:>8} ms  p99 {:>8} ms  errors {}  ({})",
            s.name,
            stats.ok as f64 / args.duration_s.max(1) as f64,
            fmt_ms(pct_ms(h, 50.0)),
            fmt_ms(pct_ms(h, 99.0)),
            stats.errors(),
            s.what
        );
        if let Some(db) = db_ms {
            eprintln!(
                "{:>17}database {db:.2} ms of p50 {} ms: {}% outside the database",
                "",
                fmt_ms(pct_ms(h, 50.0)),
                line["overhead_pct"]
            );
        }
        if let Some(plan) = line["plan"].as_array() {
            for step in plan {
                eprintln!("{:>17}{}", "", step.as_str().unwrap_or_default());
            }
        }
        if stats.ok == 0 {
            bail!(
                "{}: no successful request (first error: {})",
                s.name,
                stats.first_error.as_deref().unwrap_or("none")
            );
        }
    }
    Ok(())
}

/// How many runs of `explain=analyze` the database time is the median of.
const DB_RUNS: usize = 5;

/// The median time, over [`DB_RUNS`] runs, the database reports for the query of `url`
/// (jxp's `explain=analyze`).
async fn database_ms(client: &Client, url: &str) -> Result<f64> {
    let mut runs = Vec::with_capacity(DB_RUNS);
    for _ in 0..DB_RUNS {
        let v = get_json(client, &format!("{url}&explain=analyze")).await?;
        let ms = v
            .pointer("/data/databaseMs")
            .and_then(Value::as_f64)
            .ok_or_else(|| {
                anyhow!(
                    "{url}&explain=analyze: no databaseMs in {}",
                    snippet(&v.to_string())
                )
            })?;
        runs.push(ms);
    }
    runs.sort_by(f64::total_cmp);
    Ok(runs[DB_RUNS / 2])
}

/// The share of the p50 latency spent outside the database, in percent.
fn overhead_pct(p50_ms: Option<f64>, db_ms: Option<f64>) -> Option<f64> {
    let (p50, db) = (p50_ms?, db_ms?);
    (p50 > 0.0).then(|| round(((p50 - db) / p50 * 100.0).max(0.0), 1))
}

fn fmt_ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |ms| format!("{ms:.2}"))
}

async fn measure(
    headers: &HeaderMap,
    reqs: Vec<Req>,
    concurrency: u32,
    duration_s: u64,
    warmup_s: u64,
) -> Result<Stats> {
    let plan = Arc::new(Plan::Requests { reqs });
    let clients = (0..concurrency)
        .map(|_| client::build(headers))
        .collect::<Result<Vec<Client>>>()?;
    let start = Instant::now();
    let window = Window {
        record_from: start + Duration::from_secs(warmup_s),
        end: start + Duration::from_secs(warmup_s + duration_s),
    };
    let mut tasks = JoinSet::new();
    for (id, client) in (0u32..).zip(clients) {
        let seed = 0xC0FFEE ^ u64::from(id).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        tasks.spawn(worker::run(id, client, Arc::clone(&plan), window, seed));
    }
    let mut total = Stats::default();
    while let Some(done) = tasks.join_next().await {
        total.merge(done.context("a load worker failed")?);
    }
    Ok(total)
}

/// Waits for the seeding tasks; reports how long `n` documents took.
async fn finish_seeding(mut tasks: JoinSet<Result<()>>, n: u64, started: Instant) -> Result<()> {
    while let Some(done) = tasks.join_next().await {
        done.context("a seeding task failed")??;
    }
    eprintln!(
        "seeded {n} documents in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn get_json(client: &Client, url: &str) -> Result<Value> {
    client::json_answer(client.get(url), &format!("GET {url}")).await
}

async fn post_json(client: &Client, url: &str, body: &Value) -> Result<Value> {
    client::json_answer(client.post(url).json(body), &format!("POST {url}")).await
}

async fn explain(client: &Client, url: &str) -> Result<Vec<String>> {
    let v = get_json(client, &format!("{url}&explain=1")).await?;
    Ok(v.pointer("/data/plan")
        .and_then(Value::as_array)
        .map(|p| {
            p.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default())
}

fn get(url: String) -> Req {
    Req {
        url,
        body: None,
        header: None,
    }
}

/// Seeds jxp's `benchq`, `bencha` and `benchb` as needed; answers the scenarios.
async fn jxp_setup(
    target: &Target,
    headers: &HeaderMap,
    docs: u64,
    seed_concurrency: u32,
) -> Result<Vec<Scenario>> {
    let client = client::build_pooled(headers, seed_concurrency.max(8) as usize)?;
    let (a, b, have) = jxp_seeded(&client, target).await?;
    if have < docs {
        let started = Instant::now();
        let (a, b) = (Arc::new(a.clone()), Arc::new(b.clone()));
        let mut tasks: JoinSet<Result<()>> = JoinSet::new();
        let batches: Vec<(u64, u64)> = (have..docs)
            .step_by(BATCH)
            .map(|from| (from, (from + BATCH as u64).min(docs)))
            .collect();
        let url = target.url(&format!("/bulkwrite/{MODEL}"));
        let senders = seed_concurrency as usize;
        for chunk in batches.chunks(batches.len().div_ceil(senders).max(1)) {
            let (client, url, chunk, a, b) = (
                client.clone(),
                url.clone(),
                chunk.to_vec(),
                a.clone(),
                b.clone(),
            );
            tasks.spawn(async move {
                for (from, to) in chunk {
                    let ops: Vec<Value> = (from..to)
                        .map(|i| json!({"insertOne": {"document": document(i, &a, &b)}}))
                        .collect();
                    // Unordered, so that the server sends a request's inserts to the store
                    // together.
                    let body = json!({"query": ops, "ordered": false});
                    let res = post_json(&client, &url, &body).await?;
                    if res.pointer("/data/ok") != Some(&json!(1)) {
                        bail!("seeding failed: {}", snippet(&res.to_string()));
                    }
                }
                Ok(())
            });
        }
        finish_seeding(tasks, docs - have, started).await?;
    }
    let mut rng = XorShift64::new(42);
    let list = target.collection(MODEL);
    let variants = |f: &mut dyn FnMut(&mut XorShift64) -> Req, rng: &mut XorShift64| {
        (0..VARIANTS).map(|_| f(rng)).collect::<Vec<Req>>()
    };
    let cat = |rng: &mut XorShift64| format!("c{}", rng.below(CATS as usize));
    let some_ids: Vec<String> = a.iter().take(100).cloned().collect();
    Ok(vec![
        Scenario {
            name: "list-indexed",
            what: "filter[cat]=cN&sort=-n&limit=20 (cat and n indexed)",
            reqs: variants(
                &mut |r| get(format!("{list}?filter[cat]={}&sort=-n&limit=20", cat(r))),
                &mut rng,
            ),
            explain: Some(format!("{list}?filter[cat]=c7&sort=-n&limit=20")),
            concurrency: None,
            same_query: true,
        },
        Scenario {
            name: "list-unindexed",
            what: "filter[m]=$gte:X&sort=m&limit=20 (m not indexed, ~1% match)",
            reqs: variants(
                &mut |r| {
                    get(format!(
                        "{list}?filter[m]=$gte:{}&sort=m&limit=20",
                        990_000 + r.below(9_000)
                    ))
                },
                &mut rng,
            ),
            explain: Some(format!("{list}?filter[m]=$gte:995000&sort=m&limit=20")),
            concurrency: None,
            same_query: true,
        },
        Scenario {
            name: "search",
            what: "search=<word>&limit=20 (full text, ranked)",
            reqs: variants(
                &mut |r| {
                    get(format!(
                        "{list}?search={}&limit=20",
                        word(r.below(1000) as u64)
                    ))
                },
                &mut rng,
            ),
            explain: Some(format!("{list}?search={}&limit=20", word(17))),
            concurrency: None,
            same_query: true,
        },
        Scenario {
            name: "count",
            what: "/count filter[cat]=cN (~2% of the documents)",
            reqs: variants(
                &mut |r| get(target.url(&format!("/count/{MODEL}?filter[cat]={}", cat(r)))),
                &mut rng,
            ),
            explain: Some(target.url(&format!("/count/{MODEL}?filter[cat]=c7"))),
            concurrency: None,
            same_query: true,
        },
        Scenario {
            name: "populate",
            what: "100-document page populating two links (one query per link)",
            reqs: variants(
                &mut |r| {
                    get(format!(
                        "{list}?filter[cat]={}&sort=-n&limit=100&populate=bencha&populate=benchb",
                        cat(r)
                    ))
                },
                &mut rng,
            ),
            explain: Some(format!(
                "{}?filter[_id]=$in:{}",
                target.collection("bencha"),
                some_ids.join(",")
            )),
            concurrency: None,
            same_query: false,
        },
        Scenario {
            name: "group",
            what: "$match cat (pushed into SQL) + $group by a_id with $sum/$avg",
            reqs: variants(
                &mut |r| {
                    Req {
                    url: target.url(&format!("/aggregate/{MODEL}")),
                    body: Some(
                        json!([
                            {"$match": {"cat": cat(r)}},
                            {"$group": {"_id": "$a_id", "total": {"$sum": "$n"}, "avg": {"$avg": "$m"}}}
                        ])
                        .to_string(),
                    ),
                    header: None,
                }
                },
                &mut rng,
            ),
            explain: Some(format!("{list}?filter[cat]=c7")),
            concurrency: None,
            same_query: false,
        },
        Scenario {
            name: "group-all",
            what: "$group of every document by cat (the whole collection into the pipeline)",
            reqs: vec![Req {
                url: target.url(&format!("/aggregate/{MODEL}")),
                body: Some(
                    json!([{"$group": {"_id": "$cat", "total": {"$sum": "$n"}}}]).to_string(),
                ),
                header: None,
            }],
            explain: Some(format!("{list}?limit=100000")),
            concurrency: Some(1),
            same_query: false,
        },
    ])
}

/// Seeds the linked models through the API and writes the benchq documents the server lacks
/// to `file`, one JSON document per line, for `jxp import`.
async fn write_ndjson(
    target: &Target,
    headers: &HeaderMap,
    docs: u64,
    file: &std::path::Path,
) -> Result<()> {
    use std::io::Write;
    let client = client::build_pooled(headers, 8)?;
    let (a, b, have) = jxp_seeded(&client, target).await?;
    let out =
        std::fs::File::create(file).with_context(|| format!("cannot create {}", file.display()))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, out);
    for i in have..docs {
        serde_json::to_writer(&mut out, &document(i, &a, &b))?;
        out.write_all(b"\n")?;
    }
    out.flush()
        .with_context(|| format!("cannot write {}", file.display()))?;
    let wrote = docs.saturating_sub(have);
    println!(
        "wrote {wrote} {MODEL} documents to {} ({have} already served); next: \
         jxp import Benchq {} (on SQLite with the server stopped)",
        file.display(),
        file.display()
    );
    Ok(())
}

/// The ids of both linked models' documents (seeded first as needed) and how many benchq
/// documents the server already holds.
async fn jxp_seeded(client: &Client, target: &Target) -> Result<(Vec<String>, Vec<String>, u64)> {
    let a = jxp_linked(client, target, "bencha").await?;
    let b = jxp_linked(client, target, "benchb").await?;
    let count_url = target.url(&format!("/count/{MODEL}"));
    let have = get_json(client, &count_url).await?["count"]
        .as_u64()
        .ok_or_else(|| {
            anyhow!("GET {count_url}: no count (is MODEL_DIR crates/jxp-bench/models?)")
        })?;
    Ok((a, b, have))
}

/// The ids of a linked model's documents, created first if there are fewer than [`LINKED`].
async fn jxp_linked(client: &Client, target: &Target, model: &str) -> Result<Vec<String>> {
    let url = format!("{}?fields=_id&limit={LINKED}", target.collection(model));
    let mut ids = ids_of(&get_json(client, &url).await?);
    if ids.len() < LINKED {
        let ops: Vec<Value> = (ids.len()..LINKED)
            .map(
                |i| json!({"insertOne": {"document": {"name": format!("{model} {i}"), "rank": i}}}),
            )
            .collect();
        post_json(
            client,
            &target.url(&format!("/bulkwrite/{model}")),
            &Value::Array(ops),
        )
        .await?;
        ids = ids_of(&get_json(client, &url).await?);
    }
    Ok(ids)
}

fn ids_of(v: &Value) -> Vec<String> {
    v["data"]
        .as_array()
        .map(|d| {
            d.iter()
                .filter_map(|x| x["_id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A PocketBase superuser token, sent as `Authorization` on setup and reads.
async fn pb_auth(client: &Client, target: &Target, args: &QueryArgs) -> Result<HeaderMap> {
    let (Some(email), Some(password)) = (&args.common.email, &args.common.password) else {
        bail!("--proto pocketbase needs --email/--password of a PocketBase superuser");
    };
    let url = target.url("/api/collections/_superusers/auth-with-password");
    let v = post_json(
        client,
        &url,
        &json!({"identity": email, "password": password}),
    )
    .await?;
    let token = v["token"]
        .as_str()
        .ok_or_else(|| anyhow!("no token from {url}"))?;
    let mut headers = HeaderMap::new();
    headers.insert(
        AUTHORIZATION,
        client::secret_header(token, "the token is not a header value")?,
    );
    Ok(headers)
}

fn pb_url(target: &Target, query: &[(&str, String)]) -> Result<String> {
    let base = target.url(&format!("/api/collections/{MODEL}/records"));
    Ok(Url::parse_with_params(&base, query)?.to_string())
}

/// Records per PocketBase batch request while seeding.
const PB_BATCH: u64 = 500;

/// Seeds PocketBase's `benchq` from document `have` to `docs` through its batch API (each
/// batch one transaction), which the seeding first switches on: one POST per record took
/// minutes for a million.
async fn pb_seed(client: &Client, target: &Target, have: u64, docs: u64) -> Result<()> {
    let settings = target.url("/api/settings");
    client::json_answer(
        client.patch(&settings).json(&json!({"batch": {
            "enabled": true,
            "maxRequests": PB_BATCH,
            "timeout": 60,
            "maxBodySize": 64 << 20
        }})),
        &format!("PATCH {settings}"),
    )
    .await?;
    let started = Instant::now();
    let batch_url = target.url("/api/batch");
    let record_url = format!("/api/collections/{MODEL}/records");
    let batches: Vec<u64> = (have..docs).step_by(PB_BATCH as usize).collect();
    let senders = 4usize;
    let mut tasks: JoinSet<Result<()>> = JoinSet::new();
    for chunk in batches.chunks(batches.len().div_ceil(senders).max(1)) {
        let (client, batch_url, record_url, chunk) = (
            client.clone(),
            batch_url.clone(),
            record_url.clone(),
            chunk.to_vec(),
        );
        tasks.spawn(async move {
            for from in chunk {
                let (a, b) = (pb_links('a'), pb_links('b'));
                let requests: Vec<Value> = (from..(from + PB_BATCH).min(docs))
                    .map(|i| json!({"method": "POST", "url": record_url, "body": document(i, &a, &b)}))
                    .collect();
                client::json_answer(
                    client.post(&batch_url).json(&json!({ "requests": requests })),
                    &format!("POST {batch_url}"),
                )
                .await?;
            }
            Ok(())
        });
    }
    finish_seeding(tasks, docs - have, started).await
}

/// Ids for PocketBase's link fields: jxp's documents name their linked documents by 24-digit
/// hex ids, so PocketBase's hold ids of that shape too (in text fields: PocketBase's own
/// relation fields hold its 15-character ids, which would make its rows shorter).
fn pb_links(model: char) -> Vec<String> {
    (0..LINKED)
        .map(|i| format!("{:08x}{:016x}", u32::from(model), i))
        .collect()
}

/// Creates and seeds PocketBase's `benchq` (indexed `cat` and `n`) as needed, with the fields
/// jxp's documents have: the same values, the links, and the creation and update times jxp
/// stores. A `benchq` of an earlier run without the links is deleted and made again.
async fn pb_setup(target: &Target, headers: &HeaderMap, docs: u64) -> Result<Vec<Scenario>> {
    let client = client::build_pooled(headers, 16)?;
    let coll = target.url(&format!("/api/collections/{MODEL}"));
    let existing = client.get(&coll).send().await?;
    let mut missing = existing.status() == reqwest::StatusCode::NOT_FOUND;
    if !missing {
        let body: Value = existing.json().await?;
        let has_links = body["fields"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f["name"] == "a_id"));
        if !has_links {
            let what = format!("DELETE {coll}");
            let (status, body) = client::send(client.delete(&coll), &what).await?;
            if !status.is_success() {
                bail!("{what} answered {status}: {}", snippet(&body));
            }
            missing = true;
        }
    }
    if missing {
        post_json(
            &client,
            &target.url("/api/collections"),
            &json!({
                "name": MODEL, "type": "base",
                "fields": [
                    {"name": "title", "type": "text"}, {"name": "cat", "type": "text"},
                    {"name": "n", "type": "number"}, {"name": "m", "type": "number"},
                    {"name": "a_id", "type": "text"}, {"name": "b_id", "type": "text"},
                    {"name": "created", "type": "autodate", "onCreate": true},
                    {"name": "updated", "type": "autodate", "onCreate": true, "onUpdate": true}
                ],
                "indexes": [
                    format!("CREATE INDEX idx_{MODEL}_cat ON {MODEL} (cat)"),
                    format!("CREATE INDEX idx_{MODEL}_n ON {MODEL} (n)")
                ],
                "listRule": "", "viewRule": ""
            }),
        )
        .await?;
    }
    let have = get_json(&client, &pb_url(target, &[("perPage", "1".into())])?).await?["totalItems"]
        .as_u64()
        .unwrap_or(0);
    if have < docs {
        pb_seed(&client, target, have, docs).await?;
    }
    let mut rng = XorShift64::new(42);
    let mut list_indexed = Vec::new();
    let mut list_unindexed = Vec::new();
    let mut count = Vec::new();
    for _ in 0..VARIANTS {
        let cat = format!("c{}", rng.below(CATS as usize));
        list_indexed.push(get(pb_url(
            target,
            &[
                ("filter", format!("cat='{cat}'")),
                ("sort", "-n".into()),
                ("perPage", "20".into()),
                ("skipTotal", "1".into()),
            ],
        )?));
        list_unindexed.push(get(pb_url(
            target,
            &[
                ("filter", format!("m>={}", 990_000 + rng.below(9_000))),
                ("sort", "m".into()),
                ("perPage", "20".into()),
                ("skipTotal", "1".into()),
            ],
        )?));
        count.push(get(pb_url(
            target,
            &[("filter", format!("cat='{cat}'")), ("perPage", "1".into())],
        )?));
    }
    Ok(vec![
        Scenario {
            name: "list-indexed",
            what: "filter=cat='cN'&sort=-n&perPage=20&skipTotal=1 (cat and n indexed)",
            reqs: list_indexed,
            explain: None,
            concurrency: None,
            same_query: true,
        },
        Scenario {
            name: "list-unindexed",
            what: "filter=m>=X&sort=m&perPage=20&skipTotal=1 (m not indexed)",
            reqs: list_unindexed,
            explain: None,
            concurrency: None,
            same_query: true,
        },
        Scenario {
            name: "count",
            what: "filter=cat='cN'&perPage=1 (totalItems)",
            reqs: count,
            explain: None,
            concurrency: None,
            same_query: true,
        },
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_overhead_is_the_share_of_the_latency_outside_the_database() {
        assert_eq!(overhead_pct(Some(10.0), Some(8.0)), Some(20.0));
        assert_eq!(overhead_pct(Some(10.0), Some(12.0)), Some(0.0));
        assert_eq!(overhead_pct(Some(0.0), Some(1.0)), None);
        assert_eq!(overhead_pct(None, Some(1.0)), None);
        assert_eq!(overhead_pct(Some(3.0), None), None);
    }

    #[test]
    fn documents_are_the_same_for_every_run_and_target() {
        let a = vec!["a1".to_owned(), "a2".to_owned()];
        assert_eq!(document(7, &a, &a), document(7, &a, &a));
        assert_ne!(document(7, &a, &a), document(8, &a, &a));
        let d = document(7, &[], &[]);
        assert!(d.get("a_id").is_none(), "{d}");
        let cat = d["cat"].as_str().unwrap_or_default();
        assert!(cat.starts_with('c') && cat.len() <= 3, "{d}");
        let words = d["title"].as_str().unwrap_or_default().split(' ').count();
        assert!((3..=6).contains(&words), "{d}");
        assert_eq!(word(0), "kakaka");
        assert_eq!(word(123), "nemilo");
    }
}
