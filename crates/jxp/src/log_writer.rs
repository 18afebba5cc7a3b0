//! Where the binary's log lines go: stderr, through a buffer per thread. With the access log
//! on there is a line per request, and a system call per line on the request's thread (or a
//! wake-up of a writer thread per line) costs more than the request's own logging; so does one
//! buffer shared by every thread, whose lock and bytes move between cores with each line. Here
//! a line is a copy into its thread's own buffer, and a buffer is written out when it fills,
//! every 50 ms by a flusher thread, when its thread ends, and at the end of `run`.
//!
//! A thread's lines keep their order; lines of different threads may be written up to 50 ms
//! apart from the order of their times, as with a web server whose workers each buffer their
//! access log. A warning or an error writes every buffer out before itself, at once, so it is
//! on stderr before anything that follows it can stop the process, and after everything
//! logged before it. The access log's lines, formatted by `jxp_http` without a `tracing`
//! event, come through the same buffers, so lines never interleave.
//!
//! Lock order: stderr's lock before any buffer's, and the list of buffers alone.

use std::io::{self, StderrLock, Write};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use jxp_model::sync::lock;
use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// Bytes a thread holds before it writes them out whatever the time.
const HIGH_WATER: usize = 32 * 1024;
/// How long an info line may wait in its buffer.
const FLUSH_EVERY: Duration = Duration::from_millis(50);

/// The log's destination: stderr, behind the buffers of the threads that log.
#[derive(Clone, Copy)]
pub struct BufferedStderr;

/// One thread's lines waiting to be written, and the emptied buffer of its last write-out,
/// kept so that a write-out neither allocates a buffer nor frees one.
#[derive(Default)]
struct Lines {
    waiting: Vec<u8>,
    spare: Vec<u8>,
}

type Buffer = Arc<Mutex<Lines>>;

/// Every logging thread's buffer, for the flusher and for warnings.
static BUFFERS: Mutex<Vec<Buffer>> = Mutex::new(Vec::new());

/// The calling thread's buffer: listed in [`BUFFERS`] when the thread first logs, written out
/// and taken off the list when the thread ends.
struct Own(Buffer);

impl Own {
    fn new() -> Self {
        let buffer = Buffer::default();
        lock(&BUFFERS).push(Arc::clone(&buffer));
        Own(buffer)
    }
}

impl Drop for Own {
    fn drop(&mut self) {
        write_out(&self.0, &mut io::stderr().lock());
        lock(&BUFFERS).retain(|b| !Arc::ptr_eq(b, &self.0));
    }
}

thread_local! {
    static OWN: Own = Own::new();
}

/// Writes out every buffer when dropped (at the end of `run`), so no line is left behind.
pub struct FlushOnDrop;

impl Drop for FlushOnDrop {
    fn drop(&mut self) {
        write_out_all(&mut io::stderr().lock());
    }
}

impl BufferedStderr {
    /// The writer and the guard that writes out what is left at the end; starts the flusher
    /// thread (once a process).
    pub fn start() -> (Self, FlushOnDrop) {
        static FLUSHER: Once = Once::new();
        FLUSHER.call_once(|| {
            // A detached thread: it sleeps, and the process ending ends it.
            let _ = std::thread::Builder::new()
                .name("jxp-log".into())
                .spawn(|| {
                    loop {
                        std::thread::sleep(FLUSH_EVERY);
                        write_out_all(&mut io::stderr().lock());
                    }
                });
        });
        (BufferedStderr, FlushOnDrop)
    }

    /// Appends an info line, written whole (the access log's, formatted by `jxp_http`).
    pub fn append(&self, line: &[u8]) {
        append(line, false);
    }
}

/// Appends `bytes` to the calling thread's buffer, writing it out when full; `urgent` bytes
/// go out at once, after every buffer.
fn append(bytes: &[u8], urgent: bool) {
    if urgent {
        let mut stderr = io::stderr().lock();
        write_out_all(&mut stderr);
        let _ = stderr.write_all(bytes);
        return;
    }
    let full = OWN.try_with(|own| {
        let mut lines = lock(&own.0);
        lines.waiting.extend_from_slice(bytes);
        lines.waiting.len() >= HIGH_WATER
    });
    match full {
        Ok(false) => {}
        Ok(true) => {
            let _ = OWN.try_with(|own| write_out(&own.0, &mut io::stderr().lock()));
        }
        // The thread is ending and its buffer is gone: the line goes straight out.
        Err(_) => {
            let _ = io::stderr().lock().write_all(bytes);
        }
    }
}

/// Writes out every thread's buffer, in the order the threads first logged.
fn write_out_all(stderr: &mut StderrLock<'_>) {
    let buffers = lock(&BUFFERS).clone();
    for buffer in &buffers {
        write_out(buffer, stderr);
    }
}

/// Writes out and empties one buffer, with stderr locked by the caller; a log that cannot be
/// written has nowhere to say so. The bytes are written after the buffer's lock is let go, so
/// its thread goes on appending meanwhile.
fn write_out(buffer: &Mutex<Lines>, stderr: &mut StderrLock<'_>) {
    let mut out = {
        let mut lines = lock(buffer);
        if lines.waiting.is_empty() {
            return;
        }
        let spare = std::mem::take(&mut lines.spare);
        std::mem::replace(&mut lines.waiting, spare)
    };
    let _ = stderr.write_all(&out);
    out.clear();
    lock(buffer).spare = out;
}

/// One line's writer: appends to the thread's buffer; `urgent` ones (warnings and errors) go
/// out at once.
pub struct LineWriter {
    urgent: bool,
}

impl Write for LineWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        append(bytes, self.urgent);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BufferedStderr {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        LineWriter { urgent: true }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> LineWriter {
        LineWriter {
            urgent: *meta.level() <= Level::WARN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Taken by each test: a warning writes out every thread's buffer, the other test's too.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

    /// The calling thread's buffer.
    fn own() -> Buffer {
        OWN.with(|own| Arc::clone(&own.0))
    }

    // These write a few short lines to the test process's stderr.

    #[test]
    fn a_thread_keeps_its_lines_until_it_ends() {
        let _serial = lock(&ONE_AT_A_TIME);
        // No flusher thread: nothing writes the buffers out but what the test does.
        let writer = BufferedStderr;
        let ended = std::thread::spawn(move || {
            writer.append(b"log_writer test: first\n");
            writer.append(b"log_writer test: second\n");
            let buffer = own();
            assert_eq!(
                lock(&buffer).waiting,
                b"log_writer test: first\nlog_writer test: second\n"
            );
            buffer
        })
        .join()
        .unwrap();
        // The thread's end wrote its lines out and took its buffer off the list.
        assert!(lock(&ended).waiting.is_empty());
        assert!(!lock(&BUFFERS).iter().any(|b| Arc::ptr_eq(b, &ended)));
    }

    #[test]
    fn an_urgent_line_writes_every_buffer_out_first() {
        let _serial = lock(&ONE_AT_A_TIME);
        // No flusher thread: nothing writes the buffers out but what the test does.
        let writer = BufferedStderr;
        let (listed, appended) = std::sync::mpsc::channel();
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || {
            writer.append(b"log_writer test: the other thread's line\n");
            let _ = listed.send(own());
            // Alive, and its buffer listed, until the warning has been written.
            let _ = wait.recv();
        });
        let theirs = appended.recv().unwrap();
        writer.append(b"log_writer test: this thread's line\n");
        assert!(!lock(&theirs).waiting.is_empty());
        assert!(!lock(&own()).waiting.is_empty());
        let mut warning = writer.make_writer();
        warning.write_all(b"log_writer test: a warning\n").unwrap();
        assert!(lock(&theirs).waiting.is_empty());
        assert!(lock(&own()).waiting.is_empty());
        drop(go);
        other.join().unwrap();
    }
}
