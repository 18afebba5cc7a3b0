//! A strict reader of Prometheus' text exposition format (version 0.0.4), so a test fails on
//! any line a scraper would refuse.

use std::collections::BTreeMap;

/// One sample: metric name, labels and value.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

fn is_name(s: &str, colon: bool) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':'))
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
}

/// Parses the whole text; panics naming the first line that is not valid.
pub fn parse(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    let mut typed = BTreeMap::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("TYPE"), Some(name), Some(kind)) => {
                    assert!(is_name(name, true), "bad metric name in {line:?}");
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                        "bad type in {line:?}"
                    );
                    assert!(
                        typed.insert(name.to_owned(), kind.to_owned()).is_none(),
                        "second TYPE line for {name}"
                    );
                }
                (Some("HELP"), Some(name), _) => assert!(is_name(name, true), "{line:?}"),
                _ => {}
            }
            continue;
        }
        assert!(!line.starts_with('#'), "bad comment line {line:?}");
        out.push(sample(line));
    }
    out
}

fn sample(line: &str) -> Sample {
    let name_end = line
        .find(['{', ' '])
        .unwrap_or_else(|| panic!("no value in {line:?}"));
    let name = &line[..name_end];
    assert!(is_name(name, true), "bad metric name in {line:?}");
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(after) = rest.strip_prefix('{') {
        let mut chars = after.char_indices().peekable();
        let end = loop {
            let (i, c) = chars
                .next()
                .unwrap_or_else(|| panic!("unclosed labels in {line:?}"));
            if c == '}' {
                break i;
            }
            // A label: name="value" with \\, \" and \n escapes, then , or }.
            let start = i;
            let mut eq = None;
            for (j, c) in chars.by_ref() {
                if c == '=' {
                    eq = Some(j);
                    break;
                }
            }
            let eq = eq.unwrap_or_else(|| panic!("label without = in {line:?}"));
            let label = &after[start..eq];
            assert!(
                is_name(label, false),
                "bad label name {label:?} in {line:?}"
            );
            assert_eq!(
                chars.next().map(|c| c.1),
                Some('"'),
                "unquoted label in {line:?}"
            );
            let mut value = String::new();
            loop {
                match chars.next().map(|c| c.1) {
                    Some('\\') => match chars.next().map(|c| c.1) {
                        Some('n') => value.push('\n'),
                        Some(c @ ('\\' | '"')) => value.push(c),
                        other => panic!("bad escape {other:?} in {line:?}"),
                    },
                    Some('"') => break,
                    Some(c) => value.push(c),
                    None => panic!("unclosed label value in {line:?}"),
                }
            }
            labels.insert(label.to_owned(), value);
            match chars.peek().map(|c| c.1) {
                Some(',') => {
                    chars.next();
                }
                Some('}') => {}
                other => panic!("expected , or }} after a label, got {other:?} in {line:?}"),
            }
        };
        rest = &after[end + 1..];
    }
    let mut fields = rest.split_whitespace();
    let value = fields
        .next()
        .unwrap_or_else(|| panic!("no value in {line:?}"));
    let value: f64 = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}")),
    };
    if let Some(ts) = fields.next() {
        ts.parse::<i64>()
            .unwrap_or_else(|_| panic!("bad timestamp in {line:?}"));
    }
    assert!(fields.next().is_none(), "trailing text in {line:?}");
    Sample {
        name: name.to_owned(),
        labels,
        value,
    }
}

/// The value of the sample named `name` whose labels include `labels`; 0 when there is none.
pub fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

#[test]
fn the_reader_takes_valid_lines_and_refuses_broken_ones() {
    let samples = parse(
        "# HELP a_total Things.\n# TYPE a_total counter\na_total{route=\"/api/{model}\",q=\"x\\\"y\"} 3\nb 1.5e3 1700000000\n",
    );
    assert_eq!(
        value(&samples, "a_total", &[("route", "/api/{model}")]),
        3.0
    );
    assert_eq!(samples[0].labels["q"], "x\"y");
    assert_eq!(value(&samples, "b", &[]), 1500.0);
    for bad in ["a{b=\"c\" 1", "a{b=c} 1", "a b", "9a 1", "a 1 2 3"] {
        assert!(std::panic::catch_unwind(|| parse(bad)).is_err(), "{bad}");
    }
}
