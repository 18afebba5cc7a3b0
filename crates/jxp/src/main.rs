//! The `jxp` command line: `serve`, `init`, `add-admin`, `backup`, `restore`, `indexes`,
//! `import`.

mod log_writer;
mod settings_args;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use jxp::{Config, InitFile, LogFormat};
use log_writer::{BufferedStderr, FlushOnDrop};
use settings_args::SettingArgs;

/// The server's allocator. A request allocates and frees a few dozen small blocks on one
/// worker, and a script hook's call crosses to a script thread and back; glibc's `malloc` and
/// `free` took about a sixth of a cached GET, and about 1.4 µs more with a hook, mostly in
/// their slow paths (blocks passed between the worker and the script thread). With mimalloc
/// (built without transparent huge pages, which took idle memory from 22 to 41 MB) the same
/// GET runs about 12% faster and a hook's hand-off costs a third less;
/// `crates/jxp-bench/README.md` has the figures.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "jxp",
    version,
    about = "Write models, get an API: REST, auth and a realtime feed"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API. Every setting is a flag, an environment variable or a line of .env
    /// (in that order of precedence).
    Serve(SettingArgs),
    /// Write a runnable project (a commented .env, .gitignore and sample models) into DIR.
    Init { dir: PathBuf },
    /// Create an admin user.
    AddAdmin {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
        #[arg(long)]
        name: String,
    },
    /// Copy the SQLite store to FILE, consistent, while a server may be running on it.
    Backup {
        file: PathBuf,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Replace the SQLite store with the backup FILE (refused while a server runs on it).
    Restore {
        file: PathBuf,
        /// Replace the store if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Load newline-delimited JSON (one document per line; `-` reads stdin) into MODEL, all or
    /// nothing: each line is checked as a POST by an admin is (validation, defaults, unique
    /// values) and gets the same system fields; the first bad line stops the import with its
    /// number and the API's message, and nothing is written. Empty lines are skipped.
    ///
    /// On SQLite the server must be stopped (the store is locked while it runs). On PostgreSQL
    /// a running server may share the database: its realtime subscribers get create events
    /// for the last CHANGELOG_RETENTION imported documents (what the change log keeps, as if
    /// the documents had been written one by one and the log trimmed), clients resuming from
    /// before the import are told to resync, and cached answers of the model are dropped.
    #[command(verbatim_doc_comment)]
    Import {
        /// The model's name or slug.
        model: String,
        /// The file to read, or - for standard input.
        file: PathBuf,
        /// Import into a model whose creates run hooks (Rust or script `pre_post`/`post_post`)
        /// without running them. Without it such a model is refused.
        #[arg(long)]
        no_hooks: bool,
    },
    /// Compare the indexes the models declare with the database's: missing, extra and
    /// different, per model. Exits 1 when they differ.
    Indexes {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Create the missing indexes and make the different ones again (on SQLite, with no
        /// server running on the file).
        #[arg(long)]
        sync: bool,
        /// With --sync, also drop the extra indexes: the value must be DROP_EXTRA_INDEXES.
        #[arg(long, value_name = "DROP_EXTRA_INDEXES", requires = "sync")]
        confirm: Option<String>,
    },
}

/// Logs go to stderr through `log_writer`'s per-thread buffers; the answered guard writes out
/// what is left when dropped, at the end of `run`.
fn init_tracing(format: LogFormat) -> FlushOnDrop {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only for a person at a terminal: a pipe, a file or NO_COLOR (no-color.org) gets
    // plain text.
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let (writer, guard) = BufferedStderr::start();
    // The access log skips `tracing`'s formatter (the filter still decides whether it is on):
    // the line is formatted in the same shape and goes into the same buffers.
    jxp_http::write_access_lines_to(
        match format {
            LogFormat::Json => jxp_http::AccessFormat::Json,
            LogFormat::Pretty => jxp_http::AccessFormat::Pretty { ansi: colour },
        },
        move |line| writer.append(line),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(writer);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Pretty => builder.init(),
    }
    guard
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

async fn run(cli: Cli, dotenv: Result<PathBuf, dotenvy::Error>) -> anyhow::Result<()> {
    if let Command::Init { dir } = &cli.command {
        for file in jxp::init_project(dir)? {
            match file {
                InitFile::Written(path) => println!("wrote {}", path.display()),
                InitFile::Kept(path) => {
                    println!("kept {} (it exists; not overwritten)", path.display());
                }
            }
        }
        println!("next: cd {} && jxp serve", dir.display());
        return Ok(());
    }
    // A missing .env is fine; a broken one is not.
    if let Err(e) = dotenv
        && !e.not_found()
    {
        anyhow::bail!("cannot read .env: {e}");
    }
    let flags = match &cli.command {
        Command::Serve(args) => args.given.clone(),
        _ => Vec::new(),
    };
    let config = Config::from_vars(std::env::vars().chain(flags))?;
    let _log = init_tracing(config.log_format);
    match cli.command {
        Command::Serve(_) => {
            jxp::Server::builder()
                .config(config)
                .serve(shutdown_signal())
                .await?;
            Ok(())
        }
        Command::AddAdmin {
            email,
            password,
            name,
        } => {
            let id = jxp::add_admin(&config, &email, &password, &name).await?;
            println!("admin {email} created with id {id}");
            Ok(())
        }
        Command::Backup { file, force } => {
            println!("wrote {}", jxp::backup::backup(&config, &file, force)?);
            Ok(())
        }
        Command::Restore { file, force } => {
            let restored = jxp::backup::restore(&config, &file, force)?;
            if let Some(old) = restored.replaced {
                println!("replaced {old}");
            }
            println!(
                "restored {} from {}",
                restored.store.display(),
                restored.from
            );
            Ok(())
        }
        Command::Indexes {
            json,
            sync,
            confirm,
        } => indexes(&config, json, sync, confirm).await,
        Command::Import {
            model,
            file,
            no_hooks,
        } => {
            let source = jxp::import::Source::parse(&file);
            let done = jxp::import::import(&config, &model, &source, no_hooks).await?;
            println!(
                "imported {} documents into {} in {:.1} s",
                done.count, done.model, done.seconds
            );
            Ok(())
        }
        Command::Init { .. } => Ok(()),
    }
}

/// Differences found by `jxp indexes` (without `--sync`): exit status 1, as JXP's.
#[derive(Debug, thiserror::Error)]
#[error("the indexes differ from the models")]
struct IndexesDiffer;

async fn indexes(
    config: &Config,
    json: bool,
    sync: bool,
    confirm: Option<String>,
) -> anyhow::Result<()> {
    use jxp::indexes::{self, DROP_CONFIRMATION};
    let drop_extra = match confirm.as_deref() {
        None => false,
        Some(DROP_CONFIRMATION) => true,
        Some(other) => anyhow::bail!(
            "--confirm {other}: extra indexes are dropped only with --confirm {DROP_CONFIRMATION}"
        ),
    };
    if sync {
        let done = indexes::sync_indexes(config, drop_extra).await?;
        if json {
            println!("{:#}", indexes::sync_json(&done));
        } else {
            print!("{}", indexes::sync_table(&done));
        }
        return Ok(());
    }
    let report = indexes::index_report(config).await?;
    if json {
        println!("{:#}", indexes::report_json(&report));
    } else {
        print!("{}", indexes::report_table(&report));
    }
    if report.in_sync() {
        Ok(())
    } else {
        Err(IndexesDiffer.into())
    }
}

fn main() -> ExitCode {
    // Before parsing, so that `.env` values are the environment clap shows and the settings
    // are read from.
    let dotenv = dotenvy::dotenv();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("jxp: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, dotenv)) {
        Ok(()) => ExitCode::SUCCESS,
        // The report said so already.
        Err(e) if e.is::<IndexesDiffer>() => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("jxp: {e:#}");
            ExitCode::FAILURE
        }
    }
}
