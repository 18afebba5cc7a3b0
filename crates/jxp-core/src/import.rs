//! The core's part of `jxp import`: which model an import may write (none whose creates run
//! hooks, unless the caller says to skip them), each document prepared exactly as a create
//! prepares it (`App::prepare_create`: the model's validation, defaults and casts, the system
//! fields), and the store's import, after which cached reads of the model are stale. The
//! reading of the file, the threads and the progress are the caller's.

use std::sync::Arc;

use jxp_model::{Document, Model};
use jxp_store::{ImportDoc, ImportError, ImportSteps, Imported};

use crate::app::App;
use crate::auth::cache::IDENTITY_MODELS;
use crate::error::CoreError;
use crate::hooks::WriteEvent;
use crate::identity::Identity;
use crate::write::WriteOptions;

impl App {
    /// The model `name` names (its slug or its name) for an import. A model
    /// whose creates run hooks is refused unless `skip_hooks`: an import does not run them,
    /// and must not skip them without being told to.
    pub fn import_model(&self, name: &str, skip_hooks: bool) -> Result<Arc<Model>, CoreError> {
        let schema = self.schema();
        // By slug, then as a model file's `link` names a model: its name, or its slug in
        // any case.
        let model = schema
            .get(name)
            .or_else(|| schema.by_link(name))
            .ok_or_else(|| CoreError::UnknownModel(name.to_owned()))?;
        let hooked = self.has_pre_write(WriteEvent::Post, &model.slug)
            || self.has_post_write(WriteEvent::Post, &model.slug);
        if hooked && !skip_hooks {
            return Err(CoreError::BadRequest(format!(
                "model {} has hooks that run when a document is created, which an import does \
                 not run: pass --no-hooks to import without them",
                model.name
            )));
        }
        Ok(model.clone())
    }

    /// One document as a create by the server itself stores it, turned into what the store
    /// imports. The same checks as a POST by an admin: the model's validation, defaults,
    /// casts and required fields; system fields in the input are dropped and set anew
    /// (`_owner_id` is kept, as an admin's is).
    pub async fn import_document(
        &self,
        model: &Model,
        body: Document,
    ) -> Result<ImportDoc, CoreError> {
        let stored = self
            .prepare_create(model, &Identity::system(), body, &WriteOptions::default())
            .await?;
        Ok(ImportDoc::new(&model.slug, &stored)?)
    }

    /// Writes the documents fed through `steps` into `model`, in one transaction, once the
    /// feed sends `Commit`; nothing otherwise. Afterwards cached reads of the model are
    /// stale, as after any write.
    pub async fn import(&self, model: &Model, steps: ImportSteps) -> Result<Imported, ImportError> {
        let slug = [model.slug.clone()];
        let writing = self.inner.generations.writing(&slug);
        let result = self.store().import(&model.slug, steps).await;
        drop(writing);
        if result.is_ok() && IDENTITY_MODELS.contains(&model.slug.as_str()) {
            self.inner.identities.invalidate();
        }
        result
    }
}
