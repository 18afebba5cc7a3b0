//! The close handshake (RFC 6455 §5.5.1, §7): a client's close frame is echoed before the
//! server closes the socket, and a client that breaks the protocol is told why with 1002 or
//! 1007 before it. The bad frames are written as raw bytes after an upgrade made by hand:
//! a WebSocket client library will not send them.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::client::{Ending, WAIT, WsClient};
use super::support::world;
use crate::harness::TestServer;

#[tokio::test]
async fn a_client_close_is_echoed_before_the_socket_closes() {
    let w = world(&[]).await;
    for code in [1000, 1001, 4000] {
        let mut c = WsClient::connect(&w.s).await;
        c.assert_alive().await;
        c.send_close(code).await;
        let ending = c.ending(WAIT).await;
        assert_eq!(ending, Ending::Closed(Some(code)), "{ending}");
    }
}

/// A socket upgraded to a WebSocket by hand.
async fn upgraded(s: &TestServer) -> TcpStream {
    let mut tcp = TcpStream::connect(s.base.trim_start_matches("http://"))
        .await
        .unwrap();
    tcp.write_all(
        b"GET /websocket HTTP/1.1\r\nHost: test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .unwrap();
    // The answer's head, a byte at a time so that nothing after it is consumed.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let byte = timeout(WAIT, tcp.read_u8()).await.unwrap().unwrap();
        head.push(byte);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
    tcp
}

/// A frame with first byte `b0` (FIN, RSV bits, opcode) around `payload`, masked as a client
/// must unless `masked` is false.
fn frame(b0: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mask_bit = if masked { 0x80 } else { 0 };
    let mut out = vec![b0];
    match payload.len() {
        n @ 0..=125 => out.push(mask_bit | n as u8),
        n => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    if !masked {
        out.extend_from_slice(payload);
        return out;
    }
    let key = [0x12, 0x34, 0x56, 0x78];
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

/// Reads the server's frames until its close frame, within `WAIT`; answers its code (`None`
/// for a close frame without one). Fails the test if the socket ends without a close frame.
async fn close_code(tcp: &mut TcpStream) -> Option<u16> {
    timeout(WAIT, async {
        loop {
            let b0 = tcp
                .read_u8()
                .await
                .expect("a close frame before the socket ends");
            let b1 = tcp.read_u8().await.unwrap();
            assert_eq!(b1 & 0x80, 0, "the server's frames are not masked");
            let len = match b1 & 0x7f {
                126 => u64::from(tcp.read_u16().await.unwrap()),
                127 => tcp.read_u64().await.unwrap(),
                n => u64::from(n),
            };
            let mut payload = vec![0; usize::try_from(len).unwrap()];
            tcp.read_exact(&mut payload).await.unwrap();
            if b0 & 0x0f == 0x8 {
                return (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
            }
        }
    })
    .await
    .expect("a close frame within the wait")
}

/// Closes the client's side, as a client does after the server's close frame, and reads until
/// the server closes the socket, within `WAIT`.
async fn server_closes(tcp: &mut TcpStream) {
    tcp.shutdown().await.unwrap();
    let mut rest = Vec::new();
    let read = timeout(WAIT, tcp.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the socket is still open after {WAIT:?}");
}

#[tokio::test]
async fn a_raw_close_frame_is_echoed_with_its_code() {
    let w = world(&[]).await;
    let mut tcp = upgraded(&w.s).await;
    let mut payload = 1000u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"bye");
    tcp.write_all(&frame(0x88, &payload, true)).await.unwrap();
    assert_eq!(close_code(&mut tcp).await, Some(1000));
    server_closes(&mut tcp).await;
}

#[tokio::test]
async fn protocol_violations_are_answered_with_1002_or_1007() {
    let w = world(&[]).await;
    let ping = br#"{"action":"ping","msg_id":1}"#;
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("an unmasked frame", frame(0x81, ping, false), 1002),
        ("RSV1 set", frame(0xc1, ping, true), 1002),
        ("RSV2 set", frame(0xa1, ping, true), 1002),
        ("RSV3 set", frame(0x91, ping, true), 1002),
        ("a reserved data opcode", frame(0x83, ping, true), 1002),
        ("a reserved control opcode", frame(0x8b, b"", true), 1002),
        (
            "a ping over 125 bytes",
            frame(0x89, &[b'x'; 126], true),
            1002,
        ),
        ("a fragmented ping", frame(0x09, b"x", true), 1002),
        ("a continuation of nothing", frame(0x80, ping, true), 1002),
        (
            "text that is not UTF-8",
            frame(0x81, &[b'{', 0xff, 0xfe], true),
            1007,
        ),
        (
            "fragmented text that is not UTF-8",
            [frame(0x01, b"{\xce", true), frame(0x80, b"\xff}", true)].concat(),
            1007,
        ),
        (
            "a close frame with a one-byte payload",
            frame(0x88, &[3], true),
            1002,
        ),
    ];
    for (what, bytes, expected) in cases {
        let mut tcp = upgraded(&w.s).await;
        tcp.write_all(&bytes).await.unwrap();
        assert_eq!(close_code(&mut tcp).await, Some(expected), "{what}");
        server_closes(&mut tcp).await;
    }
    // A well-formed request on a fresh socket is still answered.
    let mut c = WsClient::connect(&w.s).await;
    c.assert_alive().await;
}
