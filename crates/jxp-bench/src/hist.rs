//! Fixed-memory log-linear latency histogram (HDR-style) with microsecond resolution.
//!
//! Values below 128 µs get one bucket each (exact). Above that, every power of two is split
//! into 128 linear sub-buckets, so a bucket is at most 1/128 of its lower bound wide and the
//! reported bucket midpoint is within 0.4% of any value recorded in it. The whole `u64` range
//! is covered in 7,424 counters (~58 KiB), whatever the number of samples.

use std::time::Duration;

/// log2 of the number of linear sub-buckets per power of two.
const SUB_BITS: u32 = 7;
/// Linear sub-buckets per power of two (and the bound below which values are exact).
const SUB: u64 = 1 << SUB_BITS;
/// One exact range (0..SUB) plus one group of SUB buckets for each exponent SUB_BITS..=63.
const BUCKETS: usize = (SUB as usize) * (64 - SUB_BITS as usize + 1);

/// A latency histogram in microseconds.
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Box<[u64]>,
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    pub fn new() -> Self {
        Self {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            count: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    /// Records one duration, truncated to whole microseconds.
    pub fn record(&mut self, d: Duration) {
        self.record_us(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    }

    /// Records one value in microseconds.
    pub fn record_us(&mut self, us: u64) {
        self.counts[index_of(us)] += 1;
        self.count += 1;
        self.sum += u128::from(us);
        self.min = self.min.min(us);
        self.max = self.max.max(us);
    }

    /// Adds every sample of `other` to `self`.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += *b;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// Number of recorded values.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Exact largest recorded value, if any.
    pub fn max_us(&self) -> Option<u64> {
        (self.count > 0).then_some(self.max)
    }

    /// Exact mean of the recorded values, if any.
    pub fn mean_us(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum as f64 / self.count as f64)
    }

    /// The value at percentile `p` (0–100, nearest-rank), within ~0.4% of the true sample.
    pub fn percentile_us(&self, p: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let p = if p.is_nan() {
            100.0
        } else {
            p.clamp(0.0, 100.0)
        };
        let rank = ((p / 100.0) * self.count as f64).ceil() as u64;
        let rank = rank.clamp(1, self.count);
        let mut seen = 0u64;
        for (idx, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (low, high) = bounds_of(idx);
                let mid = low + (high - low) / 2;
                return Some(mid.clamp(self.min, self.max));
            }
        }
        Some(self.max)
    }
}

/// Bucket index of a value.
fn index_of(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros(); // >= SUB_BITS
    let shift = exp - SUB_BITS;
    let sub = (v >> shift) - SUB; // 0..SUB
    (SUB + u64::from(shift) * SUB + sub) as usize
}

/// Inclusive lowest and highest value of a bucket.
fn bounds_of(idx: usize) -> (u64, u64) {
    let idx = idx as u64;
    if idx < SUB {
        return (idx, idx);
    }
    let k = idx - SUB;
    let shift = k / SUB;
    let sub = k % SUB;
    let low = (SUB + sub) << shift;
    let high = low.saturating_add((1u64 << shift) - 1);
    (low, high)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prng::XorShift64;

    fn exact_percentile(sorted: &[u64], p: f64) -> u64 {
        let n = sorted.len() as u64;
        let rank = (((p / 100.0) * n as f64).ceil() as u64).clamp(1, n);
        sorted[(rank - 1) as usize]
    }

    fn assert_close(got: u64, want: u64, what: &str) {
        let err = (got as f64 - want as f64).abs() / (want.max(1) as f64);
        assert!(
            err <= 0.01,
            "{what}: got {got}, want {want} (error {err:.4})"
        );
    }

    #[test]
    fn index_and_bounds_agree() {
        for v in (0..5_000u64).chain([u64::MAX / 3, u64::MAX - 1, u64::MAX]) {
            let (lo, hi) = bounds_of(index_of(v));
            assert!(lo <= v && v <= hi, "{v} not in [{lo}, {hi}]");
        }
        assert_eq!(index_of(u64::MAX), BUCKETS - 1);
        // Buckets are contiguous: each starts right after the previous one ends.
        for idx in 1..BUCKETS {
            assert_eq!(bounds_of(idx).0, bounds_of(idx - 1).1 + 1, "gap at {idx}");
        }
    }

    #[test]
    fn small_values_are_exact() {
        let mut h = Histogram::new();
        for v in 1..=100 {
            h.record_us(v);
        }
        assert_eq!(h.percentile_us(50.0), Some(50));
        assert_eq!(h.percentile_us(90.0), Some(90));
        assert_eq!(h.percentile_us(99.0), Some(99));
        assert_eq!(h.percentile_us(100.0), Some(100));
        assert_eq!(h.percentile_us(0.0), Some(1));
        assert_eq!(h.max_us(), Some(100));
        assert_eq!(h.mean_us(), Some(50.5));
    }

    #[test]
    fn uniform_range_within_one_percent() {
        let mut h = Histogram::new();
        for v in 1..=1_000_000u64 {
            h.record_us(v);
        }
        assert_close(h.percentile_us(50.0).unwrap_or(0), 500_000, "p50");
        assert_close(h.percentile_us(90.0).unwrap_or(0), 900_000, "p90");
        assert_close(h.percentile_us(99.0).unwrap_or(0), 990_000, "p99");
        assert_close(h.percentile_us(99.9).unwrap_or(0), 999_000, "p99.9");
        assert_eq!(h.max_us(), Some(1_000_000));
    }

    #[test]
    fn skewed_random_samples_within_one_percent() {
        // Latency-like: mostly 1-5 ms with a long tail up to seconds.
        let mut rng = XorShift64::new(42);
        let mut samples = Vec::new();
        let mut h = Histogram::new();
        for _ in 0..200_000 {
            let base = 1_000 + rng.below(4_000) as u64;
            let v = if rng.below(100) == 0 {
                base * (1 + rng.below(500) as u64)
            } else {
                base
            };
            samples.push(v);
            h.record_us(v);
        }
        samples.sort_unstable();
        for p in [1.0, 10.0, 50.0, 90.0, 99.0, 99.9, 100.0] {
            assert_close(
                h.percentile_us(p).unwrap_or(0),
                exact_percentile(&samples, p),
                &format!("p{p}"),
            );
        }
    }

    #[test]
    fn merge_equals_recording_everything_in_one() {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        let mut all = Histogram::new();
        for v in 0..10_000u64 {
            let x = v * 37 % 20_011;
            if v % 2 == 0 {
                a.record_us(x)
            } else {
                b.record_us(x)
            }
            all.record_us(x);
        }
        a.merge(&b);
        for p in [50.0, 90.0, 99.0] {
            assert_eq!(a.percentile_us(p), all.percentile_us(p));
        }
        assert_eq!(a.count, all.count);
        assert_eq!(a.mean_us(), all.mean_us());
        assert_eq!(a.max_us(), all.max_us());
    }

    #[test]
    fn empty_has_no_percentiles() {
        let h = Histogram::new();
        assert_eq!(h.percentile_us(50.0), None);
        assert_eq!(h.max_us(), None);
        assert_eq!(h.mean_us(), None);
    }

    #[test]
    fn durations_are_recorded_in_microseconds() {
        let mut h = Histogram::new();
        h.record(Duration::from_micros(2_500));
        h.record(Duration::from_nanos(999));
        assert_eq!(h.max_us(), Some(2_500));
        assert_eq!(h.percentile_us(0.0), Some(0));
    }
}
