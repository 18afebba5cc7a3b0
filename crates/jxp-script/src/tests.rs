//! One runtime on its own, without an app: the limits, promises and the sandbox.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use crate::engine::{Caps, Engine, Failure, Source, Target, Who, value_of};

fn engine(text: &str, caps: Caps) -> Engine {
    let source = Source {
        key: "m".into(),
        file: PathBuf::from("models/m.js"),
        text: text.into(),
    };
    match Engine::new(&[source], caps) {
        Ok(e) => e,
        Err((_, f)) => panic!("did not load: {}", f.message),
    }
}

fn caps() -> Caps {
    Caps {
        timeout: Duration::from_millis(300),
        memory_bytes: 16 << 20,
    }
}

fn export(name: &str) -> Target {
    Target::Export {
        key: "m".into(),
        name: name.into(),
    }
}

/// A signed-in user who is not an admin.
fn member(id: &str, name: &str, email: &str, groups: &[&str]) -> jxp_core::Identity {
    jxp_core::Identity::user(jxp_core::User {
        id: id.into(),
        name: name.into(),
        email: email.into(),
        admin: false,
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    })
}

#[test]
fn async_exports_are_awaited_and_answer_json() {
    let mut e = engine(
        "export async function pre_post(ctx) { const n = await Promise.resolve(ctx.n); return { twice: n * 2, at: new Date(0) }; }",
        caps(),
    );
    let out = value_of(
        e.call(0, &export("pre_post"), Who::default(), &json!({"n": 21}))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(out, json!({"twice": 42, "at": "1970-01-01T00:00:00.000Z"}));
}

#[test]
fn a_spinning_call_is_interrupted_and_the_runtime_is_not_reused() {
    let mut e = engine("export function pre_get() { for (;;) {} }", caps());
    assert!(matches!(
        e.call(0, &export("pre_get"), Who::default(), &json!({})),
        Err(Failure::TimedOut)
    ));
    assert!(e.spoiled);
}

/// A call found past its time when QuickJS first asks (its thread was not running: the
/// machine was busy) is let finish if it has done almost nothing itself; one that works on is
/// stopped. `call_for` with no time at all stands for a thread that lost its CPU at once.
#[test]
fn a_call_is_stopped_for_its_time_only_once_it_has_worked() {
    let mut e = engine(
        r#"
export function quick() { let s = 0; for (let i = 0; i < 100; i++) s += i; return s; }
export function spin() { for (;;) {} }
"#,
        caps(),
    );
    // About 100 steps a call: QuickJS asks the handler in one call out of a hundred, and
    // ten times over these calls, each time in a call already past its time.
    for _ in 0..1_000 {
        let out = e.call_for(
            0,
            &export("quick"),
            Who::default(),
            &json!({}),
            Duration::ZERO,
        );
        assert_eq!(value_of(out.unwrap()).unwrap(), json!(4950));
        assert!(!e.worked(), "a call of 100 steps is not one that worked");
    }
    assert!(!e.spoiled);
    assert!(matches!(
        e.call_for(
            1,
            &export("spin"),
            Who::default(),
            &json!({}),
            Duration::ZERO
        ),
        Err(Failure::TimedOut)
    ));
    assert!(e.worked());
    assert!(e.spoiled);
}

#[test]
fn a_runtime_cannot_take_more_than_its_memory() {
    let mut e = engine(
        "export function pre_get() { const a = []; for (;;) a.push(new Array(100000).fill(1)); }",
        Caps {
            timeout: Duration::from_secs(10),
            memory_bytes: 8 << 20,
        },
    );
    match e.call(0, &export("pre_get"), Who::default(), &json!({})) {
        Err(Failure::Failed(detail)) => assert!(detail.contains("out of memory"), "{detail}"),
        other => panic!("expected out of memory, got {other:?}"),
    }
}

#[test]
fn jxp_error_carries_its_status_and_other_errors_their_detail() {
    let mut e = engine(
        "export function pre_post() { throw new JxpError(418, 'teapot'); }\nexport function pre_put() { null.x; }",
        caps(),
    );
    match e.call(0, &export("pre_post"), Who::default(), &json!({})) {
        Err(Failure::Refused {
            status, message, ..
        }) => assert_eq!((status, message.as_str()), (418, "teapot")),
        other => panic!("{other:?}"),
    }
    match e.call(1, &export("pre_put"), Who::default(), &json!({})) {
        Err(Failure::Failed(detail)) => assert!(detail.contains("TypeError"), "{detail}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_idle_runtime_is_small() {
    let e = engine("export function pre_get() { return null; }", caps());
    let used = e.memory_used();
    assert!(used < 2 << 20, "an idle runtime holds {used} bytes");
}

#[test]
fn ctx_arrives_as_json_parse_would_make_it() {
    let mut e = engine(
        r#"
Object.defineProperty(Object.prototype, "planted", { set(v) { globalThis.leak = v; }, configurable: true });
Object.defineProperty(Array.prototype, "0", { set(v) { globalThis.leak = v; }, configurable: true });
export function pre_post(ctx) {
  return {
    keys: Object.keys(ctx),
    doc: ctx.doc,
    own_proto: Object.prototype.hasOwnProperty.call(ctx.doc, "__proto__"),
    plain: Object.getPrototypeOf(ctx.doc) === Object.prototype,
    list: Array.isArray(ctx.doc.list) && ctx.doc.list.length,
    leak: globalThis.leak ?? null,
    big: ctx.doc.big === 9007199254740993,
  };
}"#,
        caps(),
    );
    let doc = json!({
        "__proto__": {"admin": true}, "planted": 1, "list": [1, "two", null, {"x": 1.5}],
        "big": 9007199254740993u64, "neg": -3, "t": true,
    });
    let out = value_of(
        e.call(
            0,
            &export("pre_post"),
            Who::default(),
            &json!({"user": null, "doc": doc}),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(out["keys"], json!(["user", "doc", "db", "system"]));
    assert_eq!(out["own_proto"], true);
    assert_eq!(out["plain"], true);
    assert_eq!(out["list"], 4);
    assert_eq!(out["leak"], json!(null), "a setter on a prototype ran");
    assert_eq!(out["big"], true);
    assert_eq!(out["doc"]["list"], json!([1, "two", null, {"x": 1.5}]));
    assert_eq!(out["doc"]["__proto__"], json!({"admin": true}));
    assert_eq!(
        (out["doc"]["neg"].clone(), out["doc"]["t"].clone()),
        (json!(-3), json!(true))
    );
}

#[test]
fn each_slot_keeps_its_own_export_across_calls() {
    let mut e = engine(
        "export function pre_post(ctx) { return { n: ctx.n + 1 }; }\nexport function pre_put(ctx) { return { n: ctx.n * 10 }; }\nexport const functions = { f(ctx) { return ctx.n; } };",
        caps(),
    );
    let function = Target::Function {
        key: "m".into(),
        name: "f".into(),
    };
    for n in 0..3 {
        let a = value_of(
            e.call(0, &export("pre_post"), Who::default(), &json!({"n": n}))
                .unwrap(),
        )
        .unwrap();
        let b = value_of(
            e.call(1, &export("pre_put"), Who::default(), &json!({"n": n}))
                .unwrap(),
        )
        .unwrap();
        let c = value_of(
            e.call(2, &function, Who::default(), &json!({"n": n}))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            (a, b, c),
            (json!({"n": n + 1}), json!({"n": n * 10}), json!(n))
        );
    }
    assert!(
        e.call(0, &export("pre_post"), Who::default(), &json!({"n": 1}))
            .unwrap()
            .is_some()
    );
    match e.call(3, &export("pre_delete"), Who::default(), &json!({})) {
        Err(Failure::Failed(detail)) => assert!(detail.contains("not a function"), "{detail}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn null_and_undefined_answer_nothing() {
    let mut e = engine(
        "export function pre_get(ctx) { return ctx.n ? null : undefined; }",
        caps(),
    );
    assert!(
        e.call(0, &export("pre_get"), Who::default(), &json!({"n": 1}))
            .unwrap()
            .is_none()
    );
    assert!(
        e.call(0, &export("pre_get"), Who::default(), &json!({"n": 0}))
            .unwrap()
            .is_none()
    );
}

fn widget() -> std::sync::Arc<jxp_model::Model> {
    let text = "name = \"Widget\"\n[fields]\nowner = \"String\"\nstatus = \"String\"\n";
    std::sync::Arc::new(
        jxp_model::parse_model_toml("widget", std::path::Path::new("widget.toml"), text).unwrap(),
    )
}

#[test]
fn a_kept_filter_is_only_ever_the_one_its_answer_says() {
    use jxp_query::parse_mongo_filter;

    let filters = crate::filters::Filters::new(widget());
    let model = widget();
    let answers = [
        r#"{"owner":"ann"}"#,
        r#"{"owner":"bob"}"#,
        r#"{"owner":"ann","status":"live"}"#,
    ];
    // Asked in turns, each answer gives its own filter, first parsed and then kept.
    for _ in 0..3 {
        for answer in answers {
            let expected =
                parse_mongo_filter(&model, &serde_json::from_str(answer).unwrap()).unwrap();
            assert_eq!(*filters.get(answer).unwrap(), expected, "{answer}");
        }
    }
    assert_eq!(filters.len(), answers.len());
    // An answer that is not a filter of the model fails every time and is not kept.
    for _ in 0..2 {
        assert!(filters.get(r#"{"nope":1}"#).is_err());
        assert!(filters.get("[1]").is_err());
    }
    assert_eq!(filters.len(), answers.len());
}

#[test]
fn a_known_answer_holds_its_filter_for_the_model_that_made_it() {
    use crate::answer::Text;
    use jxp_query::parse_mongo_filter;

    let mut e = engine(
        r#"export function pre_get(ctx) { return ctx.n ? { owner: "ann" } : { status: "live" }; }"#,
        caps(),
    );
    let mut answer = |n: u8| {
        e.call(0, &export("pre_get"), Who::default(), &json!({ "n": n }))
            .unwrap()
    };
    let (first, again, other) = (answer(1), answer(1), answer(0));
    let (Some(Text::Kept(first)), Some(Text::Kept(again))) = (first, again) else {
        panic!("a pre_get's answer is kept");
    };
    assert!(std::sync::Arc::ptr_eq(&first, &again), "met again, found");
    let model = widget();
    let ann = parse_mongo_filter(&model, &json!({"owner": "ann"})).unwrap();
    let live = parse_mongo_filter(&model, &json!({"status": "live"})).unwrap();
    let (widgets, others) = (
        crate::filters::Filters::new(widget()),
        crate::filters::Filters::new(widget()),
    );
    let made = widgets.of(Some(Text::Kept(first.clone()))).unwrap();
    assert_eq!(*made, ann);
    // The same model finds it on the answer; another model makes its own.
    let found = widgets.of(Some(Text::Kept(again))).unwrap();
    assert!(std::sync::Arc::ptr_eq(&made, &found));
    let theirs = others.of(Some(Text::Kept(first))).unwrap();
    assert_eq!(*theirs, ann);
    assert!(!std::sync::Arc::ptr_eq(&made, &theirs));
    assert_eq!(*widgets.of(other).unwrap(), live);
    assert_eq!(*widgets.of(None).unwrap(), jxp_query::Filter::All);
}

#[test]
fn the_kept_filters_are_bounded() {
    let filters = crate::filters::Filters::new(widget());
    for n in 0..3000 {
        filters.get(&format!(r#"{{"owner":"u{n}"}}"#)).unwrap();
        assert!(filters.len() <= 1024);
    }
    let long = format!(r#"{{"owner":"{}"}}"#, "x".repeat(5000));
    let before = filters.len();
    filters.get(&long).unwrap();
    assert_eq!(filters.len(), before, "a long answer is not kept");
}

#[test]
fn ctx_user_is_made_from_the_identity() {
    use jxp_core::Identity;

    let mut e = engine(
        "export function pre_get(ctx) { return { keys: Object.keys(ctx), user: ctx.user, id: ctx.id }; }",
        caps(),
    );
    let una = member("u1", "Una", "una@example.com", &["editors", "staff"]);
    let call = |e: &mut Engine, user: Option<&Identity>| {
        let who = Who {
            user,
            id: Some(Some("d1")),
        };
        value_of(e.call(0, &export("pre_get"), who, &json!({})).unwrap()).unwrap()
    };
    assert_eq!(
        call(&mut e, Some(&una)),
        json!({
            "keys": ["user", "id", "db", "system"],
            "user": {"_id": "u1", "id": "u1", "name": "Una", "email": "una@example.com",
                     "admin": false, "groups": ["editors", "staff"]},
            "id": "d1",
        })
    );
    assert_eq!(
        call(&mut e, Some(&Identity::system()))["user"],
        json!({"system": true, "admin": true})
    );
    assert_eq!(
        call(&mut e, Some(&Identity::anonymous()))["user"],
        json!(null)
    );
    assert_eq!(call(&mut e, None)["keys"], json!(["id", "db", "system"]));
    // An id that is none is null; one among the fields comes in their order, after `user`.
    let with = |e: &mut Engine, who: Who<'_>, fields| {
        value_of(e.call(0, &export("pre_get"), who, &fields).unwrap()).unwrap()
    };
    let null_id = Who {
        user: None,
        id: Some(None),
    };
    assert_eq!(
        with(&mut e, null_id, json!({})),
        json!({"keys": ["id", "db", "system"], "id": null})
    );
    let anyone = Who {
        user: Some(&una),
        id: None,
    };
    assert_eq!(
        with(&mut e, anyone, json!({"doc": {"a": 1}, "id": "d2"}))["keys"],
        json!(["user", "doc", "id", "db", "system"])
    );
}

#[test]
fn ctx_user_is_frozen_and_one_object_per_user_until_it_changes() {
    use jxp_core::Identity;

    let mut e = engine(
        r#"
        let last = null;
        export function pre_get(ctx) {
          let threw = false;
          try { ctx.user.name = "changed"; } catch (e) { threw = e instanceof TypeError; }
          let pushed = false;
          try { ctx.user.groups.push("x"); pushed = true; } catch (_) {}
          const same = last === ctx.user;
          last = ctx.user;
          return {
            name: ctx.user.name, groups: ctx.user.groups, same, threw, pushed,
            frozen: Object.isFrozen(ctx.user) && Object.isFrozen(ctx.user.groups),
          };
        }"#,
        caps(),
    );
    let user = |id: &str, name: &str| member(id, name, &format!("{id}@example.com"), &["staff"]);
    let call = |e: &mut Engine, who: &Identity| {
        let who = Who {
            user: Some(who),
            id: None,
        };
        value_of(e.call(0, &export("pre_get"), who, &json!({})).unwrap()).unwrap()
    };
    let una = user("u1", "Una");
    let first = call(&mut e, &una);
    assert_eq!(
        first,
        json!({"name": "Una", "groups": ["staff"], "same": false, "threw": true,
               "pushed": false, "frozen": true})
    );
    // The same user again: the same object, unchanged by the first call's attempts.
    let again = call(&mut e, &una);
    assert_eq!(again["same"], json!(true));
    assert_eq!(again["name"], json!("Una"));
    // Renamed (or given other groups or rights): a new object with what is true now.
    let renamed = call(&mut e, &user("u1", "Una Two"));
    assert_eq!(renamed["same"], json!(false));
    assert_eq!(renamed["name"], json!("Una Two"));
    // More users than a runtime keeps: each call still sees its own user.
    for n in 0..200 {
        let who = user(&format!("u{n}"), &format!("User {n}"));
        assert_eq!(call(&mut e, &who)["name"], json!(format!("User {n}")));
    }
    assert_eq!(call(&mut e, &una)["name"], json!("Una"));
    assert_eq!(call(&mut e, &una)["same"], json!(true));
}

/// What the prelude does at each call does not go through what a script can replace: a
/// module that swaps `Object.freeze`, `Object.keys` or an array's iteration still gets its
/// export called and a frozen `ctx.user`.
#[test]
fn a_script_that_replaces_builtins_does_not_change_its_calls() {
    let mut e = engine(
        r#"
        Object.freeze = (o) => o;
        Object.keys = () => [];
        Object.defineProperty = () => { throw new Error("replaced"); };
        Array.prototype[Symbol.iterator] = function* () {};
        export function pre_get(ctx) {
          return { frozen: Object.isFrozen(ctx.user) && Object.isFrozen(ctx.user.groups) };
        }"#,
        caps(),
    );
    let una = member("u1", "Una", "una@example.com", &["staff"]);
    let who = Who {
        user: Some(&una),
        id: None,
    };
    for slot in [0, 300] {
        let out = e.call(slot, &export("pre_get"), who, &json!({})).unwrap();
        assert_eq!(
            value_of(out).unwrap(),
            json!({"frozen": true}),
            "slot {slot}"
        );
    }
}

#[test]
fn answers_are_the_json_that_json_stringify_writes() {
    // Each case is answered twice: as the value itself (written by the runtime's side, or
    // handed to JSON.stringify where it is not plain data), and as the text JSON.stringify
    // makes of it in the script. Both must parse to the same value.
    let mut e = engine(
        r#"
        class Point { constructor() { this.x = 1; this.y = 2; } }
        const bare = Object.create(null); bare.b = 2; bare.a = 1;
        const deep = []; let at = deep; for (let i = 0; i < 80; i++) { const next = []; at.push(next); at = next; }
        const cases = [
          null, true, false, 0, -0, 7, -7, 0.5, 1e21, 2 ** 53, -(2 ** 63), 2 ** 63, 2 ** 64, 1e300,
          NaN, Infinity, -Infinity, "", "plain", 'quote " back \\ nl \n tab \t ctl \u0001 é 😀',
          [], [1, "a", null, undefined, () => 1, Symbol("s"), [2, [3]]],
          {}, { b: 1, a: 2, 10: "ten", 2: "two", nested: { $ne: "hidden", list: [{ k: 1 }] } },
          { skip: undefined, fn() {}, [Symbol("k")]: 1, keep: 1 },
          { get lazy() { return "got"; } },
          new Date(0), { at: new Date(86400000) }, { toJSON() { return { made: "by toJSON" }; } },
          new Point(), bare, new Map([[1, 2]]), [new Number(3), new String("s"), new Boolean(false)],
          new Proxy({ a: 1 }, {}), deep, new Error("e"), Object.assign([1, 2], { extra: 3 }),
        ];
        export function pre_get(ctx) { return cases[ctx.i]; }
        export function pre_post(ctx) { return { text: JSON.stringify(cases[ctx.i]) ?? null, count: cases.length }; }
        "#,
        caps(),
    );
    let as_text = |e: &mut Engine, i: usize| {
        let out = value_of(
            e.call(1, &export("pre_post"), Who::default(), &json!({"i": i}))
                .unwrap(),
        )
        .unwrap();
        let text = out["text"].as_str().map(str::to_owned);
        (text, out["count"].as_u64().unwrap() as usize)
    };
    let (_, count) = as_text(&mut e, 0);
    assert!(count > 30);
    for i in 0..count {
        let answer = e
            .call(0, &export("pre_get"), Who::default(), &json!({"i": i}))
            .unwrap();
        let (text, _) = as_text(&mut e, i);
        // No answer (`undefined`, null) reads as null, as JSON.stringify's `undefined` does.
        let expected = text.as_deref().map_or(serde_json::Value::Null, |t| {
            serde_json::from_str::<serde_json::Value>(t).unwrap()
        });
        let got = value_of(answer.clone()).unwrap();
        assert_eq!(got, expected, "case {i}: {answer:?} against {text:?}");
    }
    // Key order is JSON.stringify's: integer keys first, ascending, then in creation order.
    let ordered = e
        .call(0, &export("pre_get"), Who::default(), &json!({"i": 23}))
        .unwrap()
        .unwrap();
    assert!(
        ordered
            .as_str()
            .starts_with(r#"{"2":"two","10":"ten","b":1,"a":2,"#),
        "{ordered:?}"
    );
}

#[test]
fn a_known_answer_is_written_again_when_anything_in_it_changes() {
    // A `pre_get`'s answers are kept by their keys and the strings QuickJS holds (see
    // `answer`). Each case answers in turn, several times over: every answer must be the
    // text of what was answered this time, not of an answer met before.
    let mut e = engine(
        r#"
        let n = 0, s = "a";
        const same = { owner: "ann" };
        const changed = { owner: "ann" };
        const lazy = { get at() { return n; } };
        const grows = { a: 1 };
        const literal = "hidden";
        // Keeping an answer's shapes runs no setter a script made.
        let set = 0;
        Object.defineProperty(Object.prototype, "watched", { set(v) { set++; } });
        const cases = [
          () => ({ status: { $ne: "hidden" } }),
          () => ({ status: { $ne: literal } }),
          () => ({ status: { $ne: "hidden" + (n % 2 ? "" : "!") } }),
          () => same,
          () => { changed.owner = n % 2 ? "ann" : "bob"; return changed; },
          () => lazy,
          () => { if (n % 2) grows.b = 2; else delete grows.b; return grows; },
          () => { s = n % 2 ? "a" : s + "b"; return { owner: s }; },
          () => ({ n }),
          () => ({ n: n + 0.5 }),
          () => [n % 2 ? 1 : undefined, "x"],
          () => ({ list: [{ a: n % 2 }, { b: n % 3 }] }),
          () => ({ big: "x".repeat(2000 + (n % 2)) }),
          () => ({ watched: { set } }),
        ];
        export function pre_get(ctx) { n++; return cases[ctx.i](); }
        export function pre_post(ctx) { return { count: cases.length }; }
        "#,
        caps(),
    );
    let count = value_of(
        e.call(1, &export("pre_post"), Who::default(), &json!({}))
            .unwrap(),
    )
    .unwrap()["count"]
        .as_u64()
        .unwrap() as usize;
    // What each case answers at each turn, from the turn's `n` (each call adds one).
    let big = |n: u64| "x".repeat(2000 + (n % 2) as usize);
    let mut n = 0u64;
    for _ in 0..4 {
        for i in 0..count {
            n += 1;
            let expected = match i {
                0 | 1 => json!({"status": {"$ne": "hidden"}}),
                2 => json!({"status": {"$ne": if n % 2 == 1 { "hidden" } else { "hidden!" }}}),
                3 => json!({"owner": "ann"}),
                4 => json!({"owner": if n % 2 == 1 { "ann" } else { "bob" }}),
                5 => json!({"at": n}),
                6 if n % 2 == 1 => json!({"a": 1, "b": 2}),
                6 => json!({"a": 1}),
                7 => serde_json::Value::Null,
                8 => json!({"n": n}),
                9 => json!({"n": n as f64 + 0.5}),
                10 => json!([if n % 2 == 1 { json!(1) } else { json!(null) }, "x"]),
                11 => json!({"list": [{"a": n % 2}, {"b": n % 3}]}),
                12 => json!({"big": big(n)}),
                13 => json!({"watched": {"set": 0}}),
                _ => unreachable!(),
            };
            let answer = e
                .call(0, &export("pre_get"), Who::default(), &json!({"i": i}))
                .unwrap();
            let got = value_of(answer).unwrap();
            if i == 7 {
                // The string only grows or goes back to "a": checked by its shape.
                let owner = got["owner"].as_str().unwrap();
                assert!(owner.starts_with('a') && owner[1..].bytes().all(|b| b == b'b'));
                assert_eq!(owner == "a", n % 2 == 1, "turn {n}: {got}");
                continue;
            }
            assert_eq!(got, expected, "case {i} at turn {n}");
        }
    }
}

/// What the `pre_get` at slot 0 answers `who` (reading document `id`).
fn pre_get_as(e: &mut Engine, who: &jxp_core::Identity, id: Option<&str>) -> serde_json::Value {
    let who = Who {
        user: Some(who),
        id: Some(id),
    };
    value_of(e.call(0, &export("pre_get"), who, &json!({})).unwrap()).unwrap()
}

/// Runs the `pre_post` at slot 1 with `ctx`: other code than the `pre_get`.
fn pre_post(e: &mut Engine, ctx: serde_json::Value) {
    e.call(1, &export("pre_post"), Who::default(), &ctx)
        .unwrap();
}

/// A `pre_get` of `ctx.user` alone is run once for each user; the runtime answers that user
/// again with what it kept, until the user, the export or what writing its answer consults
/// changes.
#[test]
fn a_pre_get_of_the_user_alone_answers_each_user_from_what_it_kept() {
    use jxp_core::{Identity, User};

    let mut e = engine(
        r#"
        export let pre_get = (ctx) => ctx.user && ctx.user.admin
          ? null
          : { owner: ctx.user ? ctx.user._id : "nobody", groups: ctx.user?.groups ?? [] };
        export function pre_post(ctx) {
          if (ctx.swap) pre_get = (c) => ({ swapped: c.user._id });
          if (ctx.to_json) Object.prototype.toJSON = function () { return { json: true }; };
          return null;
        }"#,
        caps(),
    );
    let call = |e: &mut Engine, who: &Identity| pre_get_as(e, who, Some("x1"));
    let una = member("u1", "Una", "una@example.com", &["staff"]);
    let bo = member("u2", "Bo", "bo@example.com", &[]);
    let anonymous = Identity::anonymous();
    for _ in 0..3 {
        assert_eq!(
            call(&mut e, &una),
            json!({"owner": "u1", "groups": ["staff"]})
        );
        assert_eq!(call(&mut e, &bo), json!({"owner": "u2", "groups": []}));
        assert_eq!(
            call(&mut e, &anonymous),
            json!({"owner": "nobody", "groups": []})
        );
    }
    assert_eq!(e.kept_answers(), 3, "one answer kept for each caller");
    // Other code ran (a write's hook that changes nothing here): the export is read again,
    // found the same, and what was kept still holds.
    pre_post(&mut e, json!({}));
    assert_eq!(
        call(&mut e, &una),
        json!({"owner": "u1", "groups": ["staff"]})
    );
    assert_eq!(e.kept_answers(), 3, "kept across other code");
    // The same user made an admin: a new user object, run again.
    let admin = Identity::user(User {
        admin: true,
        ..una.user.clone().unwrap()
    });
    assert_eq!(call(&mut e, &admin), json!(null));
    assert_eq!(call(&mut e, &admin), json!(null));
    assert_eq!(call(&mut e, &bo), json!({"owner": "u2", "groups": []}));
    // The module assigns its export again: the new one answers.
    pre_post(&mut e, json!({"swap": true}));
    assert_eq!(call(&mut e, &bo), json!({"swapped": "u2"}));
    assert_eq!(call(&mut e, &bo), json!({"swapped": "u2"}));
    assert_eq!(call(&mut e, &admin), json!({"swapped": "u1"}));
    // A `toJSON` on `Object.prototype` writes every answer from now on.
    pre_post(&mut e, json!({"to_json": true}));
    for _ in 0..3 {
        assert_eq!(call(&mut e, &bo), json!({"json": true}));
    }
    assert_eq!(e.kept_answers(), 0);
}

/// A `pre_get` that reads anything but `ctx.user` runs at every call.
#[test]
fn a_pre_get_that_reads_more_than_the_user_runs_at_every_call() {
    for text in [
        "let n = 0; export function pre_get(ctx) { n += 1; return { n }; }",
        "export function pre_get(ctx) { return { n: ctx.user.groups.length + Math.random() }; }",
        "export function pre_get(ctx) { return { id: ctx.id }; }",
    ] {
        let mut e = engine(text, caps());
        let una = member("u1", "Una", "una@example.com", &["staff"]);
        let mut seen = std::collections::HashSet::new();
        for n in 0..5 {
            let out = pre_get_as(&mut e, &una, Some(["a", "b", "c", "d", "e"][n]));
            seen.insert(out.to_string());
        }
        assert_eq!(seen.len(), 5, "{text}");
        assert_eq!(e.kept_answers(), 0, "{text}");
    }
}

/// `groups.includes` is trusted only while it is the genuine one.
#[test]
fn a_pre_get_using_includes_answers_what_the_includes_of_the_moment_says() {
    let mut e = engine(
        r#"
        export const pre_get = (ctx) => ctx.user.groups.includes("boss") ? null : { team: "x" };
        export function pre_post(ctx) {
          const genuine = Array.prototype.includes;
          Array.prototype.includes = ctx.all ? () => true : genuine;
          return null;
        }"#,
        caps(),
    );
    let staff = member("u1", "Una", "una@example.com", &["staff"]);
    let boss = member("u2", "Bo", "bo@example.com", &["boss"]);
    let call = |e: &mut Engine, who: &jxp_core::Identity| pre_get_as(e, who, None);
    for _ in 0..3 {
        assert_eq!(call(&mut e, &staff), json!({"team": "x"}));
        assert_eq!(call(&mut e, &boss), json!(null));
    }
    assert_eq!(e.kept_answers(), 2);
    pre_post(&mut e, json!({"all": true}));
    for _ in 0..3 {
        assert_eq!(
            call(&mut e, &staff),
            json!(null),
            "the replaced includes answers"
        );
    }
    assert_eq!(e.kept_answers(), 0);
}
