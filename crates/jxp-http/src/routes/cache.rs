//! `/cache/stats` and `/cache/clear`: the response cache (and, for `clear`, the kept counts),
//! for admins only.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::Caller;

/// JXP's `admin_only`: a 403 either way, saying whether the caller is signed in at all.
fn admin_only(who: &jxp_core::Identity) -> Result<(), ApiError> {
    if who.is_admin() {
        Ok(())
    } else if who.user.is_none() {
        Err(ApiError::forbidden("User not logged in"))
    } else {
        Err(ApiError::forbidden("User not admin"))
    }
}

pub(crate) async fn stats(
    State(state): State<AppState>,
    Caller(who): Caller,
) -> Result<Json<Value>, ApiError> {
    admin_only(&who)?;
    if !state.cache.enabled() {
        return Ok(Json(json!({ "cache_enabled": false })));
    }
    let (hits, misses, keys) = state.cache.stats();
    Ok(Json(
        json!({ "cache_enabled": true, "hits": hits, "misses": misses, "keys": keys }),
    ))
}

pub(crate) async fn clear(
    State(state): State<AppState>,
    Caller(who): Caller,
) -> Result<Json<Value>, ApiError> {
    admin_only(&who)?;
    state.cache.clear();
    state.app.forget_counts();
    Ok(Json(json!({ "status": "ok", "message": "cache cleared" })))
}
