//! Authentication: who a request or socket is (Basic, Bearer token, JWT, API key), login,
//! token refresh and logout, JWTs, password recovery and first-admin setup. Every auth record is
//! written through the store like any other document, so the change stream sees logins and
//! logouts too.
//!
//! Below the app: the settings, the credentials, the identity cache, the rate limiter, JWTs,
//! mail, the records' shape and which records make one login (`pairs.rs`). Above it (methods
//! of `App`): resolving credentials (`identify.rs`), sessions and groups.

pub(crate) mod cache;
pub(crate) mod credentials;
mod groups;
mod identify;
mod jwt;
pub(crate) mod mail;
mod pairs;
pub(crate) mod ratelimit;
mod records;
mod session;
pub(crate) mod settings;

pub use credentials::Credentials;
pub use groups::GroupChange;
pub use mail::SmtpSettings;
pub use ratelimit::RateLimitSettings;
pub use session::Session;
pub use settings::AuthSettings;
