//! The `rest` scenario: preload (for `get`), then C workers for warm-up + duration, then report.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use reqwest::Client;
use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::cli::{Op, RestArgs};
use crate::client::{self, snippet};
use crate::report::{self, RestRun};
use crate::target::{Target, check_path_segment};
use crate::worker::{self, Plan, Stats, Window};

pub async fn run(args: RestArgs) -> Result<()> {
    let target = Target::parse(&args.common.base)?;
    let model = args.common.model.as_str();
    check_path_segment("--model", model)?;

    let headers = client::connect(&target, &args.common).await?.headers;
    let setup = client::build(&headers)?;

    let collection = target.collection(model);
    let run_id = unix_nanos();
    let plan = match args.op {
        Op::Get => {
            let ids = preload(&setup, &collection, args.preload, run_id).await?;
            let urls = ids.iter().map(|id| format!("{collection}/{id}")).collect();
            Plan::Get { urls }
        }
        Op::Post => Plan::Post {
            url: collection,
            run: run_id,
        },
        Op::Call => {
            check_path_segment("--function", &args.function)?;
            Plan::Get {
                urls: vec![target.url(&format!("/call/{model}/{}", args.function))],
            }
        }
    };
    let plan = Arc::new(plan);

    // Build every connection's client up front so that spawning is quick and fair.
    let clients = (0..args.concurrency)
        .map(|_| client::build(&headers))
        .collect::<Result<Vec<Client>>>()?;
    let start = Instant::now();
    let window = Window {
        record_from: start + Duration::from_secs(args.warmup_s),
        end: start + Duration::from_secs(args.warmup_s + args.duration_s),
    };
    let mut tasks = JoinSet::new();
    for (id, client) in (0u32..).zip(clients) {
        let seed = run_id ^ u64::from(id).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        tasks.spawn(worker::run(id, client, Arc::clone(&plan), window, seed));
    }
    let mut total = Stats::default();
    while let Some(done) = tasks.join_next().await {
        total.merge(done.context("a load worker failed")?);
    }

    let result = RestRun {
        op: args.op,
        concurrency: args.concurrency,
        duration_s: args.duration_s,
        warmup_s: args.warmup_s,
        preload: (args.op == Op::Get).then_some(args.preload),
        base: target.base().to_owned(),
        model: model.to_owned(),
        stats: total,
    };
    println!("{}", report::rest_json(&result));
    eprintln!("{}", report::rest_human(&result));
    if result.stats.ok == 0 {
        bail!(
            "no successful request in {} s (first error: {})",
            args.duration_s,
            result.stats.first_error.as_deref().unwrap_or("none")
        );
    }
    Ok(())
}

/// Creates `n` documents `{"foo":"bench","bar":"<i>","n":<i>}` and returns their ids.
async fn preload(client: &Client, collection: &str, n: u32, run_id: u64) -> Result<Vec<String>> {
    let mut ids = Vec::with_capacity(n as usize);
    for i in 0..n {
        let doc = json!({ "foo": "bench", "bar": format!("{run_id:x}-{i}"), "n": i });
        let id = create(client, collection, &doc)
            .await
            .with_context(|| format!("preloading document {} of {n}", i + 1))?;
        ids.push(id);
    }
    Ok(ids)
}

/// `POST <collection>` and the new document's `data._id`.
pub async fn create(client: &Client, collection: &str, doc: &Value) -> Result<String> {
    let what = format!("POST {collection}");
    let (status, body) = client::send(client.post(collection).json(doc), &what).await?;
    if !status.is_success() {
        bail!("POST {collection} answered {status}: {}", snippet(&body));
    }
    let id = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| {
            v.pointer("/data/_id")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .ok_or_else(|| anyhow!("POST {collection}: no data._id in {}", snippet(&body)))?;
    check_path_segment("document id", &id)?;
    Ok(id)
}

/// Wall-clock nanoseconds, used to make run-specific values unique.
pub fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}
