//! Subscriptions and their index: per model, the collection-wide ones in one list and the
//! per-document ones by id, so a change visits only the subscriptions that can want it. The
//! collection-wide list also knows where each connection's entries are, so subscribing,
//! unsubscribing and disconnecting cost the same with ten subscribers or twenty thousand.

use std::collections::HashMap;
use std::sync::Arc;

use jxp_query::Filter;
use jxp_store::Change;

use super::handle::ConnId;

pub(super) struct Sub {
    pub(super) conn: ConnId,
    /// Model, id and filter: what makes a subscription the same as another.
    pub(super) key: String,
    pub(super) id: Option<String>,
    pub(super) filter: Filter,
    /// The subscriber asked for `enter` and `leave` events.
    pub(super) enter_leave: bool,
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
    /// Per connection, the positions of its entries in `all` (kept as entries move).
    at: HashMap<ConnId, Vec<usize>>,
    by_id: HashMap<String, Vec<Sub>>,
}

impl ModelSubs {
    /// The position in `all` of `conn`'s subscription `key`.
    fn position(&self, conn: ConnId, key: &str) -> Option<usize> {
        self.at.get(&conn)?.iter().copied().find(|&i| {
            self.all
                .get(i)
                .is_some_and(|s| s.conn == conn && s.key == key)
        })
    }

    pub(super) fn contains(&self, conn: ConnId, key: &str) -> bool {
        match key_id(key) {
            None => self.position(conn, key).is_some(),
            Some(id) => self
                .by_id
                .get(id)
                .is_some_and(|list| list.iter().any(|s| s.conn == conn && s.key == key)),
        }
    }

    pub(super) fn insert(&mut self, sub: Sub) {
        match &sub.id {
            None => {
                self.at.entry(sub.conn).or_default().push(self.all.len());
                self.all.push(sub);
            }
            Some(id) => self.by_id.entry(id.clone()).or_default().push(sub),
        }
    }

    pub(super) fn find_mut(&mut self, conn: ConnId, key: &str) -> Option<&mut Sub> {
        match key_id(key) {
            None => {
                let i = self.position(conn, key)?;
                self.all.get_mut(i)
            }
            Some(id) => self
                .by_id
                .get_mut(id)?
                .iter_mut()
                .find(|s| s.conn == conn && s.key == key),
        }
    }

    /// Removes `conn`'s subscription `key`; answers whether there was one.
    pub(super) fn remove(&mut self, conn: ConnId, key: &str) -> bool {
        let Some(id) = key_id(key) else {
            let Some(i) = self.position(conn, key) else {
                return false;
            };
            self.forget(conn, i);
            self.all.swap_remove(i);
            // The last entry moved into `i`: its connection's index follows it.
            if let Some(moved) = self.all.get(i) {
                let last = self.all.len();
                if let Some(slot) = self
                    .at
                    .get_mut(&moved.conn)
                    .and_then(|places| places.iter_mut().find(|p| **p == last))
                {
                    *slot = i;
                }
            }
            return true;
        };
        let Some(list) = self.by_id.get_mut(id) else {
            return false;
        };
        let before = list.len();
        list.retain(|s| !(s.conn == conn && s.key == key));
        let removed = list.len() < before;
        if list.is_empty() {
            self.by_id.remove(id);
        }
        removed
    }

    /// Drops position `i` from `conn`'s index.
    fn forget(&mut self, conn: ConnId, i: usize) {
        if let Some(places) = self.at.get_mut(&conn) {
            places.retain(|p| *p != i);
            if places.is_empty() {
                self.at.remove(&conn);
            }
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.all.is_empty() && self.by_id.is_empty()
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

/// The model part of a subscription key.
pub(super) fn key_model(key: &str) -> &str {
    key.split('\0').next().unwrap_or_default()
}

/// The document id part of a subscription key, if any.
pub(super) fn key_id(key: &str) -> Option<&str> {
    key.split('\0').nth(1).filter(|id| !id.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(conn: ConnId, key: &str) -> Sub {
        Sub {
            conn,
            key: key.to_owned(),
            id: key_id(key).map(str::to_owned),
            filter: Filter::All,
            enter_leave: false,
            after: 0,
            buffer: None,
        }
    }

    fn conns(subs: &mut ModelSubs, doc: &str) -> Vec<(ConnId, String)> {
        let mut seen: Vec<(ConnId, String)> = subs
            .for_doc_mut(doc)
            .map(|s| (s.conn, s.key.clone()))
            .collect();
        seen.sort();
        seen
    }

    #[test]
    fn removing_keeps_every_other_subscription_findable() {
        let mut subs = ModelSubs::default();
        for conn in 1..=5 {
            subs.insert(sub(conn, "test\0\0"));
            subs.insert(sub(conn, &format!("test\0\0{{\"n\":{conn}}}")));
        }
        subs.insert(sub(9, "test\0abc\0"));
        assert!(subs.contains(3, "test\0\0"));
        // Removing from the middle moves the last entry: it must still be found and removable.
        assert!(subs.remove(2, "test\0\0"));
        assert!(!subs.remove(2, "test\0\0"));
        assert!(!subs.contains(2, "test\0\0"));
        assert!(subs.contains(2, "test\0\0{\"n\":2}"));
        for conn in [1, 3, 4, 5] {
            assert!(subs.find_mut(conn, "test\0\0").is_some(), "{conn}");
            assert!(
                subs.find_mut(conn, &format!("test\0\0{{\"n\":{conn}}}"))
                    .is_some()
            );
        }
        assert_eq!(conns(&mut subs, "abc").len(), 10);
        assert_eq!(conns(&mut subs, "other").len(), 9);
        for conn in 1..=5 {
            subs.remove(conn, "test\0\0");
            subs.remove(conn, &format!("test\0\0{{\"n\":{conn}}}"));
        }
        assert_eq!(conns(&mut subs, "abc"), vec![(9, "test\0abc\0".to_owned())]);
        assert!(!subs.is_empty());
        assert!(subs.remove(9, "test\0abc\0"));
        assert!(subs.is_empty());
        assert!(!subs.wants("abc"));
    }

    #[test]
    fn document_subscriptions_are_found_by_their_id() {
        let mut subs = ModelSubs::default();
        subs.insert(sub(1, "test\0abc\0"));
        subs.insert(sub(2, "test\0abc\0"));
        assert!(subs.wants("abc"));
        assert!(!subs.wants("abd"));
        assert!(subs.contains(2, "test\0abc\0"));
        assert!(!subs.contains(3, "test\0abc\0"));
        assert!(subs.remove(1, "test\0abc\0"));
        assert_eq!(conns(&mut subs, "abc"), vec![(2, "test\0abc\0".to_owned())]);
        assert_eq!(key_model("test\0abc\0{}"), "test");
    }
}
