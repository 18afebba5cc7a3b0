//! The password-recovery email, sent through SMTP (`SMTP_URL`, `SMTP_FROM`).

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::error::CoreError;

/// Where and how recovery emails go. Its `Debug` leaves the URL, which may hold a password,
/// out.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    /// `smtp://user:pass@host:port` (add `?tls=required` for STARTTLS) or `smtps://…`.
    pub url: String,
    pub from: String,
    /// The front-end page that takes the token: `…?token=<jwt>`.
    pub recovery_url: String,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("url", &crate::secret::REDACTED)
            .field("from", &self.from)
            .field("recovery_url", &self.recovery_url)
            .finish()
    }
}

/// Sends the recovery link to `to`.
pub async fn send_recovery(
    smtp: &SmtpSettings,
    to: &str,
    name: &str,
    jwt: &str,
) -> Result<(), CoreError> {
    let from: Mailbox = smtp
        .from
        .parse()
        .map_err(|e| CoreError::Internal(format!("SMTP_FROM is not an address: {e}")))?;
    let to: Mailbox = to
        .parse()
        .map_err(|e| CoreError::Internal(format!("user email is not an address: {e}")))?;
    let sep = if smtp.recovery_url.contains('?') {
        '&'
    } else {
        '?'
    };
    let link = format!("{}{sep}token={jwt}", smtp.recovery_url);
    let greeting = if name.is_empty() {
        "Hello".to_owned()
    } else {
        format!("Hello {name}")
    };
    let body = format!(
        "{greeting},\n\nSomeone asked to reset the password of this account. To choose a new password, open:\n\n{link}\n\nThe link works for two days and only once. If you did not ask for this, ignore this email.\n"
    );
    let message = Message::builder()
        .from(from)
        .to(to)
        .subject("Reset your password")
        .body(body)
        .map_err(|e| CoreError::Internal(format!("cannot build the recovery email: {e}")))?;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&smtp.url)
        .map_err(|e| CoreError::Internal(format!("SMTP_URL: {e}")))?
        .build();
    transport
        .send(message)
        .await
        .map_err(|e| CoreError::Internal(format!("cannot send the recovery email: {e}")))?;
    Ok(())
}
