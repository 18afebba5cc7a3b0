//! Real `jxp serve` processes (the built binary) on a directory's models and a database, for
//! what only separate processes show: several servers on one database, the commands run next
//! to a server.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// One `jxp serve` process; killed (SIGKILL) when dropped.
pub struct Proc {
    pub child: Child,
    pub base: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Stops the server as an operator does (SIGTERM) and waits for it to end, so every line it
/// buffered is in its log.
pub async fn stop_process(mut proc: Proc) {
    let pid = proc.child.id().to_string();
    let signalled = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(signalled.success());
    let waited = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        tokio::task::spawn_blocking(move || {
            let status = proc.child.wait();
            (proc, status)
        }),
    )
    .await
    .expect("the server did not stop within 30 s");
    let (_proc, status) = waited.unwrap();
    assert!(status.unwrap().success());
}

/// Starts `jxp serve` on the models in `dir` and `database_url`; answers once it listens
/// (its log says where; read until a deadline, as another process has no event to await).
pub async fn spawn(dir: &Path, database_url: &str, name: &str) -> Proc {
    spawn_with(dir, database_url, name, &[]).await
}

pub async fn spawn_with(dir: &Path, database_url: &str, name: &str, env: &[(&str, &str)]) -> Proc {
    let log_path = dir.join(format!("{name}.log"));
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_jxp"))
        .arg("serve")
        .current_dir(dir)
        .env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .env("MODEL_DIR", dir.join("models"))
        .env("DATABASE_URL", database_url)
        .env("BCRYPT_COST", "4")
        .env("LOGIN_RATE_LIMIT_ENABLED", "false")
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "warn,jxp=info")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    // The process picks its own port and logs it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let addr = log
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| l["fields"]["message"] == "jxp listening")
            .and_then(|l| l["fields"]["addr"].as_str().map(str::to_owned));
        if let Some(addr) = addr {
            return Proc {
                child,
                base: format!("http://{addr}"),
            };
        }
        let exited = child.try_wait().unwrap().is_some();
        if exited || Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name} did not start:\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What a `jxp` command run to its end printed.
pub struct Ran {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `jxp ARGS` in `dir` on `database_url`, as a user runs it next to a server, and waits
/// (at most 60 s) for it to end.
pub async fn run_jxp(dir: &Path, database_url: &str, args: &[&str]) -> Ran {
    run_jxp_with_stdin(dir, database_url, args, None).await
}

/// `run_jxp`, with `stdin` written to the command's standard input (then closed).
pub async fn run_jxp_with_stdin(
    dir: &Path,
    database_url: &str,
    args: &[&str],
    stdin: Option<Vec<u8>>,
) -> Ran {
    let mut child = Command::new(env!("CARGO_BIN_EXE_jxp"))
        .args(args)
        .current_dir(dir)
        .env("MODEL_DIR", dir.join("models"))
        .env("DATABASE_URL", database_url)
        .env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .env("BCRYPT_COST", "4")
        .env("RUST_LOG", "warn")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let feeder = stdin.and_then(|bytes| {
        let mut pipe = child.stdin.take()?;
        Some(std::thread::spawn(move || {
            use std::io::Write;
            // The command may stop reading early (a bad line); that is its answer, not ours.
            let _ = pipe.write_all(&bytes);
        }))
    });
    let waited = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || child.wait_with_output()),
    )
    .await;
    let Ok(output) = waited else {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        panic!("jxp {args:?} did not end within 60 s");
    };
    if let Some(feeder) = feeder {
        let _ = feeder.join();
    }
    let output = output.unwrap().unwrap();
    Ran {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Writers that each create through `create(writer, n)` until it answers `None` (the server
/// is gone), recording every acknowledged id; `wait_for` awaits a number of them.
pub struct KillLoad {
    acked: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    count: tokio::sync::watch::Receiver<usize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl KillLoad {
    pub fn start<F, Fut>(writers: usize, create: F) -> KillLoad
    where
        F: Fn(usize, usize) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = Option<String>> + Send,
    {
        let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (count_tx, count) = tokio::sync::watch::channel(0usize);
        let count_tx = std::sync::Arc::new(count_tx);
        let tasks = (0..writers)
            .map(|w| {
                let (create, acked, count_tx) = (create.clone(), acked.clone(), count_tx.clone());
                tokio::spawn(async move {
                    for i in 0.. {
                        let Some(id) = create(w, i).await else {
                            return;
                        };
                        acked.lock().unwrap().push(id);
                        count_tx.send_modify(|n| *n += 1);
                    }
                })
            })
            .collect();
        KillLoad {
            acked,
            count,
            tasks,
        }
    }

    /// Waits (at most 60 s) until `n` writes were acknowledged.
    pub async fn wait_for(&mut self, n: usize) {
        tokio::time::timeout(Duration::from_secs(60), self.count.wait_for(|c| *c >= n))
            .await
            .unwrap_or_else(|_| panic!("{n} writes within 60 s"))
            .unwrap();
    }

    /// Once the server is gone: every write it acknowledged.
    pub async fn acknowledged(self) -> Vec<String> {
        for t in self.tasks {
            t.await.unwrap();
        }
        self.acked.lock().unwrap().clone()
    }
}
