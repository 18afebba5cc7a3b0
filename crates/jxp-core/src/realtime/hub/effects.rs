//! How changes to the built-in identity models reach open connections: a revoked token or
//! key, a deleted user or a changed password de-authenticates their sockets; a group or admin
//! change updates the identity they hold (or, where read hooks limited what it sees, asks it to
//! authenticate again, so the hooks are asked anew); an expired token is swept.

use jxp_store::{Change, ChangeOp};
use serde_json::Value;

use super::{ConnId, State, actor_of, now_ms};
use crate::identity::Identity;
use crate::realtime::handle::CredentialTrace;
use crate::secret::hash_secret;

/// Why a socket limited by read hooks is de-authenticated when its user changes.
const HOOKED_IDENTITY_CHANGED: &str = "identity changed; authenticate again";

impl State {
    /// Revoked tokens and keys, deleted users, changed passwords and groups reach open
    /// connections here.
    pub(super) fn identity_effects(&mut self, change: &Change) {
        let doc = &change.doc;
        let text = |k: &str| {
            doc.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let deleted = change.op == ChangeOp::Delete
            || doc
                .get("_deleted")
                .and_then(Value::as_bool)
                .unwrap_or(false);
        match change.model.as_str() {
            "token" if deleted => {
                let hash = text("access_token");
                self.deauth_where(
                    |t, _| t.token_hash.as_deref() == Some(hash.as_str()),
                    "token revoked",
                );
            }
            "apikey" if deleted => {
                let hash = text("key_hash");
                self.deauth_where(
                    |t, _| t.key_hash.as_deref() == Some(hash.as_str()),
                    "api key revoked",
                );
            }
            "user" => {
                let uid = change.id.clone();
                self.actors.insert(uid.clone(), actor_of(doc));
                if deleted {
                    self.deauth_where(|_, i| i.user_id() == Some(uid.as_str()), "user deleted");
                    return;
                }
                let fp = hash_secret(&text("password"));
                self.deauth_where(
                    |t, i| i.user_id() == Some(uid.as_str()) && t.password_fp != fp,
                    "password changed",
                );
                let admin = doc.get("admin").and_then(Value::as_bool).unwrap_or(false);
                let (name, email) = (text("name"), text("email"));
                self.deauth_limited(
                    |i| {
                        i.user.as_ref().is_some_and(|u| {
                            u.id == uid && (u.admin != admin || u.name != name || u.email != email)
                        })
                    },
                    HOOKED_IDENTITY_CHANGED,
                );
                for conn in self.conns.values_mut() {
                    if let Some(user) = conn.auth.as_mut().and_then(|a| a.identity.user.as_mut())
                        && user.id == uid
                    {
                        user.admin = admin;
                        user.name = name.clone();
                        user.email = email.clone();
                    }
                }
            }
            "usergroups" => {
                let uid = text("user_id");
                let groups: Vec<String> = if deleted {
                    Vec::new()
                } else {
                    doc.get("groups")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(|g| g.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default()
                };
                self.deauth_limited(
                    |i| {
                        i.user
                            .as_ref()
                            .is_some_and(|u| u.id == uid && u.groups != groups)
                    },
                    HOOKED_IDENTITY_CHANGED,
                );
                let mut changed = Vec::new();
                for (id, conn) in self.conns.iter_mut() {
                    if let Some(user) = conn.auth.as_mut().and_then(|a| a.identity.user.as_mut())
                        && user.id == uid
                    {
                        user.groups = groups.clone();
                        changed.push(*id);
                    }
                }
                for id in changed {
                    self.recheck_subs(id);
                }
            }
            _ => {}
        }
    }

    /// De-authenticates the sockets whose identity the read hooks limited (their limits were
    /// computed for the identity they authenticated with) and that `pred` picks; they
    /// authenticate again to have the hooks asked anew.
    fn deauth_limited(&mut self, pred: impl Fn(&Identity) -> bool, reason: &str) {
        let hit: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                c.auth
                    .as_ref()
                    .is_some_and(|a| !a.limits.is_empty() && pred(&a.identity))
            })
            .map(|(id, _)| *id)
            .collect();
        for id in hit {
            self.deauth(id, reason);
        }
    }

    fn deauth_where(&mut self, pred: impl Fn(&CredentialTrace, &Identity) -> bool, reason: &str) {
        let hit: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.auth.as_ref().is_some_and(|a| pred(&a.trace, &a.identity)))
            .map(|(id, _)| *id)
            .collect();
        for id in hit {
            self.deauth(id, reason);
        }
    }

    pub(super) fn sweep_expired(&mut self) {
        let now = now_ms();
        self.deauth_where(
            |t, _| t.expires_ms.is_some_and(|e| e <= now),
            "token expired",
        );
    }
}
