//! A [`Grouping`] counted in the server, in a hash table, over a scan of the few values each
//! row holds for it (its `_id`, then the JSON type and value of each field the grouping
//! reads, in the order of [`Grouping::scan_paths`], which [`scanned_cell`] reads from the
//! field's JSON text). The table holds one entry per group, so
//! its memory grows with the number of groups and never with the number of rows; past a
//! byte limit [`HashGroups::push`] says so and the caller lets the database group instead.
//!
//! The answer is the rows the grouping's SQL statement answers (the layout `sql::group`
//! documents), built with the same rules, so that [`Grouping::decode`] reads either: values
//! grouped as SQLite groups them (type and value, text byte by byte), integer totals exact,
//! float totals added in SQLite's compensated way, the groups ordered by the tail's sort and
//! then by their first `_id`, and the tail's window or count applied. A value not of its
//! field's declared kind ends the scan: the answer then is one row whose data check fails,
//! which decoding refuses as it refuses the statement's.

use std::cmp::Ordering;
use std::collections::HashMap;

use super::pushed::{Cell, FieldKind, GroupSort, Grouping, PlainAcc, PlainKey};

/// One value of a scanned row, borrowed from the database's row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CellRef<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
}

impl CellRef<'_> {
    fn owned(self) -> Cell {
        match self {
            CellRef::Null => Cell::Null,
            CellRef::Int(i) => Cell::Int(i),
            CellRef::Real(f) => Cell::Real(f),
            CellRef::Text(s) => Cell::Text(s.to_owned()),
        }
    }

    fn float(self) -> Option<f64> {
        match self {
            CellRef::Int(i) => Some(i as f64),
            CellRef::Real(f) => Some(f),
            _ => None,
        }
    }
}

/// A string's text with its escapes undone, when a field's JSON text (as SQLite's `->`
/// answers it) is a string holding escapes; `None` otherwise, including for a string that
/// does not decode (which [`scanned_cell`] then refuses).
pub fn unescaped(json: &str) -> Option<String> {
    if json.starts_with('"') && json.contains('\\') {
        serde_json::from_str(json).ok()
    } else {
        None
    }
}

/// A field's JSON text (`None` when missing) as the JSON type and value SQLite's
/// `json_type` and `json_extract` give for it: booleans as the integers 1 and 0, numbers with
/// a fraction or an exponent as reals, strings unescaped (`unescaped` is the string's text
/// when it held escapes), arrays and objects as their text. An integer past SQLite's range,
/// or a string that does not decode, is given a type no field is declared as, so that the
/// grouping is refused rather than answered differently.
pub fn scanned_cell<'a>(
    json: Option<&'a str>,
    unescaped: Option<&'a str>,
) -> (Option<&'static str>, CellRef<'a>) {
    const ODD: (Option<&str>, CellRef<'_>) = (Some("odd"), CellRef::Null);
    let Some(json) = json else {
        return (None, CellRef::Null);
    };
    match json.as_bytes().first() {
        Some(b'"') => match unescaped {
            Some(s) => (Some("text"), CellRef::Text(s)),
            None if json.contains('\\') => ODD,
            None => json
                .get(1..json.len().saturating_sub(1))
                .filter(|_| json.len() >= 2 && json.ends_with('"'))
                .map_or(ODD, |s| (Some("text"), CellRef::Text(s))),
        },
        Some(b'n') => (Some("null"), CellRef::Null),
        Some(b't') => (Some("true"), CellRef::Int(1)),
        Some(b'f') => (Some("false"), CellRef::Int(0)),
        Some(b'[') => (Some("array"), CellRef::Text(json)),
        Some(b'{') => (Some("object"), CellRef::Text(json)),
        Some(_) if json.contains(['.', 'e', 'E']) => json
            .parse::<f64>()
            .map_or(ODD, |f| (Some("real"), CellRef::Real(f))),
        Some(_) => json
            .parse::<i64>()
            .map_or(ODD, |i| (Some("integer"), CellRef::Int(i))),
        None => ODD,
    }
}

/// The byte limit was passed: the groups do not fit in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyGroups;

/// A float total added as SQLite's `SUM` adds floats (Kahan–Babuška–Neumaier).
#[derive(Debug, Clone, Copy, Default)]
struct FloatSum {
    sum: f64,
    err: f64,
}

impl FloatSum {
    fn add(&mut self, r: f64) {
        let s = self.sum;
        let t = s + r;
        if s.abs() > r.abs() {
            self.err += (s - t) + r;
        } else {
            self.err += (r - t) + s;
        }
        self.sum = t;
    }

    fn merge(&mut self, other: FloatSum) {
        self.add(other.sum);
        self.err += other.err;
    }

    fn total(self) -> f64 {
        if self.err.is_finite() {
            self.sum + self.err
        } else {
            self.sum
        }
    }
}

/// One accumulator's running state, in the parts its SQL columns answer.
#[derive(Debug, Clone)]
enum AccState {
    Count,
    Sum {
        ints: Option<i128>,
        floats: Option<FloatSum>,
    },
    Avg {
        sum: FloatSum,
        n: i64,
    },
    Extreme {
        min: bool,
        int: Option<i64>,
        float: Option<f64>,
    },
}

impl AccState {
    fn new<P>(acc: &PlainAcc<P>) -> AccState {
        match acc {
            PlainAcc::Count(_) => AccState::Count,
            PlainAcc::Sum(_) => AccState::Sum {
                ints: None,
                floats: None,
            },
            PlainAcc::Avg(_) => AccState::Avg {
                sum: FloatSum::default(),
                n: 0,
            },
            PlainAcc::Min(_) => AccState::Extreme {
                min: true,
                int: None,
                float: None,
            },
            PlainAcc::Max(_) => AccState::Extreme {
                min: false,
                int: None,
                float: None,
            },
        }
    }

    /// Adds a value already checked to be a number, null or missing.
    fn add(&mut self, v: CellRef<'_>) {
        match (self, v) {
            (AccState::Count, _) => {}
            (AccState::Sum { ints, .. }, CellRef::Int(i)) => {
                *ints = Some(ints.unwrap_or(0) + i128::from(i));
            }
            (AccState::Sum { floats, .. }, CellRef::Real(f)) => {
                floats.get_or_insert_with(FloatSum::default).add(f);
            }
            (AccState::Avg { sum, n }, v @ (CellRef::Int(_) | CellRef::Real(_))) => {
                sum.add(v.float().unwrap_or(0.0));
                *n += 1;
            }
            (AccState::Extreme { min, int, .. }, CellRef::Int(i)) => {
                *int = Some(int.map_or(i, |j| if *min { j.min(i) } else { j.max(i) }));
            }
            (AccState::Extreme { min, float, .. }, CellRef::Real(f)) => {
                *float = Some(float.map_or(f, |g| if *min { g.min(f) } else { g.max(f) }));
            }
            _ => {}
        }
    }

    fn merge(&mut self, other: &AccState) {
        match (self, other) {
            (
                AccState::Sum { ints, floats },
                AccState::Sum {
                    ints: i2,
                    floats: f2,
                },
            ) => {
                if let Some(i2) = i2 {
                    *ints = Some(ints.unwrap_or(0) + i2);
                }
                if let Some(f2) = f2 {
                    floats.get_or_insert_with(FloatSum::default).merge(*f2);
                }
            }
            (AccState::Avg { sum, n }, AccState::Avg { sum: s2, n: n2 }) => {
                sum.merge(*s2);
                *n += n2;
            }
            (
                AccState::Extreme { min, int, float },
                AccState::Extreme {
                    int: i2, float: f2, ..
                },
            ) => {
                if let Some(i) = *i2 {
                    *int = Some(int.map_or(i, |j| if *min { j.min(i) } else { j.max(i) }));
                }
                if let Some(f) = *f2 {
                    *float = Some(float.map_or(f, |g| if *min { g.min(f) } else { g.max(f) }));
                }
            }
            _ => {}
        }
    }

    /// The accumulator's columns, as the statement answers them.
    fn cells(&self, count: i64, out: &mut Vec<Cell>) {
        match self {
            AccState::Count => out.push(Cell::Int(count)),
            AccState::Sum { ints, floats } => {
                match ints {
                    // High and low halves that decoding puts back together.
                    Some(t) => {
                        let hi = i64::try_from(t >> 32).unwrap_or(i64::MAX);
                        out.push(Cell::Int(hi));
                        out.push(Cell::Int((t & 0xFFFF_FFFF) as i64));
                    }
                    None => out.extend([Cell::Null, Cell::Null]),
                }
                out.push(floats.map_or(Cell::Null, |f| Cell::Real(f.total())));
            }
            AccState::Avg { sum, n } => {
                out.push(if *n > 0 {
                    Cell::Real(sum.total())
                } else {
                    Cell::Null
                });
                out.push(Cell::Int(*n));
            }
            AccState::Extreme { int, float, .. } => {
                out.push(int.map_or(Cell::Null, Cell::Int));
                out.push(float.map_or(Cell::Null, Cell::Real));
            }
        }
    }
}

/// One group: its key's type and value cells, its first `_id`, its row count and its
/// accumulators.
#[derive(Debug, Clone)]
struct Group {
    key: Vec<(Cell, Cell)>,
    first_id: String,
    count: i64,
    accs: Vec<AccState>,
}

/// Bytes a group's entry is reckoned at besides its texts: the entry in the table, its key
/// copy there, its vectors and accumulators.
const GROUP_OVERHEAD: usize = 160;

/// The groups of a [`Grouping`] counted from scanned rows.
#[derive(Debug)]
pub struct HashGroups {
    g: Grouping,
    /// For each key field, then each accumulator (none for a count): its scan field.
    key_cols: Vec<usize>,
    acc_cols: Vec<Option<usize>>,
    kinds: Vec<FieldKind>,
    index: HashMap<Vec<u8>, usize>,
    groups: Vec<Group>,
    bad: bool,
    bytes: usize,
    max_bytes: usize,
    buf: Vec<u8>,
}

impl Grouping {
    /// The distinct field paths a grouping reads, dotted, in the order a scan for
    /// [`HashGroups`] answers their type and value columns, each with its declared kind.
    pub fn scan_paths(&self) -> Vec<(String, FieldKind)> {
        let mut out: Vec<(String, FieldKind)> = Vec::new();
        for f in self.fields() {
            let dotted = f.path.dotted();
            if !out.iter().any(|(p, _)| *p == dotted) {
                out.push((dotted, f.kind));
            }
        }
        out
    }

    fn scan_col(&self, dotted: &str) -> usize {
        self.scan_paths()
            .iter()
            .position(|(p, _)| p == dotted)
            .unwrap_or(0)
    }
}

impl HashGroups {
    /// An empty table for `g`, holding at most about `max_bytes` of groups.
    pub fn new(g: Grouping, max_bytes: usize) -> Self {
        let key_cols = match &g.key {
            PlainKey::Null => Vec::new(),
            PlainKey::Field(f) => vec![g.scan_col(&f.path.dotted())],
            PlainKey::Object(fields) => fields
                .iter()
                .map(|(_, f)| g.scan_col(&f.path.dotted()))
                .collect(),
        };
        let acc_cols = g
            .accs
            .iter()
            .map(|(_, a)| match a {
                PlainAcc::Count(_) => None,
                PlainAcc::Sum(f) | PlainAcc::Avg(f) | PlainAcc::Min(f) | PlainAcc::Max(f) => {
                    Some(g.scan_col(&f.path.dotted()))
                }
            })
            .collect();
        HashGroups {
            key_cols,
            acc_cols,
            kinds: g.scan_paths().into_iter().map(|(_, k)| k).collect(),
            g,
            index: HashMap::new(),
            groups: Vec::new(),
            bad: false,
            bytes: 0,
            max_bytes,
            buf: Vec::new(),
        }
    }

    /// Whether a value not of its field's declared kind was met; the scan may stop there.
    pub fn is_bad(&self) -> bool {
        self.bad
    }

    /// Counts one row as the scan reads it: its `_id` and, per scan field, the field's JSON
    /// text (`None` when missing), read as [`scanned_cell`] says. Strings are copied out only
    /// when they hold escapes to undo.
    pub fn push_texts(&mut self, id: &str, texts: &[Option<&str>]) -> Result<(), TooManyGroups> {
        let escaped = |t: &Option<&str>| t.is_some_and(|t| t.starts_with('"') && t.contains('\\'));
        let owned: Vec<Option<String>> = if texts.iter().any(escaped) {
            texts.iter().map(|t| t.and_then(unescaped)).collect()
        } else {
            Vec::new()
        };
        let cells: Vec<(Option<&str>, CellRef<'_>)> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| scanned_cell(*t, owned.get(i).and_then(Option::as_deref)))
            .collect();
        self.push(id, &cells)
    }

    /// Counts one row: its `_id` and, per scan field, its JSON type (`None` when missing)
    /// and value.
    pub fn push(
        &mut self,
        id: &str,
        fields: &[(Option<&str>, CellRef<'_>)],
    ) -> Result<(), TooManyGroups> {
        if self.bad {
            return Ok(());
        }
        for (kind, (t, v)) in self.kinds.iter().zip(fields) {
            if is_bad(*kind, *t, *v) {
                self.bad = true;
                return Ok(());
            }
        }
        let lone = matches!(self.g.key, PlainKey::Field(_));
        self.buf.clear();
        for &c in &self.key_cols {
            let (t, v) = key_cell(lone, fields.get(c).copied());
            encode(&mut self.buf, t, v);
        }
        let at = match self.index.get(self.buf.as_slice()) {
            Some(&at) => at,
            None => {
                let key: Vec<(Cell, Cell)> = self
                    .key_cols
                    .iter()
                    .map(|&c| {
                        let (t, v) = key_cell(lone, fields.get(c).copied());
                        (
                            t.map_or(Cell::Null, |t| Cell::Text(t.to_owned())),
                            v.owned(),
                        )
                    })
                    .collect();
                self.bytes += GROUP_OVERHEAD + 2 * self.buf.len() + id.len();
                if self.bytes > self.max_bytes {
                    return Err(TooManyGroups);
                }
                self.index.insert(self.buf.clone(), self.groups.len());
                self.groups.push(Group {
                    key,
                    first_id: id.to_owned(),
                    count: 0,
                    accs: self.g.accs.iter().map(|(_, a)| AccState::new(a)).collect(),
                });
                self.groups.len() - 1
            }
        };
        let Some(group) = self.groups.get_mut(at) else {
            return Ok(());
        };
        group.count += 1;
        if id < group.first_id.as_str() {
            id.clone_into(&mut group.first_id);
        }
        for (acc, col) in group.accs.iter_mut().zip(&self.acc_cols) {
            if let Some((_, v)) = col.and_then(|c| fields.get(c)) {
                acc.add(*v);
            }
        }
        Ok(())
    }

    /// Adds another table's groups (from a scan of other rows) to this one's.
    pub fn merge(&mut self, other: HashGroups) -> Result<(), TooManyGroups> {
        self.bad |= other.bad;
        let mut theirs: Vec<Option<Group>> = other.groups.into_iter().map(Some).collect();
        for (key, at) in other.index {
            let Some(group) = theirs.get_mut(at).and_then(Option::take) else {
                continue;
            };
            match self.index.get(&key).and_then(|&i| self.groups.get_mut(i)) {
                Some(mine) => {
                    mine.count += group.count;
                    if group.first_id < mine.first_id {
                        mine.first_id = group.first_id;
                    }
                    for (a, b) in mine.accs.iter_mut().zip(&group.accs) {
                        a.merge(b);
                    }
                }
                None => {
                    self.bytes += GROUP_OVERHEAD + 2 * key.len() + group.first_id.len();
                    if self.bytes > self.max_bytes {
                        return Err(TooManyGroups);
                    }
                    self.index.insert(key, self.groups.len());
                    self.groups.push(group);
                }
            }
        }
        Ok(())
    }

    /// The rows the grouping's statement would answer for the rows pushed.
    pub fn finish(self) -> Vec<Vec<Cell>> {
        if self.bad {
            // One row whose data check fails: decoding refuses it.
            return vec![vec![Cell::Int(1)]];
        }
        let HashGroups { g, groups, .. } = self;
        let mut groups = groups;
        groups.sort_by(|a, b| {
            for (on, desc) in &g.tail.sort {
                let ord = match *on {
                    GroupSort::Key(i) => cmp_key(
                        a.key.get(i).map(|(_, v)| v),
                        b.key.get(i).map(|(_, v)| v),
                        *desc,
                    ),
                    GroupSort::Count(i) => {
                        let by = match g.accs.get(i) {
                            Some((_, PlainAcc::Count(by))) => i128::from(*by),
                            _ => 0,
                        };
                        let ord = (i128::from(a.count) * by).cmp(&(i128::from(b.count) * by));
                        if *desc { ord.reverse() } else { ord }
                    }
                };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
            a.first_id.as_bytes().cmp(b.first_id.as_bytes())
        });
        if g.tail.count.is_some() {
            let n = i64::try_from(groups.len()).unwrap_or(i64::MAX);
            return vec![vec![Cell::Int(0), Cell::Int(n)]];
        }
        let skip = usize::try_from(g.tail.skip).unwrap_or(usize::MAX);
        let limit = g
            .tail
            .limit
            .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
        groups
            .into_iter()
            .skip(skip)
            .take(limit)
            .map(|group| {
                let mut row = vec![Cell::Int(0)];
                for (t, v) in group.key {
                    row.push(t);
                    row.push(v);
                }
                for acc in &group.accs {
                    acc.cells(group.count, &mut row);
                }
                row
            })
            .collect()
    }
}

/// The statement's data check on one field: its JSON type is not one of its declared kind,
/// or it is a whole float (which memory would group, sum and compare as its integer).
fn is_bad(kind: FieldKind, t: Option<&str>, v: CellRef<'_>) -> bool {
    let Some(t) = t else {
        return false;
    };
    match kind {
        FieldKind::Text => !matches!(t, "text" | "null"),
        FieldKind::Bool => !matches!(t, "true" | "false" | "null"),
        FieldKind::Number => match t {
            "integer" | "null" => false,
            "real" => match v {
                CellRef::Real(f) => f == f.round() && f.abs() < 9.3e18,
                _ => true,
            },
            _ => true,
        },
    }
}

/// A key field's type and value cells: a lone key's missing value groups with null, as the
/// statement's `COALESCE` does; in an object key a missing field stays apart.
fn key_cell<'a>(
    lone: bool,
    cell: Option<(Option<&'a str>, CellRef<'a>)>,
) -> (Option<&'a str>, CellRef<'a>) {
    let (t, v) = cell.unwrap_or((None, CellRef::Null));
    match t {
        None if lone => (Some("null"), v),
        t => (t, v),
    }
}

/// Appends a key field's type and value to the table's key bytes, each told apart by a tag.
fn encode(buf: &mut Vec<u8>, t: Option<&str>, v: CellRef<'_>) {
    match t {
        None => buf.push(0),
        Some(t) => {
            buf.push(1);
            buf.extend_from_slice(&(t.len() as u32).to_le_bytes());
            buf.extend_from_slice(t.as_bytes());
        }
    }
    match v {
        CellRef::Null => buf.push(0),
        CellRef::Int(i) => {
            buf.push(1);
            buf.extend_from_slice(&i.to_le_bytes());
        }
        CellRef::Real(f) => {
            buf.push(2);
            buf.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        CellRef::Text(s) => {
            buf.push(3);
            buf.extend_from_slice(&(s.len() as u64).to_le_bytes());
            buf.extend_from_slice(s.as_bytes());
        }
    }
}

/// Two key values as the statement's `ORDER BY` compares them: null first when ascending
/// and last when descending, numbers as numbers, before text, text byte by byte.
fn cmp_key(a: Option<&Cell>, b: Option<&Cell>, desc: bool) -> Ordering {
    let rank = |c: Option<&Cell>| match c {
        None | Some(Cell::Null) => 0,
        Some(Cell::Int(_) | Cell::Real(_)) => 1,
        Some(Cell::Text(_)) => 2,
    };
    // Null is the least value, so NULLS FIRST ascending and NULLS LAST descending.
    let (ra, rb) = (rank(a), rank(b));
    let ord = match (a, b) {
        (Some(Cell::Int(x)), Some(Cell::Int(y))) => x.cmp(y),
        (Some(Cell::Text(x)), Some(Cell::Text(y))) => x.as_bytes().cmp(y.as_bytes()),
        (Some(x @ (Cell::Int(_) | Cell::Real(_))), Some(y @ (Cell::Int(_) | Cell::Real(_)))) => {
            num(x).partial_cmp(&num(y)).unwrap_or(Ordering::Equal)
        }
        _ => ra.cmp(&rb),
    };
    if desc { ord.reverse() } else { ord }
}

fn num(c: &Cell) -> f64 {
    match c {
        Cell::Int(i) => *i as f64,
        Cell::Real(f) => *f,
        _ => 0.0,
    }
}

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::pushed::{GroupField, GroupTail};
    use crate::ast::{Filter, Path};

    fn grouping() -> Grouping {
        let f = |p: &str, kind| GroupField {
            path: Path::plain(p),
            kind,
        };
        Grouping {
            filter: Filter::All,
            key: PlainKey::Field(f("k", FieldKind::Text)),
            accs: vec![("s".into(), PlainAcc::Sum(f("n", FieldKind::Number)))],
            tail: GroupTail::default(),
        }
    }

    fn row<'a>(k: &'a str, n: i64) -> Vec<(Option<&'a str>, CellRef<'a>)> {
        vec![
            (Some("text"), CellRef::Text(k)),
            (Some("integer"), CellRef::Int(n)),
        ]
    }

    #[test]
    fn groups_in_order_of_their_first_id_with_exact_totals() {
        let mut t = HashGroups::new(grouping(), usize::MAX);
        t.push("c", &row("b", i64::MAX)).unwrap();
        t.push("a", &row("a", 1)).unwrap();
        t.push("b", &row("b", i64::MAX)).unwrap();
        let rows = t.finish();
        let docs = grouping().decode(&rows).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0]["_id"], "a");
        assert_eq!(docs[1]["_id"], "b");
        // Past the integers' range the total is a float, as in memory.
        assert_eq!(docs[1]["s"], serde_json::json!(2.0 * i64::MAX as f64));
    }

    #[test]
    fn scanned_texts_are_unescaped_only_where_they_hold_escapes() {
        let mut t = HashGroups::new(grouping(), usize::MAX);
        t.push_texts("a", &[Some(r#""x\"y""#), Some("1")]).unwrap();
        t.push_texts("b", &[Some(r#""plain""#), Some("2")]).unwrap();
        t.push_texts("c", &[Some(r#""x\u0022y""#), Some("3")])
            .unwrap();
        let docs = grouping().decode(&t.finish()).unwrap();
        let keys: Vec<&serde_json::Value> = docs.iter().map(|d| &d["_id"]).collect();
        // The two spellings of `x"y` are one group.
        assert_eq!(keys, ["x\"y", "plain"]);
        assert_eq!(docs[0]["s"], 4);
        assert_eq!(docs[1]["s"], 2);
    }

    #[test]
    fn a_value_not_of_its_kind_is_refused() {
        let mut t = HashGroups::new(grouping(), usize::MAX);
        t.push("a", &row("a", 1)).unwrap();
        t.push(
            "b",
            &[(Some("real"), CellRef::Real(2.0)), (None, CellRef::Null)],
        )
        .unwrap();
        assert!(t.is_bad());
        assert_eq!(grouping().decode(&t.finish()), None);
    }

    #[test]
    fn the_byte_limit_stops_a_growing_table() {
        let mut t = HashGroups::new(grouping(), 10 * GROUP_OVERHEAD);
        let keys: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
        let stopped = keys
            .iter()
            .position(|k| t.push("id", &row(k, 1)).is_err())
            .unwrap();
        assert!(stopped < 10, "{stopped}");
        // Rows of groups it already holds still count.
        let mut t = HashGroups::new(grouping(), 10 * GROUP_OVERHEAD);
        for _ in 0..1000 {
            t.push("id", &row("same", 1)).unwrap();
        }
    }

    #[test]
    fn json_text_reads_as_sqlites_type_and_value() {
        let cell = |json: Option<&str>| {
            let owned = json.and_then(unescaped);
            let (t, v) = scanned_cell(json, owned.as_deref());
            (t, v.owned())
        };
        assert_eq!(cell(None), (None, Cell::Null));
        assert_eq!(cell(Some("null")), (Some("null"), Cell::Null));
        assert_eq!(cell(Some("true")), (Some("true"), Cell::Int(1)));
        assert_eq!(cell(Some("false")), (Some("false"), Cell::Int(0)));
        assert_eq!(cell(Some("-12")), (Some("integer"), Cell::Int(-12)));
        assert_eq!(cell(Some("2.5")), (Some("real"), Cell::Real(2.5)));
        assert_eq!(cell(Some("1e3")), (Some("real"), Cell::Real(1000.0)));
        assert_eq!(
            cell(Some(r#""Ä b""#)),
            (Some("text"), Cell::Text("Ä b".into()))
        );
        assert_eq!(
            cell(Some(r#""a\"b\u00e4""#)),
            (Some("text"), Cell::Text("a\"bä".into()))
        );
        assert_eq!(cell(Some("[1]")), (Some("array"), Cell::Text("[1]".into())));
        // Past SQLite's integers, or not a string that decodes: refused, not misread.
        assert_eq!(cell(Some("99999999999999999999")).0, Some("odd"));
        assert_eq!(cell(Some(r#""\ud800""#)).0, Some("odd"));
        for kind in [FieldKind::Text, FieldKind::Number, FieldKind::Bool] {
            assert!(is_bad(kind, Some("odd"), CellRef::Null));
        }
    }

    #[test]
    fn float_totals_are_compensated_as_sqlite_adds_them() {
        let mut s = FloatSum::default();
        for r in [1e16, 1.0, -1e16, 0.5] {
            s.add(r);
        }
        assert_eq!(s.total(), 1.5);
    }
}
