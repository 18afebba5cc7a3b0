//! The working-set budget of one request: how many bytes of documents it may build in memory
//! and until when it may run. Readers and the pipeline executor charge it as results grow, so
//! a request that would amplify a few stored documents into gigabytes (a `$lookup` that joins
//! everything with everything, an `$unwind` of long arrays, a populate of the same large
//! document a million times) is refused before it builds them, not after.
//!
//! Sizes are estimates: a walk over a `serde_json::Value` that allocates nothing and is linear
//! in the value, counting each node's inline size plus the text it owns. It is close enough to
//! what the allocator holds to make a limit in megabytes mean what it says.

use std::time::{Duration, Instant};

use serde_json::{Map, Value};

/// Why a request's budget refused it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    /// The bytes built so far passed the memory limit (`limit`, in bytes).
    #[error("the query's working set is over the limit of {} MB; narrow it", megabytes(*.limit))]
    Memory { limit: u64 },
    /// The request ran past its time limit.
    #[error("the query ran past its time limit of {} s; narrow it", .limit.as_secs_f64())]
    Time { limit: Duration },
}

/// `limit` in whole megabytes for a message (at least 1, so a small limit never reads as 0).
fn megabytes(limit: u64) -> u64 {
    (limit / (1024 * 1024)).max(1)
}

/// One request's running total of bytes built and its deadline.
#[derive(Debug, Clone)]
pub struct Budget {
    /// Bytes; 0 means no limit.
    limit: u64,
    used: u64,
    timeout: Duration,
    deadline: Option<Instant>,
}

impl Budget {
    /// A budget of `memory_limit` bytes (0: none) and `timeout` from now (zero: none).
    pub fn new(memory_limit: u64, timeout: Duration) -> Budget {
        Budget {
            limit: memory_limit,
            used: 0,
            timeout,
            deadline: (!timeout.is_zero()).then(|| Instant::now() + timeout),
        }
    }

    /// No limit at all: for callers that bound their work otherwise.
    pub fn unlimited() -> Budget {
        Budget::new(0, Duration::ZERO)
    }

    /// Bytes charged and not released so far.
    pub fn used(&self) -> u64 {
        self.used
    }

    /// Bytes that may still be charged, `None` when there is no limit.
    pub fn left(&self) -> Option<u64> {
        (self.limit > 0).then(|| self.limit.saturating_sub(self.used))
    }

    /// The error a request over its memory limit answers.
    pub fn over_limit(&self) -> BudgetError {
        BudgetError::Memory { limit: self.limit }
    }

    /// Time left before the deadline, `None` when there is none. Zero once it has passed.
    pub fn time_left(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// The error a request past its deadline answers.
    pub fn timed_out(&self) -> BudgetError {
        BudgetError::Time {
            limit: self.timeout,
        }
    }

    /// Refuses once the deadline has passed. Loops call it (through [`Budget::charge`] or
    /// directly) so a long in-memory stage stops on time.
    pub fn check_time(&self) -> Result<(), BudgetError> {
        match self.deadline {
            Some(d) if Instant::now() >= d => Err(self.timed_out()),
            _ => Ok(()),
        }
    }

    /// Adds `bytes` about to be built; refuses when the total passes the limit or the deadline
    /// has passed. Call it before building what it counts.
    pub fn charge(&mut self, bytes: usize) -> Result<(), BudgetError> {
        self.used = self
            .used
            .saturating_add(u64::try_from(bytes).unwrap_or(u64::MAX));
        if self.limit > 0 && self.used > self.limit {
            return Err(BudgetError::Memory { limit: self.limit });
        }
        self.check_time()
    }

    /// Charges the estimated size of `v`.
    pub fn charge_value(&mut self, v: &Value) -> Result<(), BudgetError> {
        self.charge(value_size(v))
    }

    /// Charges the estimated size of the document `d`.
    pub fn charge_doc(&mut self, d: &Map<String, Value>) -> Result<(), BudgetError> {
        self.charge(doc_size(d))
    }

    /// Gives back `bytes` charged earlier, once what they counted has been dropped.
    pub fn release(&mut self, bytes: usize) {
        self.used = self
            .used
            .saturating_sub(u64::try_from(bytes).unwrap_or(u64::MAX));
    }
}

/// The inline size of one JSON value node.
const NODE: usize = std::mem::size_of::<Value>();
/// What a `String` or `Vec` header and a map entry's bookkeeping cost besides their contents.
const HEADER: usize = 24;

/// An estimate of the bytes `v` holds: its node plus any text, elements or entries it owns.
/// Allocation-free and linear in the value.
pub fn value_size(v: &Value) -> usize {
    NODE + match v {
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
        Value::String(s) => s.len(),
        Value::Array(items) => items.iter().map(value_size).sum(),
        Value::Object(map) => doc_size(map),
    }
}

/// [`value_size`] of an object's entries, for a document held as a map.
pub fn doc_size(d: &Map<String, Value>) -> usize {
    d.iter()
        .map(|(k, v)| HEADER + k.len() + value_size(v))
        .sum::<usize>()
        + HEADER
}

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sizes_grow_with_the_text_they_hold() {
        let small = json!({"a": "x"});
        let big = json!({"a": "x".repeat(10_000)});
        assert!(value_size(&big) >= 10_000);
        assert!(value_size(&big) - value_size(&small) == 9_999);
        let nested = json!({"a": [big.clone(), big.clone()]});
        assert!(value_size(&nested) >= 2 * value_size(&big));
    }

    #[test]
    fn charges_refuse_past_the_limit_and_releases_give_back() {
        let mut b = Budget::new(1000, Duration::ZERO);
        assert!(b.charge(600).is_ok());
        assert_eq!(
            b.charge(600),
            Err(BudgetError::Memory { limit: 1000 }),
            "the second charge passes the limit"
        );
        assert_eq!(b.left(), Some(0));
        b.release(1200);
        assert_eq!(b.used(), 0);
        assert_eq!(b.left(), Some(1000));
        assert!(b.charge(1000).is_ok(), "the limit itself is allowed");
        let mut none = Budget::unlimited();
        assert!(none.charge(usize::MAX).is_ok());
        assert!(none.time_left().is_none());
        assert!(none.left().is_none());
    }

    #[test]
    fn a_passed_deadline_refuses() {
        let b = Budget::new(0, Duration::from_nanos(1));
        std::thread::sleep(Duration::from_millis(2));
        assert!(matches!(b.check_time(), Err(BudgetError::Time { .. })));
        assert_eq!(b.time_left(), Some(Duration::ZERO));
    }

    #[test]
    fn messages_name_the_limit() {
        let e = BudgetError::Memory {
            limit: 64 * 1024 * 1024,
        };
        assert_eq!(
            e.to_string(),
            "the query's working set is over the limit of 64 MB; narrow it"
        );
        let e = BudgetError::Time {
            limit: Duration::from_secs(30),
        };
        assert_eq!(
            e.to_string(),
            "the query ran past its time limit of 30 s; narrow it"
        );
    }
}
