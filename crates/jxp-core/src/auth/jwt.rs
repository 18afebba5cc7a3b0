//! JWTs signed with `SHARED_SECRET` (HS256): `{ id, email, purpose, exp }`. They never carry
//! the API key (JXP's do, which leaks it through recovery emails).

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::CoreError;

/// How long a JWT lives: two days, as JXP's.
pub const JWT_LIFETIME_SECS: i64 = 2 * 24 * 3600;

/// What a JWT is for.
pub const PURPOSE_LOGIN: &str = "login";
pub const PURPOSE_RECOVER: &str = "recover";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub id: String,
    pub email: String,
    pub purpose: String,
    pub exp: i64,
}

pub fn sign(secret: &str, id: &str, email: &str, purpose: &str) -> Result<String, CoreError> {
    let claims = Claims {
        id: id.to_owned(),
        email: email.to_owned(),
        purpose: purpose.to_owned(),
        exp: chrono::Utc::now().timestamp() + JWT_LIFETIME_SECS,
    };
    let key = EncodingKey::from_secret(secret.as_bytes())
        .map_err(|e| CoreError::Internal(format!("JWT key: {e}")))?;
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key)
        .map_err(|e| CoreError::Internal(format!("cannot sign a JWT: {e}")))
}

/// The claims of a valid, unexpired HS256 token signed with `secret`.
pub fn verify(secret: &str, token: &str) -> Option<Claims> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp"]);
    let key = DecodingKey::from_secret(secret.as_bytes()).ok()?;
    jsonwebtoken::decode::<Claims>(token, &key, &validation)
        .ok()
        .map(|d| d.claims)
}

/// Whether a bearer credential is shaped like a JWT rather than an access token.
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejections() {
        let t = sign("s3cret", "abc", "a@b.c", PURPOSE_LOGIN).unwrap();
        assert!(looks_like_jwt(&t));
        let c = verify("s3cret", &t).unwrap();
        assert_eq!(
            (c.id.as_str(), c.email.as_str(), c.purpose.as_str()),
            ("abc", "a@b.c", "login")
        );
        assert!(verify("other", &t).is_none(), "wrong secret");
        let mut tampered = t.clone();
        tampered.pop();
        assert!(verify("s3cret", &tampered).is_none());
        let expired = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &Claims {
                id: "a".into(),
                email: "e".into(),
                purpose: "login".into(),
                exp: 1000,
            },
            &EncodingKey::from_secret(b"s3cret").unwrap(),
        )
        .unwrap();
        assert!(verify("s3cret", &expired).is_none());
        let none_alg = "eyJhbGciOiJub25lIn0.eyJpZCI6ImEiLCJlbWFpbCI6ImUiLCJwdXJwb3NlIjoibG9naW4iLCJleHAiOjk5OTk5OTk5OTl9.";
        assert!(verify("s3cret", none_alg).is_none());
    }
}
