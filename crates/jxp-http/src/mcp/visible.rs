//! Which models an MCP caller is shown: those it may read through `GET /api/:model`, less the
//! ones MCP hides (the built-in auth models and `internal` ones unless whitelisted, and any
//! blacklisted). A hidden model answers as an unknown one, so its name is not confirmed.

use jxp_core::{Access, Identity, Right, access};
use jxp_model::Model;

use super::McpSettings;

/// The built-in authentication models, hidden from MCP unless whitelisted.
const AUTH_MODELS: &[&str] = &["user", "apikey", "token", "refreshtoken", "usergroups"];

/// Whether MCP shows `model` at all, whoever asks.
pub(crate) fn exposed(settings: &McpSettings, model: &Model) -> bool {
    let listed = |list: &[String]| list.iter().any(|s| s == &model.slug);
    if listed(&settings.blacklist) || model.perms.is_empty() {
        return false;
    }
    let hidden = model.builtin || model.options.internal || AUTH_MODELS.contains(&&*model.slug);
    !hidden || listed(&settings.whitelist)
}

/// How much of `model` `who` may read through MCP: `None` when it is not shown or not
/// readable, which callers answer as an unknown model.
pub(crate) fn readable(settings: &McpSettings, model: &Model, who: &Identity) -> Option<Access> {
    if !exposed(settings, model) {
        return None;
    }
    match access(model, who, Right::Read) {
        Access::Denied => None,
        a => Some(a),
    }
}

// Tests only: an unwrap here is an assertion; failing is how the test reports.
#[cfg(test)]
mod tests {
    use super::*;

    fn model(slug: &str, perms: &str, builtin: bool) -> Model {
        let text = format!("name = \"{slug}\"\n[fields]\nname = \"String\"\n[perms]\n{perms}\n");
        let file = std::path::PathBuf::from(format!("{slug}.toml"));
        let mut m = jxp_model::parse_model_toml(slug, &file, &text).unwrap();
        m.builtin = builtin;
        m
    }

    #[test]
    fn auth_models_hidden_unless_whitelisted_and_blacklist_wins() {
        let mut s = McpSettings::default();
        let user = model("user", "admin = \"r\"", true);
        let post = model("post", "all = \"r\"", false);
        assert!(!exposed(&s, &user));
        assert!(exposed(&s, &post));
        s.whitelist = vec!["user".into()];
        assert!(exposed(&s, &user));
        s.blacklist = vec!["user".into(), "post".into()];
        assert!(!exposed(&s, &user));
        assert!(!exposed(&s, &post));
    }

    #[test]
    fn unreadable_models_are_not_shown() {
        let s = McpSettings::default();
        let post = model("post", "user = \"r\"", false);
        assert_eq!(readable(&s, &post, &Identity::anonymous()), None);
        let open = model("open", "all = \"r\"", false);
        assert_eq!(
            readable(&s, &open, &Identity::anonymous()),
            Some(Access::All)
        );
    }
}
