//! What a caller presented: the one input of authentication, and the identity cache's key.

/// What a caller presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    None,
    Basic {
        email: String,
        password: String,
    },
    /// An access token or a JWT.
    Bearer(String),
    ApiKey(String),
}
