//! The built-in models (`user`, `apikey`, `token`, `refreshtoken`, `usergroups`), loaded when
//! the model directory does not define them. They are model files (`builtin/*.toml`, built
//! into the binary) so they go through the same parser and checks as the user's own.

use std::path::PathBuf;

use crate::error::ModelError;
use crate::load::parse_model_toml;
use crate::schema::Model;

const BUILTINS: &[(&str, &str)] = &[
    ("user", include_str!("builtin/user.toml")),
    ("apikey", include_str!("builtin/apikey.toml")),
    ("token", include_str!("builtin/token.toml")),
    ("refreshtoken", include_str!("builtin/refreshtoken.toml")),
    ("usergroups", include_str!("builtin/usergroups.toml")),
];

/// The built-in models, marked `builtin`. An error here is a defect in those files; the tests
/// parse them all.
pub(crate) fn builtin_models() -> Result<Vec<Model>, ModelError> {
    BUILTINS
        .iter()
        .map(|(slug, text)| {
            let file = PathBuf::from(format!("<builtin>/{slug}.toml"));
            let mut model = parse_model_toml(slug, &file, text)?;
            model.builtin = true;
            Ok(model)
        })
        .collect()
}

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::schema::{FieldKind, IndexKind, ScalarType};

    fn model(slug: &str) -> Model {
        builtin_models()
            .unwrap()
            .into_iter()
            .find(|m| m.slug == slug)
            .unwrap()
    }

    #[test]
    fn all_parse_and_are_marked_builtin() {
        let models = builtin_models().unwrap();
        let slugs: Vec<&str> = models.iter().map(|m| m.slug.as_str()).collect();
        assert_eq!(
            slugs,
            ["user", "apikey", "token", "refreshtoken", "usergroups"]
        );
        for m in &models {
            assert!(m.builtin, "{}", m.slug);
            // Credentials are deleted for good; people and groups are soft-deleted.
            let credential = matches!(m.slug.as_str(), "apikey" | "token" | "refreshtoken");
            assert_eq!(m.options.soft_delete, !credential, "{}", m.slug);
            assert!(m.perms.allows("admin", 'd'), "{}", m.slug);
            assert_eq!(m.options.internal, m.slug != "user", "{}", m.slug);
        }
    }

    #[test]
    fn user_fields() {
        let user = model("user");
        assert_eq!(user.name, "User");
        let email = user.field("email").unwrap();
        assert!(email.options.unique && email.options.lowercase && email.options.trim);
        assert_eq!(email.options.index, IndexKind::Normal);
        // Other users see names and ids, never addresses.
        assert!(email.is_owner_only() && !email.is_private());
        assert!(user.has_owner_only());
        assert!(user.field("password").unwrap().is_private());
        assert!(user.field("temp_hash").unwrap().is_private());
        assert_eq!(
            user.field("admin").unwrap().options.default,
            Some(serde_json::json!(false))
        );
        assert!(user.perms.allows("owner", 'u') && !user.perms.allows("owner", 'd'));
        assert!(user.perms.allows("user", 'r') && !user.perms.allows("user", 'c'));
    }

    #[test]
    fn secrets_are_private_and_links_point_at_user() {
        for (slug, secret) in [
            ("apikey", "key_hash"),
            ("token", "access_token"),
            ("refreshtoken", "refresh_token"),
        ] {
            let m = model(slug);
            let field = m.field(secret).unwrap();
            assert!(field.is_private() && field.options.unique, "{slug}");
            if slug != "apikey" {
                // Each login's records share a session id; the password fingerprint is secret.
                assert!(!m.field("session").unwrap().is_private(), "{slug}");
                assert!(m.field("password_fp").unwrap().is_private(), "{slug}");
            }
            assert_eq!(
                m.field("user_id").unwrap().options.link.as_deref(),
                Some("User")
            );
        }
        let groups = model("usergroups");
        assert!(groups.field("user_id").unwrap().options.unique);
        assert_eq!(
            groups.field("groups").unwrap().kind.scalar(),
            Some(ScalarType::String)
        );
        assert!(matches!(
            groups.field("groups").unwrap().kind,
            FieldKind::Array(_)
        ));
        assert!(groups.perms.allows("owner", 'r') && !groups.perms.allows("owner", 'u'));
    }
}
