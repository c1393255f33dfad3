//! Noise of a single run, from its own seconds: a moving block bootstrap (Künsch 1989) of the mean of
//! a case's per-second figures (records/s, p99) from intervals.csv. Consecutive seconds are
//! correlated (a slow fsync, a page-cache flush spans several), so seconds are resampled in blocks
//! of about the square root of their number rather than one by one, which would understate the spread.
//!
//! A change is real when the 95% interval of the relative change (the candidate's mean over the
//! baseline's, less one) excludes zero: the observed change plus or minus the resamples' standard
//! error times Student's t at the degrees of freedom of batch means, n/b - 1 (a few seconds hold
//! few blocks; the normal quantile or the resamples' percentiles would claim more certainty than
//! they have). Resampling is
//! seeded: the same two runs give the same verdict.

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

/// Seconds needed on each side for a verdict.
pub const MIN_INTERVALS: usize = 5;

/// Resamples per side.
const RESAMPLES: usize = 2000;

/// Fixed seed: the verdict on two runs never changes from one `compare` to the next.
const SEED: u64 = 0x6b62_656e_6368;

/// The 95% interval of the relative change of the mean, in percent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

impl Interval {
    /// Whether zero lies outside the interval.
    pub fn excludes_zero(&self) -> bool {
        self.low > 0.0 || self.high < 0.0
    }
}

/// The mean of one moving-block resample of `x` with blocks of `block` values.
fn resample_mean(x: &[f64], block: usize, rng: &mut SmallRng) -> f64 {
    let n = x.len();
    let mut sum = 0.0;
    let mut taken = 0;
    while taken < n {
        let start = rng.random_range(0..=n - block);
        for v in &x[start..start + block.min(n - taken)] {
            sum += v;
        }
        taken += block.min(n - taken);
    }
    sum / n as f64
}

/// Block length for `n` values: about the square root (3 of 10 seconds), at least 1. Shorter
/// blocks (n^(1/3), the asymptotic choice) cut through the slow swings a few seconds have and
/// understate the noise: they called 2 of 20 identical 10-second pairs changed.
fn block_len(n: usize) -> usize {
    ((n as f64).sqrt().round() as usize).clamp(1, n.max(1))
}

/// The 95% bootstrap interval of `mean(cand) / mean(base) - 1` in percent, or `None` when a side has
/// fewer than [`MIN_INTERVALS`] values.
pub fn change_interval(base: &[f64], cand: &[f64]) -> Option<Interval> {
    if base.len() < MIN_INTERVALS || cand.len() < MIN_INTERVALS {
        return None;
    }
    let mut rng = SmallRng::seed_from_u64(SEED);
    let (bb, cb) = (block_len(base.len()), block_len(cand.len()));
    let changes: Vec<f64> = (0..RESAMPLES)
        .map(|_| {
            let b = resample_mean(base, bb, &mut rng);
            let c = resample_mean(cand, cb, &mut rng);
            (c / b.max(f64::MIN_POSITIVE) - 1.0) * 100.0
        })
        .collect();
    let mean_of = |x: &[f64]| x.iter().sum::<f64>() / x.len() as f64;
    let observed = (mean_of(cand) / mean_of(base).max(f64::MIN_POSITIVE) - 1.0) * 100.0;
    let m = mean_of(&changes);
    let se = (changes.iter().map(|c| (c - m).powi(2)).sum::<f64>() / (RESAMPLES - 1) as f64).sqrt();
    // A few seconds hold only a few independent blocks: Student's t at the degrees of freedom of
    // batch means, n/b - 1, where the normal quantile, the resamples' own percentiles or the
    // overlapping-batch 1.5 (n/b - 1) called 12% of identical 10-second pairs changed (test below).
    let df = |n: usize, b: usize| n as f64 / b as f64 - 1.0;
    let t = super::t_critical(df(base.len(), bb).min(df(cand.len(), cb)).max(1.0));
    Some(Interval { low: observed - t * se, high: observed + t * se })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_distr::{Distribution, Normal};

    /// A run's seconds: level `mean`, AR(1) noise (correlation 0.5, `spread` of the level), from `seed`.
    fn seconds(mean: f64, spread: f64, n: usize, seed: u64) -> Vec<f64> {
        let mut rng = SmallRng::seed_from_u64(seed);
        let noise = Normal::new(0.0, spread * mean).unwrap();
        let mut e = 0.0;
        (0..n)
            .map(|_| {
                e = 0.5 * e + noise.sample(&mut rng);
                mean + e
            })
            .collect()
    }

    /// compare's rule for one figure: beyond the threshold (5%) and outside the interval.
    fn changed(base: &[f64], cand: &[f64]) -> bool {
        let mean = |x: &[f64]| x.iter().sum::<f64>() / x.len() as f64;
        let change = (mean(cand) / mean(base) - 1.0) * 100.0;
        change.abs() > 5.0 && change_interval(base, cand).unwrap().excludes_zero()
    }

    /// 200 pairs of identical runs of 10 seconds, each second 10% noisy and correlated with the last:
    /// at least 19 in 20 are within noise (a rate, so over enough pairs to measure one).
    #[test]
    fn identical_runs_are_within_noise_at_least_19_times_in_20() {
        let pair = |i: u64| (seconds(1e6, 0.1, 10, 2 * i), seconds(1e6, 0.1, 10, 2 * i + 1));
        let flagged = (0..200u64)
            .filter(|i| {
                let (a, b) = pair(*i);
                changed(&a, &b)
            })
            .count();
        assert!(flagged <= 10, "{flagged} of 200 identical pairs called changed");
        // The interval alone, without the threshold, near its nominal 95% too.
        let outside = (0..200u64)
            .filter(|i| {
                let (a, b) = pair(*i);
                change_interval(&a, &b).unwrap().excludes_zero()
            })
            .count();
        assert!(outside <= 10, "{outside} of 200 identical pairs outside the 95% interval");
    }

    #[test]
    fn a_real_shift_is_found() {
        let found =
            (0..20u64).filter(|i| changed(&seconds(1e6, 0.1, 10, 2 * i), &seconds(0.7e6, 0.1, 10, 2 * i + 1))).count();
        assert!(found >= 19, "a 30% drop found in {found} of 20 pairs");
        let i = change_interval(&seconds(1e6, 0.05, 10, 1), &seconds(0.8e6, 0.05, 10, 2)).unwrap();
        assert!(i.low < -10.0 && i.high < 0.0, "{i:?}");
    }

    #[test]
    fn too_few_seconds_give_no_interval_and_the_same_data_the_same_one() {
        assert_eq!(change_interval(&[1.0; 4], &[1.0; 10]), None);
        let (a, b) = (seconds(100.0, 0.1, 8, 7), seconds(100.0, 0.1, 8, 8));
        assert_eq!(change_interval(&a, &b), change_interval(&a, &b), "seeded");
        assert_eq!(change_interval(&[5.0; 6], &[5.0; 6]), Some(Interval { low: 0.0, high: 0.0 }));
    }
}
