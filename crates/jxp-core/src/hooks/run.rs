//! Running the registered hooks at their points in the write, read and login paths.

use jxp_model::{Document, Model, public_view};
use jxp_query::Filter;
use serde_json::Value;

use super::{Hooks, LoggedInCtx, LoginCtx, ReadCtx, ReadEvent, WriteCtx, WriteEvent, WrittenCtx};
use crate::app::App;
use crate::error::CoreError;
use crate::identity::Identity;
use crate::perms::{Right, allowed_on};
use crate::realtime::ReadLimits;
use crate::write::{Edit, forbidden, not_found};

impl App {
    /// The hooks and functions this app was built with.
    pub fn hooks(&self) -> &Hooks {
        &self.inner.settings.hooks
    }

    /// Whether any pre-hook will see a write of `event` on `slug` (so the stored document is
    /// worth reading for it).
    pub(crate) fn has_pre_write(&self, event: WriteEvent, slug: &str) -> bool {
        !self.hooks().pre_writes(event, slug).is_empty()
    }

    /// Whether any read pre-hook covers `slug`. Answers about such a model are not cached: a
    /// hook may decide on more than who is asking, and must run on every read.
    pub fn has_read_hooks(&self, slug: &str) -> bool {
        self.hooks().pre_read.iter().any(|(_, s, _)| s.covers(slug))
    }

    /// Whether any post-hook will see a write of `event` on `slug`.
    pub(crate) fn has_post_write(&self, event: WriteEvent, slug: &str) -> bool {
        !self.hooks().post_writes(event, slug).is_empty()
    }

    /// Runs the write pre-hooks in order, each on what the one before answered.
    pub(crate) async fn run_pre_write(
        &self,
        event: WriteEvent,
        model: &Model,
        who: &Identity,
        id: Option<&str>,
        current: Option<Document>,
        mut doc: Document,
    ) -> Result<Document, CoreError> {
        for hook in self.hooks().pre_writes(event, &model.slug) {
            let ctx = WriteCtx {
                event,
                model: model.slug.clone(),
                identity: who.clone(),
                id: id.map(str::to_owned),
                current: current.clone(),
                doc,
            };
            doc = hook(ctx).await?;
        }
        Ok(doc)
    }

    /// Runs the update pre-hooks on what an edit writes: a PUT's patch, a replacement
    /// document, or the `$set` fields of update operators (the other operators are not shown).
    pub(crate) async fn hooked_edit(
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
            .inner
            .store
            .get(&model.slug, id)
            .await?
            .ok_or_else(|| not_found(model, id))?;
        let deleted = current
            .get("_deleted")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if deleted && !deleted_ok {
            return Err(not_found(model, id));
        }
        let owner = current.get("_owner_id").and_then(Value::as_str);
        if !allowed_on(model, who, right, owner) {
            return Err(forbidden(model, right));
        }
        Ok(public_view(model, &current))
    }

    /// Runs the write post-hooks of a committed write, unless it was silenced. They run on
    /// their own task, so a hook that panics, or a client that hangs up, does not stop the
    /// rest; errors are logged, the write stands.
    pub(crate) async fn run_post_write(
        &self,
        event: WriteEvent,
        model: &Model,
        who: &Identity,
        id: &str,
        doc: Document,
        silent: bool,
    ) {
        let hooks = self.hooks().post_writes(event, &model.slug);
        if silent || hooks.is_empty() {
            return;
        }
        let ctx = WrittenCtx {
            event,
            model: model.slug.clone(),
            identity: who.clone(),
            id: id.to_owned(),
            doc,
        };
        let task = tokio::spawn(async move {
            for hook in hooks {
                if let Err(e) = hook(ctx.clone()).await {
                    tracing::warn!(model = %ctx.model, id = %ctx.id, event = ?ctx.event, error = %e, "post-hook failed");
                }
            }
        });
        if let Err(e) = task.await {
            tracing::error!(model = %model.slug, id, error = %e, "post-hook task failed");
        }
    }

    /// The filter the read pre-hooks put on a read (`Filter::All` when there are none).
    pub(crate) async fn read_constraint(
        &self,
        event: ReadEvent,
        model: &Model,
        who: &Identity,
        id: Option<&str>,
    ) -> Result<Filter, CoreError> {
        self.read_constraint_of(event, model, who, id, None).await
    }

    /// `read_constraint`, showing the hooks the caller's own filter.
    pub(crate) async fn read_constraint_of(
        &self,
        event: ReadEvent,
        model: &Model,
        who: &Identity,
        id: Option<&str>,
        query: Option<&Filter>,
    ) -> Result<Filter, CoreError> {
        let mut filter = Filter::All;
        for hook in self.hooks().pre_reads(event, &model.slug) {
            let ctx = ReadCtx {
                event,
                model: model.slug.clone(),
                identity: who.clone(),
                id: id.map(str::to_owned),
                query: query.cloned(),
            };
            filter = filter.and(hook(ctx).await?);
        }
        Ok(filter)
    }

    /// What the `get` read hooks let `who` see of each model that has them, for the realtime
    /// feed: a hook that refuses (or fails) withholds the whole model.
    pub(crate) async fn read_limits(&self, who: &Identity) -> ReadLimits {
        let mut out = ReadLimits::new();
        for model in self.inner.schema.models.values() {
            if self
                .hooks()
                .pre_reads(ReadEvent::Get, &model.slug)
                .is_empty()
            {
                continue;
            }
            let limit = match self.read_constraint(ReadEvent::Get, model, who, None).await {
                Ok(filter) => Some(filter),
                Err(e) => {
                    tracing::debug!(model = %model.slug, error = %e, "a read hook withholds the model from a socket");
                    None
                }
            };
            out.push((model.slug.clone(), limit));
        }
        out
    }

    /// Runs the login pre-hooks; any of them may refuse the login.
    pub(crate) async fn run_pre_login(&self, email: &str) -> Result<(), CoreError> {
        for hook in &self.hooks().pre_login {
            hook(LoginCtx {
                email: email.to_owned(),
            })
            .await?;
        }
        Ok(())
    }

    /// Runs the login post-hooks and gathers the fields they add. A failing hook is logged and
    /// adds nothing.
    pub(crate) async fn run_post_login(&self, user_id: &str, user: Document) -> Document {
        let mut extra = Document::new();
        for hook in &self.hooks().post_login {
            let ctx = LoggedInCtx {
                user_id: user_id.to_owned(),
                user: user.clone(),
            };
            match hook(ctx).await {
                Ok(fields) => extra.extend(fields),
                Err(e) => tracing::warn!(user_id, error = %e, "login post-hook failed"),
            }
        }
        extra
    }
}
