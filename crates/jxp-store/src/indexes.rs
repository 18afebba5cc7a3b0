//! The indexes a model declares, as one definition both stores' migrations create (their
//! names, paths and uniqueness), and the comparison of those with the indexes a database
//! holds, which `jxp indexes` reports and syncs. Only the indexes jxp names for a model are
//! its to manage: primary keys, `_id`'s unique constraint, the system-column indexes, the
//! full-text index and the change log's are never reported as extra.

use jxp_query::GeneratedColumn;

use crate::error::StoreError;
use crate::spec::TableSpec;
use crate::tables::check_model_name;

/// Which store's naming an index follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    Sqlite,
    #[cfg(feature = "postgres")]
    Postgres,
}

impl Flavor {
    /// The prefixes of the names jxp gives a model's declared indexes, this release's and
    /// earlier ones' (SQLite's `ix_` became `iy_`, which carries `_deleted`).
    fn managed_prefixes(self) -> &'static [&'static str] {
        match self {
            Flavor::Sqlite => &["ix", "iy", "ux"],
            #[cfg(feature = "postgres")]
            Flavor::Postgres => &["ix", "iz", "ux"],
        }
    }

    /// The name of the index on `path` of `model`: `ux_` when unique, else SQLite's `iy_`
    /// (the field and `_deleted`), PostgreSQL's `iz_` (a generated column and `_deleted`) or
    /// its `ix_` (the field's expression, for a field of no one kind). PostgreSQL cuts names
    /// at 63 bytes, so a longer one is shortened and keeps a hash of the whole to stay
    /// distinct.
    fn name(
        self,
        model: &str,
        path: &str,
        unique: bool,
        #[cfg_attr(not(feature = "postgres"), expect(unused_variables))] generated: bool,
    ) -> String {
        let prefix = match (unique, self) {
            (true, _) => "ux",
            (false, Flavor::Sqlite) => "iy",
            #[cfg(feature = "postgres")]
            (false, Flavor::Postgres) if generated => "iz",
            #[cfg(feature = "postgres")]
            (false, Flavor::Postgres) => "ix",
        };
        let name = format!("{prefix}_{model}__{}", path.replace('.', "__"));
        if self == Flavor::Sqlite || name.len() <= 63 {
            return name;
        }
        // FNV-1a keeps long names distinct after truncation.
        let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        let mut cut = 46;
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}_{hash:016x}", &name[..cut])
    }
}

/// An index a model declares (`index = true` or `unique = true` on a field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredIndex {
    pub name: String,
    /// The dotted path of the indexed field.
    pub path: String,
    pub unique: bool,
    /// On PostgreSQL, the generated column a non-unique index of a string or number field
    /// is on (`gt_`/`gn_` and the path, when that fits PostgreSQL's 63 bytes).
    pub generated: Option<GeneratedColumn>,
}

/// The indexes `spec` declares, named as `flavor` names them.
pub(crate) fn declared(spec: &TableSpec, flavor: Flavor) -> Vec<DeclaredIndex> {
    spec.indexes
        .iter()
        .map(|i| {
            let generated = match flavor {
                Flavor::Sqlite => None,
                #[cfg(feature = "postgres")]
                Flavor::Postgres => generated_column(i),
            };
            DeclaredIndex {
                name: flavor.name(&spec.model, &i.path, i.unique, generated.is_some()),
                path: i.path.clone(),
                unique: i.unique,
                generated,
            }
        })
        .collect()
}

/// PostgreSQL's generated column for a non-unique index of a field of one kind, unless its
/// name would be longer than PostgreSQL keeps.
#[cfg(feature = "postgres")]
fn generated_column(i: &crate::spec::IndexSpec) -> Option<GeneratedColumn> {
    column_of(&i.path, i.kind.filter(|_| !i.unique)?)
}

/// The generated column of `path`, of `kind`, unless its name would be longer than
/// PostgreSQL keeps (SQLite's are named the same way).
fn column_of(path: &str, kind: jxp_query::GeneratedKind) -> Option<GeneratedColumn> {
    use jxp_query::GeneratedKind;
    let prefix = match kind {
        GeneratedKind::Text => "gt",
        GeneratedKind::Number => "gn",
        GeneratedKind::Integer => "gi",
    };
    let column = format!("{prefix}_{}", path.replace('.', "__"));
    (column.len() <= 63).then(|| GeneratedColumn {
        path: path.to_owned(),
        column,
        kind,
        // Whether it does is learnt from the table, when it is migrated.
        sorts: false,
        indexed: false,
    })
}

/// The generated columns for the Number fields of `spec` that no index covers
/// (`TableSpec::numbers`), on both databases. A number costs a row a few bytes, and reading
/// it from a column instead of the document roughly halves a scan that filters or sorts on it
/// on PostgreSQL; SQLite then reads no document for it at all.
/// A name another column already has (one of the `declared` indexes', or a path that spells
/// the same, as `a__b` and `a.b` do) is left to that one: the second field is read from the
/// document.
pub(crate) fn number_columns(spec: &TableSpec, declared: &[DeclaredIndex]) -> Vec<GeneratedColumn> {
    let mut taken: std::collections::HashSet<String> = declared
        .iter()
        .filter_map(|d| d.generated.as_ref().map(|g| g.column.clone()))
        .collect();
    spec.numbers
        .iter()
        .filter_map(|path| column_of(path, jxp_query::GeneratedKind::Number))
        .filter(|g| taken.insert(g.column.clone()))
        .collect()
}

/// The `int8` column PostgreSQL keeps beside each number column of `columns`
/// ([`jxp_query::GeneratedKind::Integer`]): a grouping sums and classes the integers it holds
/// without reading a `numeric` (a third less time for a `$sum` over every row). Its name is
/// as long as the number column's, so PostgreSQL keeps it whole too.
#[cfg(feature = "postgres")]
pub(crate) fn integer_columns<'a>(
    columns: impl IntoIterator<Item = &'a GeneratedColumn>,
) -> Vec<GeneratedColumn> {
    let mut taken = std::collections::HashSet::new();
    columns
        .into_iter()
        .filter(|c| c.kind == jxp_query::GeneratedKind::Number)
        .filter_map(|c| column_of(&c.path, jxp_query::GeneratedKind::Integer))
        .filter(|g| taken.insert(g.column.clone()))
        .collect()
}

/// Whether `name`, an index on `model`'s table, is one jxp names for a declared index, so
/// that one the model no longer declares is jxp's to drop.
/// Only a plain identifier qualifies: a name jxp did not make is never written into SQL.
pub(crate) fn is_managed(flavor: Flavor, model: &str, name: &str) -> bool {
    jxp_model::is_ident(name)
        && flavor
            .managed_prefixes()
            .iter()
            .any(|p| name.starts_with(&format!("{p}_{model}__")))
}

/// An index the database holds under a declared name, defined otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DifferentIndex {
    pub declared: DeclaredIndex,
    /// The definition the model asks for, as the database writes it.
    pub expected: String,
    /// The definition the database holds.
    pub found: String,
}

/// An index of jxp's naming that the model no longer declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraIndex {
    pub name: String,
    pub definition: String,
}

/// How one model's declared indexes compare with its table's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelIndexes {
    pub model: String,
    /// Whether the model's table exists yet (a server creates it, with its indexes, when it
    /// starts); without it every declared index is missing.
    pub table_exists: bool,
    /// Declared and present as declared.
    pub present: Vec<DeclaredIndex>,
    pub missing: Vec<DeclaredIndex>,
    pub different: Vec<DifferentIndex>,
    pub extra: Vec<ExtraIndex>,
}

impl ModelIndexes {
    pub fn in_sync(&self) -> bool {
        self.missing.is_empty() && self.different.is_empty() && self.extra.is_empty()
    }
}

/// Every model's comparison, in model order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexReport {
    pub models: Vec<ModelIndexes>,
}

impl IndexReport {
    pub fn in_sync(&self) -> bool {
        self.models.iter().all(ModelIndexes::in_sync)
    }
}

/// What a sync did, as `model/index` names, and the comparison afterwards.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexSync {
    pub created: Vec<String>,
    /// Dropped and created again as declared.
    pub recreated: Vec<String>,
    pub dropped: Vec<String>,
    /// Extra indexes left in place because dropping them was not confirmed.
    pub kept: Vec<String>,
    /// Models whose tables do not exist yet: a server creates them when it starts.
    pub no_table: Vec<String>,
    pub after: IndexReport,
}

/// One model's comparison: `wanted` pairs each declared index with the definition it
/// should have, `found` the database's indexes on the table (name, definition); definitions
/// are compared as `shape` makes them comparable.
pub(crate) fn compare(
    flavor: Flavor,
    model: &str,
    table_exists: bool,
    wanted: Vec<(DeclaredIndex, String)>,
    found: &[(String, String)],
    shape: impl Fn(&str) -> String,
) -> ModelIndexes {
    let mut out = ModelIndexes {
        model: model.to_owned(),
        table_exists,
        present: Vec::new(),
        missing: Vec::new(),
        different: Vec::new(),
        extra: Vec::new(),
    };
    for (declared, expected) in &wanted {
        match found.iter().find(|(name, _)| *name == declared.name) {
            None => out.missing.push(declared.clone()),
            Some((_, def)) if shape(def) == shape(expected) => out.present.push(declared.clone()),
            Some((_, def)) => out.different.push(DifferentIndex {
                declared: declared.clone(),
                expected: expected.clone(),
                found: def.clone(),
            }),
        }
    }
    for (name, definition) in found {
        if is_managed(flavor, model, name) && !wanted.iter().any(|(d, _)| d.name == *name) {
            out.extra.push(ExtraIndex {
                name: name.clone(),
                definition: definition.clone(),
            });
        }
    }
    out
}

/// The specs in model order, as a report lists them, each model's name checked to be one
/// that may be written into SQL.
pub(crate) fn in_model_order(specs: &[TableSpec]) -> Result<Vec<&TableSpec>, StoreError> {
    let mut specs: Vec<&TableSpec> = specs.iter().collect();
    specs.sort_by(|a, b| a.model.cmp(&b.model));
    for spec in &specs {
        check_model_name(&spec.model)?;
    }
    Ok(specs)
}

/// A definition with its runs of white space made one space, so that two spellings of one
/// statement compare equal.
pub(crate) fn squeeze(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::IndexSpec;
    use jxp_query::GeneratedKind;

    fn spec() -> TableSpec {
        TableSpec {
            model: "test".into(),
            indexes: vec![
                IndexSpec {
                    path: "foo".into(),
                    unique: false,
                    kind: None,
                },
                IndexSpec {
                    path: "a.b".into(),
                    unique: true,
                    kind: Some(GeneratedKind::Text),
                },
                IndexSpec {
                    path: "c.n".into(),
                    unique: false,
                    kind: Some(GeneratedKind::Number),
                },
            ],
            ..TableSpec::default()
        }
    }

    #[test]
    fn each_store_names_the_declared_indexes_its_way() {
        let names = |f| {
            declared(&spec(), f)
                .into_iter()
                .map(|d| d.name)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(Flavor::Sqlite),
            ["iy_test__foo", "ux_test__a__b", "iy_test__c__n"]
        );
        assert!(
            declared(&spec(), Flavor::Sqlite)
                .iter()
                .all(|d| d.generated.is_none())
        );
        #[cfg(feature = "postgres")]
        {
            assert_eq!(
                names(Flavor::Postgres),
                ["ix_test__foo", "ux_test__a__b", "iz_test__c__n"]
            );
            // Only the non-unique index of a field of one kind is on a generated column.
            let generated: Vec<_> = declared(&spec(), Flavor::Postgres)
                .into_iter()
                .map(|d| d.generated.map(|g| g.column))
                .collect();
            assert_eq!(generated, [None, None, Some("gn_c__n".to_owned())]);
            let long = "x".repeat(80);
            let name = Flavor::Postgres.name("test", &long, false, false);
            assert!(name.len() <= 63, "{name}");
            assert_ne!(
                name,
                Flavor::Postgres.name("test", &"x".repeat(81), false, false)
            );
            // A column name PostgreSQL would cut leaves the index on the expression.
            let mut long = spec();
            long.indexes[2].path = "y".repeat(61);
            let d = declared(&long, Flavor::Postgres).remove(2);
            assert!(d.generated.is_none() && d.name.starts_with("ix_"), "{d:?}");
        }
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn number_fields_get_number_columns_whose_names_postgresql_keeps() {
        let spec = TableSpec {
            // `c__n` spells the indexed `c.n`'s column, `size__w` the one of `size.w`.
            numbers: vec![
                "m".into(),
                "size.w".into(),
                "z".repeat(61),
                "c__n".into(),
                "size__w".into(),
            ],
            ..spec()
        };
        let columns: Vec<_> = number_columns(&spec, &declared(&spec, Flavor::Postgres))
            .into_iter()
            .map(|g| (g.column, g.kind, g.sorts))
            .collect();
        let number = jxp_query::GeneratedKind::Number;
        assert_eq!(
            columns,
            [
                ("gn_m".to_owned(), number, false),
                ("gn_size__w".to_owned(), number, false)
            ]
        );
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn every_number_column_gets_an_integer_column_beside_it() {
        let spec = TableSpec {
            numbers: vec!["m".into()],
            ..spec()
        };
        let declared = declared(&spec, Flavor::Postgres);
        let numbers = number_columns(&spec, &declared);
        // The indexed `c.n`'s column and the unindexed `m`'s, each once.
        let all: Vec<&GeneratedColumn> = declared
            .iter()
            .filter_map(|d| d.generated.as_ref())
            .chain(&numbers)
            .chain(&numbers)
            .collect();
        let integers: Vec<_> = integer_columns(all)
            .into_iter()
            .map(|g| (g.path, g.column, g.kind, g.sorts, g.indexed))
            .collect();
        let integer = jxp_query::GeneratedKind::Integer;
        assert_eq!(
            integers,
            [
                (
                    "c.n".to_owned(),
                    "gi_c__n".to_owned(),
                    integer,
                    false,
                    false
                ),
                ("m".to_owned(), "gi_m".to_owned(), integer, false, false),
            ]
        );
    }

    #[test]
    fn only_jxps_names_are_extra() {
        let wanted: Vec<_> = declared(&spec(), Flavor::Sqlite)
            .into_iter()
            .map(|d| {
                let def = format!("CREATE INDEX \"{}\"", d.name);
                (d, def)
            })
            .collect();
        let found = vec![
            (
                "iy_test__foo".to_owned(),
                "CREATE  INDEX \"iy_test__foo\"".to_owned(),
            ),
            (
                "ux_test__a__b".to_owned(),
                "CREATE UNIQUE INDEX x".to_owned(),
            ),
            (
                "iy_test__c__n".to_owned(),
                "CREATE INDEX \"iy_test__c__n\"".to_owned(),
            ),
            ("ix_test__old".to_owned(), "CREATE INDEX old".to_owned()),
            ("sx_test__owner".to_owned(), "CREATE INDEX o".to_owned()),
            ("by_hand".to_owned(), "CREATE INDEX h".to_owned()),
        ];
        let got = compare(Flavor::Sqlite, "test", true, wanted, &found, squeeze);
        assert_eq!(
            got.present
                .iter()
                .map(|d| d.name.as_str())
                .collect::<Vec<_>>(),
            ["iy_test__foo", "iy_test__c__n"]
        );
        assert!(got.missing.is_empty());
        assert_eq!(got.different.len(), 1);
        assert_eq!(got.different[0].declared.name, "ux_test__a__b");
        assert_eq!(
            got.extra,
            [ExtraIndex {
                name: "ix_test__old".into(),
                definition: "CREATE INDEX old".into()
            }]
        );
        assert!(!got.in_sync());
    }
}
