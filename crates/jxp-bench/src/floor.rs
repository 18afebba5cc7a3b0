//! `floor`: this machine's kernel floor for realtime fan-out. One small write to each of N
//! loopback TCP connections, read by a second process (`floor-reader`, this same program): no
//! WebSocket, no JSON, no server. A `burst` run delivers one event to N subscribers with at
//! least one TCP write and one read each, so on the same machine it can never beat this.
//!
//! Two processes because each side holds N sockets and a process may only open so many files.
//! Both use plain blocking sockets; the reader reads the connections in the order they are
//! written, one `read` per message, which is the cheapest reader there is.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::ops::Range;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::json;

use crate::cli::{FloorArgs, FloorReaderArgs};
use crate::procfs;
use crate::realtime::unix_us;
use crate::report::round;

/// Files each process needs besides the connections (listener, pipes, stdio, executable).
const FD_MARGIN: u64 = 64;
/// Pause between the reader's `ready` and the first write, so that it is blocked in its first
/// read (the situation of a subscriber waiting for an event) when the writes start.
const SETTLE: Duration = Duration::from_millis(200);
/// The reader process must have opened every connection within this time.
const CONNECT_LIMIT: Duration = Duration::from_secs(120);
/// Connections the reader may open ahead of the writer's accepts. The listener's queue holds
/// 128: past it the kernel drops handshakes and they complete only after 1 s, 3 s, … retries.
const CONNECT_WINDOW: usize = 32;
/// The writer's answer to a connection's index: filed.
const FILED: u8 = b'+';

/// One measured round, µs from just before the first write.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Round {
    /// Until the last write returned in this process.
    writes_done_us: u64,
    /// Until the reader had the last byte (never less than `writes_done_us`).
    all_read_us: u64,
}

impl Round {
    fn new(t0: u64, writes_done: u64, last_read: u64) -> Self {
        let writes_done_us = writes_done.saturating_sub(t0);
        Round {
            writes_done_us,
            all_read_us: last_read.saturating_sub(t0).max(writes_done_us),
        }
    }
}

/// The writer: accepts the reader's connections, then measures `--rounds` rounds.
pub fn run(args: &FloorArgs) -> Result<()> {
    check_fd_limit(args.conns)?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .context("cannot listen on 127.0.0.1 (any port)")?;
    let addr = listener
        .local_addr()
        .context("cannot read the listener's address")?;
    let mut reader = ReaderProcess::spawn(addr, args)?;
    let started = Instant::now();
    let conns = accept_all(&listener, args.conns, |accepted| {
        if reader.child.try_wait().ok().flatten().is_some() {
            bail!(
                "the reader process ended after {accepted} of {} connections{}",
                args.conns,
                reader.status_note()
            );
        }
        Ok(())
    })?;
    let connect_s = started.elapsed().as_secs_f64();
    drop(listener);

    let slices = split(conns.len(), args.threads as usize);
    let mut rounds = Vec::with_capacity(args.rounds as usize);
    for r in 0..args.rounds {
        let payload = vec![payload_byte(r); args.bytes as usize];
        let measured = measure(&conns, &slices, &payload, &mut reader)
            .with_context(|| format!("round {} of {}", r + 1, args.rounds))?;
        rounds.push(measured);
    }
    reader.finish()?;
    drop(conns);
    report(args, slices.len(), connect_s, &rounds);
    Ok(())
}

/// The reader (hidden `floor-reader`): opens the connections, then per round waits for `go` on
/// stdin, answers `ready`, reads `--bytes` from every connection in order and answers
/// `done <µs since the UNIX epoch when it had the last byte>`. Ends when stdin closes.
pub fn reader(args: &FloorReaderArgs) -> Result<()> {
    if !args.addr.ip().is_loopback() {
        bail!("--addr {} is not a loopback address", args.addr);
    }
    check_fd_limit(args.conns)?;
    let mut conns = Vec::with_capacity(args.conns as usize);
    for i in 0..args.conns {
        let mut s = TcpStream::connect(args.addr)
            .with_context(|| format!("reader: connection {i} to {}", args.addr))?;
        s.set_nodelay(true)
            .with_context(|| format!("reader: TCP_NODELAY on connection {i}"))?;
        // The writer files each connection under its index: both sides then agree on the
        // order whatever order the connections were accepted in.
        s.write_all(&i.to_le_bytes())
            .with_context(|| format!("reader: sending the index of connection {i}"))?;
        conns.push(s);
        if let Some(behind) = conns.len().checked_sub(CONNECT_WINDOW + 1) {
            wait_filed(&mut conns, behind)?;
        }
    }
    for k in conns.len().saturating_sub(CONNECT_WINDOW)..conns.len() {
        wait_filed(&mut conns, k)?;
    }

    let mut stdin = io::stdin().lock();
    let mut stdout = io::stdout().lock();
    let mut buf = vec![0u8; args.bytes as usize];
    let mut line = String::new();
    for r in 0..args.rounds {
        line.clear();
        if stdin.read_line(&mut line).context("reader: stdin")? == 0 {
            return Ok(());
        }
        if line.trim_end() != "go" {
            bail!("reader: expected `go` from the writer, got {line:?}");
        }
        writeln!(stdout, "ready")
            .and_then(|()| stdout.flush())
            .context("reader: stdout")?;
        let expected = payload_byte(r);
        for (i, s) in conns.iter_mut().enumerate() {
            s.read_exact(&mut buf)
                .with_context(|| format!("reader: round {}, connection {i}", r + 1))?;
            if buf.first() != Some(&expected) || buf.last() != Some(&expected) {
                bail!("reader: round {}, connection {i}: unexpected bytes", r + 1);
            }
        }
        let last = unix_us();
        writeln!(stdout, "done {last}")
            .and_then(|()| stdout.flush())
            .context("reader: stdout")?;
    }
    Ok(())
}

/// Reads the writer's `FILED` byte on connection `k`.
fn wait_filed(conns: &mut [TcpStream], k: usize) -> Result<()> {
    let mut ack = [0u8; 1];
    conns
        .get_mut(k)
        .ok_or_else(|| anyhow!("reader: no connection {k}"))?
        .read_exact(&mut ack)
        .with_context(|| format!("reader: waiting for the writer to accept connection {k}"))?;
    if ack != [FILED] {
        bail!("reader: connection {k}: unexpected answer {ack:?} to its index");
    }
    Ok(())
}

fn check_fd_limit(conns: u32) -> Result<()> {
    procfs::check_open_files(
        "--conns",
        conns,
        FD_MARGIN,
        " (the reader process inherits it)",
    )
}

/// The byte every message of round `r` is made of (the reader checks it).
fn payload_byte(r: u32) -> u8 {
    b'a' + (r % 26) as u8
}

/// The reader child process and its stdin/stdout; killed and reaped if dropped unfinished.
struct ReaderProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    reaped: bool,
}

impl ReaderProcess {
    fn spawn(addr: SocketAddr, args: &FloorArgs) -> Result<Self> {
        let exe = std::env::current_exe().context("cannot locate this program's executable")?;
        let mut child = Command::new(&exe)
            .arg("floor-reader")
            .args(["--addr", &addr.to_string()])
            .args(["--conns", &args.conns.to_string()])
            .args(["--bytes", &args.bytes.to_string()])
            .args(["--rounds", &args.rounds.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start the reader process {}", exe.display()))?;
        let (stdin, stdout) = (child.stdin.take(), child.stdout.take());
        let Some(stdout) = stdout else {
            // Cannot happen with Stdio::piped(); still, leave no process behind.
            let _ = child.kill();
            let _ = child.wait();
            bail!("the reader process has no stdout pipe");
        };
        Ok(ReaderProcess {
            child,
            stdin,
            stdout: BufReader::new(stdout),
            reaped: false,
        })
    }

    fn send(&mut self, line: &str) -> Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| anyhow!("the reader's stdin is closed"))?;
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .context("cannot write to the reader process (did it exit? see above)")
    }

    /// The reader's next line, without the line break.
    fn line(&mut self) -> Result<String> {
        let mut line = String::new();
        let n = self
            .stdout
            .read_line(&mut line)
            .context("cannot read from the reader process")?;
        if n == 0 {
            bail!("the reader process ended early{}", self.status_note());
        }
        Ok(line.trim_end().to_owned())
    }

    /// `" (exit status …)"` if the reader has exited.
    fn status_note(&mut self) -> String {
        match self.child.try_wait() {
            Ok(Some(status)) => format!(" ({status}; its error, if any, is above)"),
            _ => String::new(),
        }
    }

    fn kill(&mut self) {
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.reaped = true;
        }
    }

    /// Closes the reader's stdin (its signal to end) and waits for it to exit.
    fn finish(mut self) -> Result<()> {
        drop(self.stdin.take());
        let status = self
            .child
            .wait()
            .context("cannot wait for the reader process")?;
        self.reaped = true;
        if !status.success() {
            bail!("the reader process failed ({status})");
        }
        Ok(())
    }
}

impl Drop for ReaderProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Accepts the reader's `n` connections and puts each at the index the reader sent on it;
/// `check(accepted)` runs whenever no connection is waiting, and may give up.
fn accept_all(
    listener: &TcpListener,
    n: u32,
    mut check: impl FnMut(u32) -> Result<()>,
) -> Result<Vec<TcpStream>> {
    // Non-blocking accept: a reader that failed must not leave this process waiting forever.
    listener
        .set_nonblocking(true)
        .context("cannot make the listener non-blocking")?;
    let deadline = Instant::now() + CONNECT_LIMIT;
    let mut slots: Vec<Option<TcpStream>> = (0..n).map(|_| None).collect();
    let mut accepted = 0u32;
    while accepted < n {
        let mut s = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                check(accepted)?;
                if Instant::now() > deadline {
                    bail!(
                        "only {accepted} of {n} connections within {} s",
                        CONNECT_LIMIT.as_secs()
                    );
                }
                thread::sleep(Duration::from_micros(100));
                continue;
            }
            Err(e) => {
                return Err(e).with_context(|| format!("accept after {accepted} connections"));
            }
        };
        s.set_nonblocking(false)
            .and_then(|()| s.set_nodelay(true))
            .and_then(|()| s.set_read_timeout(Some(CONNECT_LIMIT)))
            .context("cannot configure an accepted connection")?;
        let mut index = [0u8; 4];
        s.read_exact(&mut index)
            .with_context(|| format!("reading the index of accepted connection {accepted}"))?;
        s.set_read_timeout(None)
            .context("cannot configure an accepted connection")?;
        let index = u32::from_le_bytes(index);
        s.write_all(&[FILED])
            .with_context(|| format!("answering connection {index}"))?;
        match slots.get_mut(index as usize) {
            Some(slot @ None) => *slot = Some(s),
            _ => bail!("the reader sent an invalid or repeated connection index {index}"),
        }
        accepted += 1;
    }
    Ok(slots.into_iter().flatten().collect())
}

/// One round: `go`, wait for `ready`, settle, write to every connection, wait for `done`.
fn measure(
    conns: &[TcpStream],
    slices: &[Range<usize>],
    payload: &[u8],
    reader: &mut ReaderProcess,
) -> Result<Round> {
    reader.send("go")?;
    let line = reader.line()?;
    if line != "ready" {
        bail!("the reader said {line:?} instead of `ready`");
    }
    thread::sleep(SETTLE);
    let t0 = unix_us();
    write_slices(conns, slices, payload)?;
    let writes_done = unix_us();
    let last_read = parse_done(&reader.line()?)?;
    Ok(Round::new(t0, writes_done, last_read))
}

/// Writes `payload` to every connection: slice 0 on this thread, each other slice on a thread
/// of its own.
fn write_slices(conns: &[TcpStream], slices: &[Range<usize>], payload: &[u8]) -> Result<()> {
    let write = |range: &Range<usize>| -> Result<()> {
        let part = conns
            .get(range.clone())
            .ok_or_else(|| anyhow!("slice {range:?} is out of range"))?;
        for (i, mut s) in part.iter().enumerate() {
            s.write_all(payload)
                .with_context(|| format!("write to connection {}", range.start + i))?;
        }
        Ok(())
    };
    let write = &write;
    let Some((first, rest)) = slices.split_first() else {
        return Ok(());
    };
    thread::scope(|scope| {
        let helpers: Vec<_> = rest
            .iter()
            .map(|range| scope.spawn(move || write(range)))
            .collect();
        let mut result = write(first);
        for helper in helpers {
            let joined = helper
                .join()
                .unwrap_or_else(|_| Err(anyhow!("a writer thread panicked")));
            result = result.and(joined);
        }
        result
    })
}

/// `n` items in `parts` contiguous, non-empty ranges whose sizes differ by at most one (fewer
/// ranges if `n < parts`).
fn split(n: usize, parts: usize) -> Vec<Range<usize>> {
    let parts = parts.clamp(1, n.max(1));
    let (base, extra) = (n / parts, n % parts);
    let mut start = 0;
    (0..parts)
        .map(|i| {
            let len = base + usize::from(i < extra);
            let range = start..start + len;
            start += len;
            range
        })
        .filter(|r| !r.is_empty())
        .collect()
}

/// The reader's `done <unix_us>` line.
fn parse_done(line: &str) -> Result<u64> {
    line.strip_prefix("done ")
        .and_then(|us| us.parse().ok())
        .ok_or_else(|| anyhow!("the reader said {line:?} instead of `done <µs>`"))
}

/// Median of `values` (mean of the middle two for an even count).
fn median(values: &[u64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_unstable();
    let mid = v.len() / 2;
    match v.len() {
        0 => None,
        n if n % 2 == 1 => v.get(mid).map(|&x| x as f64),
        _ => match (v.get(mid - 1), v.get(mid)) {
            (Some(&a), Some(&b)) => Some((a as f64 + b as f64) / 2.0),
            _ => None,
        },
    }
}

fn ms(us: f64) -> f64 {
    round(us / 1000.0, 3)
}

fn report(args: &FloorArgs, threads: usize, connect_s: f64, rounds: &[Round]) {
    let all_read: Vec<u64> = rounds.iter().map(|r| r.all_read_us).collect();
    let writes_done: Vec<u64> = rounds.iter().map(|r| r.writes_done_us).collect();
    let min = all_read.iter().min().map(|&us| ms(us as f64));
    let med_us = median(&all_read);
    let med = med_us.map(ms);
    let writes_med = median(&writes_done).map(ms);
    let per_message_us = med_us.map(|us| round(us / f64::from(args.conns), 3));
    let out = json!({
        "scenario": "floor",
        "conns": args.conns,
        "bytes": args.bytes,
        "threads": threads,
        "rounds": rounds
            .iter()
            .map(|r| json!({
                "writes_done_ms": ms(r.writes_done_us as f64),
                "all_read_ms": ms(r.all_read_us as f64),
            }))
            .collect::<Vec<_>>(),
        "all_read_ms_min": min,
        "all_read_ms_median": med,
        "per_message_us": per_message_us,
        "writes_done_ms_median": writes_med,
        "connect_s": round(connect_s, 3),
    });
    println!("{out}");
    let text = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"));
    let each: Vec<String> = rounds
        .iter()
        .map(|r| format!("{:.2}", r.all_read_us as f64 / 1000.0))
        .collect();
    eprintln!(
        "[jxp-bench floor] {} loopback TCP connections × {} B, {} writer thread{}: the reader had \
         every message after min {} ms, median {} ms ({} µs per message; writes returned after \
         median {} ms); rounds (ms): {}",
        args.conns,
        args.bytes,
        threads,
        if threads == 1 { "" } else { "s" },
        text(min),
        text(med),
        text(per_message_us),
        text(writes_med),
        each.join(" "),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_into_contiguous_near_equal_ranges() {
        assert_eq!(split(10, 2), vec![0..5, 5..10]);
        assert_eq!(split(10, 3), vec![0..4, 4..7, 7..10]);
        assert_eq!(split(10_000, 1), vec![0..10_000]);
        assert_eq!(split(2, 4), vec![0..1, 1..2]);
        assert_eq!(split(1, 64), vec![0..1]);
        assert!(split(0, 2).is_empty());
    }

    #[test]
    fn parses_the_done_line() -> Result<()> {
        assert_eq!(parse_done("done 1764395397123456")?, 1_764_395_397_123_456);
        for bad in ["", "done", "done ", "done x", "ready", "done -1", "DONE 5"] {
            assert!(parse_done(bad).is_err(), "{bad:?} accepted");
        }
        Ok(())
    }

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[5, 1, 3]), Some(3.0));
        assert_eq!(median(&[4, 1, 3, 2]), Some(2.5));
        assert_eq!(median(&[7]), Some(7.0));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn all_read_is_never_before_the_writes_returned() {
        let r = Round::new(1_000, 36_000, 35_500);
        assert_eq!((r.writes_done_us, r.all_read_us), (35_000, 35_000));
        let r = Round::new(1_000, 30_000, 37_000);
        assert_eq!((r.writes_done_us, r.all_read_us), (29_000, 36_000));
    }

    #[test]
    fn payload_byte_cycles_through_letters() {
        assert_eq!(payload_byte(0), b'a');
        assert_eq!(payload_byte(25), b'z');
        assert_eq!(payload_byte(26), b'a');
    }

    /// The writer's side over a few connections, with a thread as the reader: connections are
    /// filed under the index the reader sent, whatever order they were accepted in.
    #[test]
    fn connections_are_filed_by_index_and_written_in_slices() -> Result<()> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let addr = listener.local_addr()?;
        let n = 5u32;
        let reader = thread::spawn(move || -> Result<Vec<u8>> {
            // Announce the indexes in reverse: connection k is filed at n-1-k.
            let mut conns = Vec::new();
            for k in 0..n {
                let mut s = TcpStream::connect(addr)?;
                s.write_all(&(n - 1 - k).to_le_bytes())?;
                conns.push(s);
            }
            let mut got = Vec::new();
            for s in &mut conns {
                let mut buf = [0u8; 3];
                s.read_exact(&mut buf)?;
                got.extend_from_slice(&buf);
            }
            Ok(got)
        });
        let conns = accept_all(&listener, n, |_| Ok(()))?;
        assert_eq!(conns.len(), 5);
        // A distinct payload per filed index shows where each connection went.
        for (i, mut s) in conns.iter().enumerate() {
            s.write_all(&[b'0' + i as u8])?;
        }
        write_slices(&conns, &split(conns.len(), 2), b"!")?;
        let got = reader
            .join()
            .map_err(|_| anyhow!("reader thread panicked"))??;
        assert_eq!(got, b"+4!+3!+2!+1!+0!");
        Ok(())
    }
}
