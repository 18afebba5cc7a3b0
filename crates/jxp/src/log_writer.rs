//! Where the binary's log lines go: stderr, through a shared buffer. With the access log on
//! there is a line per request, and a system call per line on the request's thread (or a
//! wake-up of a writer thread per line) costs more than the request's own logging; here a line
//! is a copy into the buffer under a lock, and the buffer is written out (after the lock is let
//! go) when it fills, every 50 ms by a flusher thread, and at once for warnings and errors, so
//! those are on stderr before anything that follows them can stop the process. The access
//! log's lines, formatted by `jxp_http` without a `tracing` event, come through the same
//! buffer, so lines never interleave.

use std::io::{self, Write};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// Bytes held before they are written out whatever the time.
const HIGH_WATER: usize = 32 * 1024;
/// How long an info line may wait in the buffer.
const FLUSH_EVERY: Duration = Duration::from_millis(50);

/// The log's destination: stderr behind a buffer.
#[derive(Clone)]
pub struct BufferedStderr {
    buffer: Arc<Mutex<Lines>>,
}

/// The lines waiting to be written, and the emptied buffer of the last write-out, kept so
/// that a write-out neither allocates a buffer nor frees one.
struct Lines {
    waiting: Vec<u8>,
    spare: Vec<u8>,
}

/// Writes the buffer out when dropped (at the end of `run`), so no line is left behind.
pub struct FlushOnDrop(BufferedStderr);

impl Drop for FlushOnDrop {
    fn drop(&mut self) {
        self.0.flush_now();
    }
}

impl BufferedStderr {
    /// The writer and the guard that flushes it at the end; starts the flusher thread.
    pub fn start() -> (Self, FlushOnDrop) {
        let out = BufferedStderr {
            buffer: Arc::new(Mutex::new(Lines {
                waiting: Vec::with_capacity(HIGH_WATER),
                spare: Vec::new(),
            })),
        };
        let flusher = out.clone();
        // A detached thread: it sleeps, and the process ending ends it.
        let _ = std::thread::Builder::new()
            .name("jxp-log".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(FLUSH_EVERY);
                    flusher.flush_now();
                }
            });
        (out.clone(), FlushOnDrop(out))
    }

    /// Appends an info line, written whole (the access log's, formatted by `jxp_http`).
    pub fn append(&self, line: &[u8]) {
        let _ = LineWriter {
            buffer: &self.buffer,
            urgent: false,
        }
        .write(line);
    }

    fn flush_now(&self) {
        write_out(&self.buffer, jxp_model::sync::lock(&self.buffer));
    }
}

/// Writes out and empties the locked buffer; a log that cannot be written has nowhere to say
/// so. The bytes are taken out and written after the buffer's lock is let go, so other threads
/// go on appending meanwhile; stderr's lock is taken before, so whoever takes the next bytes
/// out writes them after these.
fn write_out(buffer: &Mutex<Lines>, mut lines: MutexGuard<'_, Lines>) {
    if lines.waiting.is_empty() {
        return;
    }
    let spare = std::mem::take(&mut lines.spare);
    let mut out = std::mem::replace(&mut lines.waiting, spare);
    let mut stderr = io::stderr().lock();
    drop(lines);
    let _ = stderr.write_all(&out);
    drop(stderr);
    out.clear();
    jxp_model::sync::lock(buffer).spare = out;
}

/// One line's writer: appends to the buffer; `urgent` ones (warnings and errors) go out at once.
pub struct LineWriter<'a> {
    buffer: &'a Mutex<Lines>,
    urgent: bool,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut lines = jxp_model::sync::lock(self.buffer);
        lines.waiting.extend_from_slice(bytes);
        if self.urgent || lines.waiting.len() >= HIGH_WATER {
            write_out(self.buffer, lines);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BufferedStderr {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> LineWriter<'a> {
        LineWriter {
            buffer: &self.buffer,
            urgent: true,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> LineWriter<'a> {
        LineWriter {
            buffer: &self.buffer,
            urgent: *meta.level() <= Level::WARN,
        }
    }
}
