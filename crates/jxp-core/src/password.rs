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

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn verifies_jxp_2a_hashes_and_our_own() {
        // JXP (bcryptjs) writes `$2a$` hashes; they must keep working after a migration.
        let parts = bcrypt::hash_with_result("TopSecret", 4).unwrap();
        let jxp_style = parts.format_for_version(bcrypt::Version::TwoA);
        assert!(jxp_style.starts_with("$2a$04$"));
        assert!(verify("TopSecret".into(), jxp_style.clone()).await.unwrap());
        assert!(!verify("wrong".into(), jxp_style).await.unwrap());
        let ours = hash("TopSecret".into(), 4).await.unwrap();
        assert!(verify("TopSecret".into(), ours).await.unwrap());
        assert!(
            !verify("TopSecret".into(), "not a hash".into())
                .await
                .unwrap()
        );
    }
}
