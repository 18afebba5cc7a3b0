//! `jxp init DIR`: a runnable project: the sample models and a commented example script of
//! hooks for one of them, a `.env` that lists every setting
//! (commented out, with its default) and a `.gitignore` that keeps the database and the
//! settings out of version control. Files that exist are never overwritten.

use std::path::{Path, PathBuf};

use crate::Error;
use crate::settings::env_file;

const SAMPLE_TEST: &str = include_str!("../../../models/test.toml");
const SAMPLE_LINK: &str = include_str!("../../../models/link.toml");
const SAMPLE_SCRIPT: &str = include_str!("../../../models/test.js");
const GITIGNORE: &str =
    "# The SQLite database (DATABASE_URL's default) and the settings, which may hold secrets.
data/
.env
";

/// What `init_project` did with one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitFile {
    Written(PathBuf),
    /// It was there already and is left as it was.
    Kept(PathBuf),
}

/// Writes the project files that do not exist yet; answers what it did with each.
pub fn init_project(dir: &Path) -> Result<Vec<InitFile>, Error> {
    let files = [
        (".env", env_file()),
        (".gitignore", GITIGNORE.to_owned()),
        ("models/test.toml", SAMPLE_TEST.to_owned()),
        ("models/link.toml", SAMPLE_LINK.to_owned()),
        ("models/test.js", SAMPLE_SCRIPT.to_owned()),
    ];
    std::fs::create_dir_all(dir.join("models")).map_err(|source| Error::CreateDir {
        path: dir.to_owned(),
        source,
    })?;
    let mut done = Vec::new();
    for (name, text) in files {
        let path = dir.join(name);
        if path.exists() {
            done.push(InitFile::Kept(path));
            continue;
        }
        if let Err(source) = std::fs::write(&path, text) {
            return Err(Error::WriteFile { path, source });
        }
        done.push(InitFile::Written(path));
    }
    Ok(done)
}

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_project_and_keeps_what_exists() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".gitignore"), "mine\n").unwrap();
        let done = init_project(dir.path()).unwrap();
        assert_eq!(
            done,
            [
                InitFile::Written(dir.path().join(".env")),
                InitFile::Kept(dir.path().join(".gitignore")),
                InitFile::Written(dir.path().join("models/test.toml")),
                InitFile::Written(dir.path().join("models/link.toml")),
                InitFile::Written(dir.path().join("models/test.js")),
            ]
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join(".gitignore")).unwrap(),
            "mine\n"
        );
        let env = std::fs::read_to_string(dir.path().join(".env")).unwrap();
        assert!(env.contains("# PORT=4001\n"), "{env}");

        std::fs::remove_file(dir.path().join(".gitignore")).unwrap();
        let again = init_project(dir.path()).unwrap();
        assert_eq!(again[0], InitFile::Kept(dir.path().join(".env")));
        assert_eq!(again[1], InitFile::Written(dir.path().join(".gitignore")));
        let ignore = std::fs::read_to_string(dir.path().join(".gitignore")).unwrap();
        assert!(ignore.lines().any(|l| l == "data/") && ignore.lines().any(|l| l == ".env"));
    }
}
