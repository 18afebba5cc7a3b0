//! Node for the checks that use the AsyncAPI initiative's own parser, `@asyncapi/parser`:
//! `scripts/test.sh` installs it under `target/test-node` and names that folder's
//! `node_modules` in `JXP_TEST_NODE_PATH`; without it, Node's own `NODE_PATH` is tried.

use std::process::{Command, Stdio};

/// The folder Node resolves the parser from, for `NODE_PATH`.
fn node_path() -> Option<String> {
    std::env::var("JXP_TEST_NODE_PATH")
        .or_else(|_| std::env::var("NODE_PATH"))
        .ok()
}

fn node() -> Command {
    let mut command = Command::new("node");
    if let Some(path) = node_path() {
        command.env("NODE_PATH", path);
    }
    command
}

/// Whether `node` runs and can load `module`; if not, the reason is printed, for a test that
/// then skips.
pub fn has_module(module: &str) -> bool {
    let ok = node()
        .args(["-e", &format!("require({module:?})")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!(
            "SKIPPED: node cannot load {module} (NODE_PATH {:?}); scripts/test.sh installs it (npm install --prefix target/test-node {module})",
            node_path()
        );
    }
    ok
}

/// Runs the script file `script` with `args`; answers its exit status's success, stdout and
/// stderr.
pub fn run(script: &str, args: &[&str]) -> (bool, String, String) {
    let out = node().arg(script).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
