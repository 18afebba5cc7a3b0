//! Authentication, identity, permissions and escalation, through the real server.

pub(crate) mod support;

mod escalation;
mod groups;
mod identity;
mod login;
mod logins;
mod perms;
mod ratelimit;
mod recover;
mod setup_jwt;
mod user_emails;
