//! What the queries of `find` and `explain` share on both databases: the order of a ranked
//! find, the count of bytes a find has read against its `max_bytes`, which query `explain`
//! plans, and the answer when a text query leaves nothing to run.
//! Each database renders its own SQL, with its own renderers, and reads its own plan.

use jxp_query::{Filter, Find, Sort, SqlQuery};

use crate::error::StoreError;

/// The bytes of document text a find has read, against its `max_bytes`.
pub(crate) struct ByteCount<'a> {
    model: &'a str,
    max: Option<u64>,
    read: u64,
}

impl<'a> ByteCount<'a> {
    pub(crate) fn new(model: &'a str, find: &Find) -> Self {
        ByteCount {
            model,
            max: find.max_bytes,
            read: 0,
        }
    }

    /// Counts one row's document text, refusing once the total passes `max_bytes`.
    pub(crate) fn add(&mut self, text: &str) -> Result<(), StoreError> {
        self.read = self
            .read
            .saturating_add(u64::try_from(text.len()).unwrap_or(u64::MAX));
        match self.max {
            Some(max) if self.read > max => Err(StoreError::TooLarge {
                model: self.model.to_owned(),
                max_bytes: max,
            }),
            _ => Ok(()),
        }
    }
}

/// The paths whose system column has an index of its own on both databases (`_id` is unique;
/// `_owner_id` and `createdAt` have jxp's): a page sorted or compared on one is found by that
/// index, never by a scan index.
pub(crate) const INDEXED_COLUMNS: &[&str] = &["_id", "id", "_owner_id", "createdAt"];

/// Whether rendered SQL names none of the columns `left_out` (lower case), as a scan index
/// that leaves them out needs. Parameters are bound, never spliced, so a word of the SQL is a
/// keyword, a function, a cast, a quoted path segment (only ever inside a read of `doc`) or a
/// column; a false "no" costs only the faster plan.
pub(crate) fn names_none_of(sql: &str, left_out: &[&str]) -> bool {
    !sql.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .any(|word| left_out.iter().any(|l| word.eq_ignore_ascii_case(l)))
}

/// A database's renderer of a sort (`ORDER BY …`, or only its keys).
pub(crate) type RenderSort = fn(&[Sort], &mut SqlQuery);

/// Appends the order of `find`: with a text query, the most relevant first (the score is the
/// query's second column), then the sort keys; else the sort alone.
pub(crate) fn push_order(q: &mut SqlQuery, find: &Find, order: RenderSort, keys: RenderSort) {
    if find.text.is_some() {
        q.sql.push_str(" ORDER BY 2 DESC, ");
        keys(&find.sort, q);
    } else {
        order(&find.sort, q);
    }
}

/// The query `explain` plans: the one `find` runs, or with `count` the one `count_find`
/// runs; `None` when the text query matches no word.
pub(crate) fn explained(
    model: &str,
    find: &Find,
    count: bool,
    find_sql: impl FnOnce(&str, &Find) -> Option<SqlQuery>,
    count_sql: impl FnOnce(&str, &Filter, Option<&str>) -> Option<SqlQuery>,
) -> Option<SqlQuery> {
    if count {
        count_sql(model, &find.filter, find.text.as_deref())
    } else {
        find_sql(model, find)
    }
}

/// The plan of a query that is not run.
pub(crate) fn nothing_to_run() -> Vec<String> {
    vec!["nothing to run: the text query matches no word".to_owned()]
}
