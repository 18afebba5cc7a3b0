//! Python for the checks that use a standard tool: `JXP_TEST_PYTHON` (the interpreter
//! `scripts/test.sh` installs `openapi-spec-validator` and `jsonschema` for), else `python3`.

use std::process::{Command, Stdio};

/// The interpreter, if it can import every module of `modules`; otherwise `None` and the
/// reason printed, for a test that then skips.
pub fn with_modules(modules: &[&str]) -> Option<String> {
    let python = std::env::var("JXP_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let import = format!("import {}", modules.join(", "));
    let ok = Command::new(&python)
        .args(["-c", &import])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Some(python)
    } else {
        eprintln!(
            "SKIPPED: {python} cannot import {modules:?}; scripts/test.sh installs them (pip install openapi-spec-validator jsonschema)"
        );
        None
    }
}

/// Runs `script` with `args`; answers stdout, and fails the test with stderr if it fails.
pub fn run(python: &str, script: &str, args: &[&str]) -> String {
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
