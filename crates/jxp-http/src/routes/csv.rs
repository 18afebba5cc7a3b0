//! `GET /csv/:model`: the list `GET /api/:model` would answer (same filters, sort, paging,
//! limits and permissions), as an RFC 4180 CSV download. Links are not populated, as in JXP.

use axum::extract::State;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use jxp_model::{Document, Model};
use serde_json::Value;

use super::api::{check_size, list_request};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiPath, Caller, QueryPairs};

/// The system fields that close every row, after the model's own fields.
const TRAILING: &[&str] = &["_owner_id", "_deleted", "createdAt", "updatedAt"];

pub(crate) async fn csv(
    State(state): State<AppState>,
    Caller(who): Caller,
    ApiPath(slug): ApiPath<String>,
    query: QueryPairs,
) -> Result<Response, ApiError> {
    let model = state.app.model(&slug)?;
    // A cell holds one value: linked documents are not joined into a CSV.
    let pairs: Vec<(String, String)> = query
        .0
        .into_iter()
        .filter(|(k, _)| k != "autopopulate" && k != "populate" && !k.starts_with("populate["))
        .collect();
    let req = list_request(model, &pairs)?;
    let columns = columns(model, req.params.fields.as_deref());
    let outcome = state.app.list(&who, &slug, &req).await?;
    let text = render(&columns, &outcome.data);
    check_size(&state, &slug, text.len())?;
    // The slug is a model file name, restricted to [A-Za-z0-9_] by the loader, so it needs no
    // escaping inside the quoted filename.
    let disposition = format!("attachment; filename=\"{slug}.csv\"");
    Ok((
        [
            (CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (CONTENT_DISPOSITION, disposition),
        ],
        text,
    )
        .into_response())
}

/// The header row: `_id`, the model's top-level public fields in file order, then the system
/// fields; or, with `fields=`, `_id` and the named top-level fields in the order given.
pub(crate) fn columns(model: &Model, fields: Option<&[String]>) -> Vec<String> {
    let mut out = vec!["_id".to_owned()];
    let mut push = |name: &str| {
        if !out.iter().any(|c| c == name) {
            out.push(name.to_owned());
        }
    };
    match fields {
        Some(fields) => {
            for f in fields {
                let top = f.split('.').next().unwrap_or(f);
                // A private field is never returned, so it gets no column either.
                if top != "id" && model.field(top).is_none_or(|fd| !fd.is_private()) {
                    push(top);
                }
            }
        }
        None => {
            for f in model.fields.iter().filter(|f| !f.is_private()) {
                push(&f.name);
            }
            for name in TRAILING {
                push(name);
            }
        }
    }
    out
}

/// The CSV text: a header row and one row per document, CRLF-terminated (RFC 4180).
pub(crate) fn render(columns: &[String], docs: &[Document]) -> String {
    let mut out = String::new();
    push_row(&mut out, columns.iter().map(String::as_str));
    for doc in docs {
        let cells: Vec<String> = columns.iter().map(|c| cell(doc.get(c))).collect();
        push_row(&mut out, cells.iter().map(String::as_str));
    }
    out
}

fn push_row<'a>(out: &mut String, cells: impl Iterator<Item = &'a str>) {
    for (i, c) in cells.enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_field(out, c);
    }
    out.push_str("\r\n");
}

/// One field, quoted when it holds a comma, a quote, CR or LF, with quotes doubled.
fn push_field(out: &mut String, text: &str) {
    if text.contains([',', '"', '\r', '\n']) {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(text);
    }
}

/// A value as cell text: strings as they are, numbers and booleans as JSON writes them,
/// objects and arrays as compact JSON, null or missing as nothing.
fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_are_quoted_per_rfc_4180() {
        let cases = [
            ("plain", "plain"),
            ("a,b", "\"a,b\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
            ("two\nlines", "\"two\nlines\""),
            ("cr\rhere", "\"cr\rhere\""),
            ("", ""),
        ];
        for (input, want) in cases {
            let mut out = String::new();
            push_field(&mut out, input);
            assert_eq!(out, want, "{input:?}");
        }
    }

    #[test]
    fn cells_and_rows() {
        let cases = [
            (None, ""),
            (Some(json!(null)), ""),
            (Some(json!("x")), "x"),
            (Some(json!(5)), "5"),
            (Some(json!(1.5)), "1.5"),
            (Some(json!(true)), "true"),
            (Some(json!({"a": 1, "b": [1, 2]})), "{\"a\":1,\"b\":[1,2]}"),
        ];
        for (v, want) in cases {
            assert_eq!(cell(v.as_ref()), want, "{v:?}");
        }
        let doc = json!({"_id": "1", "a": "x,y", "b": [1, 2]});
        let docs: Vec<Document> = doc.as_object().cloned().into_iter().collect();
        let cols = vec![
            "_id".to_owned(),
            "a".to_owned(),
            "b".to_owned(),
            "c".to_owned(),
        ];
        assert_eq!(
            render(&cols, &docs),
            "_id,a,b,c\r\n1,\"x,y\",\"[1,2]\",\r\n"
        );
        assert_eq!(render(&cols, &[]), "_id,a,b,c\r\n");
    }
}
