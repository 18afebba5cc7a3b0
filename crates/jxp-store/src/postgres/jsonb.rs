//! The text a document's `jsonb` column is built from. `jsonb` keeps a number as `numeric`,
//! which keeps a written fraction (`1.0` stays `1.0`) but not an exponent: a whole float of
//! 1e16 or more, which JSON text writes as `1e16`, would come back from `jsonb` as the digits
//! of an integer. The grouping SQL tells integers from floats by that text, so such a float is
//! written out with its fraction (`10000000000000000.0`) for `jsonb`. The answers are read
//! from `body`, the document's own text, which this does not touch.

use std::io;

use serde_json::Value;
use serde_json::ser::{CompactFormatter, Formatter, Serializer};

use crate::Document;

/// Whole floats from this magnitude up are written with an exponent by `serde_json`.
const EXPONENT_FROM: f64 = 1e16;

fn is_exponent_whole(v: f64) -> bool {
    v.is_finite() && v.abs() >= EXPONENT_FROM && v.fract() == 0.0
}

/// Whether any number in `v` is a whole float `jsonb` would turn into an integer.
fn has_exponent_whole(v: &Value) -> bool {
    match v {
        Value::Number(n) => !n.is_i64() && !n.is_u64() && n.as_f64().is_some_and(is_exponent_whole),
        Value::Array(items) => items.iter().any(has_exponent_whole),
        Value::Object(map) => map.values().any(has_exponent_whole),
        _ => false,
    }
}

/// Compact JSON, with whole floats of 1e16 or more written as their digits and `.0`.
struct JsonbFormatter;

impl Formatter for JsonbFormatter {
    fn write_f64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        if is_exponent_whole(value) {
            write!(writer, "{value:.1}")
        } else {
            CompactFormatter.write_f64(writer, value)
        }
    }
}

/// The text to build `doc`'s `jsonb` from, when it differs from the document's text (only
/// when the document holds a whole float of 1e16 or more); `None` means the text itself.
pub(crate) fn jsonb_text(doc: &Document) -> Option<String> {
    if !doc.values().any(has_exponent_whole) {
        return None;
    }
    text_of(doc).ok()
}

/// [`jsonb_text`] for one value (a default written into existing documents), always text.
pub(crate) fn jsonb_value_text(v: &Value) -> Result<String, serde_json::Error> {
    text_of(v)
}

/// `v` as compact JSON through [`JsonbFormatter`].
fn text_of<T: serde::Serialize + ?Sized>(v: &T) -> Result<String, serde_json::Error> {
    let mut out = Vec::new();
    v.serialize(&mut Serializer::with_formatter(&mut out, JsonbFormatter))?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn doc(v: Value) -> Document {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn only_whole_floats_with_an_exponent_are_rewritten() {
        assert_eq!(
            jsonb_text(&doc(json!({"a": 1, "b": 1.0, "c": 0.1, "d": 1e15}))),
            None
        );
        assert_eq!(
            jsonb_text(&doc(json!({"a": 10_000_000_000_000_000u64}))),
            None
        );
        assert_eq!(
            jsonb_text(&doc(json!({"a": [1e16], "b": {"c": -2e17}, "d": 1.5}))).as_deref(),
            Some(r#"{"a":[10000000000000000.0],"b":{"c":-200000000000000000.0},"d":1.5}"#)
        );
        let big = jsonb_value_text(&json!(1e300)).unwrap();
        assert!(big.starts_with("1000") && big.ends_with(".0") && big.len() == 303);
        assert_eq!(big.parse::<f64>().unwrap(), 1e300);
        assert_eq!(
            jsonb_value_text(&json!({"x": 1e-7})).unwrap(),
            r#"{"x":1e-7}"#
        );
    }
}
