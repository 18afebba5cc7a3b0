//! Counts kept between writes. Counting the matches of a filter reads every matching index
//! entry (or every row, unindexed), so a count costs as much as the matches are many, and
//! dashboards, paginated lists and `/count` ask the same ones again and again. Each count is
//! kept under its model's generation ([`crate::app::Generations`]) and used while no write
//! to the model has begun since: any write to the model, by this process or, through the
//! store's stream of changes, by another, makes all of its counts stale at once.
//!
//! A count is keyed by the filter the store is given, after permissions and hooks have had
//! their say (and by its full-text search, if any), so callers who see different documents
//! never share one. Filters are kept
//! whole: a filter whose values are large is not kept, and the cache starts over once it
//! holds [`MAX_COUNTS`].

use std::collections::HashMap;
use std::sync::Mutex;

use jxp_model::sync::lock;
use jxp_query::{Cond, Filter, Find};
use jxp_store::StoreError;
use serde_json::Value;

use crate::App;
use crate::error::CoreError;

/// Counts kept at most, over every model; past it the cache starts over.
const MAX_COUNTS: usize = 1024;
/// The largest filter kept, in bytes of paths and values, roughly.
const MAX_FILTER_BYTES: usize = 4096;

/// One model's counts, all of one generation: by the full-text search they are counted
/// with (none for most), then by filter.
struct ModelCounts {
    generation: u64,
    counts: HashMap<Option<String>, HashMap<Filter, u64>>,
}

#[derive(Default)]
pub(crate) struct Counts {
    models: Mutex<HashMap<String, ModelCounts>>,
}

impl Counts {
    /// The count of `filter` (with the full-text search `text`) on `model` kept under
    /// `generation`, if any.
    fn get(
        &self,
        model: &str,
        text: &Option<String>,
        filter: &Filter,
        generation: u64,
    ) -> Option<u64> {
        let models = lock(&self.models);
        let kept = models.get(model)?;
        if kept.generation != generation {
            return None;
        }
        kept.counts.get(text)?.get(filter).copied()
    }

    /// Keeps `count` of `filter` (with `text`) on `model`, read under `generation`. A count
    /// of an older generation than the model's newest kept one is dropped; a newer one drops
    /// theirs.
    fn put(&self, model: &str, text: &Option<String>, filter: Filter, generation: u64, count: u64) {
        let size = filter_bytes(&filter) + text.as_ref().map_or(0, String::len);
        if size > MAX_FILTER_BYTES {
            return;
        }
        let mut models = lock(&self.models);
        let held: usize = models
            .values()
            .flat_map(|m| m.counts.values())
            .map(HashMap::len)
            .sum();
        if held >= MAX_COUNTS {
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
        kept.counts
            .entry(text.clone())
            .or_default()
            .insert(filter, count);
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
        let count = self.inner.store.count(model, filter);
        self.kept(model, &None, filter, count).await
    }

    /// How many stored documents of `model` `find` selects, paging aside (its filter and its
    /// full-text search), kept as [`App::stored_count`] keeps counts.
    pub(crate) async fn stored_find_count(
        &self,
        model: &str,
        find: &Find,
    ) -> Result<u64, CoreError> {
        let count = self.inner.store.count_find(model, find);
        self.kept(model, &find.text, &find.filter, count).await
    }

    /// The kept count of `filter` with `text`, else what `count` answers, kept.
    async fn kept(
        &self,
        model: &str,
        text: &Option<String>,
        filter: &Filter,
        count: impl Future<Output = Result<u64, StoreError>>,
    ) -> Result<u64, CoreError> {
        let counts = &self.inner.counts;
        // Taken before the store is asked: a write that begins meanwhile moves it on.
        let generation = self.inner.generations.snapshot(model);
        let Some(generation) = generation.filter(|_| self.inner.settings.count_cache) else {
            return Ok(count.await?);
        };
        if let Some(n) = counts.get(model, text, filter, generation) {
            return Ok(n);
        }
        let n = count.await?;
        counts.put(model, text, filter.clone(), generation, n);
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
        counts.put("m", &None, cat.clone(), 4, 17);
        assert_eq!(counts.get("m", &None, &cat, 4), Some(17));
        assert_eq!(counts.get("m", &None, &cat, 5), None);
        assert_eq!(counts.get("other", &None, &cat, 4), None);
        assert_eq!(counts.get("m", &None, &eq("cat", json!("c2")), 4), None);
        // Equal filters built apart find the same count; a number is not its string.
        assert_eq!(counts.get("m", &None, &eq("cat", json!("c1")), 4), Some(17));
        counts.put("m", &None, eq("n", json!(1)), 4, 3);
        assert_eq!(counts.get("m", &None, &eq("n", json!("1")), 4), None);
    }

    #[test]
    fn a_full_text_search_is_part_of_the_key() {
        let counts = Counts::default();
        let all = Filter::All;
        let kubla = Some("kubla".to_owned());
        counts.put("m", &None, all.clone(), 0, 9);
        counts.put("m", &kubla, all.clone(), 0, 2);
        assert_eq!(counts.get("m", &None, &all, 0), Some(9));
        assert_eq!(counts.get("m", &kubla, &all, 0), Some(2));
        assert_eq!(counts.get("m", &Some("khan".to_owned()), &all, 0), None);
        let long = Some("x".repeat(MAX_FILTER_BYTES + 1));
        counts.put("m", &long, all.clone(), 0, 1);
        assert_eq!(counts.get("m", &long, &all, 0), None);
    }

    #[test]
    fn a_newer_generation_replaces_the_counts_and_an_older_one_is_dropped() {
        let counts = Counts::default();
        let a = eq("cat", json!("a"));
        let b = eq("cat", json!("b"));
        counts.put("m", &None, a.clone(), 1, 10);
        counts.put("m", &None, b.clone(), 2, 20);
        assert_eq!(counts.get("m", &None, &a, 1), None);
        assert_eq!(counts.get("m", &None, &b, 2), Some(20));
        // A reader that took its generation before the last write files nothing.
        counts.put("m", &None, a.clone(), 1, 10);
        assert_eq!(counts.get("m", &None, &a, 1), None);
        assert_eq!(counts.get("m", &None, &a, 2), None);
    }

    #[test]
    fn large_filters_are_not_kept_and_the_cache_starts_over_when_full() {
        let counts = Counts::default();
        let big = eq("title", Value::String("x".repeat(MAX_FILTER_BYTES)));
        counts.put("m", &None, big.clone(), 0, 1);
        assert_eq!(counts.get("m", &None, &big, 0), None);
        for i in 0..MAX_COUNTS {
            counts.put("m", &None, eq("n", json!(i)), 0, 1);
        }
        assert_eq!(counts.get("m", &None, &eq("n", json!(0)), 0), Some(1));
        counts.put("m", &None, eq("n", json!(MAX_COUNTS)), 0, 2);
        assert_eq!(counts.get("m", &None, &eq("n", json!(0)), 0), None);
        assert_eq!(
            counts.get("m", &None, &eq("n", json!(MAX_COUNTS)), 0),
            Some(2)
        );
    }
}
