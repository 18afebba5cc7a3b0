//! `populate` and `autopopulate`: the documents a page's link fields point at, joined into
//! each result under their own key (JXP presents them beside the id, never instead of it).
//!
//! One store query per link field per page, whatever the page size: the ids of every document
//! on the page are collected and fetched together with `_id IN (…)`. Linked documents are read
//! as the caller: no read right on the linked model leaves the key out, owner-only readers see
//! only their own, soft-deleted documents are never shown, and private fields never leave.
//!
//! A linked document is copied into every result that links to it, so a page of documents
//! with long arrays of the same large link multiplies it: every linked document read and
//! every copy is charged to the request's budget (`QUERY_MEMORY_LIMIT`, `QUERY_TIMEOUT`)
//! before it is made.

use std::collections::{HashMap, HashSet};

use jxp_model::{Document, Model};
use jxp_query::{Budget, Filter, Find, Op, Path, Populate, doc_size, resolve_path};
use serde_json::Value;

use crate::app::App;
use crate::error::CoreError;
use crate::hooks::ReadEvent;
use crate::identity::Identity;
use crate::perms::read_scope;
use crate::view::project;

/// How many ids one `IN (…)` binds at most. SQLite allows 32766 parameters; a page holds at
/// most `query_limits.max` documents, so only a page of documents with very long id arrays
/// ever needs a second query.
const IDS_PER_QUERY: usize = 10_000;

/// The ids a document's link field holds: one, or an array of them. Anything else (a missing
/// field, a null, a non-string) links nowhere.
fn ids_of<'a>(doc: &'a Document, spec: &Populate) -> Vec<&'a str> {
    match doc.get(&spec.field) {
        Some(Value::String(id)) => vec![id.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

impl App {
    /// Adds the populated keys `specs` ask for to `out`, the API view of `raw` (same order).
    pub(crate) async fn populate(
        &self,
        who: &Identity,
        raw: &[Document],
        out: &mut [Document],
        specs: &[Populate],
    ) -> Result<(), CoreError> {
        let mut budget = self.budget();
        for spec in specs {
            // The loader refuses links to unknown models, so this always finds one.
            let Some(linked) = self.schema().by_link(&spec.link).cloned() else {
                continue;
            };
            check_projection(&linked, spec)?;
            // Not allowed to read the linked model at all: the key is left out, so the answer
            // says nothing about the linked documents, not even whether they exist.
            let Ok(scope) = read_scope(&linked, who) else {
                continue;
            };
            // The linked model's read hooks narrow it as they narrow reading it directly; one
            // that refuses this reader leaves the key out like a missing right.
            let scope = match self
                .read_constraint(ReadEvent::Get, &linked, who, None)
                .await
            {
                Ok(hooked) => scope.and(hooked),
                Err(_) => continue,
            };
            let found = self
                .fetch_linked(&linked, who, scope, raw, spec, &mut budget)
                .await?;
            for (doc, view) in raw.iter().zip(out.iter_mut()) {
                let ids = ids_of(doc, spec);
                let picked: Vec<&(Document, usize)> = if spec.many {
                    ids.iter().filter_map(|id| found.get(*id)).collect()
                } else {
                    ids.first()
                        .and_then(|id| found.get(*id))
                        .into_iter()
                        .collect()
                };
                budget.charge(picked.iter().map(|(_, size)| size).sum())?;
                let mut copies = picked.into_iter().map(|(d, _)| Value::Object(d.clone()));
                let value = if spec.many {
                    Value::Array(copies.collect())
                } else {
                    copies.next().unwrap_or(Value::Null)
                };
                view.insert(spec.key.clone(), value);
            }
        }
        Ok(())
    }

    /// The readable, live documents of `linked` that `raw` links to through `spec`, by id, as
    /// the API shows them (projected when asked), each with its estimated size; what is read
    /// is charged to `budget`.
    async fn fetch_linked(
        &self,
        linked: &Model,
        who: &Identity,
        scope: Filter,
        raw: &[Document],
        spec: &Populate,
        budget: &mut Budget,
    ) -> Result<HashMap<String, (Document, usize)>, CoreError> {
        let mut seen = HashSet::new();
        let ids: Vec<Value> = raw
            .iter()
            .flat_map(|d| ids_of(d, spec))
            .filter(|id| seen.insert(*id))
            .map(|id| Value::String(id.to_owned()))
            .collect();
        let mut found = HashMap::new();
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let find = Find {
                filter: Filter::cond(Path::plain("_id"), Op::In, Value::Array(chunk.to_vec()))
                    .and(scope.clone())
                    .and(Filter::live()),
                ..Find::default()
            };
            let docs = self.find_within(&linked.slug, find, budget).await?;
            for doc in docs {
                budget.charge_doc(&doc)?;
                if let Some(id) = doc.get("_id").and_then(Value::as_str) {
                    let shown = project(linked, who, &doc, spec.fields.as_deref());
                    let size = doc_size(&shown);
                    found.insert(id.to_owned(), (shown, size));
                }
            }
        }
        Ok(found)
    }
}

/// `populate[key]=f1,f2` may only name fields of the linked model (a private one is allowed
/// and simply never shown, as with `fields=`).
fn check_projection(linked: &Model, spec: &Populate) -> Result<(), CoreError> {
    for f in spec.fields.iter().flatten() {
        if linked.field_at(f).is_none() && resolve_path(linked, f).is_err() {
            return Err(CoreError::BadRequest(format!(
                "cannot populate {} with field \"{f}\": {} has no such field",
                spec.key, linked.slug
            )));
        }
    }
    Ok(())
}

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use jxp_model::Schema;
    use jxp_query::{Filter, ListParams, parse_list_params};
    use jxp_store::{
        Change, SqliteOptions, SqliteStore, Store, StoreError, TableSpec, WriteTx, async_trait,
    };
    use serde_json::json;
    use tokio::sync::broadcast;

    use crate::{App, ListRequest, Settings, WriteOptions};

    use super::*;

    /// The SQLite store, counting the `find` calls per model.
    struct Counting {
        inner: SqliteStore,
        finds: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl Store for Counting {
        async fn migrate(&self, tables: &[TableSpec]) -> Result<(), StoreError> {
            self.inner.migrate(tables).await
        }
        async fn get(&self, model: &str, id: &str) -> Result<Option<Document>, StoreError> {
            self.inner.get(model, id).await
        }
        async fn find(&self, model: &str, find: &Find) -> Result<Vec<Document>, StoreError> {
            if let Ok(mut f) = self.finds.lock() {
                f.push(model.to_owned());
            }
            self.inner.find(model, find).await
        }
        async fn count(&self, model: &str, filter: &Filter) -> Result<u64, StoreError> {
            self.inner.count(model, filter).await
        }
        async fn count_find(&self, model: &str, find: &Find) -> Result<u64, StoreError> {
            self.inner.count_find(model, find).await
        }
        async fn write(&self, tx: WriteTx) -> Result<Vec<Arc<Change>>, StoreError> {
            self.inner.write(tx).await
        }
        fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
            self.inner.subscribe()
        }
        async fn changes_since(
            &self,
            model: &str,
            after: u64,
            limit: usize,
        ) -> Result<Vec<Arc<Change>>, StoreError> {
            self.inner.changes_since(model, after, limit).await
        }
        async fn last_seq(&self, model: &str) -> Result<u64, StoreError> {
            self.inner.last_seq(model).await
        }
        async fn ping(&self) -> Result<(), StoreError> {
            self.inner.ping().await
        }
        async fn explain(
            &self,
            model: &str,
            find: &Find,
            count: bool,
        ) -> Result<Vec<String>, StoreError> {
            self.inner.explain(model, find, count).await
        }
        async fn analyze(
            &self,
            model: &str,
            find: &Find,
            count: bool,
        ) -> Result<jxp_store::Analyzed, StoreError> {
            self.inner.analyze(model, find, count).await
        }
    }

    const TEST: &str = r#"
name = "Test"
[fields]
foo = "String"
link_id = { type = "ObjectId", link = "Link" }
array_link_id = [{ type = "ObjectId", link = "Link", map_to = "array_link" }]
[perms]
all = "crud"
"#;

    const LINK: &str = r#"
name = "Link"
[fields]
name = "String"
[perms]
all = "crud"
"#;

    #[tokio::test]
    async fn one_store_query_per_link_field_per_page() {
        let dir = std::env::temp_dir().join(format!(
            "jxp-populate-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        let mut models = BTreeMap::new();
        for (slug, text) in [("test", TEST), ("link", LINK)] {
            let m = jxp_model::parse_model_toml(slug, std::path::Path::new(slug), text).unwrap();
            models.insert(slug.to_owned(), Arc::new(m));
        }
        let schema = Schema { models };
        let store = Arc::new(Counting {
            inner: SqliteStore::open(SqliteOptions::new(dir.join("db"))).unwrap(),
            finds: Mutex::new(Vec::new()),
        });
        let app = App::new(schema, store.clone(), Settings::default())
            .await
            .unwrap();
        let who = Identity::system();
        let mut links = Vec::new();
        for i in 0..5 {
            let doc = app
                .create(
                    &who,
                    "link",
                    json!({"name": format!("L{i}")})
                        .as_object()
                        .cloned()
                        .unwrap(),
                    WriteOptions::default(),
                )
                .await
                .unwrap();
            links.push(doc["_id"].as_str().unwrap().to_owned());
        }
        for i in 0..40 {
            let body = json!({
                "foo": format!("t{i}"),
                "link_id": links[i % 5],
                "array_link_id": [links[(i + 1) % 5], links[(i + 2) % 5]],
            });
            app.create(
                &who,
                "test",
                body.as_object().cloned().unwrap(),
                WriteOptions::default(),
            )
            .await
            .unwrap();
        }
        store.finds.lock().unwrap().clear();
        let model = app.model("test").unwrap().clone();
        let params: ListParams =
            parse_list_params(&model, &[("autopopulate".to_owned(), "1".to_owned())]).unwrap();
        let out = app
            .list(&who, "test", &ListRequest { params })
            .await
            .unwrap();
        assert_eq!(out.data.len(), 40);
        assert!(out.data.iter().all(|d| d["link"].is_object()));
        assert!(
            out.data
                .iter()
                .all(|d| d["array_link"].as_array().is_some_and(|a| a.len() == 2))
        );
        let finds = store.finds.lock().unwrap().clone();
        assert_eq!(
            finds,
            vec!["test", "link", "link"],
            "one query per link field"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
