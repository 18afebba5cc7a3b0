//! Accepting and serving TCP connections, with the limits that keep clients from holding the
//! server's sockets for ever: a header read timeout (hyper's), a keep-alive idle timeout, a
//! cap on the connections one client address holds open, and a back-off when accepting fails
//! for want of file descriptors. A WebSocket leaves all of this at its upgrade: it has its own
//! pings, idle timeout and connection cap.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use jxp_model::sync::lock;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::ApiError;

/// The connection limits, from [`crate::HttpSettings`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub header_timeout: Duration,
    pub keep_alive_timeout: Duration,
    pub max_per_client: usize,
}

/// Serves `router` on every connection `listener` accepts until `shutdown` resolves, then
/// lets open connections finish their requests and waits for them.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let (closing, closing_rx) = watch::channel(());
    let clients = Arc::new(Clients::new(limits.max_per_client));
    let mut backoff = Backoff::default();
    let mut shutdown = pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (tcp, addr) = match accepted {
            Ok(pair) => pair,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                let (pause, report) = backoff.failed(Instant::now());
                if let Some(count) = report {
                    tracing::error!(error = %e, failures = count, "accept error; pausing accepts");
                }
                tokio::time::sleep(pause).await;
                continue;
            }
        };
        backoff.succeeded();
        let Some(slot) = clients.admit(addr.ip()) else {
            refuse(&tcp);
            continue;
        };
        // Small responses and pushed events go out at once instead of waiting on Nagle's
        // algorithm.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let router = router.clone();
        let closing = closing_rx.clone();
        tokio::spawn(async move {
            serve_one(tcp, addr, router, limits, closing).await;
            drop(slot);
        });
    }
    drop(listener);
    drop(closing_rx);
    // Every connection holds a receiver: they all see the change, and `closed` resolves when
    // the last has finished.
    let _ = closing.send(());
    closing.closed().await;
    Ok(())
}

/// Errors about one connection, not the listener: the next accept may well succeed.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Answers a connection over its client's cap with a 503 if its socket takes it at once, and
/// closes it: the refusal never waits on the client.
fn refuse(tcp: &TcpStream) {
    static ANSWER: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let answer = ANSWER.get_or_init(|| {
        let body = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many connections from this address",
        )
        .body()
        .to_string();
        format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    });
    let _ = tcp.try_write(answer);
    tracing::debug!("refused a connection over its client's cap");
}

/// One connection, until it ends, idles past the keep-alive timeout, upgrades to a WebSocket,
/// or finishes its requests after the server began to shut down.
async fn serve_one(
    tcp: TcpStream,
    addr: SocketAddr,
    router: Router,
    limits: Limits,
    mut closing: watch::Receiver<()>,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        tcp,
        activity: activity.clone(),
    });
    let tower = TowerToHyperService::new(router);
    let busy_with = activity.clone();
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(addr));
        let busy = busy_with.begin();
        let answer = hyper::service::Service::call(&tower, req);
        async move {
            let answer = answer.await;
            drop(busy);
            answer
        }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let mut conn = pin!(builder.serve_connection(io, service).with_upgrades());
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        }
        _ = closing.changed() => {
            conn.as_mut().graceful_shutdown();
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        }
        // Dropping the connection closes its socket.
        () = activity.idle(limits.keep_alive_timeout) => {}
    }
}

/// When a connection last moved bytes, and how many of its requests are being answered.
struct Activity {
    start: Instant,
    /// Milliseconds from `start` to the last read or write.
    last_ms: AtomicU64,
    busy: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            busy: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }

    /// Marks a request as being answered until the guard drops.
    fn begin(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Ordering::Relaxed);
        Busy(self.clone())
    }

    /// Resolves once no request is being answered and no byte has moved for `limit`. A
    /// request's answer, however long it takes, does not count as idle time.
    async fn idle(&self, limit: Duration) {
        loop {
            let due = self.last() + limit;
            if self.busy.load(Ordering::Relaxed) == 0 && Instant::now() >= due {
                return;
            }
            let next = due.max(Instant::now() + limit.min(Duration::from_secs(1)));
            tokio::time::sleep_until(next).await;
        }
    }
}

/// A request being answered.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The socket, noting every read and write in the connection's [`Activity`].
struct Watched {
    tcp: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.tcp).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.tcp).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// The HTTP connections each client address holds open.
struct Clients {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl Clients {
    fn new(max: usize) -> Self {
        Clients {
            max: max.max(1),
            open: Mutex::new(HashMap::new()),
        }
    }

    /// A place for one more connection of `ip`, or `None` when it holds its maximum.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let ip = ip.to_canonical();
        let mut open = lock(&self.open);
        let count = open.entry(ip).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(Slot {
            clients: self.clone(),
            ip,
        })
    }

    #[cfg(test)]
    fn count(&self, ip: IpAddr) -> usize {
        lock(&self.open).get(&ip).copied().unwrap_or(0)
    }
}

/// One admitted connection; its place is freed when it drops.
struct Slot {
    clients: Arc<Clients>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = lock(&self.clients.open);
        if let Some(count) = open.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Pacing of accepts that fail for a reason other than the connection (out of file
/// descriptors, most often): the listener pauses, longer while the failures go on, and the
/// error is logged at most once per [`Backoff::REPORT_EVERY`] with the count since the last line.
#[derive(Debug, Default)]
struct Backoff {
    pause: Duration,
    last_report: Option<Instant>,
    failures: u64,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(10);
    const MOST: Duration = Duration::from_secs(1);
    const REPORT_EVERY: Duration = Duration::from_secs(10);

    /// How long to pause after a failed accept at `now`, and, when it is time to log, how
    /// many failures the line reports.
    fn failed(&mut self, now: Instant) -> (Duration, Option<u64>) {
        self.pause = if self.pause.is_zero() {
            Self::FIRST
        } else {
            (self.pause * 2).min(Self::MOST)
        };
        self.failures += 1;
        let due = self
            .last_report
            .is_none_or(|last| now.duration_since(last) >= Self::REPORT_EVERY);
        let report = due.then(|| {
            self.last_report = Some(now);
            std::mem::take(&mut self.failures)
        });
        (self.pause, report)
    }

    /// An accept succeeded: the next failure pauses briefly again.
    fn succeeded(&mut self) {
        self.pause = Duration::ZERO;
    }
}

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_holds_at_most_its_cap_and_a_closed_connection_frees_its_place() {
        let clients = Arc::new(Clients::new(2));
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = clients.admit(a).unwrap();
        let _second = clients.admit(a).unwrap();
        assert!(clients.admit(a).is_none(), "the third is refused");
        assert!(
            clients.admit(b).is_some(),
            "another address is not affected"
        );
        drop(first);
        assert_eq!(clients.count(a), 1);
        let _again = clients.admit(a).expect("a freed place is taken again");
        // An IPv4 client seen through an IPv6 socket is the same client.
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert!(clients.admit(mapped).is_none());
    }

    #[test]
    fn the_last_connection_of_an_address_forgets_it() {
        let clients = Arc::new(Clients::new(4));
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        drop(clients.admit(a));
        assert!(lock(&clients.open).is_empty());
    }

    #[test]
    fn failed_accepts_pause_longer_and_log_once_per_period() {
        let mut b = Backoff::default();
        let t0 = Instant::now();
        assert_eq!(b.failed(t0), (Backoff::FIRST, Some(1)));
        let mut pause = Backoff::FIRST;
        for i in 1..20 {
            let (p, report) = b.failed(t0 + Duration::from_millis(i));
            assert!(p >= pause && p <= Backoff::MOST);
            assert_eq!(report, None, "failure {i} is not logged again");
            pause = p;
        }
        assert_eq!(pause, Backoff::MOST);
        // The next line, a period later, counts the failures it did not log.
        let (_, report) = b.failed(t0 + Backoff::REPORT_EVERY);
        assert_eq!(report, Some(20));
        b.succeeded();
        assert_eq!(b.failed(t0 + Backoff::REPORT_EVERY).0, Backoff::FIRST);
    }
}
