//! The built-in models (`user`, `apikey`, `token`, `refreshtoken`, `usergroups`), loaded when
//! the model directory does not define them. They are written as model files so they go
//! through the same parser and checks as the user's own.

use std::path::PathBuf;

use crate::error::ModelError;
use crate::load::parse_model_toml;
use crate::schema::Model;

const USER: &str = r#"
name = "User"

[fields]
name = "String"
email = { type = "String", unique = true, index = true, lowercase = true, trim = true }
password = "String"
admin = { type = "Boolean", default = false }
urlid = { type = "String", index = true }
temp_hash = { type = "String", private = true }

[perms]
admin = "crud"
owner = "ru"
user = "r"

[options]
internal = false
"#;

const APIKEY: &str = r#"
name = "Apikey"

[fields]
user_id = { type = "ObjectId", link = "User", index = true }
apikey = { type = "String", private = true }
key_hash = { type = "String", unique = true, private = true }

[perms]
admin = "crud"

[options]
internal = true
soft_delete = false
"#;

const TOKEN: &str = r#"
name = "Token"

[fields]
user_id = { type = "ObjectId", link = "User", index = true }
access_token = { type = "String", unique = true, private = true }
expires = "Date"
provider = "String"

[perms]
admin = "crud"

[options]
internal = true
soft_delete = false
"#;

const REFRESHTOKEN: &str = r#"
name = "Refreshtoken"

[fields]
user_id = { type = "ObjectId", link = "User", index = true }
refresh_token = { type = "String", unique = true, private = true }
expires = "Date"

[perms]
admin = "crud"

[options]
internal = true
soft_delete = false
"#;

const USERGROUPS: &str = r#"
name = "Usergroups"

[fields]
user_id = { type = "ObjectId", link = "User", unique = true, index = true }
groups = ["String"]

[perms]
admin = "crud"
owner = "r"

[options]
internal = true
"#;

const BUILTINS: &[(&str, &str)] = &[
    ("user", USER),
    ("apikey", APIKEY),
    ("token", TOKEN),
    ("refreshtoken", REFRESHTOKEN),
    ("usergroups", USERGROUPS),
];

/// The built-in models, marked `builtin`. An error here is a defect in the texts above; the
/// tests parse them all.
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
