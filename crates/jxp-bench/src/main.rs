//! `jxp-bench`: load generator and smoke check for a jxp server on this machine.

mod cli;
mod client;
mod hist;
mod prng;
mod procfs;
mod query;
mod realtime;
mod report;
mod rest;
mod smoke;
mod target;
mod worker;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

#[tokio::main(flavor = "multi_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Rest(args) => rest::run(args).await,
        Command::Smoke(args) => smoke::run(args).await,
        Command::Fanout(args) => realtime::fanout(args).await,
        Command::Burst(args) => realtime::burst(args).await,
        Command::Idle(args) => realtime::idle(args).await,
        Command::Query(args) => query::run(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jxp-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
