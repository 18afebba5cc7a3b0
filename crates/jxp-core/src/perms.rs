//! The permission decision: one pure function used by every REST route, WebSocket subscribe
//! and WebSocket delivery. Groups: `all` (anyone), `user` (logged in), `admin`, `owner` (the
//! document's `_owner_id`), and custom groups. The decision has two forms of its own: as a
//! filter over a model ([`scope`], what reads, bulk writes and queries run in the store) and
//! on one stored document ([`allowed_on`], what a single write and each realtime delivery
//! check, without building anything).

use jxp_model::Model;
use jxp_query::{Filter, Op, Path};
use serde_json::Value;

use crate::error::CoreError;
use crate::identity::Identity;

/// The four rights of `crud`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Right {
    Create,
    Read,
    Update,
    Delete,
}

impl Right {
    pub fn letter(self) -> char {
        match self {
            Right::Create => 'c',
            Right::Read => 'r',
            Right::Update => 'u',
            Right::Delete => 'd',
        }
    }

    /// The verb of the right, as refusals name it.
    pub fn verb(self) -> &'static str {
        match self {
            Right::Create => "create",
            Right::Read => "read",
            Right::Update => "update",
            Right::Delete => "delete",
        }
    }
}

/// What an identity may do with a right on a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// On every document.
    All,
    /// Only on documents whose `_owner_id` is the caller.
    OwnOnly,
    Denied,
}

/// Decides `right` on `model` for `who`, before looking at any document.
pub fn access(model: &Model, who: &Identity, right: Right) -> Access {
    if who.system {
        return Access::All;
    }
    let perms = &model.perms;
    if perms.is_empty() {
        return Access::Denied;
    }
    let letter = right.letter();
    if perms.allows("all", letter) {
        return Access::All;
    }
    let Some(user) = &who.user else {
        return Access::Denied;
    };
    if perms.allows("user", letter)
        || (user.admin && perms.allows("admin", letter))
        || user.groups.iter().any(|g| perms.allows(g, letter))
    {
        return Access::All;
    }
    if perms.allows("owner", letter) {
        return Access::OwnOnly;
    }
    Access::Denied
}

/// The documents of `model` on which `who` holds `right`, as a filter: every document, the
/// caller's own (`_owner_id`), or none (`Filter::Or` of nothing, which matches nothing).
/// Callers that answer a refusal check `access` for `Denied` first; the filter is then ANDed
/// into what they ask the store.
pub fn scope(model: &Model, who: &Identity, right: Right) -> Filter {
    match (access(model, who, right), who.user_id()) {
        (Access::All, _) => Filter::All,
        (Access::OwnOnly, Some(uid)) => Filter::cond(
            Path::plain("_owner_id"),
            Op::Eq,
            Value::String(uid.to_owned()),
        ),
        (Access::OwnOnly, None) | (Access::Denied, _) => Filter::Or(Vec::new()),
    }
}

/// The documents of `model` `who` may read, as a filter; `Forbidden` for a reader who may
/// read none.
pub(crate) fn read_scope(model: &Model, who: &Identity) -> Result<Filter, CoreError> {
    if access(model, who, Right::Read) == Access::Denied {
        return Err(forbidden(model, Right::Read));
    }
    Ok(scope(model, who, Right::Read))
}

/// The refusal of `right` on `model`.
pub(crate) fn forbidden(model: &Model, right: Right) -> CoreError {
    CoreError::Forbidden(format!("you may not {} {}", right.verb(), model.slug))
}

/// Decides `right` on one stored document whose owner is `owner_id`.
pub fn allowed_on(model: &Model, who: &Identity, right: Right, owner_id: Option<&str>) -> bool {
    match access(model, who, right) {
        Access::All => true,
        Access::OwnOnly => owner_id.is_some() && owner_id == who.user_id(),
        Access::Denied => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::User;
    use jxp_model::{ModelOptions, Perms};
    use serde_json::json;

    fn model(perms: &[(&str, &str)]) -> Model {
        Model {
            slug: "t".into(),
            name: "T".into(),
            fields: vec![],
            perms: Perms {
                groups: perms
                    .iter()
                    .map(|(g, l)| ((*g).into(), (*l).into()))
                    .collect(),
            },
            options: ModelOptions::default(),
            builtin: false,
        }
    }

    fn user(id: &str, admin: bool, groups: &[&str]) -> Identity {
        Identity::user(User {
            id: id.into(),
            name: id.into(),
            email: format!("{id}@x"),
            admin,
            groups: groups.iter().map(|g| (*g).into()).collect(),
        })
    }

    #[test]
    fn decision_table() {
        let m = model(&[
            ("admin", "crud"),
            ("owner", "rud"),
            ("user", "c"),
            ("editors", "ru"),
            ("all", ""),
        ]);
        let anon = Identity::anonymous();
        let alice = user("alice", false, &[]);
        let ed = user("ed", false, &["editors"]);
        let root = user("root", true, &[]);
        let cases = [
            (&anon, Right::Read, Access::Denied),
            (&anon, Right::Create, Access::Denied),
            (&alice, Right::Create, Access::All),
            (&alice, Right::Read, Access::OwnOnly),
            (&alice, Right::Delete, Access::OwnOnly),
            (&ed, Right::Update, Access::All),
            (&ed, Right::Delete, Access::OwnOnly),
            (&root, Right::Delete, Access::All),
        ];
        for (who, right, want) in cases {
            assert_eq!(access(&m, who, right), want, "{who:?} {right:?}");
        }
        assert!(allowed_on(&m, &alice, Right::Update, Some("alice")));
        assert!(!allowed_on(&m, &alice, Right::Update, Some("bob")));
        assert!(!allowed_on(&m, &alice, Right::Update, None));
    }

    #[test]
    fn scope_is_the_decision_as_a_filter() {
        let m = model(&[("admin", "crud"), ("owner", "ru"), ("all", "c")]);
        let (anon, alice, root) = (
            Identity::anonymous(),
            user("alice", false, &[]),
            user("root", true, &[]),
        );
        let own = |id: &str| json!({"_id": "x", "_owner_id": id});
        // (who, right, which of [alice's document, bob's document] the scope admits)
        let cases = [
            (&root, Right::Read, [true, true]),
            (&anon, Right::Create, [true, true]),
            (&alice, Right::Read, [true, false]),
            (&alice, Right::Update, [true, false]),
            (&alice, Right::Delete, [false, false]),
            (&anon, Right::Read, [false, false]),
            (&Identity::system(), Right::Delete, [true, true]),
        ];
        for (who, right, want) in cases {
            let filter = scope(&m, who, right);
            for (owner, want) in ["alice", "bob"].into_iter().zip(want) {
                let doc = own(owner);
                let doc = doc.as_object().unwrap();
                assert_eq!(
                    jxp_query::matches(&filter, doc),
                    want,
                    "{who:?} {right:?} on {owner}'s"
                );
                // The filter and the per-document check are one decision.
                assert_eq!(allowed_on(&m, who, right, Some(owner)), want);
            }
        }
        assert_eq!(scope(&m, &root, Right::Read), Filter::All);
        assert_eq!(
            forbidden(&m, Right::Delete).to_string(),
            "you may not delete t"
        );
    }

    #[test]
    fn no_perms_means_not_served_and_all_means_anyone() {
        let closed = model(&[]);
        assert_eq!(
            access(&closed, &user("root", true, &[]), Right::Read),
            Access::Denied
        );
        let open = model(&[("all", "r")]);
        assert_eq!(
            access(&open, &Identity::anonymous(), Right::Read),
            Access::All
        );
        assert_eq!(
            access(&open, &Identity::anonymous(), Right::Create),
            Access::Denied
        );
    }
}
