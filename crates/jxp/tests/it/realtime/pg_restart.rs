//! A PostgreSQL restart under write and subscribe load: a real `jxp serve` process keeps
//! serving, its change listener reconnects and catches up from the change log, and a
//! subscriber receives every acknowledged write exactly once, in seq order, without a gap.
//! The suite's shared PostgreSQL server must not be restarted under other tests, so this
//! test starts a private cluster of its own with the same binaries; it runs in the suite's
//! PostgreSQL run (`JXP_TEST_DATABASE_URL` set) and is skipped, with a note, otherwise or
//! where the binaries are missing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use super::client::{QUIET, WsClient};
use super::processes::{EMAIL, PASSWORD, count, create, make_admin};
use super::support::{ITEM, PARENT, seq};
use crate::harness::{spawn, test_postgres};

/// PostgreSQL's server binaries, found as `scripts/test.sh` finds them: on `PATH`, or where
/// Debian puts them (newest version first).
fn pg_bin() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
    });
    if let Some(dir) = on_path {
        // Follow a link to the directory that also holds `postgres`.
        return std::fs::canonicalize(dir.join("initdb"))
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// A throwaway PostgreSQL cluster in a temporary directory, on a free loopback port; stopped
/// when dropped.
struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// Run as the `postgres` user: `initdb` refuses to run as root.
    as_postgres: bool,
    url: String,
}

impl Cluster {
    /// Initialises and starts a cluster; `None`, with a note, where that cannot be done here.
    fn start() -> Option<Cluster> {
        let Some(bin) = pg_bin() else {
            eprintln!("note: no initdb/pg_ctl found; the PostgreSQL restart test is skipped");
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("jxp-pg-restart.")
            .tempdir()
            .unwrap();
        let as_postgres = is_root();
        if as_postgres {
            let owned = Command::new("chown")
                .arg("postgres")
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            if !owned {
                eprintln!("note: running as root without a postgres user; the test is skipped");
                return None;
            }
        }
        let mut cluster = Cluster {
            dir,
            bin,
            as_postgres,
            url: String::new(),
        };
        let data = cluster.data();
        let log = cluster.dir.path().join("initdb.log");
        let ok = cluster.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "jxp",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ],
            &log,
        );
        assert!(ok, "initdb failed: {}", read(&log));
        for _ in 0..8 {
            let port = free_port();
            let options = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100",
                cluster.dir.path().display()
            );
            if cluster.pg_ctl(&["-o", &options, "start"]) {
                cluster.url = format!("postgres://jxp@127.0.0.1:{port}/postgres");
                return Some(cluster);
            }
        }
        panic!(
            "the private cluster did not start: {}",
            read(&cluster.log())
        );
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// Runs one of the cluster's programs (as `postgres` where needed), its output to `log`;
    /// answers whether it succeeded.
    fn run(&self, program: &str, args: &[&str], log: &Path) -> bool {
        let program = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        let out = std::fs::File::create(log).unwrap();
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .status()
            .is_ok_and(|s| s.success())
    }

    /// `pg_ctl -D data -l server.log -w ARGS`; answers whether it succeeded. The server's
    /// own output goes to its log, so nothing here waits on a pipe the server holds open.
    fn pg_ctl(&self, args: &[&str]) -> bool {
        let data = self.data();
        let log = self.log().display().to_string();
        let mut all = vec!["-D", &data, "-l", &log, "-w", "-t", "60"];
        all.extend_from_slice(args);
        self.run("pg_ctl", &all, &self.dir.path().join("pg_ctl.log"))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !self.url.is_empty() {
            self.pg_ctl(&["-m", "immediate", "stop"]);
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A loopback port nothing listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Writers that post items until stopped, each acknowledged `_id` recorded.
struct Writers {
    acked: Arc<Mutex<Vec<String>>>,
    failed: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Writers {
    /// `n` writers on each of `bases`.
    fn start(bases: &[&str], n: usize) -> Writers {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let acked = Arc::new(Mutex::new(Vec::new()));
        let failed = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = bases
            .iter()
            .flat_map(|base| (0..n).map(move |t| (*base, t)))
            .map(|(base, t)| {
                let (client, base) = (client.clone(), base.to_owned());
                let (acked, failed, stop) = (acked.clone(), failed.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut i = 0;
                    while !stop.load(Ordering::SeqCst) {
                        i += 1;
                        match create(&client, &base, &format!("w{t}-{i}")).await {
                            Some(id) => acked.lock().unwrap().push(id),
                            None => {
                                failed.fetch_add(1, Ordering::SeqCst);
                                // The database is down: retry soon, without spinning.
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                        }
                    }
                })
            })
            .collect();
        Writers {
            acked,
            failed,
            stop,
            tasks,
        }
    }

    fn acked(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Waits until `n` writes in all are acknowledged; fails the test after `limit`.
    async fn until_acked(&self, n: usize, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.acked() < n {
            assert!(
                Instant::now() < deadline,
                "only {} of {n} writes acknowledged within {limit:?}",
                self.acked()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn finish(self) -> (Vec<String>, usize) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.tasks {
            t.await.unwrap();
        }
        let acked = self.acked.lock().unwrap().clone();
        (acked, self.failed.load(Ordering::SeqCst))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_under_load_loses_and_repeats_no_event() {
    if test_postgres().is_none() {
        eprintln!("note: JXP_TEST_DATABASE_URL is not set; the PostgreSQL restart test is skipped");
        return;
    }
    let Some(cluster) = tokio::task::spawn_blocking(Cluster::start).await.unwrap() else {
        return;
    };
    let cluster = Arc::new(cluster);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("models")).unwrap();
    std::fs::write(dir.path().join("models/item.toml"), ITEM).unwrap();
    std::fs::write(dir.path().join("models/parent.toml"), PARENT).unwrap();
    // The subscriber is on `a`; writes go through both, so `b`'s reach it only through
    // `a`'s listener, which the restart cuts off.
    let a = spawn(dir.path(), &cluster.url, "a").await;
    let b = spawn(dir.path(), &cluster.url, "b").await;
    make_admin(&a).await;
    let mut sub = WsClient::try_connect(&a.base, "/websocket").await.unwrap();
    sub.auth_ok(json!({"email": EMAIL, "password": PASSWORD}))
        .await;
    sub.subscribe_ok(json!({"model": "item"})).await;

    // Writes flow, the database restarts under them, and they flow again.
    let writers = Writers::start(&[&a.base, &b.base], 2);
    writers.until_acked(50, Duration::from_secs(30)).await;
    let restarting = cluster.clone();
    let restarted =
        tokio::task::spawn_blocking(move || restarting.pg_ctl(&["-m", "fast", "restart"]))
            .await
            .unwrap();
    assert!(restarted, "pg_ctl restart: {}", read(&cluster.log()));
    let before = writers.acked();
    writers
        .until_acked(before + 100, Duration::from_secs(60))
        .await;
    let (acked, failed) = writers.finish().await;
    eprintln!(
        "{} writes acknowledged, {failed} failed around the restart",
        acked.len()
    );

    // A write may have committed without its answer arriving: the store's count says how
    // many events there are in all.
    let total = usize::try_from(count(&a.base).await).unwrap();
    assert!(
        total >= acked.len(),
        "{total} stored < {} acknowledged",
        acked.len()
    );
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut seqs = Vec::with_capacity(total);
    let deadline = Instant::now() + Duration::from_secs(60);
    while seqs.len() < total {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(ev) = sub.next_event(left).await else {
            panic!(
                "{} of {total} events within 60 s; last seq {:?}",
                seqs.len(),
                seqs.last()
            );
        };
        assert_eq!(ev["data"]["modelname"], "item", "{ev}");
        assert_eq!(ev["data"]["event"], "post", "{ev}");
        seqs.push(seq(&ev));
        let id = ev["data"]["item"]["_id"].as_str().unwrap_or_default();
        *seen.entry(id.to_owned()).or_default() += 1;
    }
    sub.expect_no_event(QUIET).await;
    assert_eq!(seqs, (1..=total as u64).collect::<Vec<u64>>());
    for id in &acked {
        assert_eq!(
            seen.get(id),
            Some(&1),
            "the create event of acknowledged {id}"
        );
    }

    // The server still answers, and writes still stream.
    let after = create(&reqwest::Client::new(), &b.base, "after")
        .await
        .expect("a write after the restart");
    let ev = sub.event().await;
    assert_eq!(ev["data"]["item"]["_id"], after.as_str());
    assert_eq!(seq(&ev), total as u64 + 1);
    let log = read(&dir.path().join("a.log"));
    assert!(
        log.contains("change listener"),
        "a's listener lost its connection and came back:\n{log}"
    );
}
