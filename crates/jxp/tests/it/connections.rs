//! Connection limits, over raw TCP: clients that stop mid-header or mid-body, idle keep-alive
//! connections, the per-client connection cap, and a server that keeps answering while many
//! connections sit idle.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

use crate::harness::TestServer;

/// How long something the server must do may take before the test fails.
const WAIT: Duration = Duration::from_secs(10);

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n";

async fn connect(s: &TestServer) -> TcpStream {
    TcpStream::connect(s.base.trim_start_matches("http://"))
        .await
        .expect("connect")
}

/// Reads one response: its status line and headers, then `content-length` bytes of body.
/// `None` if the connection ends (or fails) before a whole response.
async fn read_response(tcp: &mut TcpStream) -> Option<(u16, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if buf.len() >= end + 4 + len {
                let status = head.get(9..12)?.parse().ok()?;
                let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned();
                return Some((status, body));
            }
        }
        match tcp.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Reads until the server closes the connection, within `WAIT`; answers what it read and how
/// long that took. Fails the test if the connection is still open by then.
async fn closed_by_server(tcp: &mut TcpStream) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match timeout(WAIT, tcp.read(&mut chunk)).await {
            Err(_) => panic!(
                "the connection is still open after {WAIT:?} (read {:?})",
                String::from_utf8_lossy(&got)
            ),
            Ok(Ok(0) | Err(_)) => return (got, started.elapsed()),
            Ok(Ok(n)) => got.extend_from_slice(&chunk[..n]),
        }
    }
}

async fn healthz(tcp: &mut TcpStream) -> Option<(u16, String)> {
    tcp.write_all(HEALTHZ).await.ok()?;
    timeout(WAIT, read_response(tcp)).await.ok()?
}

#[tokio::test]
async fn a_client_that_stops_mid_header_is_closed() {
    let s = TestServer::open_with(&[
        ("HTTP_HEADER_TIMEOUT", "1"),
        ("HTTP_KEEP_ALIVE_TIMEOUT", "60"),
    ])
    .await;
    let mut tcp = connect(&s).await;
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: te")
        .await
        .unwrap();
    let (got, after) = closed_by_server(&mut tcp).await;
    assert!(
        !got.starts_with(b"HTTP/1.1 200"),
        "a half header is not answered"
    );
    assert!(after < Duration::from_secs(5), "closed after {after:?}");
    // A whole request on another connection is still answered.
    let mut other = connect(&s).await;
    assert_eq!(healthz(&mut other).await.map(|r| r.0), Some(200));
}

#[tokio::test]
async fn a_client_that_stops_mid_body_gets_408() {
    let s = TestServer::open_with(&[("HTTP_BODY_TIMEOUT", "1")]).await;
    let mut tcp = connect(&s).await;
    tcp.write_all(
        b"POST /api/test HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{\"foo\":",
    )
    .await
    .unwrap();
    let started = Instant::now();
    let (status, body) = timeout(WAIT, read_response(&mut tcp))
        .await
        .expect("an answer within the wait")
        .expect("an answer before the connection closes");
    assert_eq!(status, 408, "{body}");
    assert!(body.contains("RequestTimeout"), "{body}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // The rest of that request never comes: the connection is not reused.
    closed_by_server(&mut tcp).await;
    // Nothing was stored.
    let mut other = connect(&s).await;
    other
        .write_all(b"GET /api/test HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let (status, body) = read_response(&mut other).await.unwrap();
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"data":[],"limit":100,"page":1}"#)
    );
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_the_keep_alive_timeout() {
    let s = TestServer::open_with(&[
        ("HTTP_KEEP_ALIVE_TIMEOUT", "1"),
        ("HTTP_HEADER_TIMEOUT", "60"),
    ])
    .await;
    // Idle after an answer.
    let mut kept = connect(&s).await;
    assert_eq!(healthz(&mut kept).await.map(|r| r.0), Some(200));
    assert_eq!(
        healthz(&mut kept).await.map(|r| r.0),
        Some(200),
        "the connection is kept alive between requests"
    );
    // Idle from the start: it never says anything.
    let mut silent = connect(&s).await;
    let (got, after) = closed_by_server(&mut kept).await;
    assert!(
        got.is_empty() && after < Duration::from_secs(5),
        "{after:?}"
    );
    let (got, after) = closed_by_server(&mut silent).await;
    assert!(
        got.is_empty() && after < Duration::from_secs(5),
        "{after:?}"
    );
}

#[tokio::test]
async fn a_slow_answer_is_not_idle_time() {
    // A request whose body arrives in pieces, each within the keep-alive timeout but the whole
    // longer than it, is answered: only silence between requests counts.
    let s = TestServer::open_with(&[
        ("HTTP_KEEP_ALIVE_TIMEOUT", "1"),
        ("HTTP_BODY_TIMEOUT", "30"),
    ])
    .await;
    let mut tcp = connect(&s).await;
    let body = br#"{"foo":"slow"}"#;
    tcp.write_all(
        format!(
            "POST /api/test HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    for piece in body.chunks(5) {
        // Pauses longer than the keep-alive timeout, in total, while a request is open.
        tokio::time::sleep(Duration::from_millis(600)).await;
        tcp.write_all(piece).await.unwrap();
    }
    let (status, answer) = timeout(WAIT, read_response(&mut tcp))
        .await
        .unwrap()
        .expect("an answer");
    assert_eq!(status, 200, "{answer}");
}

#[tokio::test]
async fn a_client_over_its_connection_cap_is_refused_until_one_closes() {
    let s = TestServer::open_with(&[("HTTP_MAX_CONNECTIONS_PER_CLIENT", "3")]).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut tcp = connect(&s).await;
        assert_eq!(healthz(&mut tcp).await.map(|r| r.0), Some(200));
        open.push(tcp);
    }
    let mut fourth = connect(&s).await;
    let (got, _) = closed_by_server(&mut fourth).await;
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 503"), "{got}");
    assert!(got.contains("too many connections"), "{got}");
    // The three still work.
    for tcp in &mut open {
        assert_eq!(healthz(tcp).await.map(|r| r.0), Some(200));
    }
    // Once one closes, a new connection is served again: as soon as the server has seen the
    // close, which the loop waits for (bounded).
    drop(open.pop());
    let deadline = Instant::now() + WAIT;
    loop {
        let mut tcp = connect(&s).await;
        if healthz(&mut tcp).await.map(|r| r.0) == Some(200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no connection served again within {WAIT:?}"
        );
    }
}

#[tokio::test]
async fn the_server_answers_while_many_connections_sit_idle_then_closes_them() {
    const IDLE: usize = 200;
    let s = TestServer::open_with(&[
        ("HTTP_MAX_CONNECTIONS_PER_CLIENT", "300"),
        ("HTTP_HEADER_TIMEOUT", "3"),
        ("HTTP_KEEP_ALIVE_TIMEOUT", "3"),
    ])
    .await;
    let mut idle = Vec::with_capacity(IDLE);
    for i in 0..IDLE {
        let mut tcp = connect(&s).await;
        // Half of them stop mid-header, the others never send anything.
        if i % 2 == 0 {
            tcp.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        }
        idle.push(tcp);
    }
    let mut tcp = connect(&s).await;
    assert_eq!(
        healthz(&mut tcp).await.map(|r| r.0),
        Some(200),
        "/healthz answers while {IDLE} connections sit idle"
    );
    for (i, tcp) in idle.iter_mut().enumerate() {
        let (got, _) = closed_by_server(tcp).await;
        assert!(
            !got.starts_with(b"HTTP/1.1 200"),
            "idle connection {i} got an answer"
        );
    }
}
