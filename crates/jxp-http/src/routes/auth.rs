//! Authentication routes: login, refresh, logout, JWTs, recovery and first-admin setup.

use axum::Json;
use axum::extract::State;
use axum::http::request::Parts;
use jxp_core::{Credentials, Session};
use jxp_model::Document;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Caller, ClientKey, JsonBody, QueryPairs, credentials};

fn text<'a>(body: &'a Document, key: &str) -> &'a str {
    body.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn session_json(state: &AppState, s: Session) -> Value {
    let mut out = json!({
        "user_id": s.user_id,
        "token": s.token,
        "token_expires": s.token_expires,
        "refresh_token": s.refresh_token,
        "refresh_token_expires": s.refresh_token_expires,
        "provider": state.app.settings().auth.api_url,
    });
    if let Some(key) = s.apikey {
        out["apikey"] = Value::String(key);
    }
    // Login post-hooks add fields; they never replace the session's own.
    if let Value::Object(map) = &mut out {
        for (k, v) in s.extra {
            map.entry(k).or_insert(v);
        }
    }
    out
}

/// `POST /login` with `{email, password}`.
pub(crate) async fn login(
    State(state): State<AppState>,
    key: ClientKey,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let session = state
        .app
        .login(&key.0, text(&body, "email"), text(&body, "password"))
        .await?;
    Ok(Json(session_json(&state, session)))
}

/// `POST /refresh` and `POST /login/refresh` with `Authorization: Bearer <refresh token>`
/// (or `{refresh_token}` in the body).
pub(crate) async fn refresh(
    State(state): State<AppState>,
    parts: Parts,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let token = match credentials(&parts)? {
        Credentials::Bearer(t) => t,
        _ => text(&body, "refresh_token").to_owned(),
    };
    if token.is_empty() {
        return Err(jxp_core::CoreError::Unauthorized("Authentication failed".into()).into());
    }
    let session = state.app.refresh(&token).await?;
    Ok(Json(session_json(&state, session)))
}

/// `GET /login/logout` and `GET /logout`: revokes the caller's login (the token pair of the
/// Bearer token presented) at once; with `?all=true`, every login of the caller.
pub(crate) async fn logout(
    State(state): State<AppState>,
    parts: Parts,
    Caller(who): Caller,
    query: QueryPairs,
) -> Result<Json<Value>, ApiError> {
    if who.user.is_none() {
        return Err(ApiError::forbidden(
            "log in first: logout needs credentials",
        ));
    }
    state
        .app
        .logout(&who, &credentials(&parts)?, query.flag("all"))
        .await?;
    Ok(Json(
        json!({ "status": "ok", "message": "User logged out" }),
    ))
}

/// `POST /login/getjwt` with `{email}` (admins only).
pub(crate) async fn get_jwt(
    State(state): State<AppState>,
    Caller(who): Caller,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let (email, token) = state.app.get_jwt(&who, text(&body, "email")).await?;
    Ok(Json(json!({ "email": email, "token": token })))
}

/// `POST /login/recover` with `{email}`: the same answer whether or not the user exists.
pub(crate) async fn recover(
    State(state): State<AppState>,
    key: ClientKey,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    state.app.recover(&key.0, text(&body, "email")).await?;
    Ok(Json(
        json!({ "status": "ok", "message": "Sent recovery email" }),
    ))
}

/// `POST /setup` with `{email, password, name}` while no user exists.
pub(crate) async fn setup(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let user = state.app.setup(body).await?;
    Ok(Json(json!({
        "status": "success",
        "name": user.get("name").cloned().unwrap_or(Value::Null),
        "email": user.get("email").cloned().unwrap_or(Value::Null),
        "user_id": user.get("_id").cloned().unwrap_or(Value::Null),
    })))
}
