//! A connection as the hub task holds it: its outlet, its identity with what would revoke it
//! and what the read hooks let it see, its subscriptions, and the last `seq` it got per model.

use std::sync::Arc;

use jxp_query::matches;

use crate::identity::Identity;
use crate::realtime::handle::{CredentialTrace, ReadLimits};
use crate::realtime::outlet::Outlet;

pub(super) struct AuthState {
    pub(super) identity: Identity,
    pub(super) trace: CredentialTrace,
    /// The read hooks' word on this identity (empty when the app has no read hooks).
    pub(super) limits: ReadLimits,
}

impl AuthState {
    /// Whether the read hooks let this identity see `doc` of `model`.
    pub(super) fn hooks_allow(&self, model: &str, doc: &jxp_model::Document) -> bool {
        match self.limits.iter().find(|(m, _)| m == model) {
            None => true,
            Some((_, None)) => false,
            Some((_, Some(filter))) => matches(filter, doc),
        }
    }

    /// Whether a read hook refused this identity the whole model.
    pub(super) fn hooks_refuse(&self, model: &str) -> bool {
        self.limits.iter().any(|(m, f)| m == model && f.is_none())
    }
}

pub(super) struct ConnState {
    pub(super) outlet: Arc<dyn Outlet>,
    pub(super) auth: Option<AuthState>,
    /// The keys of its subscriptions (a key starts with its model).
    pub(super) subs: Vec<String>,
    /// The last `seq` queued to it per model: a connection's events go out in `seq` order,
    /// each once, however many of its subscriptions match.
    pub(super) last_seq: Vec<(String, u64)>,
}

impl ConnState {
    pub(super) fn last_seq(&self, model: &str) -> u64 {
        self.last_seq
            .iter()
            .find(|(m, _)| m == model)
            .map_or(0, |(_, s)| *s)
    }

    pub(super) fn set_last_seq(&mut self, model: &str, seq: u64) {
        match self.last_seq.iter_mut().find(|(m, _)| m == model) {
            Some((_, s)) => *s = seq,
            None => self.last_seq.push((model.to_owned(), seq)),
        }
    }
}
