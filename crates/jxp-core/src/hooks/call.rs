//! `/call`: registered functions a model lists in its `callable` option, with JXP's rule for
//! permissions (a GET needs the right to read the model, a POST the right to create in it).

use serde_json::Value;

use super::CallVerb;
use crate::app::{App, CallCtx};
use crate::error::CoreError;
use crate::identity::Identity;
use crate::perms::{Access, Right, access};

impl App {
    /// Calls function `name` of model `slug` for `who`, with the document `id` when given.
    /// Not listed in `callable` → 403; no right for the verb → 403; listed but not registered
    /// → 404; the item is read as `who` may read it (404 when absent to them).
    pub async fn call(
        &self,
        who: &Identity,
        slug: &str,
        id: Option<&str>,
        name: &str,
        verb: CallVerb,
        body: Value,
    ) -> Result<Value, CoreError> {
        let model = self.model(slug)?.clone();
        if !model.options.callable.iter().any(|c| c == name) {
            return Err(CoreError::Forbidden(format!(
                "{slug}.{name} is not callable"
            )));
        }
        let right = match verb {
            CallVerb::Get => Right::Read,
            CallVerb::Post => Right::Create,
        };
        if access(&model, who, right) == Access::Denied {
            return Err(CoreError::Forbidden(format!(
                "calling {slug}.{name} with {verb:?} needs the right to {} {slug}",
                right.verb()
            )));
        }
        let function = self
            .hooks()
            .function_of(slug, name)
            .ok_or_else(|| CoreError::NotFound(format!("{slug}.{name} has no function")))?;
        let item = match id {
            Some(id) => Some(self.get_one(who, slug, id, false).await?),
            None => None,
        };
        let ctx = CallCtx {
            app: self.clone(),
            identity: who.clone(),
            model: slug.to_owned(),
            function: name.to_owned(),
            verb,
            item,
            body,
        };
        Ok(function(ctx).await?)
    }
}
