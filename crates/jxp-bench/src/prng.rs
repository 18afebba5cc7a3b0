//! Tiny xorshift64* pseudo-random generator: picks preloaded ids without a `rand` dependency.

/// xorshift64* (Vigna); never zero-state, so it never gets stuck.
#[derive(Clone, Debug)]
pub struct XorShift64 {
    state: u64,
}

impl XorShift64 {
    /// Seeds the generator; any seed (including 0) is scrambled into a non-zero state.
    pub fn new(seed: u64) -> Self {
        // One splitmix64 step spreads nearby seeds (worker 0, 1, 2, ...) apart.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Self {
            state: if z == 0 { 0x2545_F491_4F6C_DD1D } else { z },
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..n` (Lemire's multiply-shift; bias is negligible for small `n`).
    /// Returns 0 when `n` is 0.
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_stays_in_range() {
        let mut rng = XorShift64::new(7);
        for n in [1usize, 2, 3, 7, 100, 1_000, 1 << 20, usize::MAX] {
            for _ in 0..10_000 {
                assert!(rng.below(n) < n, "out of range for n={n}");
            }
        }
        assert_eq!(rng.below(0), 0);
    }

    #[test]
    fn below_covers_every_value_roughly_uniformly() {
        let mut rng = XorShift64::new(1);
        let mut hits = [0u32; 10];
        for _ in 0..100_000 {
            hits[rng.below(10)] += 1;
        }
        for (i, &h) in hits.iter().enumerate() {
            assert!((9_000..=11_000).contains(&h), "value {i} hit {h} times");
        }
    }

    #[test]
    fn zero_seed_works_and_seeds_differ() {
        let mut a = XorShift64::new(0);
        let mut b = XorShift64::new(1);
        let xa: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        let xb: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
        assert!(xa.iter().all(|&x| x != 0));
        assert_ne!(xa, xb);
    }
}
