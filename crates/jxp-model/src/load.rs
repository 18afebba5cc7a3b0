//! Reading model files (TOML or JSON) into a `Schema`: one file per model, the built-in models
//! the directory does not define, and a check that every link names a known model.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::builtin::builtin_models;
use crate::error::{ModelError, ModelWarning};
use crate::model_file::{Fault, ParsedModel, model_from_node};
use crate::node::{self, Node, SyntaxError};
use crate::schema::{Field, FieldKind, Model, Schema};

/// Loads every `*.toml` / `*.json` directly in `dir`, adds the built-in models the directory
/// lacks, and checks links. `load_dir_with_warnings` also answers what looks like a mistake.
pub fn load_dir(dir: &Path) -> Result<Schema, ModelError> {
    load_dir_with_warnings(dir).map(|(schema, _)| schema)
}

/// `load_dir`, and the warnings of the directory's model files (a model without perms, a
/// `[perms]` group that is neither built-in nor declared), in file order.
pub fn load_dir_with_warnings(dir: &Path) -> Result<(Schema, Vec<ModelWarning>), ModelError> {
    let mut warnings = Vec::new();
    let mut sources: BTreeMap<String, Source> = BTreeMap::new();
    for (file, format) in model_files(dir)? {
        let slug = slug_of(&file)?;
        if let Some(earlier) = sources.get(&slug) {
            return Err(invalid(
                &file,
                None,
                format!(
                    "model \"{slug}\" is defined twice: {} and {}",
                    earlier.file.display(),
                    file.display()
                ),
            ));
        }
        let text = std::fs::read_to_string(&file)
            .map_err(|e| invalid(&file, None, format!("cannot read: {e}")))?;
        let parsed = parse(&slug, &file, &text, format)?;
        warnings.extend(
            parsed
                .warnings
                .into_iter()
                .map(|Fault { line, reason }| ModelWarning {
                    file: file.clone(),
                    line,
                    reason,
                }),
        );
        sources.insert(
            slug,
            Source {
                file,
                model: parsed.model,
                field_lines: parsed.field_lines,
            },
        );
    }
    for model in builtin_models()? {
        if !sources.contains_key(&model.slug) {
            sources.insert(
                model.slug.clone(),
                Source {
                    file: PathBuf::from(format!("<builtin>/{}.toml", model.slug)),
                    model,
                    field_lines: BTreeMap::new(),
                },
            );
        }
    }
    check_names(&sources)?;

    let schema = Schema {
        models: sources
            .iter()
            .map(|(slug, source)| (slug.clone(), Arc::new(source.model.clone())))
            .collect(),
    };
    for source in sources.values() {
        check_links(&schema, source)?;
    }
    Ok((schema, warnings))
}

/// Parses one TOML model file's text.
pub fn parse_model_toml(slug: &str, file: &Path, text: &str) -> Result<Model, ModelError> {
    parse(slug, file, text, Format::Toml).map(|parsed| parsed.model)
}

/// Parses one JSON model file's text.
pub fn parse_model_json(slug: &str, file: &Path, text: &str) -> Result<Model, ModelError> {
    parse(slug, file, text, Format::Json).map(|parsed| parsed.model)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Format {
    Toml,
    Json,
}

/// A loaded model and what error messages about it need: its file and its fields' lines.
struct Source {
    file: PathBuf,
    model: Model,
    field_lines: BTreeMap<String, usize>,
}

fn parse(slug: &str, file: &Path, text: &str, format: Format) -> Result<ParsedModel, ModelError> {
    let root: Node = match format {
        Format::Toml => node::from_toml(text),
        Format::Json => node::from_json(text),
    }
    .map_err(|SyntaxError { line, message }| invalid(file, line, message))?;
    model_from_node(slug, &root).map_err(|Fault { line, reason }| invalid(file, line, reason))
}

fn invalid(file: &Path, line: Option<usize>, reason: impl Into<String>) -> ModelError {
    ModelError::Invalid {
        file: file.to_owned(),
        line,
        reason: reason.into(),
    }
}

/// The model files directly in `dir`, sorted so errors and load order never depend on the
/// directory's listing order.
fn model_files(dir: &Path) -> Result<Vec<(PathBuf, Format)>, ModelError> {
    let read_err = |source| ModelError::ReadDir {
        dir: dir.to_owned(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let path = entry.map_err(read_err)?.path();
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_none_or(|n| n.starts_with('.'));
        let format = match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("toml") => Format::Toml,
            Some(ext) if ext.eq_ignore_ascii_case("json") => Format::Json,
            _ => continue,
        };
        if !hidden && path.is_file() {
            files.push((path, format));
        }
    }
    files.sort();
    Ok(files)
}

/// The URL name a file gives its model: the lower-cased file stem, which must be a plain
/// identifier because it names tables too.
fn slug_of(file: &Path) -> Result<String, ModelError> {
    let stem = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_lowercase();
    let mut chars = stem.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(stem)
    } else {
        Err(invalid(
            file,
            None,
            format!(
                "model name \"{stem}\" from the file name must start with a letter and contain only a-z, 0-9 and _"
            ),
        ))
    }
}

/// Links resolve by display name first, so two models sharing a name would make a link
/// ambiguous.
fn check_names(sources: &BTreeMap<String, Source>) -> Result<(), ModelError> {
    let mut seen: BTreeMap<&str, (&str, &Source)> = BTreeMap::new();
    for (slug, source) in sources {
        if let Some((other_slug, other)) = seen.insert(&source.model.name, (slug, source)) {
            // Blame the user's file rather than a built-in model they may not know about.
            let file = if source.model.builtin {
                &other.file
            } else {
                &source.file
            };
            return Err(invalid(
                file,
                None,
                format!(
                    "models \"{other_slug}\" and \"{slug}\" share the name \"{}\", which makes links to it ambiguous",
                    source.model.name
                ),
            ));
        }
    }
    Ok(())
}

fn check_links(schema: &Schema, source: &Source) -> Result<(), ModelError> {
    let mut links = Vec::new();
    collect_links(&source.model.fields, "", &mut links);
    for (path, target) in links {
        if schema.by_link(target).is_none() {
            return Err(invalid(
                &source.file,
                source.field_lines.get(&path).copied(),
                format!("field \"{path}\": link to unknown model \"{target}\""),
            ));
        }
    }
    Ok(())
}

/// Every `(path, link target)` at any depth, array elements included.
fn collect_links<'a>(fields: &'a [Field], prefix: &str, out: &mut Vec<(String, &'a str)>) {
    for field in fields {
        let path = if prefix.is_empty() {
            field.name.clone()
        } else {
            format!("{prefix}.{}", field.name)
        };
        if let Some(link) = &field.options.link {
            out.push((path.clone(), link));
        }
        match &field.kind {
            FieldKind::Object(children) => collect_links(children, &path, out),
            FieldKind::Array(element) => match &element.kind {
                FieldKind::Object(children) => collect_links(children, &path, out),
                _ => {
                    if let Some(link) = &element.options.link
                        && field.options.link.as_ref() != Some(link)
                    {
                        out.push((path, link));
                    }
                }
            },
            FieldKind::Scalar(_) => {}
        }
    }
}

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    const LINK_TOML: &str = "name = \"Link\"\n\n[fields]\nname = \"String\"\nval = \"Number\"\n";

    /// A fresh directory holding `files`, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn with(files: &[(&str, &str)]) -> TempDir {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "jxp-model-test-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&dir).unwrap();
            for (name, text) in files {
                std::fs::write(dir.join(name), text).unwrap();
            }
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn load_err(files: &[(&str, &str)]) -> (PathBuf, Option<usize>, String) {
        let dir = TempDir::with(files);
        match load_dir(&dir.0) {
            Err(ModelError::Invalid { file, line, reason }) => {
                let name = file
                    .strip_prefix(&dir.0)
                    .map(Path::to_owned)
                    .unwrap_or(file);
                (name, line, reason)
            }
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn loads_a_directory_with_builtins() {
        let dir = TempDir::with(&[
            ("test.toml", crate::model_file::tests::TEST_TOML),
            ("Link.toml", LINK_TOML),
            (
                "extra.json",
                r#"{"fields": {"link_id": {"type": "ObjectId", "link": "link"}}}"#,
            ),
            (".hidden.toml", "not toml at all ["),
            ("notes.txt", "ignored"),
        ]);
        std::fs::create_dir(dir.0.join("nested")).unwrap();
        std::fs::write(dir.0.join("nested/deeper.toml"), "bad [").unwrap();
        let schema = load_dir(&dir.0).unwrap();
        let slugs: Vec<&str> = schema.models.keys().map(String::as_str).collect();
        assert_eq!(
            slugs,
            [
                "apikey",
                "extra",
                "link",
                "refreshtoken",
                "test",
                "token",
                "user",
                "usergroups"
            ]
        );
        assert_eq!(schema.get("link").unwrap().name, "Link");
        assert_eq!(schema.get("extra").unwrap().name, "Extra");
        assert!(!schema.get("test").unwrap().builtin);
        assert!(schema.get("user").unwrap().builtin);
        let link = schema.get("link").unwrap();
        let referrers: Vec<String> = schema
            .referrers_of(link)
            .into_iter()
            .map(|(m, path, array)| format!("{}.{path}{}", m.slug, if array { "[]" } else { "" }))
            .collect();
        assert_eq!(
            referrers,
            [
                "extra.link_id",
                "test.link_id",
                "test.other_link_id",
                "test.array_link_id[]"
            ]
        );
    }

    #[test]
    fn a_directory_model_replaces_the_builtin() {
        let dir = TempDir::with(&[(
            "user.toml",
            "name = \"User\"\n[fields]\nname = \"String\"\nshoe_size = \"Number\"\n",
        )]);
        let schema = load_dir(&dir.0).unwrap();
        let user = schema.get("user").unwrap();
        assert!(!user.builtin);
        assert!(user.field("shoe_size").is_some());
        assert!(schema.get("apikey").unwrap().builtin);
    }

    #[test]
    fn links_must_resolve_at_any_depth() {
        let cases: &[(&str, usize, &str)] = &[
            (
                "[fields]\nfoo = \"String\"\nlink_id = { type = \"ObjectId\", link = \"Nope\" }\n",
                3,
                "field \"link_id\": link to unknown model \"Nope\"",
            ),
            (
                "[fields]\nids = [{ type = \"ObjectId\", link = \"Nope\" }]\n",
                2,
                "field \"ids\": link to unknown model \"Nope\"",
            ),
            (
                "[fields]\nsubs = [{ name = \"String\", ref = { type = \"ObjectId\", link = \"Nope\" } }]\n",
                2,
                "field \"subs.ref\": link to unknown model \"Nope\"",
            ),
            (
                "[fields]\n\n[fields.address]\nstreet = \"String\"\nowner = { type = \"ObjectId\", link = \"Nope\" }\n",
                5,
                "field \"address.owner\": link to unknown model \"Nope\"",
            ),
        ];
        for (text, line, reason) in cases {
            let (file, got_line, got_reason) =
                load_err(&[("link.toml", LINK_TOML), ("test.toml", text)]);
            assert_eq!(file, Path::new("test.toml"));
            assert_eq!(got_line, Some(*line), "{text}");
            assert_eq!(got_reason, *reason);
        }
    }

    #[test]
    fn file_level_errors() {
        let (file, _, reason) = load_err(&[("test.toml", "[fields]\n"), ("test.json", "{}")]);
        assert_eq!(file, Path::new("test.toml"));
        assert!(
            reason.contains("model \"test\" is defined twice"),
            "{reason}"
        );

        let (file, line, reason) = load_err(&[("my-model.toml", "")]);
        assert_eq!((file, line), (PathBuf::from("my-model.toml"), None));
        assert!(reason.contains("\"my-model\""), "{reason}");

        let (file, _, _) = load_err(&[("1test.toml", "")]);
        assert_eq!(file, Path::new("1test.toml"));

        let (file, line, _) = load_err(&[
            ("good.toml", ""),
            ("test.toml", "[fields]\nfoo = \"Strng\"\n"),
        ]);
        assert_eq!((file, line), (PathBuf::from("test.toml"), Some(2)));

        let (file, _, reason) = load_err(&[("person.toml", "name = \"User\"\n")]);
        assert_eq!(file, Path::new("person.toml"));
        assert!(reason.contains("share the name \"User\""), "{reason}");
    }

    /// The warnings of a directory, as `(file, line, reason)`.
    fn warnings(files: &[(&str, &str)]) -> Vec<(PathBuf, Option<usize>, String)> {
        let dir = TempDir::with(files);
        let (_, warnings) = load_dir_with_warnings(&dir.0).unwrap();
        warnings
            .into_iter()
            .map(|w| {
                let name = w.file.strip_prefix(&dir.0).map(Path::to_owned).unwrap();
                (name, w.line, w.reason)
            })
            .collect()
    }

    #[test]
    fn an_undeclared_perms_group_is_a_warning_with_its_line() {
        let got = warnings(&[
            (
                "post.toml",
                "[fields]\ntitle = \"String\"\n\n[perms]\nadmin = \"crud\"\nadmn = \"r\"\neditors = \"cru\"\nall = \"r\"\n\n[options]\ngroups = [\"editors\"]\n",
            ),
            (
                "page.json",
                "{\"fields\": {\"title\": \"String\"},\n \"options\": {\"perms\": {\"user\": \"r\",\n  \"editor\": \"u\"}}}",
            ),
        ]);
        assert_eq!(got.len(), 2, "{got:?}");
        // JSON model files carry no positions, so only the file is named.
        assert_eq!((&got[0].0, got[0].1), (&PathBuf::from("page.json"), None));
        assert!(got[0].2.contains("\"editor\""), "{}", got[0].2);
        assert_eq!(
            (&got[1].0, got[1].1),
            (&PathBuf::from("post.toml"), Some(6))
        );
        assert!(
            got[1]
                .2
                .contains("perms group \"admn\" is neither built-in"),
            "{}",
            got[1].2
        );
    }

    #[test]
    fn a_model_without_perms_is_a_warning() {
        let got = warnings(&[
            ("closed.toml", "[fields]\ntitle = \"String\"\n"),
            ("empty.toml", "[fields]\ntitle = \"String\"\n[perms]\n"),
            (
                "open.toml",
                "[fields]\ntitle = \"String\"\n[perms]\nall = \"r\"\n",
            ),
        ]);
        let files: Vec<&Path> = got.iter().map(|(f, _, _)| f.as_path()).collect();
        assert_eq!(files, [Path::new("closed.toml"), Path::new("empty.toml")]);
        assert!(
            got[0].2.contains("model \"closed\" has no [perms]"),
            "{}",
            got[0].2
        );
        assert!(got[0].2.contains("403"), "{}", got[0].2);
        assert_eq!(got[0].1, None);
    }

    #[test]
    fn declared_groups_must_be_group_names() {
        let (file, line, reason) = load_err(&[(
            "post.toml",
            "[fields]\ntitle = \"String\"\n[options]\ngroups = [\"a b\"]\n",
        )]);
        assert_eq!((file, line), (PathBuf::from("post.toml"), Some(4)));
        assert!(reason.contains("\"a b\" is not a group name"), "{reason}");
    }

    #[test]
    fn a_missing_directory_is_a_read_error() {
        let dir = std::env::temp_dir().join(format!("jxp-model-missing-{}", std::process::id()));
        assert!(matches!(load_dir(&dir), Err(ModelError::ReadDir { .. })));
    }
}
