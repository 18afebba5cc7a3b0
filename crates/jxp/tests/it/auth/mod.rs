//! Authentication, identity, permissions and escalation, through the real server.

mod support;

mod login;
