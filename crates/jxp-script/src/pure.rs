//! Whether a `pre_get` is a function of `ctx.user` alone, so that its runtime may answer a
//! user it has already answered with the same answer, without running it again (see
//! `engine::Memo`). Most `pre_get`s are such a function: `{ owner: ctx.user._id }`, or
//! `ctx.user && ctx.user.admin ? null : { archived: false }`.
//!
//! The function's source (as `Function.prototype.toString` gives it) is read as tokens and
//! accepted only when every token has a place in this small grammar:
//!
//! - `function name(p) { … }`, `(p) => …`, `p => …` or `() => …`: one parameter or none, no
//!   `async`, no generator, no default value, no pattern;
//! - statements: `return` (with or without a value), `if (…) … else …`, blocks, `;`;
//! - expressions: `null`, `true`, `false`, a string, a number (`-` before it allowed), an
//!   object literal with plain keys (no computed key, shorthand, spread, method, accessor
//!   or `__proto__`), an array literal without holes, parentheses, `!`, `&&`, `||`, `??`,
//!   `? :`, `===`, `!==`, reads of `p.user` or one of its own fields (`_id`, `id`,
//!   `name`, `email`, `admin`, `groups`), with `.` or `?.`, and `p.user.groups.includes(x)`
//!   with one argument.
//!
//! Nothing in it can run code other than its own: no call, no `new`, no assignment, no
//! name but the parameter (a name of the module or a global could change between calls), no
//! operator that converts an object (`==`, `+`, `<` ask its `valueOf`), no property that an
//! object only inherits (a script may put a getter on `Object.prototype`), but
//! `Array.prototype.includes`, which the runtime checks is still the genuine one before it
//! trusts the judgement, and which compares without converting. `ctx.user` and
//! its groups are frozen by the runtime and hold only data, so what such a function answers
//! depends on who the user is and nothing else. A function outside the grammar is not
//! judged impure, only not known to be pure: it runs at every call, as any other.

/// The fields of `ctx.user` that every user's object holds as its own data properties.
const USER_FIELDS: [&str; 6] = ["_id", "id", "name", "email", "admin", "groups"];

/// Whether `source`, a function's text, is a function of `ctx.user` alone (see the module).
pub(crate) fn of_user_alone(source: &str) -> bool {
    let Some(tokens) = tokens(source) else {
        return false;
    };
    let mut p = Parser {
        tokens: &tokens,
        at: 0,
        param: None,
    };
    p.function().is_some() && p.at == tokens.len()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok<'a> {
    Name(&'a str),
    Str(&'a str),
    Num,
    Punct(&'static str),
}

/// The punctuators the grammar has, longest first where one begins another. Any other
/// character outside a string, a name, a number or a comment rejects the source.
const PUNCTS: [&str; 19] = [
    "===", "!==", "=>", "&&", "||", "??", "?.", "{", "}", "(", ")", "[", "]", ",", ":", ";", "?",
    ".", "!",
];

fn tokens(source: &str) -> Option<Vec<Tok<'_>>> {
    let bytes = source.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    // Every step moves `i` past ASCII (or to a quote, a newline or a comment's end), so it
    // stays on a character's boundary; `get` refuses the source if it did not.
    while let Some(&c) = bytes.get(i) {
        let rest = source.get(i..)?;
        if c.is_ascii_whitespace() {
            i += 1;
        } else if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            i += 2 + rest.get(2..)?.find("*/")? + 2;
        } else if c == b'"' || c == b'\'' {
            let mut j = i + 1;
            loop {
                match *bytes.get(j)? {
                    b'\\' => j += 2,
                    b'\n' | b'\r' => return None,
                    q if q == c => break,
                    _ => j += 1,
                }
            }
            out.push(Tok::Str(source.get(i + 1..j)?));
            i = j + 1;
        } else if c.is_ascii_digit() {
            i = number(bytes, i)?;
            out.push(Tok::Num);
        } else if c.is_ascii_alphabetic() || c == b'_' || c == b'$' {
            let end = rest
                .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_' || ch == '$'))
                .map_or(bytes.len(), |n| i + n);
            // A name written with an escape (`\u0061`) or in other letters is not read.
            if matches!(bytes.get(end), Some(b'\\') | Some(128..)) {
                return None;
            }
            out.push(Tok::Name(source.get(i..end)?));
            i = end;
        } else if c == b'-' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
            // A negative number: `-` converts nothing else.
            i = number(bytes, i + 1)?;
            out.push(Tok::Num);
        } else {
            let punct = PUNCTS.iter().find(|p| rest.starts_with(**p))?;
            // `a ?.5 : b` is a condition, not an optional read.
            if *punct == "?." && bytes.get(i + 2).is_some_and(u8::is_ascii_digit) {
                out.push(Tok::Punct("?"));
                i += 1;
                continue;
            }
            out.push(Tok::Punct(punct));
            i += punct.len();
        }
    }
    Some(out)
}

/// The end of the decimal or hexadecimal number at `i`; none where a name, a dot or a
/// suffix follows it (`1n`, `1_000`, `1..toString`: a read of a number's property).
fn number(bytes: &[u8], mut i: usize) -> Option<usize> {
    let digits = |i: &mut usize, hex: bool| {
        while bytes
            .get(*i)
            .is_some_and(|b| b.is_ascii_digit() || (hex && b.is_ascii_hexdigit()))
        {
            *i += 1;
        }
    };
    if bytes.get(i) == Some(&b'0') && matches!(bytes.get(i + 1), Some(b'x' | b'X')) {
        i += 2;
        digits(&mut i, true);
    } else {
        digits(&mut i, false);
        if bytes.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i, false);
        }
        if matches!(bytes.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(bytes.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            digits(&mut i, false);
        }
    }
    let next = bytes.get(i).copied().unwrap_or(b' ');
    (!(next.is_ascii_alphanumeric() || matches!(next, b'_' | b'$' | b'.' | b'\\') || next >= 128))
        .then_some(i)
}

struct Parser<'t, 'a> {
    tokens: &'t [Tok<'a>],
    at: usize,
    param: Option<&'a str>,
}

/// The names the grammar gives a meaning; none of them is read as the parameter.
const WORDS: [&str; 7] = ["function", "return", "if", "else", "null", "true", "false"];

impl<'a> Parser<'_, 'a> {
    fn peek(&self) -> Option<Tok<'a>> {
        self.tokens.get(self.at).copied()
    }

    fn eat(&mut self, punct: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Punct(p)) if p == punct) {
            self.at += 1;
            return true;
        }
        false
    }

    fn need(&mut self, punct: &str) -> Option<()> {
        self.eat(punct).then_some(())
    }

    fn word(&mut self, word: &str) -> bool {
        if self.peek() == Some(Tok::Name(word)) {
            self.at += 1;
            return true;
        }
        false
    }

    /// A name that is not one of the grammar's words.
    fn name(&mut self) -> Option<&'a str> {
        match self.peek() {
            Some(Tok::Name(n)) if !WORDS.contains(&n) => {
                self.at += 1;
                Some(n)
            }
            _ => None,
        }
    }

    fn function(&mut self) -> Option<()> {
        if self.word("function") {
            // The function's own name, if any: not readable in the body, which reads only
            // the parameter.
            if matches!(self.peek(), Some(Tok::Name(_))) {
                self.name()?;
            }
            self.params()?;
            return self.block();
        }
        if matches!(self.peek(), Some(Tok::Punct("("))) {
            self.params()?;
        } else {
            self.param = Some(self.name()?);
        }
        self.need("=>")?;
        if matches!(self.peek(), Some(Tok::Punct("{"))) {
            self.block()
        } else {
            self.expr()
        }
    }

    /// `()` or `(p)`.
    fn params(&mut self) -> Option<()> {
        self.need("(")?;
        if !self.eat(")") {
            self.param = Some(self.name()?);
            self.need(")")?;
        }
        Some(())
    }

    fn block(&mut self) -> Option<()> {
        self.need("{")?;
        while !self.eat("}") {
            self.statement()?;
        }
        Some(())
    }

    fn statement(&mut self) -> Option<()> {
        match self.peek()? {
            Tok::Punct(";") => {
                self.at += 1;
                Some(())
            }
            Tok::Punct("{") => self.block(),
            Tok::Name("return") => {
                self.at += 1;
                if !matches!(self.peek(), Some(Tok::Punct(";" | "}")) | None) {
                    self.expr()?;
                }
                self.eat(";");
                Some(())
            }
            Tok::Name("if") => {
                self.at += 1;
                self.need("(")?;
                self.expr()?;
                self.need(")")?;
                self.statement()?;
                if self.word("else") {
                    self.statement()?;
                }
                Some(())
            }
            _ => None,
        }
    }

    /// An expression: operands joined by the operators that convert nothing. Their
    /// precedence does not matter here, only that nothing else is in it.
    fn expr(&mut self) -> Option<()> {
        self.operand()?;
        loop {
            match self.peek() {
                Some(Tok::Punct("===" | "!==" | "&&" | "||" | "??")) => {
                    self.at += 1;
                    self.operand()?;
                }
                Some(Tok::Punct("?")) => {
                    self.at += 1;
                    self.expr()?;
                    self.need(":")?;
                    self.expr()?;
                }
                _ => return Some(()),
            }
        }
    }

    fn operand(&mut self) -> Option<()> {
        match self.peek()? {
            Tok::Punct("!") => {
                self.at += 1;
                self.operand()
            }
            Tok::Num | Tok::Str(_) | Tok::Name("null" | "true" | "false") => {
                self.at += 1;
                Some(())
            }
            Tok::Punct("(") => {
                self.at += 1;
                self.expr()?;
                self.need(")")
            }
            Tok::Punct("{") => self.object(),
            Tok::Punct("[") => self.array(),
            Tok::Name(_) => self.path(),
            _ => None,
        }
    }

    /// `p.user` or `p.user.<field>`, each step `.` or `?.`.
    fn path(&mut self) -> Option<()> {
        let param = self.param?;
        (self.name()? == param).then_some(())?;
        let mut steps = Vec::with_capacity(2);
        while matches!(self.peek(), Some(Tok::Punct("." | "?."))) {
            self.at += 1;
            match self.peek()? {
                Tok::Name(n) => steps.push(n),
                _ => return None,
            }
            self.at += 1;
        }
        match steps.as_slice() {
            ["user"] => Some(()),
            ["user", field] if USER_FIELDS.contains(field) => Some(()),
            // The genuine `Array.prototype.includes` (the runtime checks), on the frozen
            // array of groups, with one argument, which it compares without converting.
            ["user", "groups", "includes"] => {
                self.need("(")?;
                self.expr()?;
                self.need(")")
            }
            _ => None,
        }
    }

    fn object(&mut self) -> Option<()> {
        self.need("{")?;
        while !self.eat("}") {
            let key = match self.peek()? {
                Tok::Name(n) | Tok::Str(n) => n,
                Tok::Num => "",
                _ => return None,
            };
            // `__proto__: x` sets the prototype (and its escaped spellings are strings
            // this does not decode).
            if key.contains("__proto__") || key.contains('\\') {
                return None;
            }
            self.at += 1;
            self.need(":")?;
            self.expr()?;
            if !self.eat(",") {
                self.need("}")?;
                break;
            }
        }
        Some(())
    }

    fn array(&mut self) -> Option<()> {
        self.need("[")?;
        while !self.eat("]") {
            self.expr()?;
            if !self.eat(",") {
                self.need("]")?;
                break;
            }
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::of_user_alone;

    #[test]
    fn functions_of_the_user_alone_are_known() {
        for source in [
            "function pre_get(ctx) { return null; }",
            "function pre_get(ctx) { return ctx.user && ctx.user.admin ? null : { bar: { $ne: \"hidden\" } }; }",
            "function (ctx) { return { owner: ctx.user._id } }",
            "(ctx) => ({ owner: ctx.user?._id })",
            "ctx => ctx.user === null ? { public: true } : null",
            "() => ({ archived: false })",
            "function pre_get(c) {\n  // admins see all\n  if (c.user && c.user.admin) return null;\n  /* the rest */\n  return { $or: [{ owner: c.user._id }, { shared: true }], n: -1.5e3, h: 0x1F };\n}",
            "function pre_get(ctx) { if (!ctx.user) { return { public: true }; } else return { group: { $in: ctx.user.groups } } }",
            "function pre_get(ctx) { return { 'a b': 'it\\'s', \"c\": ctx.user.email ?? 'none', 1: [] } }",
            "(ctx) => ctx.user.groups.includes('boss') ? null : { team: { $in: ctx.user.groups } }",
            "(ctx) => ctx.user?.groups?.includes(ctx.user.name) ? null : {}",
        ] {
            assert!(of_user_alone(source), "{source}");
        }
    }

    #[test]
    fn anything_else_is_not() {
        for source in [
            // Reads beyond the user's own fields, or other names.
            "function pre_get(ctx) { return { id: ctx.id } }",
            "function pre_get(ctx) { return ctx }",
            "function pre_get(ctx) { return { n: ctx.user.name.length } }",
            "function pre_get(ctx) { return { n: ctx.user.system } }",
            "function pre_get(ctx) { return { n: ctx.user['admin'] } }",
            "function pre_get(ctx) { return { owner: owner } }",
            "function pre_get(ctx) { return { at: Date } }",
            "function pre_get(ctx) { return undefined }",
            "function pre_get(ctx) { return { db: ctx.db } }",
            // Calls, assignments, conversions, other operators.
            "function pre_get(ctx) { return ctx.user.groups.indexOf('a') ? null : {} }",
            "function pre_get(ctx) { return ctx.user.name.includes('a') ? null : {} }",
            "function pre_get(ctx) { return ctx.user.groups.includes('a', 1) ? null : {} }",
            "function pre_get(ctx) { return ctx.user.groups.includes() ? null : {} }",
            "function pre_get(ctx) { return ctx.user.groups.includes ? null : {} }",
            "function pre_get(ctx) { return ctx.user.groups.includes(f()) ? null : {} }",
            "function pre_get(ctx) { return f() }",
            "function pre_get(ctx) { ctx.user = null; return null }",
            "function pre_get(ctx) { return ctx.user.admin == 1 ? null : {} }",
            "function pre_get(ctx) { return { n: 'a' + ctx.user.name } }",
            "function pre_get(ctx) { return { n: -ctx.user.name } }",
            "function pre_get(ctx) { return new Object() }",
            "function pre_get(ctx) { return `${ctx.user.name}` }",
            "function pre_get(ctx) { return /x/ }",
            "function pre_get(ctx) { return typeof ctx.user }",
            "function pre_get(ctx) { return 1..toString }",
            "function pre_get(ctx) { return 10n }",
            "function pre_get(ctx) { return 'a'.length }",
            // Literals that run code or set a prototype.
            "function pre_get(ctx) { return { __proto__: null } }",
            "function pre_get(ctx) { return { '__proto__': null } }",
            "function pre_get(ctx) { return { [ctx.user.name]: 1 } }",
            "function pre_get(ctx) { return { get a() { return 1 } } }",
            "function pre_get(ctx) { return { ...ctx.user } }",
            "function pre_get(ctx) { return { ctx } }",
            "function pre_get(ctx) { return [1,,2] }",
            // Other forms of function.
            "async function pre_get(ctx) { return null }",
            "function* pre_get(ctx) { return null }",
            "function pre_get(ctx, more) { return null }",
            "function pre_get(ctx = {}) { return null }",
            "function pre_get({ user }) { return null }",
            "function pre_get() {\n    [native code]\n}",
            "function pre_get(ctx) { while (true) {} }",
            "function pre_get(ctx) { const a = 1; return a }",
            "function pre_get(ctx) { console.log(ctx.user); return null }",
            "function pre_get(ctx) { throw new JxpError(403, 'no') }",
            "function pre_get(\\u0063tx) { return \\u0063tx.user }",
            "function pre_get(ctx) { return { a: 'unterminated }",
            "function pre_get(ctx) { return null } extra",
            "",
        ] {
            assert!(!of_user_alone(source), "{source}");
        }
    }
}
