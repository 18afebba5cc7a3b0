//! The options of one field (`required`, `index`, `enum`, `min`, `link`, …): read and
//! type-checked one by one, shared between an array and its element, then checked against
//! the field's type with `enum`, bounds and `default` brought into the form validation uses.

use regex::Regex;
use serde_json::Value;

use super::{Fault, bool_of, fault};
use crate::cast::{cast, format_date, parse_date};
use crate::node::{Node, NodeValue};
use crate::schema::{Field, FieldKind, FieldOptions, IndexKind, ScalarType, Strict};
use crate::validate::{is_date_now, validate_value};

/// Reads the options of a typed field, checking each value's own type; whether an option
/// fits the field's type is `finish`'s job.
pub(super) fn field_options(path: &str, entries: &[(String, Node)]) -> Result<FieldOptions, Fault> {
    let mut opts = FieldOptions::default();
    for (key, node) in entries {
        let what = format!("field \"{path}\": option \"{key}\"");
        let wrong = |expected: &str| {
            fault(
                node.line,
                format!("{what} must be {expected}, found {}", node.describe()),
            )
        };
        match key.as_str() {
            "type" => {}
            "required" => opts.required = bool_of(node, &what)?,
            "unique" => opts.unique = bool_of(node, &what)?,
            "lowercase" => opts.lowercase = bool_of(node, &what)?,
            "uppercase" => opts.uppercase = bool_of(node, &what)?,
            "trim" => opts.trim = bool_of(node, &what)?,
            "private" => match &node.value {
                NodeValue::Str(s) if s == "owner" => {
                    // Only a top-level field can depend on whose the document is: the view,
                    // the filters and the sorts check the first segment of a path.
                    if path.contains('.') {
                        return Err(fault(
                            node.line,
                            format!("{what}: \"owner\" applies only to a top-level field"),
                        ));
                    }
                    opts.owner_only = true;
                }
                NodeValue::Bool(b) => opts.private = *b,
                _ => return Err(wrong("true, false or \"owner\"")),
            },
            "index" => {
                opts.index = match &node.value {
                    NodeValue::Bool(true) => IndexKind::Normal,
                    NodeValue::Bool(false) => IndexKind::None,
                    NodeValue::Str(s) if s == "text" => IndexKind::Text,
                    _ => return Err(wrong("true, false or \"text\"")),
                }
            }
            "default" => opts.default = Some(node.to_json()),
            "enum" => match node.to_json() {
                Value::Array(values) => opts.enum_values = Some(values),
                _ => return Err(wrong("an array")),
            },
            "min" | "max" => {
                let bound = match &node.value {
                    NodeValue::Number(_) | NodeValue::Str(_) => node.to_json(),
                    _ => return Err(wrong("a number or a date string")),
                };
                if key == "min" {
                    opts.min = Some(bound);
                } else {
                    opts.max = Some(bound);
                }
            }
            "minlength" | "maxlength" => {
                let length = match &node.value {
                    NodeValue::Number(n) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
                    _ => None,
                }
                .ok_or_else(|| wrong("a non-negative integer"))?;
                if key == "minlength" {
                    opts.minlength = Some(length);
                } else {
                    opts.maxlength = Some(length);
                }
            }
            "match" => {
                let NodeValue::Str(source) = &node.value else {
                    return Err(wrong("a regular expression string"));
                };
                let pattern = Regex::new(source).map_err(|e| {
                    // The regex crate draws the pattern with a caret over several lines; its
                    // last line is the diagnosis, which is what fits a one-line error.
                    let text = e.to_string();
                    let cause = text.lines().last().unwrap_or_default();
                    let cause = cause.strip_prefix("error: ").unwrap_or(cause);
                    fault(
                        node.line,
                        format!("{what} is not a valid regular expression: {cause}"),
                    )
                })?;
                opts.pattern = Some(pattern);
            }
            "link" | "map_to" => {
                let text = match &node.value {
                    NodeValue::Str(s) if !s.is_empty() => s.clone(),
                    _ => return Err(wrong("a non-empty string")),
                };
                if key == "link" {
                    opts.link = Some(text);
                } else {
                    opts.map_to = Some(text);
                }
            }
            other => {
                return Err(fault(
                    node.line,
                    format!("field \"{path}\": unknown option \"{other}\""),
                ));
            }
        }
    }
    if opts.owner_only && opts.index == IndexKind::Text {
        // A full-text `search=` would find documents by a value their reader may not see.
        let line = entries
            .iter()
            .find(|(k, _)| k == "private")
            .and_then(|(_, n)| n.line);
        return Err(fault(
            line,
            format!("field \"{path}\": private = \"owner\" cannot have a text index"),
        ));
    }
    Ok(opts)
}

/// Splits the options of an array field between the array and its element. Options about
/// the path (index, unique, link, map_to, private) end up on both, because the store, the
/// populate code and the public view read them off the field at that path; options about
/// each value (enum, bounds, lengths, match, transforms) belong to the element, where
/// validation applies them. `required` and `default` stay where they were written.
pub(super) fn share_array_options(outer: &mut FieldOptions, element: &mut FieldOptions) {
    fn share<T: Clone>(a: &mut Option<T>, b: &mut Option<T>) {
        if a.is_none() {
            a.clone_from(b);
        } else if b.is_none() {
            b.clone_from(a);
        }
    }
    outer.unique |= element.unique;
    element.unique = outer.unique;
    outer.private |= element.private;
    element.private = outer.private;
    outer.owner_only |= element.owner_only;
    element.owner_only = outer.owner_only;
    if outer.index == IndexKind::None {
        outer.index = element.index;
    } else if element.index == IndexKind::None {
        element.index = outer.index;
    }
    share(&mut outer.link, &mut element.link);
    share(&mut outer.map_to, &mut element.map_to);

    fn take<T>(from: &mut Option<T>, to: &mut Option<T>) {
        if let Some(v) = from.take() {
            to.get_or_insert(v);
        }
    }
    take(&mut outer.enum_values, &mut element.enum_values);
    take(&mut outer.min, &mut element.min);
    take(&mut outer.max, &mut element.max);
    take(&mut outer.minlength, &mut element.minlength);
    take(&mut outer.maxlength, &mut element.maxlength);
    take(&mut outer.pattern, &mut element.pattern);
    element.lowercase |= std::mem::take(&mut outer.lowercase);
    element.uppercase |= std::mem::take(&mut outer.uppercase);
    element.trim |= std::mem::take(&mut outer.trim);
}

/// Checks that each option fits the field's type, and brings `enum`, `min`/`max` and
/// `default` into the form validation compares against. Running it twice changes nothing.
pub(super) fn finish(field: &mut Field, path: &str, line: Option<usize>) -> Result<(), Fault> {
    let err = |reason: String| Err(fault(line, format!("field \"{path}\": {reason}")));
    let scalar = match &field.kind {
        FieldKind::Scalar(ty) => Some(*ty),
        _ => None,
    };
    let element_scalar = field.kind.scalar();
    let opts = &mut field.options;

    if opts.index == IndexKind::Text && element_scalar != Some(ScalarType::String) {
        return err("index = \"text\" needs a String field".to_owned());
    }
    if opts.link.is_some() && element_scalar != Some(ScalarType::ObjectId) {
        return err("option \"link\" needs an ObjectId field".to_owned());
    }
    if opts.map_to.is_some() && opts.link.is_none() {
        return err("option \"map_to\" needs \"link\"".to_owned());
    }
    let string_only = [
        ("minlength", opts.minlength.is_some()),
        ("maxlength", opts.maxlength.is_some()),
        ("match", opts.pattern.is_some()),
        ("lowercase", opts.lowercase),
        ("uppercase", opts.uppercase),
        ("trim", opts.trim),
    ];
    if scalar != Some(ScalarType::String)
        && let Some((name, _)) = string_only.iter().find(|(_, set)| *set)
    {
        return err(format!("option \"{name}\" applies only to String fields"));
    }
    for (name, bound) in [("min", &mut opts.min), ("max", &mut opts.max)] {
        let Some(value) = bound else { continue };
        match scalar {
            Some(ScalarType::Number) if value.is_number() => {}
            Some(ScalarType::Number) => return err(format!("option \"{name}\" must be a number")),
            Some(ScalarType::Date) => match parse_date(value) {
                Some(date) => *value = Value::String(format_date(date)),
                None => return err(format!("option \"{name}\" must be a date")),
            },
            _ => {
                return err(format!(
                    "option \"{name}\" applies only to Number and Date fields"
                ));
            }
        }
    }
    if let Some(values) = &mut opts.enum_values {
        match field.kind {
            FieldKind::Scalar(ScalarType::Mixed) => {}
            FieldKind::Scalar(ty) => {
                for value in values.iter_mut() {
                    if value.is_null() {
                        continue;
                    }
                    match cast(ty, value) {
                        Some(cast_value) => *value = cast_value,
                        None => {
                            return err(format!("enum value {value} is not a {}", ty.name()));
                        }
                    }
                }
            }
            _ => return err("option \"enum\" needs a scalar field".to_owned()),
        }
    }
    if let Some(default) = field.options.default.clone()
        && !is_date_now(field, &default)
    {
        let mut value = default;
        validate_value(field, &mut value, path, Strict::Throw).or_else(|e| {
            err(format!(
                "default{}: {}",
                shown_path(&e.field, path),
                e.reason
            ))
        })?;
        field.options.default = Some(value);
    }
    Ok(())
}

/// The part of a validation error's path below the field, so a default's error names the
/// element or key at fault.
fn shown_path(error_path: &str, path: &str) -> String {
    error_path
        .strip_prefix(path)
        .map(|rest| rest.trim_start_matches('.'))
        .filter(|rest| !rest.is_empty())
        .map(|rest| format!(" (at {rest})"))
        .unwrap_or_default()
}
