//! The settings of authentication, apart from the code that reads them, so the app can hold
//! them without depending on that code.

use super::mail::SmtpSettings;
use super::ratelimit::RateLimitSettings;

/// Settings of authentication.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Answered as `provider` by `/login`.
    pub api_url: String,
    /// Signs JWTs; without it `/login/getjwt` and recovery are unavailable.
    pub shared_secret: Option<String>,
    pub token_expiry_secs: u64,
    pub refresh_token_expiry_secs: u64,
    pub smtp: Option<SmtpSettings>,
    pub rate_limit: RateLimitSettings,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            api_url: "http://localhost:4001".into(),
            shared_secret: None,
            token_expiry_secs: 86_400,
            refresh_token_expiry_secs: 2_678_400,
            smtp: None,
            rate_limit: RateLimitSettings::default(),
        }
    }
}
