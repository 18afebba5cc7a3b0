//! Group membership (`/groups/:user_id`): custom groups live in one `usergroups` document per
//! user. Only admins change them; a user may read their own.

use std::sync::Arc;

use jxp_model::Document;
use jxp_store::{ChangeOp, WriteOp, WriteTx};
use serde_json::{Value, json};

use super::records::{eq, str_of, system_doc};
use crate::app::App;
use crate::error::CoreError;
use crate::identity::Identity;

/// What a group request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupChange {
    /// PUT: add these groups.
    Add,
    /// POST: the user's groups become exactly these.
    Replace,
    /// DELETE: remove these groups.
    Remove,
}

fn check_group_name(g: &str) -> Result<(), CoreError> {
    let ok = !g.is_empty()
        && g.len() <= 64
        && g.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(CoreError::BadRequest(format!(
            "\"{g}\" is not a valid group name (letters, digits, _ and -)"
        )))
    }
}

impl App {
    /// A user's `usergroups` document (`{"groups": []}` when they have none); admins may read
    /// anyone's, users their own.
    pub async fn groups(&self, who: &Identity, user_id: &str) -> Result<Document, CoreError> {
        if !(who.is_admin() || who.user_id() == Some(user_id)) {
            return Err(CoreError::Forbidden(
                "only admins may read other users' groups".into(),
            ));
        }
        self.user_doc(user_id)
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("user/{user_id} not found")))?;
        Ok(match self.stored_groups(user_id).await?.0 {
            Some(doc) => self.groups_view(&doc)?,
            None => {
                let mut empty = Document::new();
                empty.insert("groups".into(), json!([]));
                empty
            }
        })
    }

    fn groups_view(&self, doc: &Document) -> Result<Document, CoreError> {
        Ok(jxp_model::public_view(self.model("usergroups")?, doc))
    }

    async fn stored_groups(
        &self,
        user_id: &str,
    ) -> Result<(Option<Document>, Vec<String>), CoreError> {
        let record = self
            .find_first("usergroups", eq("user_id", user_id))
            .await?;
        let groups = record
            .as_ref()
            .and_then(|r| r.get("groups").and_then(Value::as_array))
            .map(|a| {
                a.iter()
                    .filter_map(|g| g.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        Ok((record, groups))
    }

    /// Changes a user's groups (admins only); answers the `usergroups` document after it.
    pub async fn change_groups(
        &self,
        who: &Identity,
        user_id: &str,
        change: GroupChange,
        groups: Vec<String>,
    ) -> Result<Document, CoreError> {
        if !who.is_admin() {
            return Err(CoreError::Forbidden("only admins may change groups".into()));
        }
        for g in &groups {
            check_group_name(g)?;
        }
        self.user_doc(user_id)
            .await?
            .ok_or_else(|| CoreError::NotFound(format!("user/{user_id} not found")))?;
        let (record, mut current) = self.stored_groups(user_id).await?;
        match change {
            GroupChange::Add => {
                for g in groups {
                    if !current.contains(&g) {
                        current.push(g);
                    }
                }
            }
            GroupChange::Replace => {
                current.clear();
                for g in groups {
                    if !current.contains(&g) {
                        current.push(g);
                    }
                }
            }
            GroupChange::Remove => current.retain(|g| !groups.contains(g)),
        }
        let actor = who.user_id().map(str::to_owned);
        let saved;
        let op = match record {
            Some(mut doc) => {
                let prev = Some(Arc::new(doc.clone()));
                let version = doc.get("__v").and_then(Value::as_i64).unwrap_or(0);
                let id = str_of(&doc, "_id").to_owned();
                doc.insert("groups".into(), json!(current));
                doc.insert("__v".into(), Value::from(version + 1));
                doc.insert("updatedAt".into(), Value::String(jxp_model::now_iso()));
                saved = doc.clone();
                WriteOp::Replace {
                    model: "usergroups".into(),
                    id,
                    doc,
                    expect_version: Some(version),
                    op: ChangeOp::Update,
                    prev,
                }
            }
            None => {
                let mut fields = Document::new();
                fields.insert("user_id".into(), json!(user_id));
                fields.insert("groups".into(), json!(current));
                let doc = system_doc(user_id, fields);
                saved = doc.clone();
                WriteOp::Insert {
                    model: "usergroups".into(),
                    doc,
                }
            }
        };
        self.commit(WriteTx {
            ops: vec![op],
            actor,
            silent: false,
        })
        .await?;
        self.groups_view(&saved)
    }
}
