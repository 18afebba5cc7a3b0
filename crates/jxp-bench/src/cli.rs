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
    /// Realtime fan-out: N WebSocket subscribers, W REST writes at an open-loop rate R/s;
    /// delivery latency, losses, duplicates, order and server memory.
    Fanout(FanoutArgs),
    /// N WebSocket subscribers, then one write: time until the last subscriber had it.
    Burst(BurstArgs),
    /// Hold N idle WebSocket subscribers: server memory per connection, then one probe write.
    Idle(IdleArgs),
    /// Reads over a seeded model (100,000 documents unless --docs says otherwise): filtered and sorted lists (indexed and
    /// not), full-text search, count, populate, `$group`; latency, throughput and SQL plans.
    Query(QueryArgs),
    /// A long mixed run: REST reads and writes, subscribers joining and leaving, clients that
    /// never read; server memory and latency per interval, to see that neither grows.
    Soak(SoakArgs),
    /// This machine's kernel floor for fan-out: one small write to each of N loopback TCP
    /// sockets, read by another process; no WebSocket, no JSON, no server.
    Floor(FloorArgs),
    /// The reading side of `floor`, started by it as a child process.
    #[command(hide = true)]
    FloorReader(FloorReaderArgs),
}

/// Which server a `query` run measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum QueryProto {
    /// jxp serving `crates/jxp-bench/models` (--email/--password of an admin).
    Jxp,
    /// PocketBase (--email/--password of a superuser): the list and count scenarios.
    Pocketbase,
}

impl QueryProto {
    pub fn as_str(self) -> &'static str {
        match self {
            QueryProto::Jxp => "jxp",
            QueryProto::Pocketbase => "pocketbase",
        }
    }
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub common: Common,
    /// The server's protocol.
    #[arg(long, value_enum, default_value_t = QueryProto::Jxp)]
    pub proto: QueryProto,
    /// Documents in the model; missing ones are created before measuring.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub docs: u64,
    /// Concurrent workers per scenario.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub concurrency: u32,
    /// Measured seconds per scenario.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub duration_s: u64,
    /// Warm-up seconds per scenario.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(0..=600))]
    pub warmup_s: u64,
    /// Run only these scenarios (repeatable): list-indexed, list-unindexed, search, count,
    /// populate, group, group-all.
    #[arg(long)]
    pub only: Vec<String>,
    /// Also run the query of each list, search and count scenario with jxp's admin-only
    /// `explain=analyze` (PostgreSQL's `EXPLAIN ANALYZE`; on SQLite the statement stepped to
    /// its end) and print the database's own time beside jxp's latency: `db_ms` (the median of
    /// a few runs) and `overhead_pct`, the share of the p50 latency spent outside the
    /// database. Measure at `--concurrency 1` for the overhead of one request.
    #[arg(long)]
    pub db_time: bool,
    /// Parallel `/bulkwrite` requests (of 1,000 inserts each) while seeding jxp.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub seed_concurrency: u32,
    /// Seed for `jxp import` instead of measuring: seed the linked models through the API,
    /// write the benchq documents the server lacks (from its count up to --docs) to FILE as
    /// newline-delimited JSON, and exit. Then `jxp import Benchq FILE` (on SQLite with the
    /// server stopped) and run again without --ndjson: the documents are there, so seeding is
    /// skipped. 1,000,000 documents load in well under a minute this way, against minutes
    /// through /bulkwrite.
    #[arg(long, value_name = "FILE", conflicts_with = "proto")]
    pub ndjson: Option<std::path::PathBuf>,
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
    /// GET /call/<model>/<function>: a function's round trip.
    Call,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Post => "post",
            Op::Call => "call",
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
    /// The function a `call` run calls.
    #[arg(long, default_value = "ping")]
    pub function: String,
}

#[derive(Debug, Args)]
pub struct SmokeArgs {
    #[command(flatten)]
    pub common: Common,
}

/// Which writes a fan-out run sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mix {
    /// Every write creates a new document.
    Create,
    /// Create a document, update it, delete it; repeated.
    Cud,
}

impl Mix {
    pub fn as_str(self) -> &'static str {
        match self {
            Mix::Create => "create",
            Mix::Cud => "cud",
        }
    }
}

#[derive(Debug, Args)]
pub struct SoakArgs {
    #[command(flatten)]
    pub common: Common,
    /// Seconds the run lasts.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub duration_s: u64,
    /// Seconds per reported interval.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub interval_s: u64,
    /// REST workers, each with its own keep-alive connection (GET by id, lists, counts,
    /// creates, updates).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub rest_concurrency: u32,
    /// WebSocket subscribers kept open; each leaves after a while and another joins.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(0..=50_000))]
    pub subs: u32,
    /// Subscribers that leave (and are replaced) per second, on average.
    #[arg(long, default_value_t = 20.0, value_parser = parse_rate)]
    pub churn: f64,
    /// Subscribers that never read, each replaced every interval (the server closes them
    /// with 1013 once their queue is full).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(0..=1_000))]
    pub slow: u32,
    /// PID of the jxp server: its VmRSS is reported per interval.
    #[arg(long)]
    pub server_pid: Option<u32>,
}

/// How the WebSocket subscribers are opened and the server observed (fanout, burst, idle).
#[derive(Debug, Args)]
pub struct SubscriberOpts {
    /// PID of the jxp server: its VmRSS (from /proc/PID/status) is reported.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// WebSocket handshakes (connect + auth + subscribe) in flight at once.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub connect_concurrency: u32,
    /// Seconds to keep waiting for deliveries after the last write completed, before the
    /// missing ones count as lost.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub drain_s: u64,
    /// Subscribe without a WebSocket `auth` (the REST writes still use --email/--apikey).
    #[arg(long)]
    pub ws_anonymous: bool,
}

#[derive(Debug, Args)]
pub struct FanoutArgs {
    #[command(flatten)]
    pub common: Common,
    /// WebSocket subscribers.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub subs: u32,
    /// REST writes in total.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub writes: u32,
    /// Writes per second, open loop (scheduled by send time, whatever the response times).
    #[arg(long, default_value_t = 50.0, value_parser = parse_rate)]
    pub rate: f64,
    /// `create`: creates only; `cud`: create, update, delete one document, repeated.
    #[arg(long, value_enum, default_value_t = Mix::Create)]
    pub mix: Mix,
    #[command(flatten)]
    pub subscribers: SubscriberOpts,
}

#[derive(Debug, Args)]
pub struct BurstArgs {
    #[command(flatten)]
    pub common: Common,
    /// WebSocket subscribers.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub subs: u32,
    #[command(flatten)]
    pub subscribers: SubscriberOpts,
}

#[derive(Debug, Args)]
pub struct IdleArgs {
    #[command(flatten)]
    pub common: Common,
    /// WebSocket subscribers.
    #[arg(long, default_value_t = 19_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub subs: u32,
    /// Seconds to hold the subscribers idle before the second RSS reading and the probe write.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=3_600))]
    pub hold_s: u64,
    #[command(flatten)]
    pub subscribers: SubscriberOpts,
}

#[derive(Debug, Args)]
pub struct FloorArgs {
    /// TCP connections (one open file each in this process and in the reader process).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=19_000))]
    pub conns: u32,
    /// Bytes written to each connection per round.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub bytes: u32,
    /// Measured rounds (each writes once to every connection).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rounds: u32,
    /// Writer threads, each writing to a contiguous slice of the connections.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub threads: u32,
}

#[derive(Debug, Args)]
pub struct FloorReaderArgs {
    /// The writer's loopback listener.
    #[arg(long)]
    pub addr: std::net::SocketAddr,
    /// Connections to open.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=19_000))]
    pub conns: u32,
    /// Bytes to read from each connection per round.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub bytes: u32,
    /// Rounds to read.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rounds: u32,
}

/// A write rate: a finite number in (0, 100000] per second.
fn parse_rate(s: &str) -> Result<f64, String> {
    let r: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if !(r.is_finite() && r > 0.0 && r <= 100_000.0) {
        return Err(format!("{s}: the rate must be > 0 and <= 100000 writes/s"));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// The subcommand a command line (after `jxp-bench`, words split on spaces) parses to.
    fn parse(line: &str) -> anyhow::Result<Command> {
        let args = std::iter::once("jxp-bench").chain(line.split_whitespace());
        Ok(Cli::try_parse_from(args)?.command)
    }

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_rest_flags() -> anyhow::Result<()> {
        let command = parse(
            "rest --base http://127.0.0.1:4101 --op post --concurrency 8 --duration-s 3 --warmup-s 0",
        )?;
        let Command::Rest(a) = command else {
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
        assert!(parse("smoke --email a@b.c").is_err());
    }

    #[test]
    fn parses_fanout_flags() -> anyhow::Result<()> {
        let command = parse(
            "fanout --email a@b.c --password pw --subs 10 --writes 30 --rate 12.5 --mix cud \
             --server-pid 42",
        )?;
        let Command::Fanout(a) = command else {
            anyhow::bail!("expected the fanout subcommand");
        };
        assert_eq!((a.subs, a.writes, a.rate, a.mix), (10, 30, 12.5, Mix::Cud));
        let s = &a.subscribers;
        assert_eq!(
            (
                s.server_pid,
                s.connect_concurrency,
                s.drain_s,
                s.ws_anonymous
            ),
            (Some(42), 200, 5, false)
        );
        for bad in ["0", "-1", "nan", "inf", "x"] {
            assert!(
                parse(&format!("fanout --rate {bad}")).is_err(),
                "--rate {bad} accepted"
            );
        }
        Ok(())
    }

    #[test]
    fn burst_and_idle_defaults() -> anyhow::Result<()> {
        let Command::Burst(b) = parse("burst")? else {
            anyhow::bail!("expected burst");
        };
        assert_eq!(b.subs, 10_000);
        let Command::Idle(i) = parse("idle")? else {
            anyhow::bail!("expected idle");
        };
        assert_eq!((i.subs, i.hold_s), (19_000, 5));
        Ok(())
    }

    #[test]
    fn floor_flags() -> anyhow::Result<()> {
        let Command::Floor(f) = parse("floor")? else {
            anyhow::bail!("expected floor");
        };
        assert_eq!((f.conns, f.bytes, f.rounds, f.threads), (10_000, 200, 5, 2));
        for bad in [
            "--conns 0",
            "--conns 19001",
            "--bytes 0",
            "--bytes 65537",
            "--rounds 101",
            "--threads 65",
        ] {
            assert!(parse(&format!("floor {bad}")).is_err(), "{bad} accepted");
        }
        let command = parse("floor-reader --addr 127.0.0.1:4000 --conns 3 --bytes 8 --rounds 2")?;
        let Command::FloorReader(r) = command else {
            anyhow::bail!("expected floor-reader");
        };
        assert_eq!((r.addr.port(), r.conns, r.bytes, r.rounds), (4000, 3, 8, 2));
        Ok(())
    }

    #[test]
    fn refuses_zero_concurrency() {
        assert!(parse("rest --concurrency 0").is_err());
    }
}
