//! Counts kept between writes. Counting the matches of a filter reads every matching index
//! entry (or every row, unindexed), so a count costs as much as the matches are many, and
//! dashboards, paginated lists and `/count` ask the same ones again and again. Each count is
//! kept under its model's generation ([`crate::app::Generations`]) and used while no write
//! to the model has begun since: any write to the model, by this process or, through the
//! store's stream of changes, by another, makes all of its counts stale at once.
//!
//! A count is keyed by the filter the store is given, after permissions and hooks have had
//! their say, so callers who see different documents never share one. Filters are kept
//! whole: a filter whose values are large is not kept, and the cache starts over once it
//! holds [`MAX_COUNTS`].

use std::collections::HashMap;
use std::sync::Mutex;

use jxp_model::sync::lock;
use jxp_query::{Cond, Filter};
use serde_json::Value;

use crate::App;
use crate::error::CoreError;

/// Counts kept at most, over every model; past it the cache starts over.
const MAX_COUNTS: usize = 1024;
/// The largest filter kept, in bytes of paths and values, roughly.
const MAX_FILTER_BYTES: usize = 4096;

/// One model's counts, all of one generation.
struct ModelCounts {
    generation: u64,
    counts: HashMap<Filter, u64>,
}

#[derive(Default)]
pub(crate) struct Counts {
    models: Mutex<HashMap<String, ModelCounts>>,
}

impl Counts {
    /// The count of `filter` on `model` kept under `generation`, if any.
    fn get(&self, model: &str, filter: &Filter, generation: u64) -> Option<u64> {
        let models = lock(&self.models);
        let kept = models.get(model)?;
        if kept.generation != generation {
            return None;
        }
        kept.counts.get(filter).copied()
    }

    /// Keeps `count` of `filter` on `model`, read under `generation`. A count of an older
    /// generation than the model's newest kept one is dropped; a newer one drops theirs.
    fn put(&self, model: &str, filter: Filter, generation: u64, count: u64) {
        if filter_bytes(&filter) > MAX_FILTER_BYTES {
            return;
        }
        let mut models = lock(&self.models);
        if models.values().map(|m| m.counts.len()).sum::<usize>() >= MAX_COUNTS {
            models.clear();
        }
        let kept = models
            .entry(model.to_owned())
            .or_insert_with(|| ModelCounts {
                generation,
                counts: HashMap::new(),
            });
        if generation < kept.generation {
            return;
        }
        if generation > kept.generation {
            kept.generation = generation;
            kept.counts.clear();
        }
        kept.counts.insert(filter, count);
    }
}

impl App {
    /// How many stored documents of `model` match `filter`: the kept count while no write to
    /// the model has begun since it was read, else the store's, kept for next time.
    pub(crate) async fn stored_count(
        &self,
        model: &str,
        filter: &Filter,
    ) -> Result<u64, CoreError> {
        let counts = &self.inner.counts;
        // Taken before the store is asked: a write that begins meanwhile moves it on.
        let generation = self.inner.generations.snapshot(model);
        let Some(generation) = generation.filter(|_| self.inner.settings.count_cache) else {
            return Ok(self.inner.store.count(model, filter).await?);
        };
        if let Some(n) = counts.get(model, filter, generation) {
            return Ok(n);
        }
        let n = self.inner.store.count(model, filter).await?;
        counts.put(model, filter.clone(), generation, n);
        Ok(n)
    }
}

/// About how many bytes `filter` holds in paths and values.
fn filter_bytes(filter: &Filter) -> usize {
    match filter {
        Filter::All => 0,
        Filter::And(parts) | Filter::Or(parts) | Filter::Nor(parts) => {
            parts.iter().map(filter_bytes).sum()
        }
        Filter::Not(inner) => filter_bytes(inner),
        Filter::Cond(Cond { path, value, .. }) => path_bytes(&path.segments) + value_bytes(value),
        Filter::ElemMatch { path, inner } => path_bytes(&path.segments) + filter_bytes(inner),
    }
}

fn path_bytes(segments: &[String]) -> usize {
    segments.iter().map(|s| s.len() + 8).sum()
}

fn value_bytes(value: &Value) -> usize {
    match value {
        Value::String(s) => s.len() + 8,
        Value::Array(items) => items.iter().map(value_bytes).sum::<usize>() + 8,
        Value::Object(map) => {
            map.iter()
                .map(|(k, v)| k.len() + value_bytes(v))
                .sum::<usize>()
                + 8
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => 8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jxp_query::{Op, Path};
    use serde_json::json;

    fn eq(field: &str, value: Value) -> Filter {
        Filter::Cond(Cond {
            path: Path::plain(field),
            op: Op::Eq,
            value,
        })
    }

    #[test]
    fn a_count_is_used_under_its_own_generation_only() {
        let counts = Counts::default();
        let cat = eq("cat", json!("c1"));
        counts.put("m", cat.clone(), 4, 17);
        assert_eq!(counts.get("m", &cat, 4), Some(17));
        assert_eq!(counts.get("m", &cat, 5), None);
        assert_eq!(counts.get("other", &cat, 4), None);
        assert_eq!(counts.get("m", &eq("cat", json!("c2")), 4), None);
        // Equal filters built apart find the same count; a number is not its string.
        assert_eq!(counts.get("m", &eq("cat", json!("c1")), 4), Some(17));
        counts.put("m", eq("n", json!(1)), 4, 3);
        assert_eq!(counts.get("m", &eq("n", json!("1")), 4), None);
    }

    #[test]
    fn a_newer_generation_replaces_the_counts_and_an_older_one_is_dropped() {
        let counts = Counts::default();
        let a = eq("cat", json!("a"));
        let b = eq("cat", json!("b"));
        counts.put("m", a.clone(), 1, 10);
        counts.put("m", b.clone(), 2, 20);
        assert_eq!(counts.get("m", &a, 1), None);
        assert_eq!(counts.get("m", &b, 2), Some(20));
        // A reader that took its generation before the last write files nothing.
        counts.put("m", a.clone(), 1, 10);
        assert_eq!(counts.get("m", &a, 1), None);
        assert_eq!(counts.get("m", &a, 2), None);
    }

    #[test]
    fn large_filters_are_not_kept_and_the_cache_starts_over_when_full() {
        let counts = Counts::default();
        let big = eq("title", Value::String("x".repeat(MAX_FILTER_BYTES)));
        counts.put("m", big.clone(), 0, 1);
        assert_eq!(counts.get("m", &big, 0), None);
        for i in 0..MAX_COUNTS {
            counts.put("m", eq("n", json!(i)), 0, 1);
        }
        assert_eq!(counts.get("m", &eq("n", json!(0)), 0), Some(1));
        counts.put("m", eq("n", json!(MAX_COUNTS)), 0, 2);
        assert_eq!(counts.get("m", &eq("n", json!(0)), 0), None);
        assert_eq!(counts.get("m", &eq("n", json!(MAX_COUNTS)), 0), Some(2));
    }
}
