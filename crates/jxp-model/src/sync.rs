//! The project's one way to treat a poisoned lock: take the guard back
//! (`PoisonError::into_inner`) and go on. Every lock in jxp guards data that is valid after
//! any step of its holder (the store's table map, idle reader connections and published seqs;
//! the core's identity cache and rate-limit buckets; the wire layer's response cache and each
//! connection's send queue, changed by single pushes and pops), so a poisoned lock holds
//! nothing half-made. Refusing every later request because of one panic would turn a fault of
//! one call into an outage, and going without a lock's data (skipping a cache invalidation)
//! would serve stale answers. It lives in the lowest crate so that every layer locks through
//! these functions, never with `lock()` and a local decision.

use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Locks `m`, poisoned or not.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Read-locks `l`, poisoned or not.
pub fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

/// Write-locks `l`, poisoned or not.
pub fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

// Tests only: a panic here is an assertion; failing is how the test reports.
#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::lock;

    #[test]
    fn a_poisoned_lock_is_taken_back_with_its_data() {
        let m = Arc::new(Mutex::new(vec![1]));
        let held = m.clone();
        let panicked = std::thread::spawn(move || {
            let mut v = lock(&held);
            v.push(2);
            panic!("a holder fails");
        })
        .join();
        assert!(panicked.is_err());
        assert!(m.is_poisoned());
        assert_eq!(*lock(&m), vec![1, 2]);
    }
}
