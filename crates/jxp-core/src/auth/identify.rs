//! Who a request or socket is: credentials resolved to an identity (Basic, Bearer token, JWT,
//! API key), cached until an identity-changing write, and the password check behind logins.
//! Tokens and API keys are looked up by their SHA-256.

use jxp_model::Document;
use jxp_query::{Filter, Find};
use serde_json::Value;

use super::credentials::Credentials;
use super::jwt;
use super::pairs::{self, Record};
use super::records::{eq, str_of};
use crate::app::App;
use crate::error::CoreError;
use crate::identity::{Identity, User};
use crate::password;
use crate::realtime::{Connection, CredentialTrace};
use crate::secret::{ct_eq, hash_secret};

pub(crate) fn auth_failed() -> CoreError {
    CoreError::Forbidden(
        "authentication failed: the credentials are wrong, expired or revoked".into(),
    )
}

impl App {
    /// The first live document of a model matching `filter`.
    pub(crate) async fn find_first(
        &self,
        slug: &str,
        filter: Filter,
    ) -> Result<Option<Document>, CoreError> {
        Ok(self
            .find_live(slug, filter, Some(1))
            .await?
            .into_iter()
            .next())
    }

    /// Every live document of a model matching `filter`.
    pub(crate) async fn find_all(
        &self,
        slug: &str,
        filter: Filter,
    ) -> Result<Vec<Document>, CoreError> {
        self.find_live(slug, filter, None).await
    }

    async fn find_live(
        &self,
        slug: &str,
        filter: Filter,
        limit: Option<u64>,
    ) -> Result<Vec<Document>, CoreError> {
        let find = Find {
            filter: filter.and(Filter::live()),
            limit,
            ..Find::default()
        };
        Ok(self.inner.store.find(slug, &find).await?)
    }

    /// A live user by id.
    pub(crate) async fn user_doc(&self, id: &str) -> Result<Option<Document>, CoreError> {
        if !jxp_model::is_object_id(id) {
            return Ok(None);
        }
        let doc = self.inner.store.get("user", id).await?;
        Ok(doc.filter(|d| !d.get("_deleted").and_then(Value::as_bool).unwrap_or(false)))
    }

    /// A live user by email (emails are stored lower-cased and trimmed).
    pub(crate) async fn user_by_email(&self, email: &str) -> Result<Option<Document>, CoreError> {
        let email = email.trim().to_lowercase();
        if email.is_empty() {
            return Ok(None);
        }
        self.find_first("user", eq("email", &email)).await
    }

    /// The identity of a stored user, with their custom groups.
    pub(crate) async fn identity_of(&self, user: &Document) -> Result<Identity, CoreError> {
        let id = str_of(user, "_id").to_owned();
        let groups = self
            .find_first("usergroups", eq("user_id", &id))
            .await?
            .and_then(|g| g.get("groups").and_then(Value::as_array).cloned())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|g| g.as_str().map(str::to_owned))
            .collect();
        Ok(Identity::user(User {
            id,
            name: str_of(user, "name").to_owned(),
            email: str_of(user, "email").to_owned(),
            admin: user.get("admin").and_then(Value::as_bool).unwrap_or(false),
            groups,
        }))
    }

    /// Who presented these credentials. No credentials is anonymous; wrong, expired or revoked
    /// ones are `Forbidden`, as JXP answers on API routes. Resolved identities are cached until
    /// an identity-changing write or the credential's expiry.
    pub async fn authenticate(&self, creds: &Credentials) -> Result<Identity, CoreError> {
        let cache = &self.inner.identities;
        let Some(key) = cache.key(creds) else {
            return Ok(Identity::anonymous());
        };
        let now_ms = chrono::Utc::now().timestamp_millis();
        if let Some(identity) = cache.get(&key, now_ms) {
            return Ok(identity);
        }
        let generation = cache.generation();
        let (user, expires_ms) = self.resolve(creds, now_ms).await?;
        let Some(user) = user else {
            return Err(auth_failed());
        };
        let identity = self.identity_of(&user).await?;
        cache.insert(generation, key, identity.clone(), expires_ms);
        Ok(identity)
    }

    /// The stored user some credentials belong to, and when the credentials expire.
    async fn resolve(
        &self,
        creds: &Credentials,
        now_ms: i64,
    ) -> Result<(Option<Document>, Option<i64>), CoreError> {
        Ok(match creds {
            Credentials::None => (None, None),
            Credentials::Basic { email, password } => {
                (self.check_password(email, password).await?, None)
            }
            Credentials::ApiKey(k) => {
                let record = self
                    .find_first("apikey", eq("key_hash", &hash_secret(k)))
                    .await?;
                match record {
                    Some(r) => (self.user_doc(str_of(&r, "user_id")).await?, None),
                    None => (None, None),
                }
            }
            Credentials::Bearer(token) if jwt::looks_like_jwt(token) => {
                self.jwt_user(token).await?
            }
            Credentials::Bearer(token) => {
                let record = self
                    .find_first("token", eq("access_token", &hash_secret(token)))
                    .await?;
                let expires = record
                    .as_ref()
                    .and_then(|r| jxp_model::parse_date(r.get("expires")?))
                    .map(|d| d.timestamp_millis());
                match (record, expires) {
                    (Some(r), Some(e)) if e > now_ms => {
                        let user = self.user_doc(str_of(&r, "user_id")).await?;
                        // A token issued under a password since changed is dead, even when a
                        // login raced with the change and its token escaped the revocation.
                        let fp = user.as_ref().map(pairs::password_fp);
                        let record = Record::of(pairs::TOKEN, &r);
                        match fp {
                            Some(fp) if record.password_holds(&fp) => (user, Some(e)),
                            _ => (None, None),
                        }
                    }
                    _ => (None, None),
                }
            }
        })
    }

    /// Authenticates a realtime connection from `client` (its address, the rate limiter's
    /// key): its identity from now on, and what would revoke it (the token or key it used, the
    /// password it was checked against, the expiry). A password attempt always counts against
    /// the client's login limit, as a login does; a token or key only when it is wrong.
    pub async fn authenticate_connection(
        &self,
        conn: &Connection,
        creds: &Credentials,
        client: &str,
    ) -> Result<(), CoreError> {
        let limiter = &self.inner.limiter;
        let password = matches!(creds, Credentials::Basic { .. });
        if password {
            limiter.check(client)?;
        } else {
            limiter.peek(client)?;
        }
        let result = self.identify_connection(conn, creds).await;
        if result.is_err() && !password {
            limiter.charge(client);
        }
        result
    }

    async fn identify_connection(
        &self,
        conn: &Connection,
        creds: &Credentials,
    ) -> Result<(), CoreError> {
        let (user, expires_ms) = self
            .resolve(creds, chrono::Utc::now().timestamp_millis())
            .await?;
        let user = user.ok_or_else(auth_failed)?;
        let identity = self.identity_of(&user).await?;
        let trace = CredentialTrace {
            token_hash: match creds {
                Credentials::Bearer(t) if !jwt::looks_like_jwt(t) => Some(hash_secret(t)),
                _ => None,
            },
            key_hash: match creds {
                Credentials::ApiKey(k) => Some(hash_secret(k)),
                _ => None,
            },
            password_fp: pairs::password_fp(&user),
            expires_ms,
        };
        let limits = self.read_limits(&identity).await;
        conn.set_identity(identity, trace, limits).await
    }

    /// The user a JWT logs in: signed with our secret, unexpired, for a known user; a recovery
    /// JWT only while it is the user's current one (a password change retires it).
    async fn jwt_user(&self, token: &str) -> Result<(Option<Document>, Option<i64>), CoreError> {
        let Some(secret) = &self.inner.settings.auth.shared_secret else {
            return Ok((None, None));
        };
        let Some(claims) = jwt::verify(secret, token) else {
            return Ok((None, None));
        };
        let Some(user) = self.user_doc(&claims.id).await? else {
            return Ok((None, None));
        };
        let valid = match claims.purpose.as_str() {
            jwt::PURPOSE_LOGIN => true,
            jwt::PURPOSE_RECOVER => ct_eq(str_of(&user, "temp_hash"), &hash_secret(token)),
            _ => false,
        };
        Ok((valid.then_some(user), Some(claims.exp.saturating_mul(1000))))
    }

    /// The user whose email and password these are. An unknown email costs a bcrypt check
    /// too, so the answer time does not tell which part was wrong.
    pub(crate) async fn check_password(
        &self,
        email: &str,
        password: &str,
    ) -> Result<Option<Document>, CoreError> {
        let user = self.user_by_email(email).await?;
        let hash = user
            .as_ref()
            .map(|u| str_of(u, "password").to_owned())
            .filter(|h| !h.is_empty());
        let hash = match hash {
            Some(h) => h,
            None => self.dummy_hash().await?,
        };
        let ok = password::verify(password.to_owned(), hash).await?;
        Ok(if ok { user } else { None })
    }

    async fn dummy_hash(&self) -> Result<String, CoreError> {
        let cost = self.inner.settings.bcrypt_cost;
        self.inner
            .dummy_hash
            .get_or_try_init(|| password::hash("jxp timing equaliser".into(), cost))
            .await
            .cloned()
    }
}
