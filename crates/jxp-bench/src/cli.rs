//! Command-line interface: subcommands and their flags.

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "jxp-bench",
    version,
    about = "Load generator for jxp benchmarks (loopback targets only)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// REST throughput and latency: C keep-alive connections for a fixed duration.
    Rest(RestArgs),
    /// Create one document, read it back and check that its fields round-trip.
    Smoke(SmokeArgs),
}

/// Where the server is and how to authenticate.
#[derive(Debug, Args)]
pub struct Common {
    /// Server base URL; the host must be 127.0.0.1, localhost or [::1].
    #[arg(long, env = "JXP_BENCH_BASE", default_value = "http://127.0.0.1:4001")]
    pub base: String,
    /// Model (collection) name, served at /api/<model>.
    #[arg(long, default_value = "test")]
    pub model: String,
    /// Log in with POST /login first and send the token as `Authorization: Bearer`.
    #[arg(long, env = "JXP_BENCH_EMAIL", requires = "password")]
    pub email: Option<String>,
    /// Password for --email.
    #[arg(
        long,
        env = "JXP_BENCH_PASSWORD",
        hide_env_values = true,
        requires = "email"
    )]
    pub password: Option<String>,
    /// API key sent as `X-API-Key` on every request.
    #[arg(long, env = "JXP_BENCH_APIKEY", hide_env_values = true)]
    pub apikey: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Op {
    /// GET /api/<model>/<id> on a random preloaded document.
    Get,
    /// POST /api/<model> with a new document each time.
    Post,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Post => "post",
        }
    }
}

#[derive(Debug, Args)]
pub struct RestArgs {
    #[command(flatten)]
    pub common: Common,
    /// Request type.
    #[arg(long, value_enum, default_value_t = Op::Get)]
    pub op: Op,
    /// Concurrent workers, each with its own keep-alive connection.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub concurrency: u32,
    /// Measured duration in seconds (after the warm-up).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub duration_s: u64,
    /// Warm-up in seconds: same load, not recorded.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(0..=600))]
    pub warmup_s: u64,
    /// Documents created before a `get` run; GETs pick one of them at random.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub preload: u32,
}

#[derive(Debug, Args)]
pub struct SmokeArgs {
    #[command(flatten)]
    pub common: Common,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_rest_flags() -> anyhow::Result<()> {
        let cli = Cli::try_parse_from([
            "jxp-bench",
            "rest",
            "--base",
            "http://127.0.0.1:4101",
            "--op",
            "post",
            "--concurrency",
            "8",
            "--duration-s",
            "3",
            "--warmup-s",
            "0",
        ])?;
        let Command::Rest(a) = cli.command else {
            anyhow::bail!("expected the rest subcommand");
        };
        assert_eq!(a.op, Op::Post);
        assert_eq!(
            (a.concurrency, a.duration_s, a.warmup_s, a.preload),
            (8, 3, 0, 100)
        );
        Ok(())
    }

    #[test]
    fn email_needs_password() {
        let r = Cli::try_parse_from(["jxp-bench", "smoke", "--email", "a@b.c"]);
        assert!(r.is_err());
    }

    #[test]
    fn refuses_zero_concurrency() {
        let r = Cli::try_parse_from(["jxp-bench", "rest", "--concurrency", "0"]);
        assert!(r.is_err());
    }
}
