//! Deletes on the one write path: soft or permanent, with the referrer check inside the
//! transaction (`Guard::NotReferenced`), and `_cascade`, which deletes the referrers (and
//! theirs) in the same transaction. Deleting a user takes their tokens, keys and group record
//! with them.

use std::sync::Arc;

use jxp_model::{Document, Model, now_iso, public_view};
use jxp_query::{Filter, Find, Op, Path, resolve_path};
use jxp_store::{ChangeOp, Guard, RefSpec, WriteOp, WriteTx};
use serde_json::Value;

use crate::app::App;
use crate::error::{CoreError, check_id};
use crate::hooks::WriteEvent;
use crate::identity::Identity;
use crate::perms::{Right, allowed_on};
use crate::write::{USER_MODEL, check_target};

/// Built-in records that belong to one user and go when the user goes.
const USER_OWNED: &[&str] = &["token", "refreshtoken", "apikey", "usergroups"];
/// How deep `_cascade` follows referrers of referrers.
const CASCADE_DEPTH: usize = 8;

/// Options of a delete.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub perma: bool,
    pub cascade: bool,
    pub silence: bool,
}

impl App {
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
        let (model, opts) = (&*model, &opts);
        self.retry_on_conflict(model, id, move |current| async move {
            // The document as it was, for the post-hooks (only made when there are some).
            let before = self
                .has_post_write(WriteEvent::Delete, &model.slug)
                .then(|| public_view(model, &current));
            check_target(model, who, id, &current, Right::Delete, opts.perma)?;
            let mut ops = self.credential_ops(model, id).await?;
            if opts.cascade {
                let mut seen = vec![(model.slug.clone(), id.to_owned())];
                self.cascade_ops(model, id, opts, who, &mut seen, &mut ops, 0)
                    .await?;
            }
            ops.push(WriteOp::Guard(Guard::NotReferenced {
                model: model.slug.clone(),
                id: id.to_owned(),
                by: self.referrer_specs(model, id),
            }));
            ops.push(delete_op(model, id, current, opts, who));
            let tx = WriteTx {
                ops,
                actor: who.user_id().map(str::to_owned),
                silent: opts.silence,
            };
            if !self.commit_versioned(tx).await? {
                return Ok(None);
            }
            if let Some(before) = before {
                self.run_post_write(
                    WriteEvent::Delete,
                    model,
                    who,
                    id,
                    (before, None),
                    opts.silence,
                )
                .await;
            }
            Ok(Some(()))
        })
        .await
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
                .store()
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

    /// The live referrers of `model/id`, as the store's guard looks for them.
    fn referrer_specs(&self, model: &Model, id: &str) -> Vec<RefSpec> {
        self.referrers(model)
            .into_iter()
            .filter_map(|(m, path, _)| {
                let (p, _) = resolve_path(&m, &path).ok()?;
                let filter = Filter::cond(p, Op::Eq, Value::String(id.to_owned()));
                Some(RefSpec {
                    model: m.slug.clone(),
                    path,
                    filter: filter.and(Filter::live()),
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
                return Err(CoreError::CascadeTooDeep {
                    model: model.slug.clone(),
                    id: id.to_owned(),
                    depth: CASCADE_DEPTH,
                });
            }
            for (ref_model, path, _) in self.referrers(model) {
                let (p, _) = resolve_path(&ref_model, &path)?;
                let find = Find {
                    filter: Filter::cond(p, Op::Eq, Value::String(id.to_owned()))
                        .and(Filter::live()),
                    ..Find::default()
                };
                for doc in self.store().find(&ref_model.slug, &find).await? {
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
        prev: None,
    }
}
