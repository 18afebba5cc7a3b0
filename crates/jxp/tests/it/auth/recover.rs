//! `POST /login/recover`: a recovery email through a real SMTP conversation with a small
//! receiver started by the test, whose link carries a JWT that logs the user in until their
//! password changes.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::support::{
    NOTES, Oracle, SECRET, assert_forbidden, assert_login_failed, b64_decode, jwt_payload,
};
use crate::harness::{
    Account, Auth, TestServer, create_user, get, login, login_as, post, put, setup_admin, start,
    try_login,
};

const RECOVERY_URL: &str = "http://app.example/reset";

/// One message the receiver accepted.
#[derive(Debug)]
struct Mail {
    from: String,
    rcpt: Vec<String>,
    /// The DATA section, dot-stuffing undone, lines joined with `\r\n`.
    data: String,
}

/// A minimal SMTP server on 127.0.0.1:0: enough for one client to send mail in plain text.
async fn smtp_receiver() -> (u16, mpsc::UnboundedReceiver<Mail>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let _ = smtp_session(sock, tx).await;
            });
        }
    });
    (port, rx)
}

async fn smtp_session(sock: TcpStream, tx: mpsc::UnboundedSender<Mail>) -> std::io::Result<()> {
    let (read, mut write) = sock.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 test.invalid ESMTP ready\r\n").await?;
    let mut from = String::new();
    let mut rcpt = Vec::new();
    while let Some(line) = lines.next_line().await? {
        let line = line.trim_end_matches('\r').to_owned();
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            b"250 test.invalid\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            from = line["MAIL FROM:".len()..].trim().to_owned();
            rcpt.clear();
            b"250 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            rcpt.push(line["RCPT TO:".len()..].trim().to_owned());
            b"250 OK\r\n"
        } else if upper == "DATA" {
            write
                .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                .await?;
            let mut data = Vec::new();
            while let Some(l) = lines.next_line().await? {
                let l = l.trim_end_matches('\r');
                if l == "." {
                    break;
                }
                data.push(l.strip_prefix('.').unwrap_or(l).to_owned());
            }
            let _ = tx.send(Mail {
                from: from.clone(),
                rcpt: std::mem::take(&mut rcpt),
                data: data.join("\r\n"),
            });
            b"250 OK queued\r\n"
        } else if upper.starts_with("QUIT") {
            write.write_all(b"221 Bye\r\n").await?;
            return Ok(());
        } else {
            // RSET, NOOP and the like.
            b"250 OK\r\n"
        };
        write.write_all(reply).await?;
    }
    Ok(())
}

impl Mail {
    /// The text of the message with transfer encodings undone: base64 bodies decoded,
    /// quoted-printable soft line breaks joined and `=3D` turned back into `=`.
    fn text(&self) -> String {
        let (head, body) = self
            .data
            .split_once("\r\n\r\n")
            .unwrap_or((self.data.as_str(), ""));
        let head_lower = head.to_ascii_lowercase();
        let body = if head_lower.contains("content-transfer-encoding: base64") {
            String::from_utf8(b64_decode(body)).unwrap()
        } else {
            body.replace("=\r\n", "")
                .replace("=3D", "=")
                .replace("=3d", "=")
        };
        format!("{head}\r\n\r\n{body}")
    }

    /// The JWT of the recovery link.
    fn recovery_jwt(&self) -> String {
        let text = self.text();
        let prefix = format!("{RECOVERY_URL}?token=");
        let at = text
            .find(&prefix)
            .unwrap_or_else(|| panic!("no recovery link in the email:\n{text}"));
        let jwt: String = text[at + prefix.len()..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .collect();
        assert_eq!(jwt.split('.').count(), 3, "not a JWT: {jwt}");
        jwt
    }
}

struct World {
    s: TestServer,
    mail: mpsc::UnboundedReceiver<Mail>,
    admin: Account,
    alice: Account,
}

async fn world() -> World {
    let (port, mail) = smtp_receiver().await;
    let url = format!("smtp://127.0.0.1:{port}");
    let s = start(
        &[("notes", NOTES)],
        &[
            ("SMTP_URL", &url),
            ("SMTP_FROM", "noreply@example.com"),
            ("PASSWORD_RECOVERY_URL", RECOVERY_URL),
            ("SHARED_SECRET", SECRET),
        ],
    )
    .await;
    let admin = setup_admin(&s).await;
    let alice = create_user(&s, &admin.basic(), "alice").await;
    World {
        s,
        mail,
        admin,
        alice,
    }
}

impl World {
    /// Asks for a recovery email and waits for it.
    async fn recover(&mut self, email: &str) -> Mail {
        let (status, body) = post(
            &self.s,
            "/login/recover",
            &Auth::None,
            json!({"email": email}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body,
            json!({"status": "ok", "message": "Sent recovery email"})
        );
        tokio::time::timeout(Duration::from_secs(10), self.mail.recv())
            .await
            .expect("no recovery email within 10 s")
            .expect("the receiver stopped")
    }

    /// Asserts no email arrives within a short while.
    async fn no_mail(&mut self) {
        let got = tokio::time::timeout(Duration::from_millis(1500), self.mail.recv()).await;
        assert!(got.is_err(), "an email was sent: {:?}", got.ok().flatten());
    }
}

/// Creates a note with `auth`; answers who the server took the caller to be.
async fn note_owner(s: &TestServer, auth: &Auth) -> String {
    let (status, body) = post(s, "/api/notes", auth, json!({"text": "hi"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"]["_owner_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_recovery_email_carries_a_jwt_that_logs_in() {
    let mut w = world().await;
    let session = login_as(&w.s, &w.alice).await;
    let apikey = session.apikey.clone().unwrap();
    let mail = w.recover("Alice@Example.com").await;
    assert!(
        mail.rcpt.iter().any(|r| r.contains(&w.alice.email)),
        "not sent to alice: {:?}",
        mail.rcpt
    );
    assert!(mail.from.contains("noreply@example.com"), "{}", mail.from);
    let text = mail.text();
    assert!(
        text.to_ascii_lowercase().contains("to: ") && text.contains(&w.alice.email),
        "{text}"
    );
    assert!(
        !text.contains(&apikey),
        "the email leaks the API key:\n{text}"
    );
    let jwt = mail.recovery_jwt();
    let payload = jwt_payload(&jwt);
    assert_eq!(payload["id"], w.alice.id.as_str(), "{payload}");
    assert_eq!(payload["email"], w.alice.email.as_str(), "{payload}");
    assert!(
        payload["purpose"].is_string() && payload["exp"].is_i64(),
        "{payload}"
    );
    assert!(payload.get("apikey").is_none(), "{payload}");
    assert!(!payload.to_string().contains(&apikey), "{payload}");

    // The JWT is a Bearer credential for alice.
    assert_eq!(note_owner(&w.s, &Auth::bearer(&jwt)).await, w.alice.id);
    let (status, body) = get(
        &w.s,
        &format!("/api/user/{}", w.alice.id),
        &Auth::bearer(&jwt),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // What the server keeps to recognise the link is never shown.
    for auth in [w.admin.basic(), session.bearer()] {
        let (status, one) = get(&w.s, &format!("/api/user/{}", w.alice.id), &auth).await;
        assert_eq!(status, StatusCode::OK, "{one}");
        assert!(one["data"].get("temp_hash").is_none(), "{one}");
        let (status, list) = get(&w.s, "/api/user", &auth).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert!(!list.to_string().contains("temp_hash"), "{list}");
    }
    // Alice's password and session are untouched by the request itself.
    login_as(&w.s, &w.alice).await;
}

/// The recovery flow as a front end runs it: the user sets a new password with the JWT, and
/// the JWT is spent.
#[tokio::test]
async fn the_recovery_jwt_sets_a_new_password_once() {
    let mut w = world().await;
    let jwt = w.recover(&w.alice.email.clone()).await.recovery_jwt();
    let bearer = Auth::bearer(&jwt);
    let (status, body) = put(
        &w.s,
        &format!("/api/user/{}", w.alice.id),
        &bearer,
        json!({"password": "alice-new-pw"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["data"].get("password").is_none());
    assert_forbidden(
        &get(&w.s, "/api/notes", &bearer).await,
        "the spent recovery JWT",
    );
    assert_forbidden(
        &put(
            &w.s,
            &format!("/api/user/{}", w.alice.id),
            &bearer,
            json!({"password": "alice-third-pw"}),
        )
        .await,
        "a second password change with the spent JWT",
    );
    login(&w.s, &w.alice.email, "alice-new-pw").await;
    let r = try_login(&w.s, &w.alice.email, &w.alice.password).await;
    assert_login_failed(&(r.status, r.body), "the old password");
}

#[tokio::test]
async fn a_password_change_retires_the_recovery_jwt() {
    let mut w = world().await;
    let jwt = w.recover(&w.alice.email.clone()).await.recovery_jwt();
    assert_eq!(note_owner(&w.s, &Auth::bearer(&jwt)).await, w.alice.id);
    let (status, body) = put(
        &w.s,
        &format!("/api/user/{}", w.alice.id),
        &w.admin.basic(),
        json!({"password": "alice-new-pw"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_forbidden(
        &get(&w.s, "/api/notes", &Auth::bearer(&jwt)).await,
        "the retired JWT",
    );
    login(&w.s, &w.alice.email, "alice-new-pw").await;
}

#[tokio::test]
async fn a_new_recovery_email_retires_the_previous_link() {
    let mut w = world().await;
    let email = w.alice.email.clone();
    let first = w.recover(&email).await.recovery_jwt();
    // JWTs carry whole seconds; make sure the second differs from the first.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = w.recover(&email).await.recovery_jwt();
    assert_ne!(first, second);
    assert_forbidden(
        &get(&w.s, "/api/notes", &Auth::bearer(&first)).await,
        "the older link",
    );
    assert_eq!(note_owner(&w.s, &Auth::bearer(&second)).await, w.alice.id);
}

#[tokio::test]
async fn an_unknown_email_gets_the_same_answer_and_no_mail() {
    let mut w = world().await;
    let (status, body) = post(
        &w.s,
        "/login/recover",
        &Auth::None,
        json!({"email": "nobody@example.com"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"status": "ok", "message": "Sent recovery email"})
    );
    w.no_mail().await;
    // No email at all is a bad request, and sends nothing.
    let (status, body) = post(&w.s, "/login/recover", &Auth::None, json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    w.no_mail().await;
    // The receiver still works.
    let mail = w.recover(&w.alice.email.clone()).await;
    assert!(mail.rcpt.iter().any(|r| r.contains("alice@example.com")));
}

/// Sets up the admin and alice on `s` and asks for alice's recovery email, which must be a
/// 503; answers alice and the body.
async fn recovery_unavailable(s: &TestServer) -> (Account, Value) {
    let admin = setup_admin(s).await;
    let alice = create_user(s, &admin.basic(), "alice").await;
    let (status, body) = post(
        s,
        "/login/recover",
        &Auth::None,
        json!({"email": alice.email}),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    (alice, body)
}

#[tokio::test]
async fn recovery_needs_smtp_and_a_secret() {
    // No SMTP settings.
    let s = start(&[], &[("SHARED_SECRET", SECRET)]).await;
    let (alice, body) = recovery_unavailable(&s).await;
    assert!(
        body["code"].is_string() && body["message"].is_string(),
        "{body}"
    );
    let oracle = Oracle::open(&s).await;
    assert!(
        oracle
            .doc("user", &alice.id)
            .await
            .unwrap()
            .get("temp_hash")
            .is_none()
    );

    // SMTP but no SHARED_SECRET: no JWT can be signed, so no email goes out.
    let (port, mut mail) = smtp_receiver().await;
    let url = format!("smtp://127.0.0.1:{port}");
    let s = start(
        &[],
        &[
            ("SMTP_URL", &url),
            ("SMTP_FROM", "noreply@example.com"),
            ("PASSWORD_RECOVERY_URL", RECOVERY_URL),
        ],
    )
    .await;
    recovery_unavailable(&s).await;
    let got = tokio::time::timeout(Duration::from_millis(1000), mail.recv()).await;
    assert!(got.is_err(), "an email was sent: {:?}", got.ok().flatten());
}
