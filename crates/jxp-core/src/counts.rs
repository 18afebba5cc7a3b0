//! Counts kept between writes. Counting the matches of a filter reads every matching index
//! entry (or every row, unindexed), so a count costs as much as the matches are many, and
//! dashboards, paginated lists and `/count` ask the same ones again and again. Each count is
//! kept under its model's generation ([`crate::app::Generations`]) and used while no write
//! to the model has begun since: any write to the model, by this process or, through the
//! store's stream of changes, by another, makes all of its counts stale at once.
//!
//! A count is keyed by the filter the store is given, after permissions and hooks have had
//! their say (and by its full-text search, if any), so callers who see different documents
//! never share one. Filters are kept whole: a filter whose values are large is not kept, and
//! the cache starts over once it holds [`MAX_COUNTS`]. After a write, the callers who ask for
//! the same count at once wait for one reading of it rather than each reading it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jxp_model::sync::lock;
use jxp_query::{Cond, Filter, Find, value_size};
use jxp_store::StoreError;

use crate::App;
use crate::error::CoreError;

/// Counts kept at most, over every model; past it the cache starts over.
const MAX_COUNTS: usize = 1024;
/// The largest filter kept, in bytes of paths and values, roughly ([`filter_bytes`]).
const MAX_FILTER_BYTES: usize = 4096;

/// A count being read or read: callers who ask for it at once share one reading (the first
/// reads, the others wait for its answer; if it fails or is dropped, the next one reads).
type Cell = Arc<tokio::sync::OnceCell<u64>>;

/// One model's counts, all of one generation: by the full-text search they are counted
/// with (none for most), then by filter.
struct ModelCounts {
    generation: u64,
    counts: HashMap<Option<String>, HashMap<Filter, Cell>>,
}

#[derive(Default)]
pub(crate) struct Counts {
    models: Mutex<HashMap<String, ModelCounts>>,
}

/// What the cache has for a count.
enum Kept {
    /// The count, read under the asked generation.
    Count(u64),
    /// Where the count goes once read: empty, or being read by another caller.
    Cell(Cell),
    /// Nothing is kept for it: the filter is too large, or the generation asked for is older
    /// than the model's newest kept one.
    Not,
}

impl Counts {
    /// The count of `filter` (with the full-text search `text`) on `model` under
    /// `generation`, or the cell it goes in, made where there is none. A newer generation
    /// drops the model's kept counts.
    fn lookup(&self, model: &str, text: &Option<String>, filter: &Filter, generation: u64) -> Kept {
        let mut models = lock(&self.models);
        if let Some(kept) = models.get(model) {
            if generation < kept.generation {
                return Kept::Not;
            }
            if generation == kept.generation
                && let Some(cell) = kept.counts.get(text).and_then(|by| by.get(filter))
            {
                return match cell.get() {
                    Some(n) => Kept::Count(*n),
                    None => Kept::Cell(Arc::clone(cell)),
                };
            }
        }
        if filter_bytes(filter) + text.as_ref().map_or(0, String::len) > MAX_FILTER_BYTES {
            return Kept::Not;
        }
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
        if generation > kept.generation {
            kept.generation = generation;
            kept.counts.clear();
        }
        let cell = Cell::default();
        kept.counts
            .entry(text.clone())
            .or_default()
            .insert(filter.clone(), Arc::clone(&cell));
        Kept::Cell(cell)
    }
}

impl App {
    /// Forgets every kept count (an admin's `/cache/clear`): after a change made in the
    /// database past jxp, which no write of jxp's announces.
    pub fn forget_counts(&self) {
        lock(&self.inner.counts.models).clear();
    }

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

    /// The kept count of `filter` with `text`, else what `count` answers, kept; callers who
    /// ask for the same count at once wait for one reading.
    async fn kept(
        &self,
        model: &str,
        text: &Option<String>,
        filter: &Filter,
        count: impl Future<Output = Result<u64, StoreError>>,
    ) -> Result<u64, CoreError> {
        // Taken before the store is asked: a write that begins meanwhile moves it on.
        let generation = self.inner.generations.snapshot(model);
        let Some(generation) = generation.filter(|_| self.inner.settings.count_cache) else {
            return Ok(count.await?);
        };
        match self.inner.counts.lookup(model, text, filter, generation) {
            Kept::Count(n) => Ok(n),
            Kept::Cell(cell) => Ok(*cell.get_or_try_init(|| count).await?),
            Kept::Not => Ok(count.await?),
        }
    }
}

/// About how many bytes `filter` holds in paths and values (values as the query budget
/// sizes them).
fn filter_bytes(filter: &Filter) -> usize {
    match filter {
        Filter::All => 0,
        Filter::And(parts) | Filter::Or(parts) | Filter::Nor(parts) => {
            parts.iter().map(filter_bytes).sum()
        }
        Filter::Not(inner) => filter_bytes(inner),
        Filter::Cond(Cond { path, value, .. }) => path_bytes(&path.segments) + value_size(value),
        Filter::ElemMatch { path, inner } => path_bytes(&path.segments) + filter_bytes(inner),
    }
}

fn path_bytes(segments: &[String]) -> usize {
    segments.iter().map(String::len).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jxp_query::{Op, Path};
    use serde_json::Value;
    use serde_json::json;

    fn eq(field: &str, value: Value) -> Filter {
        Filter::Cond(Cond {
            path: Path::plain(field),
            op: Op::Eq,
            value,
        })
    }

    /// Reads the count of `filter` at `generation` as `n` when there is none: what the cache
    /// had, if anything.
    fn read(
        counts: &Counts,
        text: &Option<String>,
        filter: &Filter,
        generation: u64,
        n: u64,
    ) -> Option<u64> {
        match counts.lookup("m", text, filter, generation) {
            Kept::Count(kept) => Some(kept),
            Kept::Cell(cell) => {
                let _ = cell.set(n);
                None
            }
            Kept::Not => None,
        }
    }

    #[test]
    fn a_count_is_used_under_its_own_generation_only() {
        let counts = Counts::default();
        let cat = eq("cat", json!("c1"));
        assert_eq!(read(&counts, &None, &cat, 4, 17), None);
        assert_eq!(read(&counts, &None, &cat, 4, 0), Some(17));
        assert_eq!(read(&counts, &None, &eq("cat", json!("c2")), 4, 3), None);
        // Equal filters built apart find the same count; a number is not its string.
        assert_eq!(
            read(&counts, &None, &eq("cat", json!("c1")), 4, 0),
            Some(17)
        );
        assert_eq!(read(&counts, &None, &eq("n", json!(1)), 4, 3), None);
        assert_eq!(read(&counts, &None, &eq("n", json!("1")), 4, 5), None);
        assert!(matches!(
            counts.lookup("other", &None, &cat, 4),
            Kept::Cell(_)
        ));
        // A newer generation finds nothing of the older one's.
        assert_eq!(read(&counts, &None, &cat, 5, 18), None);
        assert_eq!(read(&counts, &None, &cat, 5, 0), Some(18));
    }

    #[test]
    fn an_older_generation_than_the_newest_kept_is_not_kept() {
        let counts = Counts::default();
        let a = eq("cat", json!("a"));
        assert_eq!(read(&counts, &None, &a, 2, 20), None);
        // A reader that took its generation before the last write files nothing.
        assert!(matches!(counts.lookup("m", &None, &a, 1), Kept::Not));
        assert_eq!(read(&counts, &None, &a, 2, 0), Some(20));
    }

    #[test]
    fn a_full_text_search_is_part_of_the_key() {
        let counts = Counts::default();
        let all = Filter::All;
        let kubla = Some("kubla".to_owned());
        read(&counts, &None, &all, 0, 9);
        read(&counts, &kubla, &all, 0, 2);
        assert_eq!(read(&counts, &None, &all, 0, 0), Some(9));
        assert_eq!(read(&counts, &kubla, &all, 0, 0), Some(2));
        assert_eq!(read(&counts, &Some("khan".to_owned()), &all, 0, 1), None);
        let long = Some("x".repeat(MAX_FILTER_BYTES + 1));
        assert!(matches!(counts.lookup("m", &long, &all, 0), Kept::Not));
    }

    #[test]
    fn large_filters_are_not_kept_and_the_cache_starts_over_when_full() {
        let counts = Counts::default();
        let big = eq("title", Value::String("x".repeat(MAX_FILTER_BYTES)));
        assert!(matches!(counts.lookup("m", &None, &big, 0), Kept::Not));
        for i in 0..MAX_COUNTS {
            read(&counts, &None, &eq("n", json!(i)), 0, 1);
        }
        assert_eq!(read(&counts, &None, &eq("n", json!(0)), 0, 0), Some(1));
        read(&counts, &None, &eq("n", json!(MAX_COUNTS)), 0, 2);
        assert_eq!(
            read(&counts, &None, &eq("n", json!(MAX_COUNTS)), 0, 0),
            Some(2)
        );
        assert_eq!(read(&counts, &None, &eq("n", json!(0)), 0, 3), None);
    }

    #[tokio::test]
    async fn callers_who_ask_at_once_share_one_reading_and_a_failed_one_is_read_again() {
        let counts = Counts::default();
        let cat = eq("cat", json!("c1"));
        let readings = std::sync::atomic::AtomicUsize::new(0);
        let (gate, opened) = tokio::sync::oneshot::channel::<()>();
        let ask = || async {
            let Kept::Cell(cell) = counts.lookup("m", &None, &cat, 0) else {
                panic!("a cell");
            };
            cell.get_or_try_init(|| async {
                readings.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok::<_, ()>(7)
            })
            .await
            .copied()
        };
        // The first reading waits at the gate while the second caller asks.
        let first = async {
            let Kept::Cell(cell) = counts.lookup("m", &None, &cat, 0) else {
                panic!("a cell");
            };
            cell.get_or_try_init(|| async {
                readings.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = opened.await;
                Ok::<_, ()>(5)
            })
            .await
            .copied()
        };
        let second = async {
            tokio::task::yield_now().await;
            let _ = gate.send(());
            ask().await
        };
        assert_eq!(tokio::join!(first, second), (Ok(5), Ok(5)));
        assert_eq!(readings.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(read(&counts, &None, &cat, 0, 0), Some(5));

        // A reading that fails keeps nothing: the next caller reads.
        let other = eq("cat", json!("c2"));
        let Kept::Cell(cell) = counts.lookup("m", &None, &other, 0) else {
            panic!("a cell");
        };
        assert_eq!(cell.get_or_try_init(|| async { Err(()) }).await, Err(()));
        assert_eq!(read(&counts, &None, &other, 0, 9), None);
        assert_eq!(read(&counts, &None, &other, 0, 0), Some(9));
    }
}
