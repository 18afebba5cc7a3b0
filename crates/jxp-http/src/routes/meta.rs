//! `/healthz` and the model reflection routes (`/model`, `/model/:model`).

use axum::Json;
use axum::extract::State;
use jxp_model::{Field, FieldKind, IndexKind, Model};
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiPath, Caller};

/// Liveness, including a round trip to the store.
pub(crate) async fn healthz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state.app.ping().await?;
    Ok(Json(json!({ "status": "ok" })))
}

/// Models the caller may know of: internal ones are listed to admins only.
pub(crate) async fn models(State(state): State<AppState>, Caller(who): Caller) -> Json<Value> {
    let list: Vec<Value> = state
        .app
        .schema()
        .models
        .values()
        .filter(|m| !m.perms.is_empty() && (!m.options.internal || who.is_admin()))
        .map(|m| json!({ "model": m.slug, "name": m.name, "perms": perms_json(m) }))
        .collect();
    Json(Value::Array(list))
}

/// One model's definition, private fields included by name but never their values.
pub(crate) async fn model(
    State(state): State<AppState>,
    Caller(who): Caller,
    ApiPath(slug): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let model = state.app.model(&slug)?;
    if model.perms.is_empty() || (model.options.internal && !who.is_admin()) {
        return Err(jxp_core::CoreError::UnknownModel(slug).into());
    }
    let o = &model.options;
    Ok(Json(json!({
        "model": model.slug,
        "name": model.name,
        "fields": fields_json(&model.fields),
        "perms": perms_json(model),
        "options": {
            "internal": o.internal,
            "soft_delete": o.soft_delete,
            "advanced_queries": {
                "query": o.advanced_queries.query,
                "aggregate": o.advanced_queries.aggregate,
                "bulkwrite": o.advanced_queries.bulkwrite,
            },
            "callable": o.callable,
        },
    })))
}

fn perms_json(model: &Model) -> Value {
    Value::Object(
        model
            .perms
            .groups
            .iter()
            .map(|(g, l)| (g.clone(), Value::String(l.clone())))
            .collect(),
    )
}

pub(crate) fn fields_json(fields: &[Field]) -> Value {
    Value::Object(
        fields
            .iter()
            .map(|f| (f.name.clone(), field_json(f)))
            .collect(),
    )
}

fn field_json(f: &Field) -> Value {
    let mut out = Map::new();
    match &f.kind {
        FieldKind::Scalar(t) => {
            out.insert("type".into(), Value::String(t.name().into()));
        }
        FieldKind::Array(inner) => {
            out.insert("type".into(), Value::String("Array".into()));
            out.insert("items".into(), field_json(inner));
        }
        FieldKind::Object(children) => {
            out.insert("type".into(), Value::String("Object".into()));
            out.insert("fields".into(), fields_json(children));
        }
    }
    let o = &f.options;
    let mut flag = |name: &str, on: bool| {
        if on {
            out.insert(name.into(), Value::Bool(true));
        }
    };
    flag("required", o.required);
    flag("unique", o.unique);
    flag("private", f.is_private());
    flag("lowercase", o.lowercase);
    flag("uppercase", o.uppercase);
    flag("trim", o.trim);
    match o.index {
        IndexKind::Normal => {
            out.insert("index".into(), Value::Bool(true));
        }
        IndexKind::Text => {
            out.insert("index".into(), Value::String("text".into()));
        }
        IndexKind::None => {}
    }
    let mut opt = |name: &str, v: Option<Value>| {
        if let Some(v) = v {
            out.insert(name.into(), v);
        }
    };
    opt("default", o.default.clone());
    opt("enum", o.enum_values.clone().map(Value::Array));
    opt("min", o.min.clone());
    opt("max", o.max.clone());
    opt("minlength", o.minlength.map(Value::from));
    opt("maxlength", o.maxlength.map(Value::from));
    opt(
        "match",
        o.pattern
            .as_ref()
            .map(|p| Value::String(p.as_str().to_owned())),
    );
    opt("link", o.link.clone().map(Value::String));
    opt("map_to", o.map_to.clone().map(Value::String));
    Value::Object(out)
}
