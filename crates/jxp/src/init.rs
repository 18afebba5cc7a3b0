//! `jxp init DIR`: a runnable project with a `.env` and the sample models.

use std::path::Path;

use crate::Error;

const SAMPLE_TEST: &str = include_str!("../../../models/test.toml");
const SAMPLE_LINK: &str = include_str!("../../../models/link.toml");
const SAMPLE_ENV: &str = "# jxp settings; see the README for all of them.
PORT=4001
HOST=127.0.0.1
MODEL_DIR=./models
DATABASE_URL=./data/jxp.db
";

/// Writes the project files that do not exist yet; answers the paths it wrote.
pub fn init_project(dir: &Path) -> Result<Vec<String>, Error> {
    let files = [
        (".env", SAMPLE_ENV),
        ("models/test.toml", SAMPLE_TEST),
        ("models/link.toml", SAMPLE_LINK),
    ];
    std::fs::create_dir_all(dir.join("models")).map_err(|source| Error::CreateDir {
        path: dir.to_owned(),
        source,
    })?;
    let mut written = Vec::new();
    for (name, text) in files {
        let path = dir.join(name);
        if path.exists() {
            continue;
        }
        if let Err(source) = std::fs::write(&path, text) {
            return Err(Error::WriteFile { path, source });
        }
        written.push(path.display().to_string());
    }
    Ok(written)
}
