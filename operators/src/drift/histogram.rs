//! Counts per bin for one feature over some set of events.
//!
//! Guarantees: recording a value is O(1) and never allocates (counts are
//! allocated once, at construction); histograms over the same bins merge by
//! adding counts and un-merge by subtracting them, so per-partition or
//! per-pane histograms combine exactly into the histogram of all events.

use super::error::DriftError;

/// Counts per bin, plus events that had no bin (missing or NaN).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BinnedHistogram {
    counts: Vec<u64>,
    missing: u64,
    total: u64,
}

impl BinnedHistogram {
    /// An empty histogram with `n_bins` bins.
    pub fn new(n_bins: usize) -> Self {
        Self {
            counts: vec![0; n_bins],
            missing: 0,
            total: 0,
        }
    }

    /// A histogram with these counts per bin and `missing` events without a bin (a merge of
    /// counts kept elsewhere).
    pub fn from_counts(counts: Vec<u64>, missing: u64) -> Self {
        let total = counts.iter().sum::<u64>() + missing;
        Self {
            counts,
            missing,
            total,
        }
    }

    /// Number of bins.
    pub fn n_bins(&self) -> usize {
        self.counts.len()
    }

    /// Counts per bin.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// Events without a bin.
    pub fn missing(&self) -> u64 {
        self.missing
    }

    /// All events recorded: binned plus missing.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Events that landed in a bin.
    pub fn binned(&self) -> u64 {
        self.total - self.missing
    }

    /// Records one event: `Some(bin)` or `None` for missing.
    pub fn record(&mut self, bin: Option<usize>) -> Result<(), DriftError> {
        match bin {
            Some(b) => {
                let n_bins = self.counts.len();
                let slot = self
                    .counts
                    .get_mut(b)
                    .ok_or(DriftError::BinOutOfRange { bin: b, n_bins })?;
                *slot += 1;
            }
            None => self.missing += 1,
        }
        self.total += 1;
        Ok(())
    }

    /// Adds `other`'s counts (same bins).
    pub fn merge(&mut self, other: &Self) -> Result<(), DriftError> {
        self.check_bins(other)?;
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.missing += other.missing;
        self.total += other.total;
        Ok(())
    }

    /// Removes `other`'s counts, which must have been merged in before;
    /// on error nothing is changed.
    pub fn subtract(&mut self, other: &Self) -> Result<(), DriftError> {
        self.check_bins(other)?;
        if let Some(bin) = (0..self.counts.len()).find(|&i| self.counts[i] < other.counts[i]) {
            return Err(DriftError::CountUnderflow { bin: Some(bin) });
        }
        if self.missing < other.missing || self.total < other.total {
            return Err(DriftError::CountUnderflow { bin: None });
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a -= b;
        }
        self.missing -= other.missing;
        self.total -= other.total;
        Ok(())
    }

    /// Zeroes every count, keeping the allocation.
    pub fn clear(&mut self) {
        self.counts.fill(0);
        self.missing = 0;
        self.total = 0;
    }

    fn check_bins(&self, other: &Self) -> Result<(), DriftError> {
        if self.counts.len() != other.counts.len() {
            return Err(DriftError::BinMismatch {
                expected: self.counts.len(),
                found: other.counts.len(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn records_and_rejects() {
        let mut h = BinnedHistogram::new(3);
        h.record(Some(2)).unwrap();
        h.record(None).unwrap();
        assert_eq!(
            (h.counts(), h.missing(), h.total(), h.binned()),
            (&[0, 0, 1][..], 1, 2, 1)
        );
        assert!(h.record(Some(3)).is_err());
        assert!(h.merge(&BinnedHistogram::new(2)).is_err());
        let mut other = BinnedHistogram::new(3);
        other.record(Some(0)).unwrap();
        assert_eq!(
            h.subtract(&other),
            Err(DriftError::CountUnderflow { bin: Some(0) })
        );
        assert_eq!(h.total(), 2);
    }

    proptest! {
        #[test]
        fn merging_partitions_equals_one_histogram(
            events in prop::collection::vec((prop::option::of(0usize..8), 0usize..4), 0..300),
        ) {
            let mut whole = BinnedHistogram::new(8);
            let mut parts = vec![BinnedHistogram::new(8); 4];
            for &(bin, part) in &events {
                whole.record(bin).unwrap();
                parts[part].record(bin).unwrap();
            }
            let mut merged = BinnedHistogram::new(8);
            for p in &parts {
                merged.merge(p).unwrap();
            }
            prop_assert_eq!(&merged, &whole);
            for p in &parts {
                merged.subtract(p).unwrap();
            }
            prop_assert_eq!(merged, BinnedHistogram::new(8));
        }
    }
}
