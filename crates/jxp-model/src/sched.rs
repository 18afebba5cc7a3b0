//! How jxp's own threads ask to be scheduled. Threads that take work from the request workers
//! (the script runtimes; SQLite's writer where the process has one CPU) run under
//! `SCHED_BATCH`: work handed to one makes it runnable without preempting the worker that
//! handed it over, so under load it runs once the worker has nothing left to do and takes
//! everything queued meanwhile in one turn, rather than a context switch (or a tiny write
//! transaction) per item. Its share of the CPU is as before, and where another CPU is idle it
//! runs there at once.

/// Puts the calling thread under `SCHED_BATCH`. Measured on one core (`jxp-bench rest`, server
/// and generator pinned apart):
/// - the script threads: a `pre_get` hook went from 1.9 context switches per request to 0.07;
/// - SQLite's writer: POST/s rose by 10–18%, its transactions from about 10 writes to 24,
///   and with a `pre_post` hook from 4 to 20. With two CPUs it gained 5% under load but cost
///   a lone client 6% (its write waited for the worker to sleep), so it asks on one CPU only.
///
/// A thread already given a nice value (a server started under `nice`) is left as it is,
/// since the policy can only be set here together with nice 0. Answers whether the policy
/// was set; an error says why it could not be.
pub fn batch_policy() -> Result<bool, String> {
    use thread_priority::{
        NormalThreadSchedulePolicy, ThreadPriority, ThreadPriorityOsValue, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id,
    };
    if own_nice() != Some(0) {
        return Ok(false);
    }
    set_thread_priority_and_policy(
        thread_native_id(),
        ThreadPriority::Os(ThreadPriorityOsValue::default()),
        ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch),
    )
    .map(|()| true)
    .map_err(|e| format!("{e:?}"))
}

/// This thread's nice value, from `/proc` (Linux); `None` where it cannot be read.
fn own_nice() -> Option<i64> {
    stat_field(&std::fs::read_to_string("/proc/thread-self/stat").ok()?, 19)
}

/// Field `n` (counted from 1, as `proc(5)` does) of a `/proc/…/stat` line, `n` ≥ 3. The
/// command name (field 2) is in parentheses and may hold spaces and parentheses itself.
fn stat_field(stat: &str, n: usize) -> Option<i64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(n.checked_sub(3)?)?.parse().ok()
}

// Tests only: a panic here is an assertion; failing is how the test reports.
#[cfg(test)]
mod tests {
    use super::{batch_policy, own_nice, stat_field};

    #[test]
    fn stat_fields_are_counted_past_a_command_name_with_spaces() {
        let line = "4242 (jxp (a) b) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 7 3 0 \
                    1000 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 3 0 0 0";
        assert_eq!(stat_field(line, 3), None, "the state is not a number");
        assert_eq!(stat_field(line, 4), Some(1));
        assert_eq!(stat_field(line, 18), Some(20));
        assert_eq!(stat_field(line, 19), Some(7));
        assert_eq!(stat_field(line, 41), Some(3));
        assert_eq!(stat_field(line, 2), None);
        assert_eq!(stat_field("no command", 4), None);
    }

    /// A thread that asks runs under SCHED_BATCH (policy 3, field 41) unless it has a nice value.
    #[test]
    fn a_thread_asking_runs_as_a_batch_thread() {
        let policy = std::thread::spawn(|| {
            let nice = own_nice();
            let set = batch_policy();
            let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
            (nice, set, stat_field(&stat, 41))
        })
        .join();
        match policy {
            Ok((Some(0), set, policy)) => {
                assert_eq!(set, Ok(true));
                assert_eq!(policy, Some(3));
            }
            Ok((Some(nice), set, policy)) => {
                assert_eq!(set, Ok(false));
                assert_eq!(policy, Some(0), "nice {nice}: left as it was");
            }
            // No `/proc` (not Linux): nothing is set, and nothing can be read.
            Ok((None, _, _)) => {}
            Err(_) => panic!("the thread panicked"),
        }
    }
}
