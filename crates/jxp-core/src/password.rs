//! Password hashing with bcrypt, off the async runtime (a hash costs milliseconds).

use crate::error::CoreError;

/// Hashes a password at `cost` on the blocking pool. JXP's `$2a$` hashes verify too.
pub async fn hash(password: String, cost: u32) -> Result<String, CoreError> {
    tokio::task::spawn_blocking(move || bcrypt::hash(password, cost))
        .await
        .map_err(|e| CoreError::Internal(format!("hash task failed: {e}")))?
        .map_err(|e| CoreError::Internal(format!("bcrypt: {e}")))
}

/// Checks a password against a stored hash on the blocking pool; a malformed hash is a
/// mismatch.
pub async fn verify(password: String, hash: String) -> Result<bool, CoreError> {
    tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
        .await
        .map_err(|e| CoreError::Internal(format!("verify task failed: {e}")))
}
