//! A call's answer as JSON text. Hooks answer plain data: a filter, the fields to merge, a
//! function's result. QuickJS's `JSON.stringify` costs more than the call itself even for a
//! two-key filter (it wraps the value, lists each object's keys into a new array and looks
//! for `toJSON` up every prototype chain), so such answers are written here, from Rust, as
//! `JSON.stringify` would write them. Whatever is not plain data (a `Date` or another class's
//! instance, a `Proxy`, an object with a `toJSON` function, a `BigInt`, nesting deeper than
//! [`MAX_DEPTH`], more than [`MAX_PARTS`] keys and values, an answer longer than the
//! runtime's memory) goes to `JSON.stringify` whole.
//!
//! The answer is first walked into its [`Part`]s: the keys as QuickJS's own names for them,
//! the strings as the strings QuickJS holds, so that nothing is copied out of the runtime
//! yet. A `pre_get` answers mostly the same few filters, made by the same literal from the
//! same names and strings (a literal's text, a user's id), so its parts are looked up among
//! the answers the runtime has met ([`Known`]) and a known answer's text is used as it is.
//! Only an answer not met before is written out, key by key.
//!
//! Both read each property once with `[[Get]]`, in the same order; only when the walk meets
//! something it hands over after a getter has run does that getter run twice.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock};

use jxp_query::Filter;

use rquickjs::atom::PredefinedAtom;
use rquickjs::object::Property;
use rquickjs::{Atom, Ctx, Object, Value};

use crate::mix::Mix;

/// How deep the walk goes before it hands the answer over (`JSON.stringify` then finds a
/// cycle, or writes a deep value itself).
const MAX_DEPTH: usize = 64;

/// How many parts the walk holds before it hands the answer over: a large answer is written
/// by `JSON.stringify`, within the runtime's memory, rather than walked into the server's.
const MAX_PARTS: usize = 1 << 16;

/// How many answers a runtime keeps (see [`Known`]), and the largest kept, in parts and in
/// bytes of text.
pub(crate) const KNOWN_SLOTS: usize = 256;
const MAX_KNOWN_PARTS: usize = 64;
const MAX_KNOWN_BYTES: usize = 1024;

/// One step of a walked answer. `Ok(Ok(key))`: a member's key. `Ok(Err(token))`: an integer
/// (any `i32`), or one of the marks below. `Err(leaf)`: a string or a non-integral number,
/// the value QuickJS holds. Made of `Result`s because what a runtime keeps (see [`Known`])
/// must be made of `rquickjs`'s and the standard library's types.
///
/// Two walks with equal parts write the same text: a key is QuickJS's name, one per text;
/// a string is the same string, kept alive by the part that holds it, so that its place
/// cannot be taken by another; a number is compared by its bits. Equal texts may still have
/// unequal parts (two strings of the same text); such an answer is written out again.
pub(crate) type Part<'js> = Result<Result<Atom<'js>, i64>, Value<'js>>;

/// The answers a runtime has met: what [`keep`] keeps of each, in the slot its parts' hash
/// picks, in the runtime's user data (what holds QuickJS's values must live there); the
/// text of each, in the same slot of the runtime's [`Texts`]. A slot holds the last answer
/// that hashed to it, so answers that vary with every call hold no more than
/// [`KNOWN_SLOTS`].
pub(crate) type Known<'js> = RefCell<Vec<Vec<Part<'js>>>>;

/// The texts of the answers in [`Known`], slot by slot.
pub(crate) type Texts = Vec<Arc<Said>>;

/// A call's answer as JSON text: written for this call, or the text of an answer the
/// runtime keeps (see [`Known`]), shared with what the server has made of it.
#[derive(Debug, Clone)]
pub(crate) enum Text {
    Written(String),
    Kept(Arc<Said>),
}

impl Text {
    pub fn as_str(&self) -> &str {
        match self {
            Text::Written(text) => text,
            Text::Kept(said) => &said.text,
        }
    }
}

/// The text of an answer a runtime keeps, and the filter it stands for once a `pre_get`'s
/// caller has made it (see `Filters::of`), so that a known answer costs its caller no
/// lookup. `filter`: that of the first model to make it, under that model's number.
#[derive(Debug)]
pub(crate) struct Said {
    pub text: String,
    pub filter: OnceLock<(u64, Arc<Filter>)>,
}

const MARK: i64 = 1 << 40;
const OPEN_OBJECT: i64 = MARK;
const CLOSE_OBJECT: i64 = MARK + 1;
const OPEN_ARRAY: i64 = MARK + 2;
const CLOSE_ARRAY: i64 = MARK + 3;
const NULL: i64 = MARK + 4;
const FALSE: i64 = MARK + 5;
const TRUE: i64 = MARK + 6;
/// Where the parts of a kept answer end (see [`keep`]).
const END: i64 = MARK + 7;

/// `value` as JSON text; `None` where `JSON.stringify` answers `undefined` (a function, a
/// symbol, `undefined`). `limit`: the longest text written before it hands over, so that a
/// huge answer meets the runtime's memory cap rather than the server's. `proto`: the genuine
/// `Object.prototype`, kept before any script ran (an object with another prototype is
/// handed over). `known`: the answers met before, where this answer is looked up and kept
/// (`None`: an answer not worth keeping, such as a function's result).
pub(crate) fn json_text<'js>(
    ctx: &Ctx<'js>,
    proto: &Object<'js>,
    value: Value<'js>,
    limit: usize,
    known: Option<(&Known<'js>, &mut Texts)>,
) -> rquickjs::Result<Option<Text>> {
    let mut walk = Walk {
        proto,
        parts: Vec::with_capacity(16),
    };
    match walk.walk(&value, 0)? {
        Step::Walked => {
            let parts = walk.parts;
            let slot = if known.is_some() { slot_of(&parts) } else { 0 };
            if let Some((known, texts)) = &known
                && known
                    .borrow()
                    .get(slot)
                    .is_some_and(|kept| holds(kept, &parts))
                && let Some(said) = texts.get(slot)
            {
                return Ok(Some(Text::Kept(said.clone())));
            }
            if let Some(text) = write(&parts, limit) {
                if let Some((known, texts)) = known
                    && parts.len() <= MAX_KNOWN_PARTS
                    && text.len() <= MAX_KNOWN_BYTES
                {
                    // Keeping is only worth it: where the runtime's memory cannot hold the
                    // kept objects, the answer is not kept, and not refused.
                    let Ok(kept) = keep(ctx, parts) else {
                        drop(ctx.catch());
                        return Ok(Some(Text::Written(text)));
                    };
                    let said = Arc::new(Said {
                        text,
                        filter: OnceLock::new(),
                    });
                    let mut known = known.borrow_mut();
                    if known.len() < KNOWN_SLOTS {
                        known.resize(KNOWN_SLOTS, Vec::new());
                        let empty = Arc::new(Said {
                            text: String::new(),
                            filter: OnceLock::new(),
                        });
                        texts.resize(KNOWN_SLOTS, empty);
                    }
                    if let (Some(slot), Some(slot_said)) =
                        (known.get_mut(slot), texts.get_mut(slot))
                    {
                        *slot = kept;
                        *slot_said = said.clone();
                    }
                    return Ok(Some(Text::Kept(said)));
                }
                return Ok(Some(Text::Written(text)));
            }
        }
        Step::Skipped => return Ok(None),
        Step::HandOver => {}
    }
    match ctx.json_stringify(value)? {
        Some(text) => Ok(Some(Text::Written(text.to_string()?))),
        None => Ok(None),
    }
}

/// What a slot of [`Known`] keeps of an answer: its parts, the mark [`END`], then for each
/// object in it an object of the same keys. QuickJS shares an object's shape (its prototype
/// and keys, in order) among the live objects that have it and frees it with the last of
/// them; so a hook's literal would make its shapes again at every call. The objects kept
/// here keep them alive (as the prelude's `shapes` do for `ctx`'s), and the next call's
/// literal finds them ready. They are made from the keys the walk read, defined as a
/// literal defines them: no getter or setter a script made runs.
fn keep<'js>(ctx: &Ctx<'js>, mut parts: Vec<Part<'js>>) -> rquickjs::Result<Vec<Part<'js>>> {
    let mut objects: Vec<Object<'js>> = Vec::new();
    // The object each open container makes (none for an array).
    let mut open: Vec<Option<Object<'js>>> = Vec::new();
    let zero = Value::new_int(ctx.clone(), 0);
    for part in &parts {
        match part {
            Ok(Err(OPEN_OBJECT)) => open.push(Some(Object::new(ctx.clone())?)),
            Ok(Err(OPEN_ARRAY)) => open.push(None),
            Ok(Err(CLOSE_OBJECT | CLOSE_ARRAY)) => {
                if let Some(Some(object)) = open.pop() {
                    objects.push(object);
                }
            }
            Ok(Ok(key)) => {
                if let Some(Some(object)) = open.last() {
                    let zero = Property::from(zero.clone());
                    object.prop(key.clone(), zero.writable().enumerable().configurable())?;
                }
            }
            _ => {}
        }
    }
    parts.push(Ok(Err(END)));
    parts.extend(objects.into_iter().map(|o| Err(o.into_value())));
    Ok(parts)
}

/// Whether a slot of [`Known`] keeps the answer of these parts (see [`keep`]). No walked
/// part is an object, so the kept objects after [`END`] are never taken for parts.
fn holds<'js>(kept: &[Part<'js>], parts: &[Part<'js>]) -> bool {
    kept.len() > parts.len()
        && kept.get(parts.len()) == Some(&Ok(Err(END)))
        && kept.get(..parts.len()) == Some(parts)
}

/// The slot of [`Known`] an answer's parts may be kept in, by their cheap hash ([`Mix`]):
/// what is in the slot is checked by comparing the parts.
fn slot_of(parts: &[Part<'_>]) -> usize {
    let mut hash = Mix::default();
    for part in parts {
        match part {
            Ok(Ok(key)) => key.hash(&mut hash),
            Ok(Err(token)) => hash.write_i64(*token),
            Err(leaf) => leaf.hash(&mut hash),
        }
    }
    (hash.finish() % KNOWN_SLOTS as u64) as usize
}

enum Step {
    Walked,
    /// Nothing walked: `undefined`, a function or a symbol (left out of an object, null in
    /// an array).
    Skipped,
    /// Not plain data: `JSON.stringify` writes the whole answer.
    HandOver,
}

struct Walk<'a, 'js> {
    /// The genuine `Object.prototype`, kept before any script ran.
    proto: &'a Object<'js>,
    parts: Vec<Part<'js>>,
}

impl<'js> Walk<'_, 'js> {
    fn walk(&mut self, value: &Value<'js>, depth: usize) -> rquickjs::Result<Step> {
        if self.parts.len() >= MAX_PARTS {
            return Ok(Step::HandOver);
        }
        let token = if value.is_object() {
            if value.is_function() {
                return Ok(Step::Skipped);
            }
            // A proxy's traps decide what it holds: `JSON.stringify` asks them.
            if value.is_proxy() || depth >= MAX_DEPTH {
                return Ok(Step::HandOver);
            }
            return if value.is_array() {
                self.array(value, depth)
            } else {
                self.object(value, depth)
            };
        } else if value.is_string() || value.is_float() {
            self.parts.push(Err(value.clone()));
            return Ok(Step::Walked);
        } else if let Some(n) = value.as_int() {
            i64::from(n)
        } else if let Some(yes) = value.as_bool() {
            if yes { TRUE } else { FALSE }
        } else if value.is_null() {
            NULL
        } else if value.is_undefined() || value.is_symbol() {
            return Ok(Step::Skipped);
        } else {
            // A BigInt, which `JSON.stringify` refuses.
            return Ok(Step::HandOver);
        };
        self.parts.push(Ok(Err(token)));
        Ok(Step::Walked)
    }

    fn array(&mut self, value: &Value<'js>, depth: usize) -> rquickjs::Result<Step> {
        let Some(array) = value.as_array() else {
            return Ok(Step::HandOver);
        };
        if has_to_json(array.as_object())? {
            return Ok(Step::HandOver);
        }
        self.parts.push(Ok(Err(OPEN_ARRAY)));
        for i in 0..array.len() {
            let item: Value = array.get(i)?;
            match self.walk(&item, depth + 1)? {
                Step::Walked => {}
                Step::Skipped => self.parts.push(Ok(Err(NULL))),
                Step::HandOver => return Ok(Step::HandOver),
            }
        }
        self.parts.push(Ok(Err(CLOSE_ARRAY)));
        Ok(Step::Walked)
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
        self.parts.push(Ok(Err(OPEN_OBJECT)));
        for prop in object.props::<Atom, Value>() {
            let (key, item) = prop?;
            self.parts.push(Ok(Ok(key)));
            match self.walk(&item, depth + 1)? {
                Step::Walked => {}
                Step::Skipped => {
                    self.parts.pop();
                }
                Step::HandOver => return Ok(Step::HandOver),
            }
        }
        self.parts.push(Ok(Err(CLOSE_OBJECT)));
        Ok(Step::Walked)
    }
}

/// The text of walked `parts`; `None` where it is left to `JSON.stringify`: a string or a
/// key that is not UTF-8 (a lone surrogate, which `JSON.stringify` escapes), an integral
/// number it writes otherwise (see [`number`]), a text longer than `limit`.
fn write(parts: &[Part<'_>], limit: usize) -> Option<String> {
    let mut out = String::with_capacity(64);
    // How many objects and arrays are open (at most MAX_DEPTH), and for each, whether
    // something is written in it: bit `n` for the `n`th open one.
    let (mut open, mut written) = (0u32, 0u128);
    // Whether the last part was a key, whose value follows its colon.
    let mut keyed = false;
    for part in parts {
        if out.len() > limit {
            return None;
        }
        if matches!(part, Ok(Err(CLOSE_OBJECT | CLOSE_ARRAY))) {
            open = open.saturating_sub(1);
        } else if keyed {
            keyed = false;
        } else if open > 0 {
            let bit = 1u128 << (open - 1);
            if written & bit != 0 {
                out.push(',');
            }
            written |= bit;
        }
        match part {
            Ok(Ok(key)) => {
                string(&mut out, &key.to_string().ok()?);
                out.push(':');
                keyed = true;
            }
            Ok(Err(mark @ (OPEN_OBJECT | OPEN_ARRAY))) => {
                out.push(if *mark == OPEN_OBJECT { '{' } else { '[' });
                open += 1;
                written &= !(1u128 << (open - 1));
            }
            Ok(Err(CLOSE_OBJECT)) => out.push('}'),
            Ok(Err(CLOSE_ARRAY)) => out.push(']'),
            Ok(Err(NULL)) => out.push_str("null"),
            Ok(Err(FALSE)) => out.push_str("false"),
            Ok(Err(TRUE)) => out.push_str("true"),
            Ok(Err(n)) => {
                let _ = write!(out, "{n}");
            }
            Err(leaf) => {
                if let Some(text) = leaf.as_string() {
                    string(&mut out, &text.to_string().ok()?);
                } else if !number(&mut out, leaf.as_float().unwrap_or(f64::NAN)) {
                    return None;
                }
            }
        }
    }
    (out.len() <= limit).then_some(out)
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
