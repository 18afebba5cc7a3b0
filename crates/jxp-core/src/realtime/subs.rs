//! Subscriptions and their index: per model, the collection-wide ones in one list and the
//! per-document ones by id, so a change visits only the subscriptions that can want it.

use std::collections::HashMap;
use std::sync::Arc;

use jxp_query::Filter;
use jxp_store::Change;

use super::ConnId;

pub(super) struct Sub {
    pub(super) conn: ConnId,
    /// Model, id and filter: what makes a subscription the same as another.
    pub(super) key: String,
    pub(super) id: Option<String>,
    pub(super) filter: Filter,
    /// Only changes with a larger `seq` are delivered: no duplicates, none from before.
    pub(super) after: u64,
    /// While a `since` replay loads, live changes wait here.
    pub(super) buffer: Option<Vec<Arc<Change>>>,
}

/// A model's subscriptions: collection-wide ones, and per-document ones indexed by id, so a
/// change touches only the subscriptions that can want it.
#[derive(Default)]
pub(super) struct ModelSubs {
    all: Vec<Sub>,
    by_id: HashMap<String, Vec<Sub>>,
}

impl ModelSubs {
    pub(super) fn list_mut(&mut self, id: Option<&str>) -> &mut Vec<Sub> {
        match id {
            None => &mut self.all,
            Some(id) => self.by_id.entry(id.to_owned()).or_default(),
        }
    }

    pub(super) fn find_mut(
        &mut self,
        id: Option<&str>,
        conn: ConnId,
        key: &str,
    ) -> Option<&mut Sub> {
        let list = match id {
            None => &mut self.all,
            Some(id) => self.by_id.get_mut(id)?,
        };
        list.iter_mut().find(|s| s.conn == conn && s.key == key)
    }

    /// Keeps the subscriptions `keep` accepts; answers how many went.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&Sub) -> bool) -> usize {
        let before = self.len();
        self.all.retain(&mut keep);
        self.by_id.retain(|_, subs| {
            subs.retain(&mut keep);
            !subs.is_empty()
        });
        before - self.len()
    }

    pub(super) fn len(&self) -> usize {
        self.all.len() + self.by_id.values().map(Vec::len).sum::<usize>()
    }

    /// Whether any subscription may want a change of document `id`.
    pub(super) fn wants(&self, id: &str) -> bool {
        !self.all.is_empty() || self.by_id.contains_key(id)
    }

    /// The subscriptions that may want a change of document `id`.
    pub(super) fn for_doc_mut(&mut self, id: &str) -> impl Iterator<Item = &mut Sub> {
        self.all
            .iter_mut()
            .chain(self.by_id.get_mut(id).into_iter().flatten())
    }
}

/// The document id part of a subscription key, if any.
pub(super) fn key_id(key: &str) -> Option<&str> {
    key.split('\0').nth(1).filter(|id| !id.is_empty())
}
