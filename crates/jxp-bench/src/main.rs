//! `jxp-bench`: load generator and smoke check for a jxp server on this machine.

mod cli;
mod client;
mod floor;
mod hist;
mod prng;
mod procfs;
mod query;
mod realtime;
mod report;
mod rest;
mod smoke;
mod soak;
mod target;
mod worker;

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Rest(args) => block_on(rest::run(args)),
        Command::Smoke(args) => block_on(smoke::run(args)),
        Command::Fanout(args) => block_on(realtime::fanout(args)),
        Command::Burst(args) => block_on(realtime::burst(args)),
        Command::Idle(args) => block_on(realtime::idle(args)),
        Command::Query(args) => block_on(query::run(args)),
        Command::Soak(args) => block_on(soak::run(args)),
        // Plain blocking sockets and threads: no async runtime in either process.
        Command::Floor(args) => floor::run(&args),
        Command::FloorReader(args) => floor::reader(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jxp-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a scenario on a multi-threaded tokio runtime.
fn block_on(scenario: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(scenario)
}
