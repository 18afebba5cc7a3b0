//! MongoDB update documents (`{"$set": {...}, "$inc": {...}}`) as `/bulkwrite` takes them:
//! parsed once into a list of typed operations, then applied to a stored document. Pure
//! logic, no IO: the write path decides which document and stores the result. A plain
//! document without operators is a `$set` of its keys, as Mongoose treats it.
//!
//! Only the document's own fields may be changed: system fields (`_id`, `createdAt`, `__v`, …)
//! are refused, and so is any operator other than `$set` on a password field, whose value the
//! write path hashes.

use jxp_model::{Document, SYSTEM_FIELDS, now_iso};
use serde_json::{Map, Number, Value};

/// What is wrong with an update document; the message names the operator or path.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct UpdateError(pub String);

fn err(msg: impl Into<String>) -> UpdateError {
    UpdateError(msg.into())
}

/// One operation on one dotted path.
#[derive(Debug, Clone, PartialEq)]
pub enum UpdateOp {
    Set(Value),
    Unset,
    Inc(Number),
    Mul(Number),
    Min(Value),
    Max(Value),
    Rename(String),
    /// `$push`, with `$each` or one value.
    Push(Vec<Value>),
    AddToSet(Vec<Value>),
    /// `$pull` of every element equal to one of these.
    Pull(Vec<Value>),
    /// `$pop`: `true` removes the last element, `false` the first.
    Pop(bool),
    CurrentDate,
}

/// A parsed update document.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Update {
    /// Applied in order to an existing document, and to a new one on upsert.
    pub ops: Vec<(String, UpdateOp)>,
    /// `$setOnInsert`: applied only when an upsert inserts.
    pub on_insert: Vec<(String, Value)>,
}

const OPERATORS: &[&str] = &[
    "$set",
    "$unset",
    "$inc",
    "$mul",
    "$min",
    "$max",
    "$rename",
    "$push",
    "$addToSet",
    "$pull",
    "$pop",
    "$currentDate",
    "$setOnInsert",
];

impl Update {
    /// Parses an update document. `password_fields` are the model's password fields, which
    /// only `$set` may touch.
    pub fn parse(value: &Value, password_fields: &[&str]) -> Result<Update, UpdateError> {
        let Some(obj) = value.as_object() else {
            return Err(err("update must be an object"));
        };
        if obj.is_empty() {
            return Err(err("update must not be empty"));
        }
        let operators = obj.keys().filter(|k| k.starts_with('$')).count();
        let mut out = Update::default();
        if operators == 0 {
            for (path, v) in obj {
                out.push(path, UpdateOp::Set(v.clone()), password_fields)?;
            }
            return Ok(out);
        }
        if operators != obj.len() {
            return Err(err(
                "update mixes operators and plain fields; put the fields under $set",
            ));
        }
        for (op, args) in obj {
            if !OPERATORS.contains(&op.as_str()) {
                return Err(err(format!("unsupported update operator {op}")));
            }
            let Some(args) = args.as_object() else {
                return Err(err(format!("{op} takes an object of fields")));
            };
            for (path, arg) in args {
                if op == "$setOnInsert" {
                    check_path(path, &[])?;
                    out.on_insert.push((path.clone(), arg.clone()));
                    continue;
                }
                let parsed = parse_op(op, path, arg)?;
                out.push(path, parsed, password_fields)?;
            }
        }
        Ok(out)
    }

    fn push(
        &mut self,
        path: &str,
        op: UpdateOp,
        password_fields: &[&str],
    ) -> Result<(), UpdateError> {
        check_path(path, &self.ops)?;
        let root = path.split('.').next().unwrap_or(path);
        if password_fields.contains(&root) && (path != root || !matches!(op, UpdateOp::Set(_))) {
            return Err(err(format!("{path}: a password can only be $set")));
        }
        if let UpdateOp::Rename(to) = &op {
            check_path(to, &self.ops)?;
            if password_fields.contains(&to.as_str()) {
                return Err(err(format!("{to}: a password can only be $set")));
            }
        }
        self.ops.push((path.to_owned(), op));
        Ok(())
    }

    /// The top-level fields `$set` gives whole values to, for the write path's checks on
    /// client input (unknown keys, password hashing).
    pub fn set_fields(&self) -> Document {
        self.ops
            .iter()
            .filter_map(|(p, op)| match op {
                UpdateOp::Set(v) if !p.contains('.') => Some((p.clone(), v.clone())),
                _ => None,
            })
            .collect()
    }

    /// Puts the values of `prepared` (the write path's version of [`Update::set_fields`])
    /// back into the `$set` operations.
    pub fn replace_set_fields(&mut self, mut prepared: Document) {
        for (p, op) in &mut self.ops {
            if let UpdateOp::Set(v) = op
                && !p.contains('.')
                && let Some(new) = prepared.remove(p.as_str())
            {
                *v = new;
            }
        }
    }

    /// Applies the operations to `doc`; with `inserting`, `$setOnInsert` too.
    pub fn apply(&self, doc: &mut Document, inserting: bool) -> Result<(), UpdateError> {
        if inserting {
            for (path, v) in &self.on_insert {
                set_path(doc, path, v.clone())?;
            }
        }
        for (path, op) in &self.ops {
            apply_one(doc, path, op)?;
        }
        Ok(())
    }
}

/// Refuses system fields, `$`-names, empty segments, and a path that overlaps one already
/// updated (MongoDB's "would create a conflict").
fn check_path(path: &str, earlier: &[(String, UpdateOp)]) -> Result<(), UpdateError> {
    if path.is_empty() || path.split('.').any(|s| s.is_empty() || s.starts_with('$')) {
        return Err(err(format!("\"{path}\" is not a field path")));
    }
    let root = path.split('.').next().unwrap_or(path);
    if SYSTEM_FIELDS.contains(&root) {
        return Err(err(format!("{root} cannot be changed by an update")));
    }
    let overlaps = |a: &str, b: &str| {
        a == b || a.starts_with(&format!("{b}.")) || b.starts_with(&format!("{a}."))
    };
    if let Some((p, _)) = earlier.iter().find(|(p, op)| {
        overlaps(p, path) || matches!(op, UpdateOp::Rename(to) if overlaps(to, path))
    }) {
        return Err(err(format!(
            "updating the path \"{path}\" would conflict with \"{p}\""
        )));
    }
    Ok(())
}

fn number(op: &str, path: &str, v: &Value) -> Result<Number, UpdateError> {
    match v {
        Value::Number(n) => Ok(n.clone()),
        _ => Err(err(format!("{op} {path}: takes a number"))),
    }
}

fn each(arg: &Value) -> Vec<Value> {
    match arg.as_object().and_then(|o| o.get("$each")) {
        Some(Value::Array(items)) => items.clone(),
        _ => vec![arg.clone()],
    }
}

fn parse_op(op: &str, path: &str, arg: &Value) -> Result<UpdateOp, UpdateError> {
    Ok(match op {
        "$set" => UpdateOp::Set(arg.clone()),
        "$unset" => UpdateOp::Unset,
        "$inc" => UpdateOp::Inc(number(op, path, arg)?),
        "$mul" => UpdateOp::Mul(number(op, path, arg)?),
        "$min" => UpdateOp::Min(arg.clone()),
        "$max" => UpdateOp::Max(arg.clone()),
        "$rename" => match arg {
            Value::String(to) if to != path => UpdateOp::Rename(to.clone()),
            _ => return Err(err(format!("$rename {path}: takes another field's name"))),
        },
        "$push" | "$addToSet" => {
            if let Some(o) = arg.as_object()
                && o.keys().any(|k| k.starts_with('$') && k != "$each")
            {
                return Err(err(format!(
                    "{op} {path}: only $each is supported as a modifier"
                )));
            }
            if arg.as_object().is_some_and(|o| o.contains_key("$each"))
                && !arg.get("$each").is_some_and(Value::is_array)
            {
                return Err(err(format!("{op} {path}: $each takes an array")));
            }
            if op == "$push" {
                UpdateOp::Push(each(arg))
            } else {
                UpdateOp::AddToSet(each(arg))
            }
        }
        "$pull" => {
            if arg
                .as_object()
                .is_some_and(|o| o.keys().any(|k| k.starts_with('$') && k != "$in"))
            {
                return Err(err(format!(
                    "$pull {path}: only a value or {{\"$in\": [...]}} is supported"
                )));
            }
            match arg.as_object().and_then(|o| o.get("$in")) {
                Some(Value::Array(items)) => UpdateOp::Pull(items.clone()),
                Some(_) => return Err(err(format!("$pull {path}: $in takes an array"))),
                None => UpdateOp::Pull(vec![arg.clone()]),
            }
        }
        "$pop" => match arg.as_i64() {
            Some(1) => UpdateOp::Pop(true),
            Some(-1) => UpdateOp::Pop(false),
            _ => return Err(err(format!("$pop {path}: takes 1 or -1"))),
        },
        "$currentDate" => match arg {
            Value::Bool(true) => UpdateOp::CurrentDate,
            Value::Object(o) if o.get("$type").and_then(Value::as_str) == Some("date") => {
                UpdateOp::CurrentDate
            }
            _ => {
                return Err(err(format!(
                    "$currentDate {path}: takes true or {{\"$type\": \"date\"}}"
                )));
            }
        },
        _ => return Err(err(format!("unsupported update operator {op}"))),
    })
}

/// The object holding a path's last segment, and that segment.
type Slot<'a> = (&'a mut Map<String, Value>, &'a str);

/// The object holding the last segment of `path`, created on the way when `create`.
fn parent<'a>(
    doc: &'a mut Map<String, Value>,
    path: &'a str,
    create: bool,
) -> Result<Option<Slot<'a>>, UpdateError> {
    let mut segments: Vec<&str> = path.split('.').collect();
    let last = segments.pop().unwrap_or(path);
    let mut cur = doc;
    for seg in segments {
        if !cur.contains_key(seg) || cur.get(seg).is_some_and(Value::is_null) {
            if !create {
                return Ok(None);
            }
            cur.insert(seg.to_owned(), Value::Object(Map::new()));
        }
        cur = match cur.get_mut(seg) {
            Some(Value::Object(o)) => o,
            _ => {
                return Err(err(format!(
                    "cannot update \"{path}\": \"{seg}\" is not an object"
                )));
            }
        };
    }
    Ok(Some((cur, last)))
}

fn set_path(doc: &mut Document, path: &str, v: Value) -> Result<(), UpdateError> {
    if let Some((obj, key)) = parent(doc, path, true)? {
        obj.insert(key.to_owned(), v);
    }
    Ok(())
}

fn arith(path: &str, op: &str, cur: Option<&Value>, by: &Number) -> Result<Value, UpdateError> {
    let cur = match cur {
        None | Some(Value::Null) => {
            // MongoDB: $inc of a missing field sets it; $mul sets it to 0.
            return Ok(if op == "$inc" {
                Value::Number(by.clone())
            } else {
                Value::from(0)
            });
        }
        Some(Value::Number(n)) => n,
        Some(_) => {
            return Err(err(format!(
                "{op} {path}: the stored value is not a number"
            )));
        }
    };
    let ints = cur.as_i64().zip(by.as_i64());
    let int = ints.and_then(|(a, b)| {
        if op == "$inc" {
            a.checked_add(b)
        } else {
            a.checked_mul(b)
        }
    });
    if let Some(i) = int {
        return Ok(Value::from(i));
    }
    let (a, b) = (cur.as_f64().unwrap_or(0.0), by.as_f64().unwrap_or(0.0));
    let r = if op == "$inc" { a + b } else { a * b };
    Number::from_f64(r)
        .map(Value::Number)
        .ok_or_else(|| err(format!("{op} {path}: the result is not a finite number")))
}

/// Orders two values as MongoDB's `$min`/`$max` do for the same type; values of different
/// types compare by type order (null < numbers < strings < objects < arrays < booleans).
fn compare(a: &Value, b: &Value) -> std::cmp::Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Number(_) => 1,
            Value::String(_) => 2,
            Value::Object(_) => 3,
            Value::Array(_) => 4,
            Value::Bool(_) => 5,
        }
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .unwrap_or(0.0)
            .partial_cmp(&y.as_f64().unwrap_or(0.0))
            .unwrap_or(std::cmp::Ordering::Equal),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

fn array_at<'a>(
    obj: &'a mut Map<String, Value>,
    key: &str,
    path: &str,
    op: &str,
) -> Result<&'a mut Vec<Value>, UpdateError> {
    let slot = obj.entry(key.to_owned()).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Array(Vec::new());
    }
    match slot {
        Value::Array(a) => Ok(a),
        _ => Err(err(format!(
            "{op} {path}: the stored value is not an array"
        ))),
    }
}

fn apply_one(doc: &mut Document, path: &str, op: &UpdateOp) -> Result<(), UpdateError> {
    match op {
        UpdateOp::Set(v) => set_path(doc, path, v.clone()),
        UpdateOp::CurrentDate => set_path(doc, path, Value::String(now_iso())),
        UpdateOp::Unset => {
            if let Some((obj, key)) = parent(doc, path, false)? {
                obj.remove(key);
            }
            Ok(())
        }
        UpdateOp::Rename(to) => {
            let moved = match parent(doc, path, false)? {
                Some((obj, key)) => obj.remove(key),
                None => None,
            };
            match moved {
                Some(v) => set_path(doc, to, v),
                None => Ok(()),
            }
        }
        UpdateOp::Inc(by) | UpdateOp::Mul(by) => {
            let name = if matches!(op, UpdateOp::Inc(_)) {
                "$inc"
            } else {
                "$mul"
            };
            if let Some((obj, key)) = parent(doc, path, true)? {
                let v = arith(path, name, obj.get(key), by)?;
                obj.insert(key.to_owned(), v);
            }
            Ok(())
        }
        UpdateOp::Min(v) | UpdateOp::Max(v) => {
            let want = if matches!(op, UpdateOp::Min(_)) {
                std::cmp::Ordering::Less
            } else {
                std::cmp::Ordering::Greater
            };
            if let Some((obj, key)) = parent(doc, path, true)? {
                let replace = match obj.get(key) {
                    None => true,
                    Some(cur) => compare(v, cur) == want,
                };
                if replace {
                    obj.insert(key.to_owned(), v.clone());
                }
            }
            Ok(())
        }
        UpdateOp::Push(items) | UpdateOp::AddToSet(items) => {
            let set = matches!(op, UpdateOp::AddToSet(_));
            let name = if set { "$addToSet" } else { "$push" };
            if let Some((obj, key)) = parent(doc, path, true)? {
                let arr = array_at(obj, key, path, name)?;
                for item in items {
                    if !set || !arr.contains(item) {
                        arr.push(item.clone());
                    }
                }
            }
            Ok(())
        }
        UpdateOp::Pull(items) => {
            if let Some((obj, key)) = parent(doc, path, false)?
                && obj.contains_key(key)
            {
                let arr = array_at(obj, key, path, "$pull")?;
                arr.retain(|e| !items.contains(e));
            }
            Ok(())
        }
        UpdateOp::Pop(last) => {
            if let Some((obj, key)) = parent(doc, path, false)?
                && obj.contains_key(key)
            {
                let arr = array_at(obj, key, path, "$pop")?;
                if *last {
                    arr.pop();
                } else if !arr.is_empty() {
                    arr.remove(0);
                }
            }
            Ok(())
        }
    }
}

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(v: Value) -> Document {
        v.as_object().cloned().unwrap_or_default()
    }

    fn run(update: Value, start: Value) -> Result<Value, UpdateError> {
        let u = Update::parse(&update, &["password"])?;
        let mut d = doc(start);
        u.apply(&mut d, false)?;
        Ok(Value::Object(d))
    }

    #[test]
    fn operators_change_the_document_as_mongodb_does() {
        let start = json!({"a": 1, "b": "x", "tags": ["t"], "o": {"n": 2.5}});
        let cases = [
            (
                json!({"$set": {"b": "y"}}),
                json!({"a": 1, "b": "y", "tags": ["t"], "o": {"n": 2.5}}),
            ),
            (
                json!({"b": "y", "c": 3}),
                json!({"a": 1, "b": "y", "c": 3, "tags": ["t"], "o": {"n": 2.5}}),
            ),
            (
                json!({"$unset": {"b": ""}}),
                json!({"a": 1, "tags": ["t"], "o": {"n": 2.5}}),
            ),
            (
                json!({"$inc": {"a": 2, "o.n": 1}}),
                json!({"a": 3, "b": "x", "tags": ["t"], "o": {"n": 3.5}}),
            ),
            (
                json!({"$inc": {"z": 4}}),
                json!({"a": 1, "b": "x", "tags": ["t"], "o": {"n": 2.5}, "z": 4}),
            ),
            (
                json!({"$mul": {"a": 5}}),
                json!({"a": 5, "b": "x", "tags": ["t"], "o": {"n": 2.5}}),
            ),
            (
                json!({"$min": {"a": 0}, "$max": {"o.n": 2}}),
                json!({"a": 0, "b": "x", "tags": ["t"], "o": {"n": 2.5}}),
            ),
            (
                json!({"$rename": {"b": "c"}}),
                json!({"a": 1, "c": "x", "tags": ["t"], "o": {"n": 2.5}}),
            ),
            (
                json!({"$push": {"tags": {"$each": ["t", "u"]}}}),
                json!({"a": 1, "b": "x", "tags": ["t", "t", "u"], "o": {"n": 2.5}}),
            ),
            (
                json!({"$addToSet": {"tags": {"$each": ["t", "u"]}}}),
                json!({"a": 1, "b": "x", "tags": ["t", "u"], "o": {"n": 2.5}}),
            ),
            (
                json!({"$pull": {"tags": "t"}}),
                json!({"a": 1, "b": "x", "tags": [], "o": {"n": 2.5}}),
            ),
            (
                json!({"$pop": {"tags": 1}}),
                json!({"a": 1, "b": "x", "tags": [], "o": {"n": 2.5}}),
            ),
            (
                json!({"$set": {"p.q": 1}}),
                json!({"a": 1, "b": "x", "tags": ["t"], "o": {"n": 2.5}, "p": {"q": 1}}),
            ),
        ];
        for (update, want) in cases {
            assert_eq!(run(update.clone(), start.clone()), Ok(want), "{update}");
        }
    }

    #[test]
    fn set_on_insert_applies_only_when_inserting() {
        let u = Update::parse(&json!({"$setOnInsert": {"a": 1}, "$set": {"b": 2}}), &[]).unwrap();
        let mut d = Document::new();
        u.apply(&mut d, false).unwrap();
        assert_eq!(Value::Object(d.clone()), json!({"b": 2}));
        let mut d = Document::new();
        u.apply(&mut d, true).unwrap();
        assert_eq!(Value::Object(d), json!({"a": 1, "b": 2}));
    }

    #[test]
    fn bad_updates_are_refused_with_the_reason() {
        let cases = [
            (json!([]), "update must be an object"),
            (json!({}), "update must not be empty"),
            (json!({"$set": {"a": 1}, "b": 2}), "mixes operators"),
            (
                json!({"$where": {"a": 1}}),
                "unsupported update operator $where",
            ),
            (json!({"$set": {"_id": "x"}}), "_id cannot be changed"),
            (json!({"$inc": {"__v": 1}}), "__v cannot be changed"),
            (json!({"createdAt": "x"}), "createdAt cannot be changed"),
            (json!({"$inc": {"a": "1"}}), "$inc a: takes a number"),
            (
                json!({"$set": {"a": 1}, "$inc": {"a": 1}}),
                "would conflict",
            ),
            (
                json!({"$set": {"o": 1}, "$unset": {"o.n": 1}}),
                "would conflict",
            ),
            (
                json!({"$inc": {"password": 1}}),
                "a password can only be $set",
            ),
            (json!({"$set": {"a.$": 1}}), "is not a field path"),
            (json!({"$pop": {"tags": 2}}), "takes 1 or -1"),
            (json!({"$push": {"tags": {"$slice": 1}}}), "only $each"),
        ];
        for (update, want) in cases {
            let got = Update::parse(&update, &["password"]);
            match got {
                Err(UpdateError(msg)) => assert!(msg.contains(want), "{update}: {msg}"),
                Ok(u) => panic!("{update} parsed: {u:?}"),
            }
        }
    }

    #[test]
    fn type_mismatches_fail_when_applied() {
        assert!(run(json!({"$inc": {"b": 1}}), json!({"b": "x"})).is_err());
        assert!(run(json!({"$push": {"b": 1}}), json!({"b": "x"})).is_err());
        assert!(run(json!({"$set": {"b.c": 1}}), json!({"b": "x"})).is_err());
        assert_eq!(
            run(json!({"$inc": {"n": 1}}), json!({"n": i64::MAX})),
            Ok(json!({"n": 9.223372036854776e18}))
        );
    }
}
