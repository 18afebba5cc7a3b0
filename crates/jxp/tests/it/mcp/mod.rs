//! The MCP endpoint through a real MCP client (`rmcp`'s, over Streamable HTTP): the caller's
//! credentials, the five tools answering as REST does for the same user, the models MCP hides
//! and shows, its limits, the instructions and guide, and resource subscriptions.

mod access;
pub(crate) mod client;
mod subscribe;
mod tools;
