//! The filters a model's `pre_get` answers, kept by the text of the answer. The hook itself
//! runs on every read (it may decide on anything), but what it answers is mostly one of a few
//! filters (one per user, or one per role), and turning an answer into a filter depends on
//! nothing but that answer and the model. So an answer met before is not parsed again: its
//! filter is looked up by the exact text, which one user's answer shares with another user's
//! only when the two filters are the same. An answer the runtime keeps (`answer::Said`)
//! holds its filter itself, found without that lookup.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use jxp_core::HookError;
use jxp_model::Model;
use jxp_model::sync::lock;
use jxp_query::{Filter, parse_mongo_filter};
use serde_json::Value;

use crate::answer::Text;

/// The number of the next `Filters` made: what a kept answer's filter is kept under.
static NEXT: AtomicU64 = AtomicU64::new(1);

/// How many answers are kept; past it the table starts again, so an answer that varies with
/// every call (a time in it) holds no more than this.
const MAX_ENTRIES: usize = 1024;

/// The longest answer kept: a long one (a large `$in`) is parsed each time rather than held.
const MAX_ANSWER_BYTES: usize = 4096;

pub(crate) struct Filters {
    model: Arc<Model>,
    /// This model's number among every `Filters` the process makes.
    number: u64,
    known: Mutex<HashMap<String, Arc<Filter>>>,
    /// What no answer stands for: every document.
    all: Arc<Filter>,
}

impl Filters {
    pub fn new(model: Arc<Model>) -> Self {
        Filters {
            model,
            number: NEXT.fetch_add(1, Ordering::Relaxed),
            known: Mutex::new(HashMap::new()),
            all: Arc::new(Filter::All),
        }
    }

    /// The filter a `pre_get`'s answer stands for (none: every document); a 500 "hook
    /// failed" when it is not a filter of the model, the detail logged.
    pub fn of(&self, answer: Option<Text>) -> Result<Arc<Filter>, HookError> {
        let said = match answer {
            None => return Ok(self.all.clone()),
            Some(Text::Written(text)) => return self.get(&text),
            Some(Text::Kept(said)) => said,
        };
        if let Some((number, filter)) = said.filter.get()
            && *number == self.number
        {
            return Ok(filter.clone());
        }
        let filter = self.get(&said.text)?;
        // Taken by the first model to make it; another model's finds it by the text.
        let _ = said.filter.set((self.number, filter.clone()));
        Ok(filter)
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The filter `answer` (a `pre_get`'s answer as JSON text) stands for; a 500 "hook failed"
    /// when it is not a filter of the model, the detail logged.
    pub fn get(&self, answer: &str) -> Result<Arc<Filter>, HookError> {
        if let Some(filter) = lock(&self.known).get(answer) {
            return Ok(filter.clone());
        }
        let filter = Arc::new(self.parse(answer)?);
        if answer.len() <= MAX_ANSWER_BYTES {
            let mut known = lock(&self.known);
            if known.len() >= MAX_ENTRIES {
                known.clear();
            }
            known.insert(answer.to_owned(), filter.clone());
        }
        Ok(filter)
    }

    fn parse(&self, answer: &str) -> Result<Filter, HookError> {
        let invalid = |error: String| {
            tracing::error!(model = %self.model.slug, %error, "pre_get returned a filter that is not valid");
            HookError::reject(500, "hook failed")
        };
        let value: Value = serde_json::from_str(answer).map_err(|e| invalid(e.to_string()))?;
        parse_mongo_filter(&self.model, &value).map_err(|e| invalid(e.to_string()))
    }

    /// How many answers are kept (for tests).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        lock(&self.known).len()
    }
}
