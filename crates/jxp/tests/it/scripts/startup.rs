//! Scripts that stop start-up: one that does not parse, one that exports a name no hook has
//! (a typo), one for a model that does not exist; each names the file and the line.

use super::support::{AUDIT, WIDGET};
use crate::harness::TestServer;

async fn refused(file: &str, text: &str) -> String {
    match TestServer::try_start_scripted(
        &[("widget", WIDGET), ("audit", AUDIT)],
        &[(file, text)],
        &[],
    )
    .await
    {
        Ok(_) => panic!("{file} should stop start-up"),
        Err(e) => format!("{e:#}"),
    }
}

#[tokio::test]
async fn bad_scripts_stop_start_up_with_the_file_and_line() {
    let e = refused(
        "widget.js",
        "export function pre_post(ctx) {\n  return {;\n}\n",
    )
    .await;
    assert!(e.contains("widget.js:2"), "{e}");

    let e = refused("widget.js", "// a typo\nexport function pre_psot(ctx) {}\n").await;
    assert!(e.contains("widget.js:2"), "{e}");
    assert!(
        e.contains("pre_psot") && e.contains("pre_post, pre_put"),
        "{e}"
    );

    let e = refused("_app.js", "export const pre_post = 1;\n").await;
    assert!(
        e.contains("_app.js:1") && e.contains("pre_login, post_login"),
        "{e}"
    );

    let e = refused("gadget.js", "export function pre_post() {}\n").await;
    assert!(
        e.contains("gadget.js") && e.contains("no model \"gadget\""),
        "{e}"
    );

    let e = refused(
        "widget.js",
        "import x from \"./audit.js\";\nexport function pre_post() {}\n",
    )
    .await;
    assert!(e.contains("widget.js"), "{e}");

    let e = refused("widget.js", "while (true) {}\n").await;
    assert!(e.contains("widget.js") && e.contains("longer than"), "{e}");
}
