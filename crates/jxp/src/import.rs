//! `jxp import <Model> <file>`: newline-delimited JSON, one document per line, written into a
//! model in one transaction. Each line is checked as a POST by an admin is (the core's
//! `import_document`) on every core at once, in chunks, while the store writes what is
//! checked in file order (`Store::import`: on SQLite one prepared insert in one transaction,
//! on PostgreSQL `COPY`). The first bad line, or a unique value the database refuses, stops
//! the import with its line number and the API's message, and nothing is written.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::Instant;

use jxp_core::{App, CoreError};
use jxp_http::{ApiError, json_object};
use jxp_model::Model;
use jxp_store::{ImportDoc, ImportError, ImportStep};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::{Config, open_app};

/// Lines checked per task: enough that handing a chunk to a thread costs little.
const CHUNK_LINES: usize = 1000;
/// A progress line every this many documents.
const PROGRESS_EVERY: u64 = 100_000;

/// Where the documents come from.
#[derive(Debug, Clone)]
pub enum Source {
    Stdin,
    File(PathBuf),
}

impl Source {
    /// `-` is standard input; anything else a file.
    pub fn parse(arg: &Path) -> Self {
        if arg.as_os_str() == "-" {
            Source::Stdin
        } else {
            Source::File(arg.to_owned())
        }
    }

    fn open(&self) -> Result<Box<dyn Read + Send>, ImportFailed> {
        match self {
            Source::Stdin => Ok(Box::new(std::io::stdin())),
            Source::File(path) => std::fs::File::open(path)
                .map(|f| Box::new(f) as Box<dyn Read + Send>)
                .map_err(|e| ImportFailed::Input(format!("cannot open {}: {e}", path.display()))),
        }
    }
}

/// A finished import.
#[derive(Debug, Clone)]
pub struct ImportReport {
    /// The model's slug.
    pub model: String,
    pub count: u64,
    pub seconds: f64,
}

/// Why an import wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum ImportFailed {
    /// A line the API would refuse as a request body: its 1-based number in the input, and
    /// the API's message.
    #[error("line {line}: {message}")]
    Line { line: u64, message: String },
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Start(#[from] crate::Error),
}

/// A chunk of input lines: each with its line number, empty lines left out.
type Lines = Vec<(u64, Vec<u8>)>;

/// A chunk checked: its documents and their line numbers, or the first bad line.
type Checked = Result<(Vec<ImportDoc>, Vec<u64>), ImportFailed>;

/// Imports `source` into the model `name` (its name or slug), all or nothing. `skip_hooks`
/// imports into a model whose creates run hooks, without running them.
pub async fn import(
    config: &Config,
    name: &str,
    source: &Source,
    skip_hooks: bool,
) -> Result<ImportReport, ImportFailed> {
    let input = source.open()?;
    let (app, sqlite) = open_app(config).await?;
    let result = run(&app, name, input, skip_hooks).await;
    // Closed either way, so a server may open the store next.
    if let Some(store) = sqlite {
        store.close().await;
    }
    result
}

async fn run(
    app: &App,
    name: &str,
    input: Box<dyn Read + Send>,
    skip_hooks: bool,
) -> Result<ImportReport, ImportFailed> {
    let model = app
        .import_model(name, skip_hooks)
        .map_err(|e| ImportFailed::Refused(api_message(e)))?;
    let started = Instant::now();
    tracing::info!(model = %model.slug, "import started");
    let (chunks_tx, chunks) = mpsc::channel::<Result<Lines, ImportFailed>>(4);
    let reader = std::thread::Builder::new()
        .name("jxp-import-reader".into())
        .spawn(move || read_lines(input, &chunks_tx))
        .map_err(|e| ImportFailed::Input(format!("cannot start the reader: {e}")))?;
    let (feed, steps) = mpsc::channel::<ImportStep>(8);
    let written = app.import(&model, steps);
    let fed = feed_chunks(app, &model, chunks, feed);
    let (written, fed) = tokio::join!(written, fed);
    let _ = reader.join();
    // A bad line is what stopped the store too (it was abandoned): that is the answer.
    let lines = fed?;
    let imported = written.map_err(|e| match e {
        ImportError::Refused { at, error } => {
            let line = usize::try_from(at).ok().and_then(|i| lines.get(i).copied());
            let message = api_message(CoreError::from(error));
            match line {
                Some(line) => ImportFailed::Line { line, message },
                None => ImportFailed::Refused(message),
            }
        }
        ImportError::Abandoned => ImportFailed::Refused(e.to_string()),
        // A store fault is said in full: the operator running the import is the one to
        // read it.
        ImportError::Store(e) => ImportFailed::Refused(e.to_string()),
    })?;
    let seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        model = %model.slug,
        documents = imported.count,
        seconds = format!("{seconds:.1}"),
        "import committed"
    );
    Ok(ImportReport {
        model: model.slug.clone(),
        count: imported.count,
        seconds,
    })
}

/// Reads the input in chunks of non-empty lines, numbered from 1, until it ends or nobody
/// takes the chunks any more.
fn read_lines(input: Box<dyn Read + Send>, out: &mpsc::Sender<Result<Lines, ImportFailed>>) {
    let mut reader = BufReader::with_capacity(1 << 20, input);
    let mut chunk: Lines = Vec::with_capacity(CHUNK_LINES);
    let mut number: u64 = 0;
    loop {
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {
                number += 1;
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                chunk.push((number, line));
                if chunk.len() == CHUNK_LINES {
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK_LINES));
                    if out.blocking_send(Ok(full)).is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                let _ = out.blocking_send(Err(ImportFailed::Input(format!(
                    "cannot read line {}: {e}",
                    number + 1
                ))));
                return;
            }
        }
    }
    if !chunk.is_empty() {
        let _ = out.blocking_send(Ok(chunk));
    }
}

/// Checks the chunks on as many tasks as there are cores and feeds the store what they
/// answer, in input order; sends `Commit` after the last. Answers the line number of every
/// document fed, to name the line of a document the store refuses. On a bad line the feed is
/// dropped without `Commit`, which rolls the import back.
async fn feed_chunks(
    app: &App,
    model: &std::sync::Arc<Model>,
    mut chunks: mpsc::Receiver<Result<Lines, ImportFailed>>,
    feed: mpsc::Sender<ImportStep>,
) -> Result<Vec<u64>, ImportFailed> {
    let workers = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    let mut in_flight: VecDeque<JoinHandle<Checked>> = VecDeque::new();
    let mut lines: Vec<u64> = Vec::new();
    let mut next_progress = PROGRESS_EVERY;
    let mut input_done = false;
    loop {
        while !input_done && in_flight.len() < workers * 2 {
            match chunks.recv().await {
                Some(chunk) => {
                    let chunk = chunk?;
                    let (app, model) = (app.clone(), model.clone());
                    in_flight.push_back(tokio::spawn(check_chunk(app, model, chunk)));
                }
                None => input_done = true,
            }
        }
        let Some(next) = in_flight.pop_front() else {
            break;
        };
        let (docs, numbers) = next
            .await
            .map_err(|e| ImportFailed::Input(format!("a check failed: {e}")))??;
        lines.extend(numbers);
        if feed.send(ImportStep::Docs(docs)).await.is_err() {
            // The store stopped reading: it refused a document, and says which.
            return Ok(lines);
        }
        let fed = lines.len() as u64;
        if fed >= next_progress {
            tracing::info!(model = %model.slug, documents = fed, "import: documents checked");
            next_progress += PROGRESS_EVERY;
        }
    }
    let _ = feed.send(ImportStep::Commit).await;
    Ok(lines)
}

/// Checks one chunk's lines as POST bodies; stops at the first bad one.
async fn check_chunk(app: App, model: std::sync::Arc<Model>, chunk: Lines) -> Checked {
    let mut docs = Vec::with_capacity(chunk.len());
    let mut numbers = Vec::with_capacity(chunk.len());
    for (line, bytes) in chunk {
        let bad = |message: String| ImportFailed::Line { line, message };
        let body = json_object(&bytes).map_err(|e| bad(e.message))?;
        let doc = app
            .import_document(&model, body)
            .await
            .map_err(|e| bad(api_message(e)))?;
        docs.push(doc);
        numbers.push(line);
    }
    Ok((docs, numbers))
}

/// The message the API answers a core error with.
fn api_message(e: CoreError) -> String {
    ApiError::from(e).message
}

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
mod tests {
    use super::*;

    /// The chunks `read_lines` sends for `input`.
    fn chunks_of(input: &'static [u8]) -> Vec<Lines> {
        let (tx, mut rx) = mpsc::channel(1024);
        read_lines(Box::new(input), &tx);
        drop(tx);
        let mut out = Vec::new();
        while let Ok(chunk) = rx.try_recv() {
            out.push(chunk.unwrap());
        }
        out
    }

    #[test]
    fn lines_are_numbered_in_the_file_and_empty_ones_left_out() {
        let chunks = chunks_of(b"\n{\"a\":1}\r\n  \t\n\r\n{\"b\":2}");
        assert_eq!(chunks.len(), 1);
        let numbers: Vec<u64> = chunks[0].iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, [2, 5]);
        assert_eq!(chunks[0][1].1, b"{\"b\":2}");
        assert!(chunks_of(b"").is_empty());
        assert!(chunks_of(b"\n\n").is_empty());
    }

    #[test]
    fn a_long_input_comes_in_chunks_of_whole_lines() {
        let text: &'static str = Box::leak(
            (0..2500)
                .map(|i| format!("{{\"i\":{i}}}\n"))
                .collect::<String>()
                .into_boxed_str(),
        );
        let chunks = chunks_of(text.as_bytes());
        let sizes: Vec<usize> = chunks.iter().map(Vec::len).collect();
        assert_eq!(sizes, [CHUNK_LINES, CHUNK_LINES, 500]);
        assert_eq!(chunks[2][499].0, 2500);
    }

    #[test]
    fn a_dash_is_standard_input() {
        assert!(matches!(Source::parse(Path::new("-")), Source::Stdin));
        assert!(matches!(
            Source::parse(Path::new("a.ndjson")),
            Source::File(_)
        ));
    }
}
