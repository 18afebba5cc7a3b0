//! What /proc says about a process: the server's resident memory, and this process's limit on
//! open files (each WebSocket subscriber or socket holds one).

use std::fs;

use anyhow::{Context, Result, bail};

/// `VmRSS` of process `pid` in KiB (from `/proc/PID/status`).
pub fn vm_rss_kib(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = fs::read_to_string(&path)
        .with_context(|| format!("cannot read {path} (is --server-pid {pid} running?)"))?;
    match parse_vm_rss_kib(&status) {
        Some(kib) => Ok(kib),
        None => bail!("{path} has no VmRSS line (is {pid} a zombie or a kernel thread?)"),
    }
}

/// The `VmRSS:   12345 kB` line of a `/proc/PID/status` text.
fn parse_vm_rss_kib(status: &str) -> Option<u64> {
    let rest = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let mut parts = rest.split_whitespace();
    let value = parts.next()?.parse().ok()?;
    (parts.next() == Some("kB")).then_some(value)
}

/// The command name of process `pid` (`/proc/PID/comm`), if readable.
pub fn comm(pid: u32) -> Option<String> {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_owned())
}

/// This process's open-files limit, `(soft, hard)`; `None` stands for unlimited.
pub fn open_files_limit() -> Option<(Option<u64>, Option<u64>)> {
    parse_open_files_limit(&fs::read_to_string("/proc/self/limits").ok()?)
}

/// Refuses to open `n` sockets (plus `margin` other files) beyond this process's soft limit on
/// open files, with the fix: `flag` is the option that asked for them, `tail` ends the advice.
pub fn check_open_files(flag: &str, n: u32, margin: u64, tail: &str) -> Result<()> {
    let need = u64::from(n) + margin;
    let Some((Some(soft), hard)) = open_files_limit() else {
        return Ok(());
    };
    if soft >= need {
        return Ok(());
    }
    let hard_text = hard.map_or_else(|| "unlimited".to_owned(), |h| h.to_string());
    if let Some(h) = hard.filter(|&h| h < need) {
        bail!(
            "{flag} {n} needs about {need} open files, but this process's limit is {soft} and \
             the hard limit {hard_text} cannot be exceeded without privileges: use at most \
             {flag} {}",
            h.saturating_sub(margin)
        );
    }
    bail!(
        "{flag} {n} needs about {need} open files, but this process may only open {soft}: \
         run `ulimit -n $(ulimit -Hn)` (hard limit {hard_text}) in this shell first{tail}"
    );
}

/// The `Max open files  1024  4096  files` line of a `/proc/PID/limits` text.
fn parse_open_files_limit(limits: &str) -> Option<(Option<u64>, Option<u64>)> {
    let rest = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))?;
    let mut parts = rest.split_whitespace();
    let value = |s: &str| -> Option<Option<u64>> {
        if s == "unlimited" {
            Some(None)
        } else {
            s.parse().ok().map(Some)
        }
    };
    let soft = value(parts.next()?)?;
    let hard = value(parts.next()?)?;
    Some((soft, hard))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_rss() {
        let status = "Name:\tjxp\nVmPeak:\t  99999 kB\nVmRSS:\t   12345 kB\nThreads:\t4\n";
        assert_eq!(parse_vm_rss_kib(status), Some(12_345));
        assert_eq!(parse_vm_rss_kib("Name:\tx\n"), None);
        assert_eq!(parse_vm_rss_kib("VmRSS:\tlots kB\n"), None);
    }

    #[test]
    fn reads_open_files_limit() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max cpu time              unlimited            unlimited            seconds   \n\
                      Max open files            1024                 20000                files     \n";
        assert_eq!(
            parse_open_files_limit(limits),
            Some((Some(1024), Some(20_000)))
        );
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_open_files_limit(unlimited), Some((None, None)));
        assert_eq!(parse_open_files_limit("nothing"), None);
    }

    #[test]
    fn this_process_is_readable() -> Result<()> {
        assert!(vm_rss_kib(std::process::id())? > 0);
        assert!(open_files_limit().is_some());
        Ok(())
    }
}
