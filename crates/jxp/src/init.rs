//! `jxp init DIR`: a runnable project with a `.env` and the sample models.

use std::path::Path;

use anyhow::Context;

const SAMPLE_TEST: &str = include_str!("../../../models/test.toml");
const SAMPLE_LINK: &str = include_str!("../../../models/link.toml");
const SAMPLE_ENV: &str = "# jxp settings; see the README for all of them.
PORT=4001
HOST=127.0.0.1
MODEL_DIR=./models
DATABASE_URL=./data/jxp.db
";

/// Writes the project files that do not exist yet; answers the paths it wrote.
pub fn init_project(dir: &Path) -> anyhow::Result<Vec<String>> {
    let files = [
        (".env", SAMPLE_ENV),
        ("models/test.toml", SAMPLE_TEST),
        ("models/link.toml", SAMPLE_LINK),
    ];
    std::fs::create_dir_all(dir.join("models"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let mut written = Vec::new();
    for (name, text) in files {
        let path = dir.join(name);
        if path.exists() {
            continue;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path.display().to_string());
    }
    Ok(written)
}
