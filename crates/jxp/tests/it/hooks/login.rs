//! Login hooks: the pre-hook may refuse a login (no session is opened), the post-hook adds
//! fields to the answer without replacing the session's own.

use reqwest::StatusCode;
use serde_json::json;

use super::support::World;
use crate::harness;

#[tokio::test]
async fn login_hooks_fire_refuse_and_add_fields() {
    let w = World::start(&[]).await;

    let r = harness::try_login(&w.s, &w.user.email, &w.user.password).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["greeting"], "hello carol", "{}", r.body);
    let token = r.body["token"].as_str().unwrap();
    assert_ne!(token, "a hook may not replace this");
    assert_eq!(w.rec.take(), ["pre:login", "post:login"]);
    // The token works.
    let (status, _) = harness::get(&w.s, "/api/ledger", &harness::Auth::bearer(token)).await;
    assert_eq!(status, StatusCode::OK);
    w.rec.take();

    // A wrong password: the pre-hook ran, the post-hook did not.
    let r = harness::try_login(&w.s, &w.user.email, "wrong").await;
    crate::auth::support::assert_login_failed(&(r.status, r.body), "wrong password");
    assert_eq!(w.rec.take(), ["pre:login"]);

    // A refused login opens no session, though the password is right.
    let banned = harness::create_user(&w.s, &w.admin.basic(), "banned").await;
    w.rec.take();
    let tokens = |s: &crate::harness::TestServer, uid: String| {
        let app = s.app().clone();
        async move {
            let filter = jxp::Filter::cond(jxp::Path::plain("user_id"), jxp::Op::Eq, json!(uid));
            app.reader().count("token", &filter).await.unwrap()
        }
    };
    let r = harness::try_login(&w.s, &banned.email, &banned.password).await;
    assert_eq!(
        (r.status, r.body),
        (
            StatusCode::FORBIDDEN,
            json!({"code": "Forbidden", "message": "this account is suspended"})
        )
    );
    assert_eq!(w.rec.take(), ["pre:login"]);
    assert_eq!(tokens(&w.s, banned.id.clone()).await, 0);
}
