//! A call's answer as JSON text. Hooks answer plain data: a filter, the fields to merge, a
//! function's result. QuickJS's `JSON.stringify` costs more than the call itself even for a
//! two-key filter (it wraps the value, lists each object's keys into a new array and looks
//! for `toJSON` up every prototype chain), so such answers are written here, from Rust, as
//! `JSON.stringify` would write them. Whatever is not plain data (a `Date` or another class's
//! instance, a `Proxy`, an object with a `toJSON` function, a `BigInt`, nesting deeper than
//! [`MAX_DEPTH`], an answer longer than the runtime's memory) goes to `JSON.stringify` whole.
//!
//! Both read each property once with `[[Get]]`, in the same order; only when the walk meets
//! something it hands over after a getter has run does that getter run twice.

use std::fmt::Write as _;

use rquickjs::atom::PredefinedAtom;
use rquickjs::{Ctx, Object, Type, Value};

/// How deep the walk goes before it hands the answer over (`JSON.stringify` then finds a
/// cycle, or writes a deep value itself).
const MAX_DEPTH: usize = 64;

/// `value` as JSON text; `None` where `JSON.stringify` answers `undefined` (a function, a
/// symbol, `undefined`). `limit`: the longest text the walk writes before it hands over, so
/// that a huge answer meets the runtime's memory cap rather than the server's. `proto`: the
/// genuine `Object.prototype`, kept before any script ran (an object with another prototype
/// is handed over).
pub(crate) fn json_text<'js>(
    ctx: &Ctx<'js>,
    proto: &Object<'js>,
    value: Value<'js>,
    limit: usize,
) -> rquickjs::Result<Option<String>> {
    let mut walk = Walk {
        proto,
        out: String::with_capacity(64),
        limit,
    };
    match walk.write(&value, 0)? {
        Step::Wrote => return Ok(Some(walk.out)),
        Step::Skipped => return Ok(None),
        Step::HandOver => {}
    }
    match ctx.json_stringify(value)? {
        Some(text) => Ok(Some(text.to_string()?)),
        None => Ok(None),
    }
}

enum Step {
    Wrote,
    /// Nothing written: `undefined`, a function or a symbol (left out of an object, null in
    /// an array).
    Skipped,
    /// Not plain data: `JSON.stringify` writes the whole answer.
    HandOver,
}

struct Walk<'a, 'js> {
    /// The genuine `Object.prototype`, kept before any script ran.
    proto: &'a Object<'js>,
    out: String,
    limit: usize,
}

impl<'js> Walk<'_, 'js> {
    fn write(&mut self, value: &Value<'js>, depth: usize) -> rquickjs::Result<Step> {
        if self.out.len() > self.limit {
            return Ok(Step::HandOver);
        }
        match value.type_of() {
            Type::Undefined | Type::Symbol | Type::Function | Type::Constructor => {
                Ok(Step::Skipped)
            }
            Type::Null => {
                self.out.push_str("null");
                Ok(Step::Wrote)
            }
            Type::Bool => {
                let yes = value.as_bool() == Some(true);
                self.out.push_str(if yes { "true" } else { "false" });
                Ok(Step::Wrote)
            }
            Type::Int => {
                let n = value.as_int().unwrap_or_default();
                let _ = write!(self.out, "{n}");
                Ok(Step::Wrote)
            }
            Type::Float => {
                if number(&mut self.out, value.as_float().unwrap_or(f64::NAN)) {
                    Ok(Step::Wrote)
                } else {
                    Ok(Step::HandOver)
                }
            }
            Type::String => match value.as_string().map(|s| s.to_string()) {
                Some(Ok(text)) => {
                    string(&mut self.out, &text);
                    Ok(Step::Wrote)
                }
                // Not UTF-8 (a lone surrogate): `JSON.stringify` escapes it.
                _ => Ok(Step::HandOver),
            },
            Type::Array if depth < MAX_DEPTH => self.array(value, depth),
            Type::Object if depth < MAX_DEPTH => self.object(value, depth),
            _ => Ok(Step::HandOver),
        }
    }

    fn array(&mut self, value: &Value<'js>, depth: usize) -> rquickjs::Result<Step> {
        let Some(array) = value.as_array() else {
            return Ok(Step::HandOver);
        };
        if has_to_json(array.as_object())? {
            return Ok(Step::HandOver);
        }
        self.out.push('[');
        for i in 0..array.len() {
            if i > 0 {
                self.out.push(',');
            }
            let item: Value = array.get(i)?;
            match self.write(&item, depth + 1)? {
                Step::Wrote => {}
                Step::Skipped => self.out.push_str("null"),
                Step::HandOver => return Ok(Step::HandOver),
            }
        }
        self.out.push(']');
        Ok(Step::Wrote)
    }

    fn object(&mut self, value: &Value<'js>, depth: usize) -> rquickjs::Result<Step> {
        let Some(object) = value.as_object() else {
            return Ok(Step::HandOver);
        };
        // Plain objects only: a literal's prototype, or none.
        match object.get_prototype() {
            None => {}
            Some(proto) if proto == *self.proto => {}
            Some(_) => return Ok(Step::HandOver),
        }
        if has_to_json(object)? {
            return Ok(Step::HandOver);
        }
        self.out.push('{');
        let mut first = true;
        for prop in object.props::<String, Value>() {
            let (key, item) = prop?;
            let mark = self.out.len();
            if !first {
                self.out.push(',');
            }
            string(&mut self.out, &key);
            self.out.push(':');
            match self.write(&item, depth + 1)? {
                Step::Wrote => first = false,
                Step::Skipped => self.out.truncate(mark),
                Step::HandOver => return Ok(Step::HandOver),
            }
        }
        self.out.push('}');
        Ok(Step::Wrote)
    }
}

/// Whether `JSON.stringify` would call the object's `toJSON` (looked up by QuickJS's own atom
/// for the name rather than one made from text at each object).
fn has_to_json(object: &Object<'_>) -> rquickjs::Result<bool> {
    Ok(object
        .get::<_, Value>(PredefinedAtom::ToJSON)?
        .is_function())
}

/// A number as JSON text that parses to what `JSON.stringify`'s text parses to: integral
/// values as integers (`5`, not `5.0`), `NaN` and the infinities as `null`. False for an
/// integral value of 2^53 or more, which `JSON.stringify` writes as its shortest digits
/// padded with zeros (2^63 is `9223372036854776000`), a text that parses to another integer:
/// such an answer is left to it.
fn number(out: &mut String, n: f64) -> bool {
    const TWO_53: f64 = 9_007_199_254_740_992.0;
    if !n.is_finite() {
        out.push_str("null");
    } else if n.fract() == 0.0 {
        if n.abs() >= TWO_53 {
            return false;
        }
        let _ = write!(out, "{}", n as i64);
    } else {
        // Not integral: the shortest digits that read back as `n`, as JavaScript's, though
        // perhaps with another exponent form (`1e-6` for `0.000001`).
        match serde_json::Number::from_f64(n) {
            Some(number) => {
                let _ = write!(out, "{number}");
            }
            None => out.push_str("null"),
        }
    }
    true
}

/// A string as a JSON string literal.
fn string(out: &mut String, text: &str) {
    out.reserve(text.len() + 2);
    out.push('"');
    if !text.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.push_str(text);
        out.push('"');
        return;
    }
    let mut start = 0;
    for (i, byte) in text.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&text[start..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{byte:04x}");
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&text[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::{number, string};

    #[test]
    fn numbers_parse_as_json_stringify_s_do() {
        let text = |n: f64| {
            let mut out = String::new();
            number(&mut out, n).then_some(out)
        };
        assert_eq!(text(5.0).as_deref(), Some("5"));
        assert_eq!(text(-0.0).as_deref(), Some("0"));
        assert_eq!(text(0.5).as_deref(), Some("0.5"));
        assert_eq!(text(f64::NAN).as_deref(), Some("null"));
        assert_eq!(text(f64::INFINITY).as_deref(), Some("null"));
        assert_eq!(
            text(9_007_199_254_740_991.0).as_deref(),
            Some("9007199254740991")
        );
        assert_eq!(text(9_007_199_254_740_992.0), None);
        assert_eq!(text(-1e21), None);
        let small: serde_json::Value =
            serde_json::from_str(&text(1e-7).unwrap_or_default()).unwrap_or_default();
        assert_eq!(small.as_f64(), Some(1e-7));
    }

    #[test]
    fn strings_are_escaped() {
        let mut out = String::new();
        string(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(out, r#""a\"b\\c\nd\u0001é""#);
        let back: String = serde_json::from_str(&out).unwrap_or_default();
        assert_eq!(back, "a\"b\\c\nd\u{1}é");
    }
}
