//! Finding and checking the scripts of a model directory: `<slug>.js` for a model, `_app.js`
//! for the rest. A script that does not parse, fails while evaluated, belongs to no model or
//! exports a name not in SPEC §10's table stops start-up, naming the file and line.

use std::path::{Path, PathBuf};

use jxp_model::Schema;

use crate::engine::{Caps, Engine, Source};

/// The key of `_app.js`.
pub(crate) const APP_KEY: &str = "_app";

/// What a model's script may export.
pub const MODEL_EXPORTS: &[&str] = &[
    "pre_post",
    "pre_put",
    "pre_delete",
    "post_post",
    "post_put",
    "post_delete",
    "pre_get",
    "functions",
];

/// What `_app.js` may export.
pub const APP_EXPORTS: &[&str] = &["pre_login", "post_login"];

/// Why the scripts cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error("cannot read {file}: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}:{line}: {message}")]
    Load {
        file: String,
        line: u32,
        message: String,
    },
    #[error("{file}:{line}: unknown export \"{name}\"; accepted: {accepted}")]
    UnknownExport {
        file: String,
        line: u32,
        name: String,
        accepted: String,
    },
    #[error(
        "{file}:1: no model \"{slug}\" is loaded for this script (scripts are named <slug>.js, or _app.js)"
    )]
    NoModel { file: String, slug: String },
}

/// The scripts in `dir`, in name order.
pub(crate) fn read_sources(dir: &Path, schema: &Schema) -> Result<Vec<Source>, ScriptError> {
    let read_err = |source| ScriptError::Read {
        file: dir.to_path_buf(),
        source,
    };
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "js") && p.is_file())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(read_err(e)),
    };
    files.sort();
    let mut out = Vec::with_capacity(files.len());
    for file in files {
        let key = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if key != APP_KEY && !schema.models.contains_key(&key) {
            return Err(ScriptError::NoModel {
                file: file.display().to_string(),
                slug: key,
            });
        }
        let text = std::fs::read_to_string(&file).map_err(|source| ScriptError::Read {
            file: file.clone(),
            source,
        })?;
        out.push(Source { key, file, text });
    }
    Ok(out)
}

/// Builds a runtime with every script in it and checks each one's exports.
pub(crate) fn check(sources: &[Source], caps: Caps) -> Result<Engine, ScriptError> {
    let mut engine = Engine::new(sources, caps).map_err(|(i, f)| ScriptError::Load {
        file: sources
            .get(i)
            .map(Source::name)
            .unwrap_or_else(|| "script runtime".into()),
        line: f.line,
        message: f.message,
    })?;
    for source in sources {
        let accepted = accepted(&source.key);
        let (names, _) = engine.exports(&source.key);
        if let Some(name) = names.iter().find(|n| !accepted.contains(&n.as_str())) {
            return Err(ScriptError::UnknownExport {
                file: source.name(),
                line: export_line(&source.text, name),
                name: name.clone(),
                accepted: accepted.join(", "),
            });
        }
    }
    Ok(engine)
}

/// The exports a script with `key` may have.
pub(crate) fn accepted(key: &str) -> &'static [&'static str] {
    if key == APP_KEY {
        APP_EXPORTS
    } else {
        MODEL_EXPORTS
    }
}

/// The line that exports `name`: the first line with `export` and the name as a word, else
/// the first with the name, else 1.
fn export_line(text: &str, name: &str) -> u32 {
    let has_word = |line: &str| {
        line.match_indices(name).any(|(at, _)| {
            let before = line[..at].chars().next_back();
            let after = line[at + name.len()..].chars().next();
            let part =
                |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$');
            !part(before) && !part(after)
        })
    };
    let find = |want_export: bool| {
        text.lines()
            .position(|l| has_word(l) && (!want_export || l.contains("export")))
    };
    find(true)
        .or_else(|| find(false))
        .map_or(1, |i| i as u32 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_of_an_export_is_the_line_that_exports_it() {
        let text = "// pre_psot is a typo\nconst x = 1;\nexport function pre_psot(ctx) {}\n";
        assert_eq!(export_line(text, "pre_psot"), 3);
        assert_eq!(
            export_line("const a = 1;\nexport { a as pre_x };", "pre_x"),
            2
        );
        assert_eq!(export_line("nothing", "pre_x"), 1);
        // A longer name that contains it is not it.
        assert_eq!(
            export_line("export const pre_x2 = 1;\nexport const pre_x = 2;", "pre_x"),
            2
        );
    }
}
