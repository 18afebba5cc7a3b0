//! The server instructions sent on `initialize` and the `jxp://guide` resource: jxp's guide
//! (`guide.md`) followed by the operator's `MCP_GUIDE_FILES`, read once at start.

use std::path::PathBuf;

use super::McpSettings;

/// The guide's resource URI and title.
pub(crate) const GUIDE_URI: &str = "jxp://guide";
pub(crate) const GUIDE_NAME: &str = "jxp-guide";
pub(crate) const GUIDE_TITLE: &str = "JXP MCP usage guide";

const BUILT_IN: &str = include_str!("guide.md");

/// The short workflow an MCP client puts before the model on connecting.
const INSTRUCTIONS: &str = "Read-only access to this JXP API's data, with the permissions of \
the credentials you connected with. Tools: jxp_list_models (the models you may read; never \
guess names), jxp_describe_model (fields, indexes, links), jxp_count (size a query first), \
jxp_find (a page of documents or one by id; always pass fields and a small limit) and \
jxp_export_csv (a small CSV table). Read the resource jxp-guide (jxp://guide) for the \
arguments, filters and limits. Subscribe to jxp://<model> or jxp://<model>/<id> to be told \
of changes.";

/// A guide file that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("MCP_GUIDE_FILES: cannot read {path}: {source}")]
pub(crate) struct GuideError {
    path: PathBuf,
    source: std::io::Error,
}

/// The instructions and guide text this server answers.
#[derive(Debug, Clone)]
pub(crate) struct Guide {
    pub instructions: String,
    pub text: String,
}

impl Guide {
    /// The guide with the operator's files; one that cannot be read (the configuration
    /// checked that each could) is logged and left out rather than stopping the server.
    pub(crate) fn load_or_log(settings: &McpSettings) -> Self {
        match Guide::load(settings) {
            Ok(guide) => guide,
            Err(e) => {
                tracing::error!(error = %e, "the MCP guide is served without MCP_GUIDE_FILES");
                Guide::built_in(settings)
            }
        }
    }

    /// jxp's own guide and instructions only.
    fn built_in(settings: &McpSettings) -> Self {
        Guide {
            instructions: instructions(settings),
            text: format!("{}\n", BUILT_IN.trim_end()),
        }
    }

    pub(crate) fn load(settings: &McpSettings) -> Result<Self, GuideError> {
        let mut text = BUILT_IN.trim_end().to_owned();
        for path in &settings.guide_files {
            let extra = std::fs::read_to_string(path).map_err(|source| GuideError {
                path: path.clone(),
                source,
            })?;
            text.push_str("\n\n");
            text.push_str(extra.trim_end());
        }
        text.push('\n');
        Ok(Guide {
            instructions: instructions(settings),
            text,
        })
    }
}

/// jxp's instructions followed by `MCP_INSTRUCTIONS_APPEND`.
fn instructions(settings: &McpSettings) -> String {
    let mut out = INSTRUCTIONS.to_owned();
    let append = settings.instructions_append.trim();
    if !append.is_empty() {
        out.push_str("\n\n");
        out.push_str(append);
    }
    out
}

// Tests only: an unwrap here is an assertion; failing is how the test reports.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guide_files_follow_the_built_in_guide_in_order() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let a = dir.join("a.md");
        let b = dir.join("b.md");
        std::fs::write(&a, "## App A\n").unwrap();
        std::fs::write(&b, "## App B\n").unwrap();
        let settings = McpSettings {
            guide_files: vec![a, b],
            instructions_append: "Readers are subscribers.".into(),
            ..McpSettings::default()
        };
        let guide = Guide::load(&settings).unwrap();
        assert!(guide.text.starts_with("# JXP MCP usage guide"));
        let (pa, pb) = (guide.text.find("## App A"), guide.text.find("## App B"));
        assert!(pa.is_some() && pa < pb, "{}", guide.text);
        assert!(guide.instructions.ends_with("Readers are subscribers."));
        let missing = McpSettings {
            guide_files: vec![dir.join("missing.md")],
            ..McpSettings::default()
        };
        assert!(Guide::load(&missing).is_err());
    }
}
