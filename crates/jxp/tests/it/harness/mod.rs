//! What every integration test starts from: a server of its own (`server`), requests to it with
//! or without credentials (`http`), and accounts, logins and writes as a user (`accounts`).

mod accounts;
mod http;
mod server;

pub use accounts::*;
pub use http::*;
pub use server::*;
