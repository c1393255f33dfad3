//! Record keys: none, uniform, zipf or sequential over `cardinality` ids, zero-padded to `size` bytes.

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Zipf};

use crate::workload::{KeyDistribution, KeySpec};

/// Generates keys without allocating per call.
#[derive(Debug)]
pub(crate) struct KeyGenerator {
    kind: KeyDistribution,
    cardinality: u64,
    zipf: Option<Zipf<f64>>,
    rng: SmallRng,
    next: u64,
    buf: Vec<u8>,
}

impl KeyGenerator {
    pub(crate) fn new(spec: &KeySpec, seed: u64) -> Self {
        let cardinality = spec.cardinality.max(1);
        KeyGenerator {
            kind: spec.distribution,
            cardinality,
            zipf: Zipf::new(cardinality as f64, spec.s).ok(),
            rng: SmallRng::seed_from_u64(seed),
            next: 0,
            buf: vec![b'0'; spec.size.max(1)],
        }
    }

    /// The next key (`None` for keyless records).
    #[inline]
    pub(crate) fn next(&mut self) -> Option<&[u8]> {
        let id = match self.kind {
            KeyDistribution::None => return None,
            KeyDistribution::Uniform => self.rng.random_range(0..self.cardinality),
            KeyDistribution::Sequential => return Some(self.next_sequential()),
            KeyDistribution::Zipf => match &self.zipf {
                Some(z) => (z.sample(&mut self.rng) as u64).saturating_sub(1).min(self.cardinality - 1),
                None => 0,
            },
        };
        // Zero-padded decimal id, right-aligned in the key.
        let mut v = id;
        for b in self.buf.iter_mut().rev() {
            *b = b'0' + (v % 10) as u8;
            v /= 10;
        }
        Some(&self.buf)
    }
}

impl KeyGenerator {
    /// Sequential ids: the buffer holds the last id's digits, so the next is one decimal increment
    /// in place (the digits past the key's size drop off, as when formatting), not a formatting of
    /// the id (eight divisions by ten per key).
    #[inline]
    fn next_sequential(&mut self) -> &[u8] {
        if self.next == 0 {
            self.buf.fill(b'0');
        } else {
            for b in self.buf.iter_mut().rev() {
                if *b == b'9' {
                    *b = b'0';
                } else {
                    *b += 1;
                    break;
                }
            }
        }
        self.next += 1;
        if self.next == self.cardinality {
            self.next = 0;
        }
        &self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(distribution: KeyDistribution, cardinality: u64) -> KeySpec {
        KeySpec { distribution, cardinality, size: 8, s: 1.1 }
    }

    #[test]
    fn distributions_honour_cardinality_and_skew() {
        let mut seq = KeyGenerator::new(&spec(KeyDistribution::Sequential, 3), 1);
        let got: Vec<Vec<u8>> = (0..4).map(|_| seq.next().unwrap().to_vec()).collect();
        assert_eq!(got, [b"00000000".to_vec(), b"00000001".to_vec(), b"00000002".to_vec(), b"00000000".to_vec()]);
        let mut uni = KeyGenerator::new(&spec(KeyDistribution::Uniform, 50), 1);
        let distinct: std::collections::HashSet<Vec<u8>> = (0..5000).map(|_| uni.next().unwrap().to_vec()).collect();
        assert_eq!(distinct.len(), 50);
        let mut zipf = KeyGenerator::new(&spec(KeyDistribution::Zipf, 1000), 1);
        let hot = (0..10_000).filter(|_| zipf.next().unwrap() == b"00000000").count();
        assert!(hot > 1000, "zipf's first key should be hot, got {hot}/10000");
        assert!(KeyGenerator::new(&spec(KeyDistribution::None, 1), 1).next().is_none());
    }

    #[test]
    fn sequential_keys_are_the_ids_digits_wrapping_at_the_cardinality() {
        // Incremented in place: the same bytes as formatting `i % cardinality`, zero-padded and cut
        // to the key's size, across carries, the wrap and ids wider than the key.
        for (cardinality, size) in [(100_003u64, 8usize), (250, 2), (1, 3), (10_000, 4)] {
            let mut seq = KeyGenerator::new(&KeySpec { size, ..spec(KeyDistribution::Sequential, cardinality) }, 1);
            for i in 0..cardinality * 3 + 7 {
                let id = i % cardinality;
                let want = format!("{id:0size$}");
                let want = &want.as_bytes()[want.len() - size..];
                assert_eq!(seq.next().unwrap(), want, "id {id}, cardinality {cardinality}, size {size}");
            }
        }
    }
}
