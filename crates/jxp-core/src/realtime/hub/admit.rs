//! The delivery check: whether one change goes to one subscription of one connection. The
//! live path and the replay path both run it, so they cannot come to different answers. It
//! runs once per subscription per change, so it allocates nothing.

use jxp_model::{Document, Model};
use jxp_query::matches;
use jxp_store::{Change, ChangeOp};
use serde_json::Value;

use super::conn::ConnState;
use crate::perms::{Right, allowed_on};
use crate::realtime::subs::Sub;

/// What the check makes of one change for one subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    Deliver,
    /// An update brought the document into the view of a subscription that asked for
    /// `enter` events.
    Enter,
    /// An update took the document out of the view of a subscription that asked for `leave`
    /// events.
    Leave,
    /// Not for this subscription, not for this reader, or already sent.
    Skip,
    /// The connection's credentials have expired: de-authenticate it.
    Expired,
}

/// Checks, cheapest first: the subscribed document id (a document subscription gets no
/// creates), the subscription's `seq`, the connection's `seq` for the model (one event per
/// connection however many of its subscriptions match), that it is authenticated and its
/// token unexpired, then whether the document is in the subscription's view: the read right
/// on it (`owner` is its `_owner_id`, for owner rules), the read hooks' filter, the
/// subscription's filter. For a subscription with `enter_leave`, an update whose previous
/// document the writer passed on is judged before and after: in view then and now is a
/// `Deliver`, only now an `Enter`, only then a `Leave` (a soft-deleted document was in no
/// view). Passing the subscription's `seq` moves it on, so a change is judged once per
/// subscription.
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
    let in_view = |doc: &Document, owner: Option<&str>| {
        allowed_on(model, &auth.identity, Right::Read, owner)
            && auth.hooks_allow(&change.model, doc)
            && matches(&sub.filter, doc)
    };
    let now = in_view(&change.doc, owner);
    let prev = match &change.prev {
        Some(prev) if sub.enter_leave && change.op == ChangeOp::Update => prev,
        _ => return if now { Verdict::Deliver } else { Verdict::Skip },
    };
    let before = prev.get("_deleted") != Some(&Value::Bool(true))
        && in_view(prev, prev.get("_owner_id").and_then(Value::as_str));
    match (before, now) {
        (true, true) => Verdict::Deliver,
        (false, true) => Verdict::Enter,
        (true, false) => Verdict::Leave,
        (false, false) => Verdict::Skip,
    }
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
            enter_leave: false,
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
            prev: None,
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

    #[test]
    fn an_update_is_judged_before_and_after_when_enter_leave_is_asked() {
        use ChangeOp::{Delete, Update};
        use Verdict::{Deliver, Enter, Leave, Skip};
        let m = model();
        let red = || sub(None, colour("red"));
        let ann = || conn(Some("ann"), None, None);
        // (what, subscription, op, previous (owner, colour, deleted), now (owner, colour), verdict)
        let cases = [
            (
                "stays in",
                red(),
                Update,
                Some(("ann", "red", false)),
                ("ann", "red"),
                Deliver,
            ),
            (
                "comes in",
                red(),
                Update,
                Some(("ann", "blue", false)),
                ("ann", "red"),
                Enter,
            ),
            (
                "goes out",
                red(),
                Update,
                Some(("ann", "red", false)),
                ("ann", "blue"),
                Leave,
            ),
            (
                "stays out",
                red(),
                Update,
                Some(("ann", "blue", false)),
                ("ann", "blue"),
                Skip,
            ),
            (
                "given away",
                red(),
                Update,
                Some(("ann", "red", false)),
                ("bob", "red"),
                Leave,
            ),
            (
                "given to ann",
                red(),
                Update,
                Some(("bob", "red", false)),
                ("ann", "red"),
                Enter,
            ),
            (
                "undeleted",
                red(),
                Update,
                Some(("ann", "red", true)),
                ("ann", "red"),
                Enter,
            ),
            (
                "unknown before",
                red(),
                Update,
                None,
                ("ann", "red"),
                Deliver,
            ),
            (
                "unknown before, out",
                red(),
                Update,
                None,
                ("ann", "blue"),
                Skip,
            ),
            (
                "a delete",
                red(),
                Delete,
                Some(("ann", "red", false)),
                ("ann", "red"),
                Deliver,
            ),
        ];
        for (what, mut s, op, prev, (owner, now), want) in cases {
            s.enter_leave = true;
            let mut ch = change(1, op, owner, now);
            ch.prev = prev.map(|(o, c, deleted)| {
                let doc = json!({"_id": DOC, "_owner_id": o, "colour": c, "_deleted": deleted});
                Arc::new(doc.as_object().cloned().unwrap())
            });
            let owner = ch.doc.get("_owner_id").and_then(Value::as_str);
            assert_eq!(admits(&mut s, &ann(), &m, &ch, owner, 10), want, "{what}");
            // Without the flag, only the document as it is now counts.
            let mut plain = red();
            let was = if want == Leave || want == Skip {
                Skip
            } else {
                Deliver
            };
            assert_eq!(
                admits(&mut plain, &ann(), &m, &ch, owner, 10),
                was,
                "{what}, plain"
            );
        }
    }
}
