//! Running the registered hooks at their points in the write, read and login paths.

use std::sync::Arc;

use jxp_model::{Document, Model};
use jxp_query::Filter;

use super::{LoggedInCtx, LoginCtx, ReadEvent, ReadRef, WriteCtx, WriteEvent, WrittenCtx};
use crate::app::{App, Hooks};
use crate::error::CoreError;
use crate::identity::Identity;
use crate::realtime::ReadLimits;

impl App {
    /// The hooks and functions this app was built with.
    pub fn hooks(&self) -> &Hooks {
        &self.inner.settings.hooks
    }

    /// Whether any pre-hook will see a write of `event` on `slug` (so the stored document is
    /// worth reading for it).
    pub(crate) fn has_pre_write(&self, event: WriteEvent, slug: &str) -> bool {
        self.hooks().pre_writes(event, slug).next().is_some()
    }

    /// Whether any read pre-hook covers `slug`. Answers about such a model are not cached: a
    /// hook may decide on more than who is asking, and must run on every read.
    pub fn has_read_hooks(&self, slug: &str) -> bool {
        self.hooks().pre_read.iter().any(|(_, s, _)| s.covers(slug))
    }

    /// Whether any post-hook will see a write of `event` on `slug`.
    pub(crate) fn has_post_write(&self, event: WriteEvent, slug: &str) -> bool {
        self.hooks().post_writes(event, slug).next().is_some()
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

    /// Runs the write post-hooks of a committed write, unless it was silenced. They run on
    /// their own task, so a hook that panics, or a client that hangs up, does not stop the
    /// rest; errors are logged, the write stands.
    pub(crate) async fn run_post_write(
        &self,
        event: WriteEvent,
        model: &Model,
        who: &Identity,
        id: &str,
        (doc, before): (Document, Option<Document>),
        silent: bool,
    ) {
        if silent {
            return;
        }
        // Owned: they run on a task of their own.
        let hooks: Vec<_> = self
            .hooks()
            .post_writes(event, &model.slug)
            .cloned()
            .collect();
        if hooks.is_empty() {
            return;
        }
        let ctx = WrittenCtx {
            event,
            model: model.slug.clone(),
            identity: who.clone(),
            id: id.to_owned(),
            doc,
            before,
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
        Ok(self
            .read_constraint_shared(event, model, who, id, None)
            .await?
            .map_or(Filter::All, Arc::unwrap_or_clone))
    }

    /// `read_constraint` as the hooks answered it, showing them the caller's own filter
    /// (`query`): `None` when there are none, or all answer every document. One hook's
    /// filter is its own, shared rather than copied.
    pub(crate) async fn read_constraint_shared(
        &self,
        event: ReadEvent,
        model: &Model,
        who: &Identity,
        id: Option<&str>,
        query: Option<&Filter>,
    ) -> Result<Option<Arc<Filter>>, CoreError> {
        let mut filter: Option<Arc<Filter>> = None;
        for hook in self.hooks().pre_reads(event, &model.slug) {
            let ctx = ReadRef {
                event,
                model: &model.slug,
                identity: who,
                id,
                query,
            };
            let answered = hook(ctx).await?;
            if matches!(*answered, Filter::All) {
                continue;
            }
            filter = Some(match filter {
                None => answered,
                Some(before) => {
                    Arc::new(Arc::unwrap_or_clone(before).and(Arc::unwrap_or_clone(answered)))
                }
            });
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
                .next()
                .is_none()
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
    pub(crate) async fn run_post_login(
        &self,
        user_id: &str,
        user: Document,
        result: Document,
    ) -> Document {
        let mut extra = Document::new();
        for hook in &self.hooks().post_login {
            let ctx = LoggedInCtx {
                user_id: user_id.to_owned(),
                user: user.clone(),
                result: result.clone(),
            };
            match hook(ctx).await {
                Ok(fields) => extra.extend(fields),
                Err(e) => tracing::warn!(user_id, error = %e, "login post-hook failed"),
            }
        }
        extra
    }
}
