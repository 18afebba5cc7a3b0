//! Hooks and callable functions registered through the library API, driven through the real
//! server: which hooks fire (and which do not) for every hook point, rejections that leave
//! nothing written, functions allowed, denied and unlisted, hooks and the realtime feed, and
//! the response cache against every write path.

mod support;

mod bulk;
mod cache;
mod example;
mod functions;
mod login;
mod reads;
mod realtime;
mod writes;
