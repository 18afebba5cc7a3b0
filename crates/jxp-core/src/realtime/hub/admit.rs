//! The delivery check: whether one change goes to one subscription of one connection. The
//! live path and the replay path both run it, so they cannot come to different answers. It
//! runs once per subscription per change, so it allocates nothing.

use jxp_model::Model;
use jxp_query::matches;
use jxp_store::{Change, ChangeOp};

use super::conn::ConnState;
use crate::perms::{Right, allowed_on};
use crate::realtime::subs::Sub;

/// What the check makes of one change for one subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    Deliver,
    /// Not for this subscription, not for this reader, or already sent.
    Skip,
    /// The connection's credentials have expired: de-authenticate it.
    Expired,
}

/// Checks, cheapest first: the subscribed document id (a document subscription gets no
/// creates), the subscription's `seq`, the connection's `seq` for the model (one event per
/// connection however many of its subscriptions match), that it is authenticated and its
/// token unexpired, the read right on this document (`owner` is its `_owner_id`, for owner
/// rules), the read hooks' filter, then the subscription's filter. Passing the subscription's
/// `seq` moves it on, so a change is judged once per subscription.
pub(super) fn admits(
    sub: &mut Sub,
    conn: &ConnState,
    model: &Model,
    change: &Change,
    owner: Option<&str>,
    now_ms: i64,
) -> Verdict {
    if let Some(doc_id) = &sub.id
        && (*doc_id != change.id || change.op == ChangeOp::Create)
    {
        return Verdict::Skip;
    }
    if change.seq <= sub.after {
        return Verdict::Skip;
    }
    sub.after = change.seq;
    if change.seq <= conn.last_seq(&change.model) {
        return Verdict::Skip;
    }
    let Some(auth) = &conn.auth else {
        return Verdict::Skip;
    };
    if auth.trace.expires_ms.is_some_and(|e| e <= now_ms) {
        return Verdict::Expired;
    }
    if !allowed_on(model, &auth.identity, Right::Read, owner)
        || !auth.hooks_allow(&change.model, &change.doc)
        || !matches(&sub.filter, &change.doc)
    {
        return Verdict::Skip;
    }
    Verdict::Deliver
}

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use jxp_model::{Document, ModelOptions, Perms};
    use jxp_query::{Filter, Op, Path};
    use serde_json::{Value, json};

    use super::super::conn::AuthState;
    use super::*;
    use crate::identity::{Identity, User};
    use crate::realtime::handle::CredentialTrace;
    use crate::realtime::outlet::{CloseReason, Outbound, Outlet, PushError};

    struct Nowhere;

    impl Outlet for Nowhere {
        fn push(&self, _: Outbound) -> Result<(), PushError> {
            Ok(())
        }
        fn close(&self, _: CloseReason) {}
    }

    const DOC: &str = "0123456789abcdef01234567";

    fn model() -> Model {
        Model {
            slug: "note".into(),
            name: "Note".into(),
            fields: vec![],
            perms: Perms {
                groups: [("owner".to_owned(), "r".to_owned())].into_iter().collect(),
            },
            options: ModelOptions::default(),
            builtin: false,
        }
    }

    fn conn(user: Option<&str>, expires_ms: Option<i64>, limits: Option<Filter>) -> ConnState {
        ConnState {
            outlet: Arc::new(Nowhere),
            auth: user.map(|id| AuthState {
                identity: Identity::user(User {
                    id: id.into(),
                    name: id.into(),
                    email: format!("{id}@x"),
                    admin: false,
                    groups: vec![],
                }),
                trace: CredentialTrace {
                    expires_ms,
                    ..CredentialTrace::default()
                },
                limits: limits.map_or_else(Vec::new, |f| vec![("note".to_owned(), Some(f))]),
            }),
            subs: vec![],
            last_seq: vec![],
        }
    }

    fn sub(id: Option<&str>, filter: Filter) -> Sub {
        Sub {
            conn: 1,
            key: String::new(),
            id: id.map(str::to_owned),
            filter,
            after: 0,
            buffer: None,
        }
    }

    fn change(seq: u64, op: ChangeOp, owner: &str, colour: &str) -> Change {
        let doc: Document = json!({"_id": DOC, "_owner_id": owner, "colour": colour})
            .as_object()
            .cloned()
            .unwrap();
        Change {
            model: "note".into(),
            seq,
            op,
            id: DOC.into(),
            doc: Arc::new(doc),
            actor: None,
            silent: false,
        }
    }

    fn colour(c: &str) -> Filter {
        Filter::cond(Path::plain("colour"), Op::Eq, Value::String(c.into()))
    }

    #[test]
    fn each_check_in_its_order() {
        use ChangeOp::{Create, Update};
        use Verdict::{Deliver, Expired, Skip};
        let m = model();
        let all = || sub(None, Filter::All);
        let ann = || conn(Some("ann"), None, None);
        let hooked = |c: &str| conn(Some("ann"), None, Some(colour(c)));
        let other = "ffffffffffffffffffffffff";
        // (what, subscription, connection, the change's op, verdict); ann owns the document.
        let cases = [
            ("passes", all(), ann(), Update, Deliver),
            (
                "other id",
                sub(Some(other), Filter::All),
                ann(),
                Update,
                Skip,
            ),
            (
                "create on an id",
                sub(Some(DOC), Filter::All),
                ann(),
                Create,
                Skip,
            ),
            ("anonymous", all(), conn(None, None, None), Update, Skip),
            (
                "expired",
                all(),
                conn(Some("ann"), Some(5), None),
                Update,
                Expired,
            ),
            (
                "not the owner",
                all(),
                conn(Some("bob"), None, None),
                Update,
                Skip,
            ),
            ("hook filter", all(), hooked("blue"), Update, Skip),
            ("own filter", sub(None, colour("blue")), ann(), Update, Skip),
            (
                "both filters",
                sub(Some(DOC), colour("red")),
                hooked("red"),
                Update,
                Deliver,
            ),
        ];
        for (what, mut s, c, op, want) in cases {
            let ch = change(1, op, "ann", "red");
            let owner = ch.doc.get("_owner_id").and_then(Value::as_str);
            assert_eq!(admits(&mut s, &c, &m, &ch, owner, 10), want, "{what}");
        }
    }

    #[test]
    fn a_seq_is_judged_once_per_subscription_and_sent_once_per_connection() {
        let m = model();
        let mut s = sub(None, Filter::All);
        let mut c = conn(Some("ann"), None, None);
        let (first, second) = (
            change(1, ChangeOp::Update, "ann", "red"),
            change(2, ChangeOp::Update, "ann", "red"),
        );
        assert_eq!(
            admits(&mut s, &c, &m, &first, Some("ann"), 0),
            Verdict::Deliver
        );
        assert_eq!(s.after, 1);
        assert_eq!(
            admits(&mut s, &c, &m, &first, Some("ann"), 0),
            Verdict::Skip
        );
        // Another subscription of the same connection already sent seq 2.
        c.set_last_seq("note", 2);
        assert_eq!(
            admits(&mut s, &c, &m, &second, Some("ann"), 0),
            Verdict::Skip
        );
        assert_eq!(s.after, 2);
    }
}
