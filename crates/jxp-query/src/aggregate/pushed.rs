//! A `$group` the database can run: the plain shape of one (keys and accumulators on field
//! paths), which the caller turns into a [`Grouping`] against its model, and the decoding of
//! the rows the SQL of `sql::group` answers back into the documents the in-memory `$group`
//! would have built. The SQL answers the parts each accumulator needs (integer and float
//! sums apart, minima by storage type) so that decoding can apply exactly the in-memory rules.
//!
//! Stages right after the `$group` join the same statement when SQL can give them exactly
//! the in-memory meaning (a [`GroupTail`]): a `$sort` on the key or on a count, `$skip` and
//! `$limit`, and a `$count` of the groups.

use serde_json::{Map, Value};

use super::expr::Expr;
use super::group::{AccOp, Group};
use super::values::number_value;
use super::{Doc, Kind, Stage};
use crate::ast::{Filter, Path};

/// A `$group` in the plain shape SQL can run, field paths still as written.
#[derive(Debug, Clone, PartialEq)]
pub struct PlainGroup {
    pub key: PlainKey<Vec<String>>,
    pub accs: Vec<(String, PlainAcc<Vec<String>>)>,
}

/// A group key: one group of everything, one field, or an object of fields.
#[derive(Debug, Clone, PartialEq)]
pub enum PlainKey<P> {
    Null,
    Field(P),
    Object(Vec<(String, P)>),
}

/// An accumulator SQL can run: a count (`$count`, or `$sum` of an integer constant, which is
/// the count times it), or a numeric one over a field.
#[derive(Debug, Clone, PartialEq)]
pub enum PlainAcc<P> {
    Count(i64),
    Sum(P),
    Avg(P),
    Min(P),
    Max(P),
}

impl Stage {
    /// The stage as a [`PlainGroup`] when it is a `$group` of that shape.
    pub fn plain_group(&self) -> Option<PlainGroup> {
        let Kind::Group(g) = &self.0 else {
            return None;
        };
        plain(g)
    }

    /// A `$count` stage's output field name.
    pub fn count_field(&self) -> Option<&str> {
        match &self.0 {
            Kind::Count(name) => Some(name),
            _ => None,
        }
    }
}

fn plain(g: &Group) -> Option<PlainGroup> {
    let key = match &g.id {
        Expr::Lit(Value::Null) => PlainKey::Null,
        Expr::Field(p) => PlainKey::Field(p.clone()),
        Expr::Obj(fields) => PlainKey::Object(
            fields
                .iter()
                .map(|(k, e)| match e {
                    Expr::Field(p) => Some((k.clone(), p.clone())),
                    _ => None,
                })
                .collect::<Option<_>>()?,
        ),
        _ => return None,
    };
    let accs = g
        .accs
        .iter()
        .map(|a| {
            let acc = match (a.op, &a.expr) {
                (AccOp::Count, _) => PlainAcc::Count(1),
                (AccOp::Sum, Expr::Lit(Value::Number(n))) => PlainAcc::Count(n.as_i64()?),
                (AccOp::Sum, Expr::Field(p)) => PlainAcc::Sum(p.clone()),
                (AccOp::Avg, Expr::Field(p)) => PlainAcc::Avg(p.clone()),
                (AccOp::Min, Expr::Field(p)) => PlainAcc::Min(p.clone()),
                (AccOp::Max, Expr::Field(p)) => PlainAcc::Max(p.clone()),
                _ => return None,
            };
            Some((a.name.clone(), acc))
        })
        .collect::<Option<_>>()?;
    Some(PlainGroup { key, accs })
}

/// How the model declares a field a grouping reads; the SQL checks that every stored value
/// is of that kind (or null, or missing), and the grouping is not used when one is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// Strings: `String`, `Date`, `ObjectId` fields.
    Text,
    Number,
    Bool,
}

/// A model field a grouping reads: a path with no array on it, every segment a plain
/// identifier, and its declared kind.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupField {
    pub path: Path,
    pub kind: FieldKind,
}

/// A `$match` + `$group` for the database: the rows of `filter`, grouped by `key`, in order
/// of each group's first document by `_id` (the order the in-memory `$group` meets them in),
/// then the stages of `tail`.
#[derive(Debug, Clone, PartialEq)]
pub struct Grouping {
    pub filter: Filter,
    pub key: PlainKey<GroupField>,
    pub accs: Vec<(String, PlainAcc<GroupField>)>,
    pub tail: GroupTail,
}

/// The stages after a `$group` the same statement runs: the groups ordered by `sort` (ties
/// in the order of their first `_id`, as the in-memory sort is stable), `skip` of them left
/// out and at most `limit` kept, then, with `count`, only how many there are under that name.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GroupTail {
    pub sort: Vec<(GroupSort, bool)>,
    pub skip: u64,
    pub limit: Option<u64>,
    pub count: Option<String>,
}

/// What a group is sorted on (with `true` for descending): the key field of that position
/// (the only one of a field key, one of an object key), or the accumulator of that position,
/// a count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupSort {
    Key(usize),
    Count(usize),
}

impl GroupTail {
    /// Whether the statement answers a window of the groups, whose rows then cannot show
    /// every group's data check by themselves.
    pub fn windowed(&self) -> bool {
        self.skip > 0 || self.limit.is_some()
    }

    pub fn is_empty(&self) -> bool {
        *self == GroupTail::default()
    }
}

/// One value of a result row. PostgreSQL answers every column as text; SQLite as it stores.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

impl Cell {
    fn int(&self) -> Option<i128> {
        match self {
            Cell::Int(i) => Some(i128::from(*i)),
            Cell::Text(s) => s.parse().ok(),
            _ => None,
        }
    }

    fn float(&self) -> Option<f64> {
        match self {
            Cell::Int(i) => Some(*i as f64),
            Cell::Real(f) => Some(*f),
            Cell::Text(s) => s.parse().ok(),
            Cell::Null => None,
        }
    }

    fn text(&self) -> Option<&str> {
        match self {
            Cell::Text(s) => Some(s),
            _ => None,
        }
    }
}

impl Grouping {
    /// Takes into `tail` the leading stages of `stages` (those after the `$group`) that SQL
    /// runs with the same meaning, and answers how many it took: one `$sort` on key fields
    /// and counts, then `$skip` and `$limit` folded into one window, then a `$count`.
    pub fn absorb(&mut self, stages: &[Stage]) -> usize {
        let mut taken = 0;
        if let Some(Kind::Sort(keys)) = stages.first().map(|s| &s.0) {
            let sort: Option<Vec<(GroupSort, bool)>> = keys
                .iter()
                .map(|k| Some((self.sort_on(&k.dotted)?, k.desc)))
                .collect();
            if let Some(sort) = sort {
                self.tail.sort = sort;
                taken = 1;
            }
        }
        let (mut skip, mut limit) = (0u64, None::<u64>);
        for stage in &stages[taken..] {
            match stage.0 {
                Kind::Skip(n) => {
                    skip = skip.saturating_add(n);
                    limit = limit.map(|l| l.saturating_sub(n));
                }
                Kind::Limit(n) => limit = Some(limit.map_or(n, |l| l.min(n))),
                _ => break,
            }
            taken += 1;
        }
        // `$limit` is at least 1, so a window of none can only come from a `$skip` after
        // it: no group at all, which SQL answers as well as any.
        self.tail.skip = skip;
        self.tail.limit = limit;
        if let Some(Kind::Count(name)) = stages.get(taken).map(|s| &s.0) {
            self.tail.count = Some(name.clone());
            taken += 1;
        }
        taken
    }

    /// What sorting on `dotted` sorts on, when SQL orders it as the in-memory `$sort` does:
    /// the key (or a field of an object key), or a count.
    fn sort_on(&self, dotted: &str) -> Option<GroupSort> {
        match (&self.key, dotted.strip_prefix("_id")) {
            (PlainKey::Field(_), Some("")) => return Some(GroupSort::Key(0)),
            (PlainKey::Object(fields), Some(rest)) => {
                let name = rest.strip_prefix('.')?;
                return fields
                    .iter()
                    .position(|(n, _)| n == name)
                    .map(GroupSort::Key);
            }
            _ => {}
        }
        self.accs
            .iter()
            .position(|(n, a)| n == dotted && matches!(a, PlainAcc::Count(_)))
            .map(GroupSort::Count)
    }

    /// The fields the grouping reads, each once per use.
    pub fn fields(&self) -> Vec<&GroupField> {
        let mut out: Vec<&GroupField> = match &self.key {
            PlainKey::Null => Vec::new(),
            PlainKey::Field(f) => vec![f],
            PlainKey::Object(fields) => fields.iter().map(|(_, f)| f).collect(),
        };
        out.extend(self.accs.iter().filter_map(|(_, a)| match a {
            PlainAcc::Count(_) => None,
            PlainAcc::Sum(f) | PlainAcc::Avg(f) | PlainAcc::Min(f) | PlainAcc::Max(f) => Some(f),
        }));
        out
    }

    /// Whether every path is a plain non-empty one of identifiers, as the SQL writes paths
    /// literally.
    pub fn renderable(&self) -> bool {
        self.fields().iter().all(|f| {
            !f.path.segments.is_empty()
                && f.path.array_at.is_none()
                && f.path.segments.iter().all(|s| jxp_model::is_ident(s))
        })
    }

    /// The documents `$group` answers, from the rows the grouping's SQL returned (the column
    /// layout `sql::group` documents); `None` when a stored value was not of its field's
    /// declared kind, so the caller runs the group in memory instead.
    /// With a windowed tail the first column counts every group's odd values, not only those
    /// of the groups answered; a window past the last group answers no row to say so, and is
    /// refused too. A counting tail answers that count and the number of groups.
    pub fn decode(&self, rows: &[Vec<Cell>]) -> Option<Vec<Doc>> {
        if let Some(name) = &self.tail.count {
            let row = rows.first()?;
            if row.first()?.int()? != 0 {
                return None;
            }
            let groups = u64::try_from(row.get(1)?.int()?).ok()?;
            let left = groups.saturating_sub(self.tail.skip);
            let n = self.tail.limit.map_or(left, |l| left.min(l));
            // `$count` of nothing answers no document at all.
            return Some(
                (n > 0)
                    .then(|| Doc::from_iter([(name.clone(), Value::from(n))]))
                    .into_iter()
                    .collect(),
            );
        }
        if rows.is_empty() && self.tail.skip > 0 {
            return None;
        }
        rows.iter().map(|row| self.decode_row(row)).collect()
    }

    fn decode_row(&self, row: &[Cell]) -> Option<Doc> {
        let mut cells = row.iter();
        if cells.next()?.int()? != 0 {
            return None;
        }
        let mut out = Map::new();
        let id = match &self.key {
            PlainKey::Null => Value::Null,
            PlainKey::Field(_) => key_value(cells.next()?, cells.next()?)?.unwrap_or(Value::Null),
            PlainKey::Object(fields) => {
                let mut obj = Map::new();
                for (name, _) in fields {
                    if let Some(v) = key_value(cells.next()?, cells.next()?)? {
                        obj.insert(name.clone(), v);
                    }
                }
                Value::Object(obj)
            }
        };
        out.insert("_id".to_owned(), id);
        for (name, acc) in &self.accs {
            let v = match acc {
                PlainAcc::Count(by) => {
                    let n = cells.next()?.int()?;
                    int_or_float(n * i128::from(*by), 0.0, false)
                }
                PlainAcc::Sum(_) => {
                    let (hi, lo, floats) = (cells.next()?, cells.next()?, cells.next()?);
                    let ints = hi.int().unwrap_or(0) * (1i128 << 32) + lo.int().unwrap_or(0);
                    let f = floats.float();
                    int_or_float(ints, f.unwrap_or(0.0), f.is_some())
                }
                PlainAcc::Avg(_) => {
                    let (sum, n) = (cells.next()?, cells.next()?.int()?);
                    match sum.float() {
                        Some(s) if n > 0 => number_value(s / n as f64),
                        _ => Value::Null,
                    }
                }
                PlainAcc::Min(_) => extreme(cells.next()?, cells.next()?, true),
                PlainAcc::Max(_) => extreme(cells.next()?, cells.next()?, false),
            };
            out.insert(name.clone(), v);
        }
        Some(out)
    }
}

/// A `$sum`'s total as the in-memory one finishes it: an integer when no float was added and
/// it fits, else a float.
fn int_or_float(ints: i128, floats: f64, any_float: bool) -> Value {
    if !any_float && let Ok(i) = i64::try_from(ints) {
        return Value::from(i);
    }
    number_value(ints as f64 + floats)
}

/// A `$min` (or `$max`) from the extreme integer and the extreme float. The two are never
/// equal: a whole float in the integers' range is not a value the SQL accepts.
fn extreme(int: &Cell, float: &Cell, min: bool) -> Value {
    let i = int.int().and_then(|i| i64::try_from(i).ok());
    let f = float.float();
    match (i, f) {
        (None, None) => Value::Null,
        (Some(i), None) => Value::from(i),
        (None, Some(f)) => float_value(f),
        (Some(i), Some(f)) => {
            if ((i as f64) < f) == min {
                Value::from(i)
            } else {
                float_value(f)
            }
        }
    }
}

fn float_value(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// A group key's value from its storage type and value cells: `Some(None)` when missing,
/// `None` when of a type decoding does not know.
fn key_value(typ: &Cell, value: &Cell) -> Option<Option<Value>> {
    let Some(t) = typ.text() else {
        return Some(None);
    };
    let v = match t {
        "null" => Value::Null,
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        "boolean" => Value::Bool(value.text()? == "true"),
        "integer" => Value::from(i64::try_from(value.int()?).ok()?),
        "real" => float_value(value.float()?),
        "number" => serde_json::from_str(value.text()?).ok()?,
        "text" | "string" => Value::String(value.text()?.to_owned()),
        _ => return None,
    };
    Some(Some(v))
}

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_pipeline;
    use serde_json::json;

    fn plain_of(group: Value) -> Option<PlainGroup> {
        let stages = parse_pipeline(&json!([{ "$group": group }])).unwrap();
        stages[0].plain_group()
    }

    #[test]
    fn only_field_keys_and_plain_accumulators_are_plain() {
        let p = |s: &str| vec![s.to_owned()];
        assert_eq!(
            plain_of(
                json!({"_id": {"a": "$a"}, "n": {"$sum": 2}, "c": {"$count": {}}, "t": {"$max": "$x"}})
            ),
            Some(PlainGroup {
                key: PlainKey::Object(vec![("a".into(), p("a"))]),
                accs: vec![
                    ("n".into(), PlainAcc::Count(2)),
                    ("c".into(), PlainAcc::Count(1)),
                    ("t".into(), PlainAcc::Max(p("x"))),
                ],
            })
        );
        for refused in [
            json!({"_id": {"$toUpper": "$a"}}),
            json!({"_id": "constant"}),
            json!({"_id": null, "s": {"$sum": 1.5}}),
            json!({"_id": null, "s": {"$sum": {"$multiply": ["$a", 2]}}}),
            json!({"_id": null, "f": {"$first": "$a"}}),
            json!({"_id": null, "p": {"$push": "$a"}}),
            json!({"_id": "$$ROOT"}),
        ] {
            assert_eq!(plain_of(refused.clone()), None, "{refused}");
        }
    }
}
