//! The permission decision: one pure function used by every REST route, WebSocket subscribe
//! and WebSocket delivery. Groups: `all` (anyone), `user` (logged in), `admin`, `owner` (the
//! document's `_owner_id`), and custom groups.

use jxp_model::Model;

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
