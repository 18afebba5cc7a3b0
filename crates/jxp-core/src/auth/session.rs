//! Sessions: login, refresh, logout, JWTs for a user, password recovery and first-admin setup.

use chrono::{Duration, Utc};
use jxp_model::{Document, ObjectId, format_date};
use jxp_store::{Guard, StoreError, WriteOp, WriteTx};
use serde_json::{Value, json};

use super::credentials::Credentials;
use super::identify::auth_failed;
use super::pairs::{self, Login, Record, password_fp};
use super::records::{eq, str_of, system_doc};
use super::{jwt, mail};
use crate::app::App;
use crate::error::CoreError;
use crate::identity::Identity;
use crate::secret::{hash_secret, random_token};
use crate::write::WriteOptions;

/// What a login or refresh hands the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user_id: String,
    /// Only on login: the user's permanent API key.
    pub apikey: Option<String>,
    pub token: String,
    pub token_expires: String,
    pub refresh_token: String,
    pub refresh_token_expires: String,
    /// Fields the login post-hooks add to the answer.
    pub extra: Document,
}

fn doc(value: Value) -> Document {
    match value {
        Value::Object(map) => map,
        _ => Document::new(),
    }
}

/// How often a login, refresh or logout starts again when a concurrent one removed
/// some of the records it meant to remove first.
const SESSION_ATTEMPTS: usize = 32;

fn login_failed() -> CoreError {
    CoreError::Unauthorized("Authentication failed".into())
}

impl App {
    /// Logs in with email and password: adds a token pair (the user's other logins stay)
    /// and keeps (or first creates) their API key. Every attempt counts against `client`'s
    /// login limit (`client` is its address), checked before anything else.
    pub async fn login(
        &self,
        client: &str,
        email: &str,
        password: &str,
    ) -> Result<Session, CoreError> {
        self.inner.limiter.check(client)?;
        self.run_pre_login(email).await?;
        let user = self
            .check_password(email, password)
            .await?
            .ok_or_else(login_failed)?;
        let mut session = self.open_session(&user).await?;
        if let Some(model) = self.inner.schema.get("user") {
            let view = jxp_model::public_view(model, &user);
            let result = doc(serde_json::json!({
                "user_id": session.user_id,
                "token_expires": session.token_expires,
                "refresh_token_expires": session.refresh_token_expires,
            }));
            session.extra = self.run_post_login(&session.user_id, view, result).await;
        }
        Ok(session)
    }

    /// Exchanges a refresh token (even after the access token expired) for a new pair of the
    /// same login: that login's old token and refresh token stop working, the user's other
    /// logins stay.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Session, CoreError> {
        let digest = hash_secret(refresh_token);
        let record = self
            .find_first(pairs::REFRESH, eq("refresh_token", &digest))
            .await?
            .ok_or_else(login_failed)?;
        let user = self
            .user_doc(str_of(&record, "user_id"))
            .await?
            .ok_or_else(login_failed)?;
        let fp = password_fp(&user);
        if Record::of(pairs::REFRESH, &record).is_dead(&jxp_model::now_iso(), &fp) {
            return Err(login_failed());
        }
        let uid = str_of(&user, "_id");
        let mut attempt = 0;
        loop {
            attempt += 1;
            let records = self.login_records(uid).await?;
            let replaced = pairs::login_of(&records, pairs::REFRESH, &digest);
            let login = match replaced.first().map(|r| &r.login) {
                Some(Login::Id(id)) => id.clone(),
                Some(Login::Legacy) => ObjectId::new().to_string(),
                // Consumed by a concurrent refresh or logout since it was read.
                None => return Err(login_failed()),
            };
            let (tx, session) = self.pair_tx(uid, &login, &fp, pairs::remove_ops(&replaced))?;
            match self.commit(tx).await {
                Ok(_) => return Ok(session),
                // Something of this login went first (a login's clean-up of its expired
                // token, or a concurrent use of this refresh token): look again, and a
                // consumed refresh token fails as a reused one.
                Err(StoreError::NotFound { .. }) if attempt < SESSION_ATTEMPTS => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Revokes the login the caller's token belongs to (its token and refresh token), at once;
    /// with `all`, every token and refresh token of the caller. A caller who presented no
    /// token (Basic, an API key, a JWT) has no login of their own to end: without `all`
    /// nothing is revoked.
    pub async fn logout(
        &self,
        who: &Identity,
        creds: &Credentials,
        all: bool,
    ) -> Result<(), CoreError> {
        let uid = who.user_id().ok_or_else(auth_failed)?;
        let token = match creds {
            Credentials::Bearer(t) if !jwt::looks_like_jwt(t) => Some(hash_secret(t)),
            _ => None,
        };
        if token.is_none() && !all {
            return Ok(());
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let records = self.login_records(uid).await?;
            let gone: Vec<&Record> = match &token {
                Some(digest) if !all => pairs::login_of(&records, pairs::TOKEN, digest),
                _ => records.iter().collect(),
            };
            if gone.is_empty() {
                return Ok(());
            }
            let tx = WriteTx {
                ops: pairs::remove_ops(&gone),
                actor: Some(uid.to_owned()),
                silent: false,
            };
            match self.commit(tx).await {
                Ok(_) => return Ok(()),
                // A concurrent login or logout removed some first: look again.
                Err(StoreError::NotFound { .. }) if attempt < SESSION_ATTEMPTS => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The operations that revoke every token and refresh token of a user; a password change
    /// commits them with the new password.
    pub(crate) async fn revoke_all_ops(&self, uid: &str) -> Result<Vec<WriteOp>, CoreError> {
        let records = self.login_records(uid).await?;
        Ok(pairs::remove_ops(&records.iter().collect::<Vec<_>>()))
    }

    /// Every stored token and refresh token of a user.
    async fn login_records(&self, uid: &str) -> Result<Vec<Record>, CoreError> {
        let mut records = Vec::new();
        for model in [pairs::TOKEN, pairs::REFRESH] {
            for doc in self.find_all(model, eq("user_id", uid)).await? {
                records.push(Record::of(model, &doc));
            }
        }
        Ok(records)
    }

    /// Adds a login: a new token pair, written with the removal of the user's dead records
    /// and of the logins beyond the cap, and the API key found or first made. Two logins of
    /// one user at once may both remove the same dead record; the one that commits second
    /// finds it gone and starts again with what is there then.
    async fn open_session(&self, user: &Document) -> Result<Session, CoreError> {
        let uid = str_of(user, "_id");
        let fp = password_fp(user);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let records = self.login_records(uid).await?;
            let now = jxp_model::now_iso();
            let gone = pairs::login_removals(&records, &now, &fp, pairs::MAX_LOGINS);
            let login = ObjectId::new().to_string();
            let (mut tx, mut session) = self.pair_tx(uid, &login, &fp, pairs::remove_ops(&gone))?;
            let existing = self.find_first("apikey", eq("user_id", uid)).await?;
            session.apikey = Some(match existing {
                Some(record) => str_of(&record, "apikey").to_owned(),
                None => {
                    let key = random_token()?;
                    tx.ops.push(WriteOp::Insert {
                        model: "apikey".into(),
                        doc: system_doc(uid, doc(json!({ "user_id": uid, "apikey": key, "key_hash": hash_secret(&key) }))),
                    });
                    key
                }
            });
            match self.commit(tx).await {
                Ok(_) => return Ok(session),
                Err(StoreError::NotFound { .. }) if attempt < SESSION_ATTEMPTS => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// A transaction that runs `ops` and writes a new token pair of login `login`, and the
    /// session it hands out (without the API key).
    fn pair_tx(
        &self,
        uid: &str,
        login: &str,
        password_fp: &str,
        mut ops: Vec<WriteOp>,
    ) -> Result<(WriteTx, Session), CoreError> {
        let auth = &self.inner.settings.auth;
        let now = Utc::now();
        let secs = |s: u64| Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX / 2_000));
        let token = random_token()?;
        let token_expires = format_date(now + secs(auth.token_expiry_secs));
        let refresh_token = random_token()?;
        let refresh_token_expires = format_date(now + secs(auth.refresh_token_expiry_secs));
        ops.push(WriteOp::Insert {
            model: pairs::TOKEN.into(),
            doc: system_doc(
                uid,
                doc(json!({ "user_id": uid, "access_token": hash_secret(&token), "expires": token_expires, "session": login, "password_fp": password_fp, "provider": "jxp" })),
            ),
        });
        ops.push(WriteOp::Insert {
            model: pairs::REFRESH.into(),
            doc: system_doc(
                uid,
                doc(json!({ "user_id": uid, "refresh_token": hash_secret(&refresh_token), "expires": refresh_token_expires, "session": login, "password_fp": password_fp })),
            ),
        });
        let tx = WriteTx {
            ops,
            actor: Some(uid.to_owned()),
            silent: false,
        };
        let session = Session {
            user_id: uid.to_owned(),
            apikey: None,
            token,
            token_expires,
            refresh_token,
            refresh_token_expires,
            extra: Document::new(),
        };
        Ok((tx, session))
    }

    fn shared_secret(&self) -> Result<&str, CoreError> {
        self.inner
            .settings
            .auth
            .shared_secret
            .as_deref()
            .ok_or_else(|| {
                CoreError::Unavailable(
                    "SHARED_SECRET is not set on this server, so JWTs are unavailable".into(),
                )
            })
    }

    /// A JWT that logs `email` in (admins only). Answers `(email, jwt)`.
    pub async fn get_jwt(
        &self,
        who: &Identity,
        email: &str,
    ) -> Result<(String, String), CoreError> {
        if !who.is_admin() {
            return Err(CoreError::Forbidden("only admins may issue JWTs".into()));
        }
        let secret = self.shared_secret()?;
        let user = self
            .user_by_email(email)
            .await?
            .ok_or_else(|| CoreError::NotFound("no user with that email".into()))?;
        let email = str_of(&user, "email").to_owned();
        let token = jwt::sign(secret, str_of(&user, "_id"), &email, jwt::PURPOSE_LOGIN)?;
        Ok((email, token))
    }

    /// Emails a recovery link to `email` if such a user exists. The answer is the same either
    /// way, so the route does not tell who has an account. Every attempt counts against
    /// `client`'s login limit, as a login does.
    pub async fn recover(&self, client: &str, email: &str) -> Result<(), CoreError> {
        self.inner.limiter.check(client)?;
        if email.trim().is_empty() {
            return Err(CoreError::BadRequest("email is required".into()));
        }
        let secret = self.shared_secret()?.to_owned();
        let smtp = self.inner.settings.auth.smtp.clone().ok_or_else(|| {
            CoreError::Unavailable(
                "SMTP is not configured on this server, so recovery emails are unavailable".into(),
            )
        })?;
        // The work runs after the answer, so how long the answer takes does not tell whether
        // the account exists.
        let app = self.clone();
        let email = email.to_owned();
        tokio::spawn(async move {
            if let Err(e) = app.send_recovery(&secret, &smtp, &email).await {
                tracing::error!(error = %e, "password recovery failed");
            }
        });
        Ok(())
    }

    async fn send_recovery(
        &self,
        secret: &str,
        smtp: &mail::SmtpSettings,
        email: &str,
    ) -> Result<(), CoreError> {
        let Some(user) = self.user_by_email(email).await? else {
            tracing::info!("recovery asked for an unknown email");
            return Ok(());
        };
        let uid = str_of(&user, "_id").to_owned();
        let address = str_of(&user, "email").to_owned();
        let token = jwt::sign(secret, &uid, &address, jwt::PURPOSE_RECOVER)?;
        let mut patch = Document::new();
        patch.insert("temp_hash".into(), Value::String(hash_secret(&token)));
        self.update(
            &Identity::system(),
            "user",
            &uid,
            patch,
            WriteOptions {
                silence: true,
                ..WriteOptions::default()
            },
        )
        .await?;
        mail::send_recovery(smtp, &address, str_of(&user, "name"), &token).await
    }

    /// Creates the first admin while no user exists; refused once there is one, even when two
    /// setups race.
    pub async fn setup(&self, body: Document) -> Result<Document, CoreError> {
        let taken = || CoreError::Forbidden("setup is only possible while no user exists".into());
        if self
            .inner
            .store
            .count("user", &jxp_query::Filter::All)
            .await?
            > 0
        {
            return Err(taken());
        }
        for key in ["email", "password"] {
            if body
                .get(key)
                .and_then(Value::as_str)
                .is_none_or(|s| s.trim().is_empty())
            {
                return Err(CoreError::BadRequest(format!("{key} is required")));
            }
        }
        let mut body = body;
        body.insert("admin".into(), Value::Bool(true));
        let guard = WriteOp::Guard(Guard::Empty {
            model: "user".into(),
        });
        self.create_with(
            &Identity::system(),
            "user",
            body,
            WriteOptions::default(),
            vec![guard],
        )
        .await
        .map_err(|e| match e {
            CoreError::NotEmpty { .. } => taken(),
            other => other,
        })
    }
}
