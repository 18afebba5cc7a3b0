//! Authentication, identity, permissions and escalation, through the real server.
