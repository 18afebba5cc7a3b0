//! The one write path. Every route that creates, updates or deletes a document ends here, so
//! validation, permissions, system fields and the store transaction (with its change-log entry
//! and realtime event) are the same whichever route the write came from.

use std::sync::Arc;

use jxp_model::{Document, Model, ObjectId, SYSTEM_FIELDS, Strict, now_iso, public_view};
use jxp_query::{Filter, Find, Op, Path, Update, resolve_path};
use jxp_store::{ChangeOp, Guard, RefSpec, StoreError, WriteOp, WriteTx};
use serde_json::Value;

use crate::app::App;
use crate::auth::IDENTITY_MODELS;
use crate::error::CoreError;
use crate::hooks::WriteEvent;
use crate::identity::Identity;
use crate::password;
use crate::perms::{Right, allowed_on};

/// The built-in user model, whose `admin` and `temp_hash` fields only the server and admins
/// may set.
const USER_MODEL: &str = "user";
/// Built-in records that belong to one user and go when the user goes.
const USER_OWNED: &[&str] = &["token", "refreshtoken", "apikey", "usergroups"];
/// How often an update is retried when another write changed the document in between.
const UPDATE_ATTEMPTS: usize = 5;
/// How deep `_cascade` follows referrers of referrers.
const CASCADE_DEPTH: usize = 8;

/// Options of a create or update.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// `_silence`: no realtime event, no callbacks.
    pub silence: bool,
    /// `password_override=1`: store `password` as given (a pre-computed hash); admins only.
    pub password_override: bool,
}

/// Options of a delete.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub perma: bool,
    pub cascade: bool,
    pub silence: bool,
}

pub(crate) fn forbidden(model: &Model, right: Right) -> CoreError {
    let verb = match right {
        Right::Create => "create",
        Right::Read => "read",
        Right::Update => "update",
        Right::Delete => "delete",
    };
    CoreError::Forbidden(format!("you may not {verb} {}", model.slug))
}

pub(crate) fn not_found(model: &Model, id: &str) -> CoreError {
    CoreError::NotFound(format!("{}/{id} not found", model.slug))
}

/// Checks an `:id` is ObjectId-shaped, so a bad id is a 400 and never a lookup.
pub(crate) fn check_id(id: &str) -> Result<(), CoreError> {
    if jxp_model::is_object_id(id) {
        Ok(())
    } else {
        Err(CoreError::BadRequest(format!("\"{id}\" is not a valid id")))
    }
}

impl App {
    /// Commits a transaction: the one place the core writes. Before anyone is answered, the
    /// written models' generations move on (so cached reads of them are stale) and a write to
    /// a model that decides identities empties the identity cache.
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
        let result = self.inner.store.write(tx).await;
        if result.is_ok() {
            for model in &touched {
                self.inner.generations.bump(model);
            }
            if touched
                .iter()
                .any(|m| IDENTITY_MODELS.contains(&m.as_str()))
            {
                self.inner.identities.invalidate();
            }
        }
        result
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
        let mut doc = self.prepare_input(&model, who, body, &opts, true).await?;
        model.validate(&mut doc)?;
        let now = now_iso();
        let id = ObjectId::new().to_string();
        let new_id = id.clone();
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
            view.clone(),
            opts.silence,
        )
        .await;
        Ok(view)
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
            Edited::NoLongerMatches => Err(CoreError::NotFound(format!("{slug}/{id} not found"))),
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
        for _ in 0..UPDATE_ATTEMPTS {
            let current = self
                .inner
                .store
                .get(&model.slug, id)
                .await?
                .ok_or_else(|| not_found(&model, id))?;
            let deleted = current
                .get("_deleted")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if deleted && !undelete {
                return Err(not_found(&model, id));
            }
            if let Some(filter) = matching
                && !jxp_query::matches(filter, &current)
            {
                return Ok(Edited::NoLongerMatches);
            }
            let owner = current.get("_owner_id").and_then(Value::as_str);
            if !allowed_on(&model, who, Right::Update, owner) {
                return Err(forbidden(&model, Right::Update));
            }
            let version = current.get("__v").and_then(Value::as_i64).unwrap_or(0);
            let mut doc = current.clone();
            apply_edit(&model, &edit, &mut doc)?;
            model.validate(&mut doc)?;
            if matching.is_some() && !undelete && same_fields(&current, &doc) {
                return Ok(Edited::Unchanged(public_view(&model, &current)));
            }
            doc.insert("_deleted".into(), Value::Bool(false));
            doc.insert("updatedAt".into(), Value::String(now_iso()));
            doc.insert("__v".into(), Value::from(version + 1));
            if let Some(uid) = who.user_id() {
                doc.insert("_updated_by_id".into(), Value::String(uid.to_owned()));
            }
            let tx = WriteTx {
                ops: vec![WriteOp::Replace {
                    model: model.slug.clone(),
                    id: id.to_owned(),
                    doc: doc.clone(),
                    expect_version: Some(version),
                    op: ChangeOp::Update,
                }],
                actor: who.user_id().map(str::to_owned),
                silent: opts.silence,
            };
            match self.commit(tx).await {
                Ok(_) => {
                    let view = public_view(&model, &doc);
                    self.run_post_write(
                        WriteEvent::Put,
                        &model,
                        who,
                        id,
                        view.clone(),
                        opts.silence,
                    )
                    .await;
                    return Ok(Edited::Modified(view));
                }
                Err(StoreError::VersionConflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(CoreError::Conflict(format!(
            "{}/{id} is being changed by other requests; try again",
            model.slug
        )))
    }

    /// Deletes a document: soft by default, for good with `perma` (or when the model has
    /// `soft_delete = false`); with `cascade`, its referrers go with it; without, referrers
    /// make it a 409. All of it is one transaction.
    pub async fn delete(
        &self,
        who: &Identity,
        slug: &str,
        id: &str,
        opts: DeleteOptions,
    ) -> Result<(), CoreError> {
        let model = self.model(slug)?.clone();
        check_id(id)?;
        if self.has_pre_write(WriteEvent::Delete, &model.slug) {
            let current = self
                .hook_target(&model, who, id, Right::Delete, opts.perma)
                .await?;
            self.run_pre_write(
                WriteEvent::Delete,
                &model,
                who,
                Some(id),
                Some(current),
                Document::new(),
            )
            .await?;
        }
        for _ in 0..UPDATE_ATTEMPTS {
            let current = self
                .inner
                .store
                .get(&model.slug, id)
                .await?
                .ok_or_else(|| not_found(&model, id))?;
            // The document as it was, for the post-hooks (only made when there are some).
            let before = self
                .has_post_write(WriteEvent::Delete, &model.slug)
                .then(|| public_view(&model, &current));
            let deleted = current
                .get("_deleted")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if deleted && !opts.perma {
                return Err(not_found(&model, id));
            }
            let owner = current.get("_owner_id").and_then(Value::as_str);
            if !allowed_on(&model, who, Right::Delete, owner) {
                return Err(forbidden(&model, Right::Delete));
            }
            let mut ops = self.credential_ops(&model, id).await?;
            if opts.cascade {
                let mut seen = vec![(model.slug.clone(), id.to_owned())];
                self.cascade_ops(&model, id, &opts, who, &mut seen, &mut ops, 0)
                    .await?;
            }
            ops.push(WriteOp::Guard(Guard::NotReferenced {
                model: model.slug.clone(),
                id: id.to_owned(),
                by: self.referrer_specs(&model),
            }));
            ops.push(delete_op(&model, id, current, &opts, who));
            let tx = WriteTx {
                ops,
                actor: who.user_id().map(str::to_owned),
                silent: opts.silence,
            };
            match self.commit(tx).await {
                Ok(_) => {
                    if let Some(before) = before {
                        self.run_post_write(
                            WriteEvent::Delete,
                            &model,
                            who,
                            id,
                            before,
                            opts.silence,
                        )
                        .await;
                    }
                    return Ok(());
                }
                Err(StoreError::VersionConflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(CoreError::Conflict(format!(
            "{}/{id} is being changed by other requests; try again",
            model.slug
        )))
    }

    /// Deleting a user removes their tokens, keys and group record with them: those belong to
    /// the user and never keep one alive.
    async fn credential_ops(&self, model: &Model, id: &str) -> Result<Vec<WriteOp>, CoreError> {
        let mut ops = Vec::new();
        if model.slug != USER_MODEL {
            return Ok(ops);
        }
        for owned in USER_OWNED {
            let filter = Filter::cond(Path::plain("user_id"), Op::Eq, Value::String(id.to_owned()));
            for doc in self
                .inner
                .store
                .find(
                    owned,
                    &Find {
                        filter,
                        ..Find::default()
                    },
                )
                .await?
            {
                if let Some(rid) = doc.get("_id").and_then(Value::as_str) {
                    ops.push(WriteOp::Remove {
                        model: (*owned).to_owned(),
                        id: rid.to_owned(),
                    });
                }
            }
        }
        Ok(ops)
    }

    /// Who may refer to a document of `model`, for the referrer check and cascades; the
    /// records a user owns outright are not referrers of that user.
    fn referrers(&self, model: &Model) -> Vec<(Arc<Model>, String, bool)> {
        let mut refs = self.inner.schema.referrers_of(model);
        if model.slug == USER_MODEL {
            refs.retain(|(m, _, _)| !USER_OWNED.contains(&m.slug.as_str()));
        }
        refs
    }

    fn referrer_specs(&self, model: &Model) -> Vec<RefSpec> {
        self.referrers(model)
            .into_iter()
            .filter_map(|(m, path, _)| {
                let (p, _) = resolve_path(&m, &path).ok()?;
                Some(RefSpec {
                    model: m.slug.clone(),
                    path,
                    array_at: p.array_at,
                })
            })
            .collect()
    }

    /// Collects delete operations for every live referrer of `model/id`, depth first, so
    /// referrers of referrers go before them.
    #[allow(clippy::too_many_arguments)]
    fn cascade_ops<'a>(
        &'a self,
        model: &'a Model,
        id: &'a str,
        opts: &'a DeleteOptions,
        who: &'a Identity,
        seen: &'a mut Vec<(String, String)>,
        ops: &'a mut Vec<WriteOp>,
        depth: usize,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), CoreError>> + Send + 'a>>
    {
        Box::pin(async move {
            if depth >= CASCADE_DEPTH {
                return Err(CoreError::Conflict(format!(
                    "cascade from {}/{id} is deeper than {CASCADE_DEPTH} levels",
                    model.slug
                )));
            }
            for (ref_model, path, _) in self.referrers(model) {
                let (p, _) = resolve_path(&ref_model, &path)?;
                let find = Find {
                    filter: Filter::cond(p, Op::Eq, Value::String(id.to_owned()))
                        .and(Filter::live()),
                    ..Find::default()
                };
                for doc in self.inner.store.find(&ref_model.slug, &find).await? {
                    let Some(rid) = doc.get("_id").and_then(Value::as_str).map(str::to_owned)
                    else {
                        continue;
                    };
                    if seen.iter().any(|(m, i)| *m == ref_model.slug && *i == rid) {
                        continue;
                    }
                    let owner = doc.get("_owner_id").and_then(Value::as_str);
                    if !allowed_on(&ref_model, who, Right::Delete, owner) {
                        return Err(CoreError::Forbidden(format!(
                            "cascade would delete {}/{rid}, which you may not delete",
                            ref_model.slug
                        )));
                    }
                    seen.push((ref_model.slug.clone(), rid.clone()));
                    let ref_model: Arc<Model> = ref_model.clone();
                    self.cascade_ops(&ref_model, &rid, opts, who, seen, ops, depth + 1)
                        .await?;
                    ops.push(delete_op(&ref_model, &rid, doc, opts, who));
                }
            }
            Ok(())
        })
    }
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

/// A soft delete (a replace marked as a delete) or a permanent one.
fn delete_op(
    model: &Model,
    id: &str,
    mut current: Document,
    opts: &DeleteOptions,
    who: &Identity,
) -> WriteOp {
    if opts.perma || !model.options.soft_delete {
        return WriteOp::Remove {
            model: model.slug.clone(),
            id: id.to_owned(),
        };
    }
    let version = current.get("__v").and_then(Value::as_i64).unwrap_or(0);
    current.insert("_deleted".into(), Value::Bool(true));
    current.insert("updatedAt".into(), Value::String(now_iso()));
    current.insert("__v".into(), Value::from(version + 1));
    if let Some(uid) = who.user_id() {
        current.insert("_updated_by_id".into(), Value::String(uid.to_owned()));
    }
    WriteOp::Replace {
        model: model.slug.clone(),
        id: id.to_owned(),
        doc: current,
        expect_version: Some(version),
        op: ChangeOp::Delete,
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
