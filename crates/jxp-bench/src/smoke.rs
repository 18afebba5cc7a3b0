//! The `smoke` scenario: POST one document, GET it back, check that its fields round-trip.

use anyhow::{Result, anyhow, bail};
use serde_json::{Value, json};

use crate::cli::SmokeArgs;
use crate::client::{self, snippet};
use crate::rest::{create, unix_nanos};
use crate::target::{Target, check_path_segment};

pub async fn run(args: SmokeArgs) -> Result<()> {
    let target = Target::parse(&args.common.base)?;
    let model = args.common.model.as_str();
    check_path_segment("--model", model)?;

    let auth = client::connect(&target, &args.common).await?;
    let client = client::build(&auth.headers)?;

    let collection = target.collection(model);
    let bar = format!("smoke-{:x}", unix_nanos());
    let sent = json!({ "foo": "smoke", "bar": bar, "n": 42 });
    let id = create(&client, &collection, &sent).await?;

    let url = format!("{collection}/{id}");
    let (status, body) = client::send(client.get(&url), &format!("GET {url}")).await?;
    if !status.is_success() {
        bail!("smoke: GET {url} answered {status}: {}", snippet(&body));
    }
    let got: Value = serde_json::from_str(&body).map_err(|e| {
        anyhow!(
            "smoke: GET {url} did not answer JSON ({e}): {}",
            snippet(&body)
        )
    })?;
    let problems = mismatches(&id, &sent, &got);
    if !problems.is_empty() {
        bail!(
            "smoke: document {id} did not round-trip: {}",
            problems.join("; ")
        );
    }
    println!(
        "{}",
        json!({ "scenario": "smoke", "pass": true, "base": target.base(), "model": model, "id": id })
    );
    eprintln!("[jxp-bench smoke {model}] ok: created {id} and read it back unchanged");
    Ok(())
}

/// Differences between the sent document and the `GET` answer `{"data":{...}}`.
fn mismatches(id: &str, sent: &Value, got: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if !is_object_id(id) {
        out.push(format!("_id {id:?} is not 24 hex digits"));
    }
    let Some(data) = got.get("data").and_then(Value::as_object) else {
        out.push(format!(
            "no \"data\" object in {}",
            snippet(&got.to_string())
        ));
        return out;
    };
    if data.get("_id").and_then(Value::as_str) != Some(id) {
        out.push(format!(
            "data._id is {:?}, expected {id:?}",
            data.get("_id")
        ));
    }
    for (key, want) in sent.as_object().into_iter().flatten() {
        let have = data.get(key);
        let same = match (want.as_f64(), have.and_then(Value::as_f64)) {
            // Numbers compare by value: 42 and 42.0 are the same Number.
            (Some(a), Some(b)) => a == b,
            _ => have == Some(want),
        };
        if !same {
            out.push(format!(
                "{key}: sent {want}, got {}",
                have.map_or("nothing".into(), Value::to_string)
            ));
        }
    }
    out
}

fn is_object_id(id: &str) -> bool {
    id.len() == 24 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "65a1b2c3d4e5f60718293a4b";

    #[test]
    fn round_trip_passes() {
        let sent = json!({ "foo": "smoke", "bar": "x", "n": 42 });
        let got = json!({ "data": { "_id": ID, "foo": "smoke", "bar": "x", "n": 42.0, "createdAt": "t" } });
        assert!(mismatches(ID, &sent, &got).is_empty());
    }

    #[test]
    fn mismatches_are_reported() {
        let sent = json!({ "foo": "smoke", "bar": "x", "n": 42 });
        let got = json!({ "data": { "_id": "other", "foo": "smoke", "n": "42" } });
        let m = mismatches("nothex", &sent, &got);
        assert_eq!(m.len(), 4, "{m:?}");
        assert_eq!(mismatches(ID, &sent, &json!({ "status": "ok" })).len(), 1);
    }
}
