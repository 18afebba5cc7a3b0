//! `$group` and its accumulators (`$sum`, `$avg`, `$min`, `$max`, `$push`, …): the parsed
//! spec and the per-group running state.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use serde_json::{Map, Number, Value};

use super::expr::{Expr, eval, parse_expr};
use super::values::{canon, number_value, total_cmp};
use super::{Doc, R};
use crate::budget::{Budget, BudgetError, value_size};
#[derive(Debug, Clone)]
pub(super) struct Group {
    pub(super) id: Expr,
    pub(super) accs: Vec<Accumulator>,
}

#[derive(Debug, Clone)]
pub(super) struct Accumulator {
    pub(super) name: String,
    pub(super) op: AccOp,
    pub(super) expr: Expr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AccOp {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    First,
    Last,
    Push,
    AddToSet,
}

pub(super) fn parse_group(v: &Value) -> R<Group> {
    let Value::Object(spec) = v else {
        return Err(format!("takes an object with an _id, got {v}"));
    };
    let id = spec
        .get("_id")
        .ok_or("needs an _id (null for one group of everything)")
        .map_err(str::to_owned)
        .and_then(parse_expr)?;
    let mut accs = Vec::new();
    for (name, def) in spec.iter().filter(|(k, _)| *k != "_id") {
        if name.contains('.') || name.starts_with('$') {
            return Err(format!("bad output field name \"{name}\""));
        }
        let Some((op, arg)) = def
            .as_object()
            .filter(|o| o.len() == 1)
            .and_then(|o| o.iter().next())
        else {
            return Err(format!(
                "field \"{name}\" must be an accumulator object like {{\"$sum\": 1}}"
            ));
        };
        let op_kind = match op.as_str() {
            "$sum" => AccOp::Sum,
            "$avg" => AccOp::Avg,
            "$min" => AccOp::Min,
            "$max" => AccOp::Max,
            "$count" => AccOp::Count,
            "$first" => AccOp::First,
            "$last" => AccOp::Last,
            "$push" => AccOp::Push,
            "$addToSet" => AccOp::AddToSet,
            other => {
                return Err(format!(
                    "accumulator {other} (field \"{name}\") is not supported"
                ));
            }
        };
        let expr = if op_kind == AccOp::Count {
            if !arg.as_object().is_some_and(Map::is_empty) {
                return Err(format!("$count (field \"{name}\") takes {{}}"));
            }
            Expr::Lit(Value::Null)
        } else {
            parse_expr(arg)?
        };
        accs.push(Accumulator {
            name: name.clone(),
            op: op_kind,
            expr,
        });
    }
    Ok(Group { id, accs })
}

/// A running `$sum`: integers added exactly, floats apart; the total is an integer when
/// no float was added and it fits.
#[derive(Default)]
struct Sum {
    ints: i128,
    floats: f64,
    any_float: bool,
}

impl Sum {
    fn add(&mut self, n: &Number) {
        match n.as_i64() {
            Some(i) => self.ints += i128::from(i),
            None => {
                self.floats += n.as_f64().unwrap_or(0.0);
                self.any_float = true;
            }
        }
    }

    fn finish(self) -> Value {
        if !self.any_float
            && let Ok(i) = i64::try_from(self.ints)
        {
            return Value::from(i);
        }
        number_value(self.ints as f64 + self.floats)
    }
}

/// The state of one accumulator in one group.
enum AccState {
    Sum(Sum),
    Avg { sum: f64, n: u64 },
    Min(Option<Value>),
    Max(Option<Value>),
    Count(u64),
    First(Option<Value>),
    Last(Value),
    Push(Vec<Value>),
    AddToSet(Vec<Value>, HashSet<String>),
}

impl AccState {
    fn new(op: AccOp) -> Self {
        match op {
            AccOp::Sum => AccState::Sum(Sum::default()),
            AccOp::Avg => AccState::Avg { sum: 0.0, n: 0 },
            AccOp::Min => AccState::Min(None),
            AccOp::Max => AccState::Max(None),
            AccOp::Count => AccState::Count(0),
            AccOp::First => AccState::First(None),
            AccOp::Last => AccState::Last(Value::Null),
            AccOp::Push => AccState::Push(Vec::new()),
            AccOp::AddToSet => AccState::AddToSet(Vec::new(), HashSet::new()),
        }
    }

    fn add(&mut self, v: Option<Value>) {
        match self {
            // Non-numbers (strings, arrays, missing) count as nothing, as MongoDB's $sum.
            AccState::Sum(sum) => {
                if let Some(Value::Number(n)) = &v {
                    sum.add(n);
                }
            }
            AccState::Avg { sum, n } => {
                if let Some(f) = v.as_ref().and_then(Value::as_f64) {
                    *sum += f;
                    *n += 1;
                }
            }
            AccState::Min(best) => keep_better(best, v, Ordering::is_lt),
            AccState::Max(best) => keep_better(best, v, Ordering::is_gt),
            AccState::Count(n) => *n += 1,
            AccState::First(first) => {
                if first.is_none() {
                    *first = Some(v.unwrap_or(Value::Null));
                }
            }
            AccState::Last(last) => *last = v.unwrap_or(Value::Null),
            AccState::Push(items) => {
                if let Some(v) = v {
                    items.push(v);
                }
            }
            AccState::AddToSet(items, seen) => {
                if let Some(v) = v
                    && seen.insert(canon(&v))
                {
                    items.push(v);
                }
            }
        }
    }

    fn finish(self) -> Value {
        match self {
            AccState::Sum(sum) => sum.finish(),
            AccState::Avg { sum, n } => {
                if n == 0 {
                    Value::Null
                } else {
                    number_value(sum / n as f64)
                }
            }
            AccState::Min(v) | AccState::Max(v) | AccState::First(v) => v.unwrap_or(Value::Null),
            AccState::Count(n) => Value::from(n),
            AccState::Last(v) => v,
            AccState::Push(items) | AccState::AddToSet(items, _) => Value::Array(items),
        }
    }
}

/// `$min`/`$max`: keeps `v` when it beats the best so far; null and missing never count.
fn keep_better(best: &mut Option<Value>, v: Option<Value>, beats: fn(Ordering) -> bool) {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return;
    };
    if best
        .as_ref()
        .is_none_or(|b| beats(total_cmp(Some(&v), Some(b))))
    {
        *best = Some(v);
    }
}

/// A `$group` in progress: the groups met so far, in the order they were met, each with its
/// accumulators' state. Documents are added one at a time, so a caller can feed it pages of
/// documents and drop each page after; what it holds grows with the groups, not the input.
pub(super) struct Grouper<'a> {
    g: &'a Group,
    index: HashMap<String, usize>,
    groups: Vec<(Value, Vec<AccState>)>,
}

impl<'a> Grouper<'a> {
    pub(super) fn new(g: &'a Group) -> Self {
        Grouper {
            g,
            index: HashMap::new(),
            groups: Vec::new(),
        }
    }

    /// Adds one document, charging `budget` for a new group's key and for every value
    /// `$push` or `$addToSet` keeps (the other accumulators hold a fixed-size state).
    pub(super) fn add(&mut self, doc: &Doc, budget: &mut Budget) -> Result<(), BudgetError> {
        let g = self.g;
        let key = eval(&g.id, doc).unwrap_or(Value::Null);
        let canonical = canon(&key);
        let slot = match self.index.get(&canonical) {
            Some(slot) => *slot,
            None => {
                budget.charge(value_size(&key) + canonical.len())?;
                self.groups
                    .push((key, g.accs.iter().map(|a| AccState::new(a.op)).collect()));
                self.index.insert(canonical, self.groups.len() - 1);
                self.groups.len() - 1
            }
        };
        if let Some((_, states)) = self.groups.get_mut(slot) {
            for (acc, state) in g.accs.iter().zip(states.iter_mut()) {
                let v = eval(&acc.expr, doc);
                if let (AccOp::Push | AccOp::AddToSet, Some(v)) = (acc.op, &v) {
                    budget.charge_value(v)?;
                } else {
                    budget.check_time()?;
                }
                state.add(v);
            }
        }
        Ok(())
    }

    /// The groups' documents, in the order the groups were met.
    pub(super) fn finish(self) -> Vec<Doc> {
        let g = self.g;
        self.groups
            .into_iter()
            .map(|(key, states)| {
                let mut out = Map::new();
                out.insert("_id".to_owned(), key);
                for (acc, state) in g.accs.iter().zip(states) {
                    out.insert(acc.name.clone(), state.finish());
                }
                out
            })
            .collect()
    }
}

/// Runs `$group` over `docs`, charging `budget` as [`Grouper::add`] does.
pub(super) fn run_group(
    g: &Group,
    docs: Vec<Doc>,
    budget: &mut Budget,
) -> Result<Vec<Doc>, BudgetError> {
    let mut grouper = Grouper::new(g);
    for doc in &docs {
        grouper.add(doc, budget)?;
    }
    Ok(grouper.finish())
}

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
mod tests {
    use super::super::tests::run;
    use serde_json::json;
    #[test]
    fn group_accumulators() {
        let got = run(json!([
            {"$group": {
                "_id": "$kind",
                "n": {"$sum": 1},
                "qty": {"$sum": "$qty"},
                "price": {"$sum": "$price"},
                "avg": {"$avg": "$qty"},
                "min": {"$min": "$price"},
                "max": {"$max": "$name"},
                "count": {"$count": {}},
                "first": {"$first": "$name"},
                "last": {"$last": "$qty"},
                "names": {"$push": "$name"},
                "tags": {"$addToSet": "$kind"}
            }}
        ]))
        .unwrap();
        assert_eq!(
            got,
            json!([
                {"_id": "fruit", "n": 3, "qty": 30, "price": 4.5, "avg": 15, "min": 1.5,
                 "max": "banana", "count": 3, "first": "apple", "last": null,
                 "names": ["apple", "banana", "Date"], "tags": ["fruit"]},
                {"_id": "veg", "n": 1, "qty": 0, "price": 2, "avg": 0, "min": 2,
                 "max": "carrot", "count": 1, "first": "carrot", "last": 0,
                 "names": ["carrot"], "tags": ["veg"]}
            ])
        );
        let got = run(json!([{"$group": {"_id": null, "total": {"$sum": "$qty"}, "none": {"$avg": "$missing"}}}])).unwrap();
        assert_eq!(got, json!([{"_id": null, "total": 30, "none": null}]));
        let got = run(json!([
            {"$group": {"_id": {"k": "$kind", "cheap": {"$lt": ["$price", 2.5]}}, "n": {"$sum": 1}}},
            {"$sort": {"n": -1, "_id.k": 1}}
        ]))
        .unwrap();
        assert_eq!(
            got,
            json!([
                {"_id": {"k": "fruit", "cheap": true}, "n": 2},
                {"_id": {"k": "fruit", "cheap": false}, "n": 1},
                {"_id": {"k": "veg", "cheap": true}, "n": 1}
            ])
        );
        let got = run(json!([
            {"$group": {"_id": {"$dateToString": {"format": "%Y-%m", "date": "$when"}}, "n": {"$sum": 1}}},
            {"$sort": {"_id": 1}}
        ]))
        .unwrap();
        assert_eq!(
            got,
            json!([{"_id": null, "n": 1}, {"_id": "2024-01", "n": 1}, {"_id": "2024-02", "n": 2}])
        );
    }
}
