//! A user's stored logins: which token and refresh-token records belong together, which are
//! dead (expired, or issued under a password since changed), and which ones a login, a refresh
//! or a logout removes. Pure choices over records already read, so they are unit-tested here;
//! `session.rs` reads the records and commits the removals.

use std::collections::HashMap;

use jxp_model::Document;
use jxp_store::WriteOp;

use super::records::str_of;
use crate::secret::hash_secret;

/// Live logins a user keeps at most; a login past it revokes the least recently renewed ones.
/// Generous for people with many devices, small enough that a script logging in on every run
/// does not grow the token tables without bound.
pub(crate) const MAX_LOGINS: usize = 100;

/// The two models a login writes.
pub(crate) const TOKEN: &str = "token";
pub(crate) const REFRESH: &str = "refreshtoken";

/// The fingerprint of a user's stored password hash, as login records and the realtime hub
/// keep it.
pub(crate) fn password_fp(user: &Document) -> String {
    hash_secret(str_of(user, "password"))
}

/// Which login a record belongs to. Records written before logins coexisted carry no session
/// id; the server then kept one pair per user, so a user's such records are one login.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Login {
    Id(String),
    Legacy,
}

/// One stored token or refresh-token record, as far as choosing goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub model: &'static str,
    pub id: String,
    /// The stored digest: `access_token` or `refresh_token`.
    pub secret: String,
    pub login: Login,
    pub expires: String,
    pub created: String,
    /// `None` on records written before the field existed: not checked.
    pub password_fp: Option<String>,
}

impl Record {
    /// The record of a stored `token` or `refreshtoken` document.
    pub(crate) fn of(model: &'static str, doc: &Document) -> Record {
        let secret = if model == TOKEN {
            "access_token"
        } else {
            "refresh_token"
        };
        let login = match str_of(doc, "session") {
            "" => Login::Legacy,
            id => Login::Id(id.to_owned()),
        };
        let password_fp = Some(str_of(doc, "password_fp"))
            .filter(|fp| !fp.is_empty())
            .map(str::to_owned);
        Record {
            model,
            id: str_of(doc, "_id").to_owned(),
            secret: str_of(doc, secret).to_owned(),
            login,
            expires: str_of(doc, "expires").to_owned(),
            created: str_of(doc, "createdAt").to_owned(),
            password_fp,
        }
    }

    /// Expired at `now` (both ISO 8601 UTC with milliseconds, so text order is time order),
    /// or issued under another password than the one whose fingerprint is `password_fp`.
    pub(crate) fn is_dead(&self, now: &str, password_fp: &str) -> bool {
        self.expires.as_str() <= now || !self.password_holds(password_fp)
    }

    /// Whether the record was issued under the password whose fingerprint is `password_fp`
    /// (records older than the fingerprint are taken to be).
    pub(crate) fn password_holds(&self, password_fp: &str) -> bool {
        self.password_fp
            .as_deref()
            .is_none_or(|fp| fp == password_fp)
    }
}

/// What a login removes before adding its own pair: every dead record, and every record of
/// the least recently renewed live logins beyond `max - 1`, so that with the new one the user
/// has at most `max`.
pub(crate) fn login_removals<'a>(
    records: &'a [Record],
    now: &str,
    password_fp: &str,
    max: usize,
) -> Vec<&'a Record> {
    let (dead, live): (Vec<&Record>, Vec<&Record>) =
        records.iter().partition(|r| r.is_dead(now, password_fp));
    // A login was last renewed when its newest record was written.
    let mut renewed: HashMap<&Login, &str> = HashMap::new();
    for r in &live {
        let at = renewed.entry(&r.login).or_insert(r.created.as_str());
        if r.created.as_str() > *at {
            *at = r.created.as_str();
        }
    }
    let mut logins: Vec<(&Login, &str)> = renewed.into_iter().collect();
    // Newest first; ties broken by the id, so the choice does not depend on hashing.
    logins.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    let keep = max.saturating_sub(1);
    let evicted: Vec<&Login> = logins.iter().skip(keep).map(|(l, _)| *l).collect();
    let mut out = dead;
    out.extend(live.into_iter().filter(|r| evicted.contains(&&r.login)));
    out
}

/// Every record of the login that the record of `model` with digest `secret` belongs to,
/// that record included; empty when there is no such record.
pub(crate) fn login_of<'a>(records: &'a [Record], model: &str, secret: &str) -> Vec<&'a Record> {
    let Some(login) = records
        .iter()
        .find(|r| r.model == model && r.secret == secret)
        .map(|r| &r.login)
    else {
        return Vec::new();
    };
    records.iter().filter(|r| &r.login == login).collect()
}

/// The operations that remove `records`.
pub(crate) fn remove_ops(records: &[&Record]) -> Vec<WriteOp> {
    records
        .iter()
        .map(|r| WriteOp::Remove {
            model: r.model.into(),
            id: r.id.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2025-06-01T12:00:00.000Z";
    const LATER: &str = "2025-06-02T12:00:00.000Z";
    const FP: &str = "fp";

    fn rec(model: &'static str, id: &str, login: Option<&str>, created: &str) -> Record {
        Record {
            model,
            id: id.into(),
            secret: format!("digest-{id}"),
            login: login.map_or(Login::Legacy, |l| Login::Id(l.into())),
            expires: LATER.into(),
            created: created.into(),
            password_fp: Some(FP.into()),
        }
    }

    fn ids(records: &[&Record]) -> Vec<String> {
        let mut ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
        ids.sort();
        ids
    }

    #[test]
    fn a_record_reads_its_login_and_old_records_are_one_legacy_login() {
        let doc = |v: serde_json::Value| match v {
            serde_json::Value::Object(m) => m,
            _ => Document::new(),
        };
        let new = Record::of(
            TOKEN,
            &doc(
                serde_json::json!({"_id": "a", "access_token": "h", "session": "s1",
                "expires": LATER, "createdAt": NOW, "password_fp": FP}),
            ),
        );
        assert_eq!(new.login, Login::Id("s1".into()));
        assert_eq!(new.secret, "h");
        let old = Record::of(
            REFRESH,
            &doc(serde_json::json!({"_id": "b", "refresh_token": "r", "expires": LATER})),
        );
        assert_eq!(old.login, Login::Legacy);
        assert_eq!(old.secret, "r");
        assert!(old.password_fp.is_none() && old.password_holds("anything"));
    }

    #[test]
    fn a_login_removes_dead_records_and_keeps_other_logins() {
        let mut expired = rec(TOKEN, "t-expired", Some("a"), NOW);
        expired.expires = NOW.into();
        let mut stale = rec(REFRESH, "r-stale", Some("b"), NOW);
        stale.password_fp = Some("old".into());
        let records = vec![
            expired,
            rec(REFRESH, "r-a", Some("a"), NOW),
            stale,
            rec(TOKEN, "t-c", Some("c"), NOW),
            rec(REFRESH, "r-c", Some("c"), NOW),
            rec(TOKEN, "t-old", None, NOW),
        ];
        let gone = login_removals(&records, NOW, FP, MAX_LOGINS);
        assert_eq!(ids(&gone), ["r-stale", "t-expired"]);
    }

    #[test]
    fn past_the_cap_the_least_recently_renewed_logins_go_whole() {
        let records = vec![
            rec(TOKEN, "t1", Some("one"), "2025-06-01T10:00:00.000Z"),
            // Renewed last: its newest record counts.
            rec(REFRESH, "r1", Some("one"), "2025-06-01T11:30:00.000Z"),
            rec(TOKEN, "t2", Some("two"), "2025-06-01T11:00:00.000Z"),
            rec(REFRESH, "r2", Some("two"), "2025-06-01T11:00:00.000Z"),
            rec(TOKEN, "t3", None, "2025-06-01T09:00:00.000Z"),
        ];
        // Room for the new login and two others.
        assert_eq!(ids(&login_removals(&records, NOW, FP, 3)), ["t3"]);
        assert_eq!(
            ids(&login_removals(&records, NOW, FP, 2)),
            ["r2", "t2", "t3"]
        );
        assert!(login_removals(&records, NOW, FP, 4).is_empty());
    }

    #[test]
    fn a_token_names_its_whole_login() {
        let records = vec![
            rec(TOKEN, "t1", Some("one"), NOW),
            rec(REFRESH, "r1", Some("one"), NOW),
            rec(TOKEN, "t2", Some("two"), NOW),
            rec(TOKEN, "t-old", None, NOW),
            rec(REFRESH, "r-old", None, NOW),
        ];
        assert_eq!(ids(&login_of(&records, TOKEN, "digest-t1")), ["r1", "t1"]);
        assert_eq!(ids(&login_of(&records, REFRESH, "digest-r1")), ["r1", "t1"]);
        assert_eq!(
            ids(&login_of(&records, REFRESH, "digest-r-old")),
            ["r-old", "t-old"]
        );
        assert!(login_of(&records, REFRESH, "digest-t1").is_empty());
        assert_eq!(remove_ops(&login_of(&records, TOKEN, "digest-t2")).len(), 1);
    }
}
