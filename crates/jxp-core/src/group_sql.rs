//! The part of `POST /aggregate` the database answers in one statement when the pipeline
//! allows it: leading `$match` stages, then a `$group` of field keys and numeric accumulators
//! (a [`Grouping`]), or a bare `$count`. Only fields the model declares as plain scalars, none
//! private, none inside an array, none a system column, are grouped in SQL, and numeric
//! accumulators only over `Number` fields; the SQL also checks that every stored value is of
//! its declared kind, and the group runs in memory when one is not. The stages right after
//! the `$group` that SQL runs with the same meaning (a sort on the key or a count, `$skip`,
//! `$limit`, `$count`) join the statement. Everything else stays with the in-memory executor,
//! so the answer is the same either way.

use jxp_model::{Model, ScalarType};
use jxp_query::{
    Budget, Doc, FieldKind, Filter, GroupField, GroupTail, Grouping, MAX_FILTER_CONDITIONS,
    PlainAcc, PlainKey, Stage, parse_mongo_filter, resolve_path,
};
use serde_json::Value;

use crate::app::App;
use crate::budget::within;
use crate::error::CoreError;

/// What the database does for a pipeline: a grouping, or a count under a name, each over the
/// rows of the filter, followed by the stages left for memory. A grouping also keeps the
/// stages right after its `$group`, for when the data check refuses its tail but not the
/// grouping itself.
pub(crate) enum InDatabase<'a> {
    Group {
        grouping: Grouping,
        after_group: &'a [Stage],
        rest: &'a [Stage],
    },
    Count(Filter, String, &'a [Stage]),
}

/// The database's share of `stages`, when it starts (after `$match` stages the model
/// understands) with a `$group` SQL can run or a `$count`. `base` is the reader's scope.
pub(crate) fn plan<'a>(model: &Model, base: Filter, stages: &'a [Stage]) -> Option<InDatabase<'a>> {
    let mut filter = base;
    let mut rest = stages;
    while let Some(raw) = rest.first().and_then(Stage::match_filter) {
        let parsed = parse_mongo_filter(model, raw)
            .ok()
            .filter(|f| filter.condition_count() + f.condition_count() <= MAX_FILTER_CONDITIONS)?;
        filter = filter.and(parsed);
        rest = &rest[1..];
    }
    let (first, tail) = rest.split_first()?;
    if let Some(name) = first.count_field() {
        return Some(InDatabase::Count(filter, name.to_owned(), tail));
    }
    let plain = first.plain_group()?;
    let key = match plain.key {
        PlainKey::Null => PlainKey::Null,
        PlainKey::Field(p) => PlainKey::Field(field(model, &p)?),
        PlainKey::Object(fields) => PlainKey::Object(
            fields
                .into_iter()
                .map(|(k, p)| Some((k, field(model, &p)?)))
                .collect::<Option<_>>()?,
        ),
    };
    let accs = plain
        .accs
        .into_iter()
        .map(|(name, acc)| {
            let num = |p: &[String]| field(model, p).filter(|f| f.kind == FieldKind::Number);
            let acc = match acc {
                PlainAcc::Count(n) => PlainAcc::Count(n),
                PlainAcc::Sum(p) => PlainAcc::Sum(num(&p)?),
                PlainAcc::Avg(p) => PlainAcc::Avg(num(&p)?),
                PlainAcc::Min(p) => PlainAcc::Min(num(&p)?),
                PlainAcc::Max(p) => PlainAcc::Max(num(&p)?),
            };
            Some((name, acc))
        })
        .collect::<Option<_>>()?;
    let mut grouping = Grouping {
        filter,
        key,
        accs,
        tail: GroupTail::default(),
    };
    if !grouping.renderable() {
        return None;
    }
    let taken = grouping.absorb(tail);
    Some(InDatabase::Group {
        grouping,
        after_group: tail,
        rest: &tail[taken..],
    })
}

/// A model field SQL may group on: declared, not private (`resolve_path` refuses those), not
/// in an array, not a system column, of a plain scalar type.
fn field(model: &Model, segments: &[String]) -> Option<GroupField> {
    let dotted = segments.join(".");
    let top = segments.first()?;
    model.field(top)?;
    let (path, scalar) = resolve_path(model, &dotted).ok()?;
    if path.array_at.is_some() {
        return None;
    }
    let kind = match scalar? {
        ScalarType::String | ScalarType::Date | ScalarType::ObjectId => FieldKind::Text,
        ScalarType::Number => FieldKind::Number,
        ScalarType::Boolean => FieldKind::Bool,
        ScalarType::Mixed => return None,
    };
    Some(GroupField { path, kind })
}

impl App {
    /// Runs the database's share of a pipeline: the grouped (or counted) documents, charged to
    /// `budget`; `None` when the store cannot, or the data is not of its declared kinds, and
    /// the pipeline runs in memory instead.
    pub(crate) async fn run_in_database<'a>(
        &self,
        slug: &str,
        plan: &InDatabase<'a>,
        budget: &mut Budget,
    ) -> Result<Option<(Vec<Doc>, &'a [Stage])>, CoreError> {
        let docs = match plan {
            InDatabase::Count(filter, name, rest) => {
                let n = within(budget, async { self.stored_count(slug, filter).await }).await?;
                // `$count` of nothing answers no document at all.
                let doc = (n > 0).then(|| Doc::from_iter([(name.clone(), Value::from(n))]));
                Some((doc.into_iter().collect(), *rest))
            }
            InDatabase::Group {
                grouping,
                after_group,
                rest,
            } => {
                let grouped = self.group_in_database(slug, grouping, budget).await?;
                match grouped {
                    Some(docs) => Some((docs, *rest)),
                    // A window past the last group, or odd data: the grouping alone, with
                    // its tail in memory, may still be answered by the database.
                    None if !grouping.tail.is_empty() => {
                        let plain = Grouping {
                            tail: GroupTail::default(),
                            ..grouping.clone()
                        };
                        self.group_in_database(slug, &plain, budget)
                            .await?
                            .map(|docs| (docs, *after_group))
                    }
                    None => None,
                }
            }
        };
        if let Some((docs, _)) = &docs {
            for d in docs {
                budget.charge_doc(d)?;
            }
        }
        Ok(docs)
    }

    /// The documents a grouping answers, `None` when the store cannot group or the data is
    /// not of its declared kinds.
    async fn group_in_database(
        &self,
        slug: &str,
        grouping: &Grouping,
        budget: &Budget,
    ) -> Result<Option<Vec<Doc>>, CoreError> {
        let rows = within(budget, async {
            Ok(self.store().aggregate(slug, grouping).await?)
        })
        .await?;
        Ok(rows.and_then(|rows| grouping.decode(&rows)))
    }
}
