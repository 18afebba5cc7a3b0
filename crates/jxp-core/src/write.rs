//! The one write path. Every route that creates, updates or deletes a document ends here, so
//! validation, permissions, system fields and the store transaction (with its change-log entry
//! and realtime event) are the same whichever route the write came from. Here: `commit()`,
//! the only call to `Store::write`; creates; updates; and the read-modify-write loop that
//! updates and deletes (`delete.rs`) retry on a version conflict.

use std::future::Future;
use std::sync::Arc;

use jxp_model::{Document, Model, ObjectId, SYSTEM_FIELDS, Strict, now_iso, public_view};
use jxp_query::{Filter, Update};
use jxp_store::{ChangeOp, StoreError, WriteOp, WriteTx};
use serde_json::Value;

use crate::app::App;
use crate::auth::cache::IDENTITY_MODELS;
use crate::error::{CoreError, check_id, not_found};
use crate::hooks::WriteEvent;
use crate::identity::Identity;
use crate::password;
use crate::perms::{Access, Right, access, allowed_on, forbidden};
use crate::view::{into_view_as, view_as};

/// The built-in user model, whose `admin` and `temp_hash` fields only the server and admins
/// may set.
pub(crate) const USER_MODEL: &str = "user";
/// How often a read-modify-write runs when other writes change the document in between.
const UPDATE_ATTEMPTS: usize = 5;

/// Options of a create or update.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// `_silence`: no realtime event, no callbacks.
    pub silence: bool,
    /// `password_override=1`: store `password` as given (a pre-computed hash); admins only.
    pub password_override: bool,
}

impl App {
    /// Commits a transaction: the one place the core writes. The written models' generations
    /// move on before the store is asked (so cached reads of them are stale from then on, and
    /// none is filed while it writes), and before anyone is answered a write to a model that
    /// decides identities empties the identity cache.
    pub(crate) async fn commit(
        &self,
        tx: WriteTx,
    ) -> Result<Vec<Arc<jxp_store::Change>>, StoreError> {
        let touched: Vec<String> = tx
            .ops
            .iter()
            .filter_map(|op| match op {
                WriteOp::Insert { model, .. }
                | WriteOp::Replace { model, .. }
                | WriteOp::Remove { model, .. } => Some(model.clone()),
                WriteOp::Guard(_) => None,
            })
            .collect();
        let writing = self.inner.generations.writing(&touched);
        let result = self.inner.store.write(tx).await;
        drop(writing);
        if result.is_ok()
            && touched
                .iter()
                .any(|m| IDENTITY_MODELS.contains(&m.as_str()))
        {
            self.inner.identities.invalidate();
        }
        result
    }

    /// Commits a transaction that expects a document's version: `false`, nothing written,
    /// when another write changed the document first.
    pub(crate) async fn commit_versioned(&self, tx: WriteTx) -> Result<bool, CoreError> {
        match self.commit(tx).await {
            Ok(_) => Ok(true),
            Err(StoreError::VersionConflict { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// The read-modify-write of `model/id`, retried on conflict: `attempt` is handed the
    /// stored document and answers `Some` once done, or `None` when its commit lost to
    /// another write; then it runs again on what is stored then, `UPDATE_ATTEMPTS` times at
    /// most.
    pub(crate) async fn retry_on_conflict<T, F, Fut>(
        &self,
        model: &Model,
        id: &str,
        mut attempt: F,
    ) -> Result<T, CoreError>
    where
        F: FnMut(Document) -> Fut,
        Fut: Future<Output = Result<Option<T>, CoreError>>,
    {
        for _ in 0..UPDATE_ATTEMPTS {
            let current = self
                .store()
                .get(&model.slug, id)
                .await?
                .ok_or_else(|| not_found(&model.slug, id))?;
            if let Some(done) = attempt(current).await? {
                return Ok(done);
            }
        }
        Err(CoreError::Contended {
            model: model.slug.clone(),
            id: id.to_owned(),
        })
    }

    /// The stored document a write pre-hook is shown, after the checks the write itself makes
    /// (present, live unless `deleted_ok`, `right` on it), so a hook never sees a write that
    /// would be refused anyway.
    pub(crate) async fn hook_target(
        &self,
        model: &Model,
        who: &Identity,
        id: &str,
        right: Right,
        deleted_ok: bool,
    ) -> Result<Document, CoreError> {
        let current = self
            .store()
            .get(&model.slug, id)
            .await?
            .ok_or_else(|| not_found(&model.slug, id))?;
        check_target(model, who, id, &current, right, deleted_ok)?;
        Ok(public_view(model, &current))
    }

    /// Removes what a client may not set, hashes a new password, and reports unknown keys
    /// under `strict = "throw"` before the model sees them.
    async fn prepare_input(
        &self,
        model: &Model,
        who: &Identity,
        mut body: Document,
        opts: &WriteOptions,
        creating: bool,
    ) -> Result<Document, CoreError> {
        let admin = who.is_admin();
        if opts.password_override && !admin {
            return Err(CoreError::Forbidden(
                "password_override requires an admin".into(),
            ));
        }
        for key in SYSTEM_FIELDS {
            let keep = (*key == "_deleted" && !creating) || (*key == "_owner_id" && admin);
            if !keep {
                body.remove(*key);
            }
        }
        if let Some(v) = body.get("_owner_id")
            && !v.as_str().is_some_and(jxp_model::is_object_id)
        {
            return Err(CoreError::BadRequest(
                "_owner_id: must be a valid id".into(),
            ));
        }
        if model.options.strict == Strict::Throw
            && let Some(key) = body
                .keys()
                .find(|k| model.field(k).is_none() && !SYSTEM_FIELDS.contains(&k.as_str()))
        {
            return Err(jxp_model::ValidationError::new(key.clone(), "is not in the model").into());
        }
        if model.slug == USER_MODEL {
            // Nobody but an admin makes an admin; only the server sets recovery hashes.
            if !admin {
                // `admin: false` echoed back by a client changes nothing; anything else is an
                // escalation attempt.
                match body.remove("admin") {
                    None | Some(Value::Bool(false)) | Some(Value::Null) => {}
                    Some(Value::String(s)) if matches!(s.as_str(), "false" | "0" | "") => {}
                    Some(_) => {
                        return Err(CoreError::Forbidden("only admins may set admin".into()));
                    }
                }
            }
            if !who.system {
                body.remove("temp_hash");
            }
        }
        let has_password = model.field("password").is_some_and(|f| f.is_password());
        if has_password && model.slug == USER_MODEL && !creating && body.contains_key("password") {
            // A new password retires any outstanding recovery link.
            body.insert("temp_hash".into(), Value::Null);
        }
        if has_password
            && !opts.password_override
            && let Some(Value::String(plain)) = body.get("password")
        {
            if plain.is_empty() {
                return Err(
                    jxp_model::ValidationError::new("password", "must not be empty").into(),
                );
            }
            let hashed = password::hash(plain.clone(), self.inner.settings.bcrypt_cost).await?;
            body.insert("password".into(), Value::String(hashed));
        }
        Ok(body)
    }

    /// The document a create stores, from what a client sent (after the pre-hooks): input
    /// prepared, validated and cast, and the system fields set (`_id`, owner, `_deleted`,
    /// `createdAt`, `updatedAt`, `__v`). Also what `jxp import` stores of each line.
    pub(crate) async fn prepare_create(
        &self,
        model: &Model,
        who: &Identity,
        body: Document,
        opts: &WriteOptions,
    ) -> Result<Document, CoreError> {
        let mut doc = self.prepare_input(model, who, body, opts, true).await?;
        model.validate(&mut doc)?;
        let now = now_iso();
        let id = ObjectId::new().to_string();
        let mut stored = Document::with_capacity(doc.len() + 8);
        stored.insert("_id".into(), Value::String(id.clone()));
        stored.extend(doc);
        if model.slug == USER_MODEL {
            // A user owns their own record, so the model's `owner` letters are theirs.
            stored.insert("_owner_id".into(), Value::String(id));
        } else if !stored.contains_key("_owner_id")
            && let Some(uid) = who.user_id()
        {
            stored.insert("_owner_id".into(), Value::String(uid.to_owned()));
        }
        stored.insert("_deleted".into(), Value::Bool(false));
        stored.insert("createdAt".into(), Value::String(now.clone()));
        stored.insert("updatedAt".into(), Value::String(now));
        stored.insert("__v".into(), Value::from(0));
        Ok(stored)
    }

    /// Creates a document; answers it as the caller sees it.
    pub async fn create(
        &self,
        who: &Identity,
        slug: &str,
        body: Document,
        opts: WriteOptions,
    ) -> Result<Document, CoreError> {
        self.create_with(who, slug, body, opts, Vec::new()).await
    }

    /// `create`, with guards checked in the same transaction.
    pub(crate) async fn create_with(
        &self,
        who: &Identity,
        slug: &str,
        body: Document,
        opts: WriteOptions,
        guards: Vec<WriteOp>,
    ) -> Result<Document, CoreError> {
        let model = self.model(slug)?.clone();
        if !allowed_on(&model, who, Right::Create, who.user_id()) {
            return Err(forbidden(&model, Right::Create));
        }
        let body = self
            .run_pre_write(WriteEvent::Post, &model, who, None, None, body)
            .await?;
        let stored = self.prepare_create(&model, who, body, &opts).await?;
        let new_id = created_id(&stored);
        let mut ops = guards;
        ops.push(WriteOp::Insert {
            model: model.slug.clone(),
            doc: stored.clone(),
        });
        let tx = WriteTx {
            ops,
            actor: who.user_id().map(str::to_owned),
            silent: opts.silence,
        };
        self.commit(tx).await?;
        let view = public_view(&model, &stored);
        self.run_post_write(
            WriteEvent::Post,
            &model,
            who,
            &new_id,
            (view.clone(), None),
            opts.silence,
        )
        .await;
        // Hooks see the whole public view; the caller what they may read.
        Ok(into_view_as(&model, who, view))
    }

    /// Updates a document with the top-level keys of `body` (a PUT is a PATCH); `_deleted:
    /// false` undeletes. Answers the document as the caller sees it.
    pub async fn update(
        &self,
        who: &Identity,
        slug: &str,
        id: &str,
        body: Document,
        opts: WriteOptions,
    ) -> Result<Document, CoreError> {
        match self
            .update_edit(who, slug, id, Edit::Merge(body), opts, None)
            .await?
        {
            Edited::Modified(doc) | Edited::Unchanged(doc) => Ok(doc),
            Edited::NoLongerMatches => Err(not_found(slug, id)),
        }
    }

    /// Changes one document as `edit` says, retrying when another write got in between. With
    /// `matching`, the document must still match it when read for the write (else
    /// `NoLongerMatches`, nothing written), and an edit that changes nothing writes nothing.
    pub(crate) async fn update_edit(
        &self,
        who: &Identity,
        slug: &str,
        id: &str,
        edit: Edit,
        opts: WriteOptions,
        matching: Option<&Filter>,
    ) -> Result<Edited, CoreError> {
        let model = self.model(slug)?.clone();
        check_id(id)?;
        let edit = if self.has_pre_write(WriteEvent::Put, &model.slug) {
            let undeleting = match &edit {
                Edit::Merge(body) => undelete_flag(body)?,
                _ => false,
            };
            let current = self
                .hook_target(&model, who, id, Right::Update, undeleting)
                .await?;
            self.hooked_edit(&model, who, id, current, edit).await?
        } else {
            edit
        };
        let (edit, undelete) = match edit {
            Edit::Merge(body) => {
                let body = self.prepare_input(&model, who, body, &opts, false).await?;
                let undelete = undelete_flag(&body)?;
                (Edit::Merge(body), undelete)
            }
            Edit::Replace(body) => {
                let body = self.prepare_input(&model, who, body, &opts, true).await?;
                (Edit::Replace(body), false)
            }
            Edit::Operators(mut update) => {
                let set = update.set_fields();
                let set = self.prepare_input(&model, who, set, &opts, false).await?;
                update.replace_set_fields(set);
                (Edit::Operators(update), false)
            }
        };
        let (model, edit, opts) = (&*model, &edit, &opts);
        self.retry_on_conflict(model, id, move |current| async move {
            if let Some(filter) = matching
                && !jxp_query::matches(filter, &current)
            {
                return Ok(Some(Edited::NoLongerMatches));
            }
            check_target(model, who, id, &current, Right::Update, undelete)?;
            let version = current.get("__v").and_then(Value::as_i64).unwrap_or(0);
            let mut doc = current.clone();
            apply_edit(model, edit, &mut doc)?;
            model.validate(&mut doc)?;
            if matching.is_some() && !undelete && same_fields(&current, &doc) {
                return Ok(Some(Edited::Unchanged(view_as(model, who, &current))));
            }
            doc.insert("_deleted".into(), Value::Bool(false));
            doc.insert("updatedAt".into(), Value::String(now_iso()));
            doc.insert("__v".into(), Value::from(version + 1));
            if let Some(uid) = who.user_id() {
                doc.insert("_updated_by_id".into(), Value::String(uid.to_owned()));
            }
            // A new password ends every login of the user, in the same transaction.
            let revoking =
                model.slug == USER_MODEL && current.get("password") != doc.get("password");
            // Post-hooks see the document as it was; read it before it moves into the change.
            let before = (!opts.silence && self.has_post_write(WriteEvent::Put, &model.slug))
                .then(|| public_view(model, &current));
            let mut ops = vec![WriteOp::Replace {
                model: model.slug.clone(),
                id: id.to_owned(),
                doc: doc.clone(),
                expect_version: Some(version),
                op: ChangeOp::Update,
                prev: Some(Arc::new(current)),
            }];
            if revoking {
                ops.extend(self.revoke_all_ops(id).await?);
            }
            let tx = WriteTx {
                ops,
                actor: who.user_id().map(str::to_owned),
                silent: opts.silence,
            };
            match self.commit(tx).await {
                Ok(_) => {}
                Err(StoreError::VersionConflict { .. }) => return Ok(None),
                // A concurrent logout removed a token first: read again and revoke what is
                // there then.
                Err(StoreError::NotFound { model: m, .. }) if revoking && m != model.slug => {
                    return Ok(None);
                }
                Err(e) => return Err(e.into()),
            }
            let view = public_view(model, &doc);
            self.run_post_write(
                WriteEvent::Put,
                model,
                who,
                id,
                (view.clone(), before),
                opts.silence,
            )
            .await;
            Ok(Some(Edited::Modified(into_view_as(model, who, view))))
        })
        .await
    }

    /// Runs the update pre-hooks on what an edit writes: a PUT's patch, a replacement
    /// document, or the `$set` fields of update operators (the other operators are not shown).
    async fn hooked_edit(
        &self,
        model: &Model,
        who: &Identity,
        id: &str,
        current: Document,
        edit: Edit,
    ) -> Result<Edit, CoreError> {
        let current = Some(current);
        let put = WriteEvent::Put;
        Ok(match edit {
            Edit::Merge(body) => Edit::Merge(
                self.run_pre_write(put, model, who, Some(id), current, body)
                    .await?,
            ),
            Edit::Replace(body) => Edit::Replace(
                self.run_pre_write(put, model, who, Some(id), current, body)
                    .await?,
            ),
            Edit::Operators(mut update) => {
                let set = self
                    .run_pre_write(put, model, who, Some(id), current, update.set_fields())
                    .await?;
                update.replace_set_fields(set);
                Edit::Operators(update)
            }
        })
    }
}

/// The `_id` `prepare_create` gave a document.
fn created_id(stored: &Document) -> String {
    stored
        .get("_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Refuses a write to the stored document `current`: absent when it is deleted (unless
/// `deleted_ok`: an undelete, a permanent delete) or when the caller may not read it,
/// forbidden without `right` on it.
pub(crate) fn check_target(
    model: &Model,
    who: &Identity,
    id: &str,
    current: &Document,
    right: Right,
    deleted_ok: bool,
) -> Result<(), CoreError> {
    let deleted = current
        .get("_deleted")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if deleted && !deleted_ok {
        return Err(not_found(&model.slug, id));
    }
    let owner = current.get("_owner_id").and_then(Value::as_str);
    if !allowed_on(model, who, right, owner) {
        // A document the caller may not read is answered as GET answers it: as absent, so
        // that a write cannot tell another user's document from a missing one. A model the
        // caller may not read at all is a 403 for every id, as on GET.
        let hidden = access(model, who, Right::Read) != Access::Denied
            && !allowed_on(model, who, Right::Read, owner);
        if hidden {
            return Err(not_found(&model.slug, id));
        }
        return Err(forbidden(model, right));
    }
    Ok(())
}

/// Whether an update body undeletes (`_deleted: false`); any other `_deleted` is refused.
fn undelete_flag(body: &Document) -> Result<bool, CoreError> {
    match body.get("_deleted") {
        None => Ok(false),
        Some(Value::Bool(false)) => Ok(true),
        Some(Value::String(s)) if s == "false" => Ok(true),
        Some(_) => Err(CoreError::BadRequest(
            "_deleted: only false (undelete) may be set; delete with DELETE".into(),
        )),
    }
}

/// How an update changes a stored document.
pub(crate) enum Edit {
    /// PUT: the given top-level fields replace theirs.
    Merge(Document),
    /// `replaceOne`: the document's own fields become exactly these, but for private fields
    /// the replacement leaves out (the client never saw them, so it cannot carry them over).
    Replace(Document),
    /// MongoDB update operators.
    Operators(Update),
}

/// What `update_edit` did.
pub(crate) enum Edited {
    /// Written; the document as the caller sees it.
    Modified(Document),
    /// Nothing to change; the stored document as the caller sees it.
    Unchanged(Document),
    /// The document no longer matched the filter it was chosen by.
    NoLongerMatches,
}

fn apply_edit(model: &Model, edit: &Edit, doc: &mut Document) -> Result<(), CoreError> {
    match edit {
        Edit::Merge(body) => {
            for (k, v) in body {
                if k != "_deleted" {
                    doc.insert(k.clone(), v.clone());
                }
            }
        }
        Edit::Replace(body) => {
            doc.retain(|k, _| {
                SYSTEM_FIELDS.contains(&k.as_str())
                    || (model.field(k).is_some_and(|f| f.is_private()) && !body.contains_key(k))
            });
            for (k, v) in body {
                doc.insert(k.clone(), v.clone());
            }
        }
        Edit::Operators(update) => update
            .apply(doc, false)
            .map_err(|e| CoreError::BadRequest(e.0))?,
    }
    Ok(())
}

/// Whether two versions of a document hold the same fields, system fields aside.
fn same_fields(a: &Document, b: &Document) -> bool {
    let own = |d: &Document| {
        d.iter()
            .filter(|(k, _)| !SYSTEM_FIELDS.contains(&k.as_str()))
            .count()
    };
    own(a) == own(b)
        && a.iter()
            .filter(|(k, _)| !SYSTEM_FIELDS.contains(&k.as_str()))
            .all(|(k, v)| b.get(k) == Some(v))
}
