//! The settings of authentication, apart from the code that reads them, so the app can hold
//! them without depending on that code.

use super::mail::SmtpSettings;
use super::ratelimit::RateLimitSettings;

/// Settings of authentication. Its `Debug` leaves the shared secret out.
#[derive(Clone)]
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

impl std::fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSettings")
            .field("api_url", &self.api_url)
            .field("shared_secret", &crate::secret::shown(&self.shared_secret))
            .field("token_expiry_secs", &self.token_expiry_secs)
            .field("refresh_token_expiry_secs", &self.refresh_token_expiry_secs)
            .field("smtp", &self.smtp)
            .field("rate_limit", &self.rate_limit)
            .finish()
    }
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
