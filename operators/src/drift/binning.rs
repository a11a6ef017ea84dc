//! Binnings fixed at reference time: reference quantile cuts ("q10") and one
//! bin per category.
//!
//! Guarantees: a binning depends on the reference alone (categories: on the
//! categories it was built from), so every window, partition and instance bins
//! a value identically and histograms merge by adding counts. Bin lookup is a
//! binary search with no allocation.

use super::error::DriftError;
use super::quantile::quantiles_sorted;

/// Reference-quantile cuts `c_1 <= .. <= c_{k-1}` at probabilities `i/k`.
///
/// Bin of `x` = number of cuts strictly below `x`, i.e. the bins are
/// `(-inf, c_1], (c_1, c_2], .., (c_{k-1}, +inf)`. Duplicate cuts are kept, so
/// a heavily tied reference yields empty bins rather than fewer bins: the bin
/// count stays `k` whatever the data.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct QuantileBinning {
    cuts: Vec<f64>,
}

impl QuantileBinning {
    /// The "q10" default: deciles.
    pub const DEFAULT_BINS: usize = 10;

    /// Cuts from an unsorted reference sample (finite values only).
    pub fn from_reference(reference: &[f64], bins: usize) -> Result<Self, DriftError> {
        if reference.iter().any(|x| !x.is_finite()) {
            return Err(DriftError::NonFinite { which: "reference" });
        }
        let mut sorted = reference.to_vec();
        sorted.sort_by(f64::total_cmp);
        Self::from_sorted_reference(&sorted, bins)
    }

    /// Cuts from a reference sample already sorted ascending.
    pub fn from_sorted_reference(sorted: &[f64], bins: usize) -> Result<Self, DriftError> {
        if bins < 2 {
            return Err(DriftError::InvalidParameter {
                name: "bins",
                reason: format!("need at least 2 bins, got {bins}"),
            });
        }
        if sorted.is_empty() {
            return Err(DriftError::EmptySample { which: "reference" });
        }
        // i/k rather than a running sum: the probabilities are then the
        // correctly rounded doubles numpy receives for 0.1, 0.2, ...
        let probs: Vec<f64> = (1..bins).map(|i| i as f64 / bins as f64).collect();
        let cuts = quantiles_sorted(sorted, &probs)
            .ok_or(DriftError::EmptySample { which: "reference" })?;
        Self::from_cuts(cuts)
    }

    /// Cuts restored from a stored profile; must be finite and non-decreasing.
    pub fn from_cuts(cuts: Vec<f64>) -> Result<Self, DriftError> {
        if cuts.iter().any(|c| !c.is_finite()) {
            return Err(DriftError::NonFinite { which: "cuts" });
        }
        if cuts.windows(2).any(|w| w[0] > w[1]) {
            return Err(DriftError::InvalidParameter {
                name: "cuts",
                reason: "cuts must be non-decreasing".to_string(),
            });
        }
        Ok(Self { cuts })
    }

    /// The cut points.
    pub fn cuts(&self) -> &[f64] {
        &self.cuts
    }

    /// Number of bins (`cuts + 1`).
    pub fn n_bins(&self) -> usize {
        self.cuts.len() + 1
    }

    /// Bin of `x`; `None` for NaN, which callers count as missing.
    pub fn bin_of(&self, x: f64) -> Option<usize> {
        if x.is_nan() {
            return None;
        }
        // The number of cuts below `x` (the cuts are finite and non-decreasing). For the usual
        // ten bins a count without branches beats a binary search, whose branches the data
        // decide: perf put the search at 18% of the drift thread in `bench_e2e` (c).
        if self.cuts.len() <= LINEAR_COUNT_MAX_CUTS {
            Some(self.cuts.iter().map(|&c| usize::from(c < x)).sum())
        } else {
            Some(self.cuts.partition_point(|&c| c < x))
        }
    }

    /// Counts per bin of `values`; NaNs are skipped.
    pub fn counts(&self, values: &[f64]) -> Vec<u64> {
        let mut counts = vec![0u64; self.n_bins()];
        for bin in values.iter().filter_map(|&x| self.bin_of(x)) {
            counts[bin] += 1;
        }
        counts
    }
}

/// Up to this many cuts [`QuantileBinning::bin_of`] counts linearly rather than searching.
const LINEAR_COUNT_MAX_CUTS: usize = 32;

/// One bin per category, categories sorted by their string (byte) order.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CategoricalBinning {
    categories: Vec<String>,
}

impl CategoricalBinning {
    /// Bins for the union of the categories of `reference` and `current`,
    /// so a category unseen in the reference still gets its own bin.
    pub fn from_samples<S: AsRef<str>>(reference: &[S], current: &[S]) -> Self {
        let mut categories: Vec<String> = reference
            .iter()
            .chain(current)
            .map(|s| s.as_ref().to_string())
            .collect();
        categories.sort_unstable();
        categories.dedup();
        Self { categories }
    }

    /// Bins for a fixed, known set of categories (duplicates removed).
    pub fn from_categories(mut categories: Vec<String>) -> Self {
        categories.sort_unstable();
        categories.dedup();
        Self { categories }
    }

    /// The categories, in bin order.
    pub fn categories(&self) -> &[String] {
        &self.categories
    }

    /// Number of bins.
    pub fn n_bins(&self) -> usize {
        self.categories.len()
    }

    /// Bin of a category; `None` when it is not one of the bins.
    pub fn bin_of(&self, category: &str) -> Option<usize> {
        self.categories
            .binary_search_by(|c| c.as_str().cmp(category))
            .ok()
    }

    /// Counts per bin; values outside the categories are skipped.
    pub fn counts<S: AsRef<str>>(&self, values: &[S]) -> Vec<u64> {
        let mut counts = vec![0u64; self.n_bins()];
        for bin in values.iter().filter_map(|v| self.bin_of(v.as_ref())) {
            counts[bin] += 1;
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_values_fall_in_the_lower_bin() {
        let binning = QuantileBinning::from_cuts(vec![1.0, 2.0, 2.0, 3.0]).unwrap();
        assert_eq!(binning.n_bins(), 5);
        assert_eq!(binning.bin_of(0.5), Some(0));
        assert_eq!(binning.bin_of(1.0), Some(0));
        assert_eq!(binning.bin_of(1.5), Some(1));
        // Duplicate cut: (2, 2] is an empty bin, 2.0 itself goes to bin 1.
        assert_eq!(binning.bin_of(2.0), Some(1));
        assert_eq!(binning.bin_of(2.5), Some(3));
        assert_eq!(binning.bin_of(9.0), Some(4));
        assert_eq!(binning.bin_of(f64::NAN), None);
    }

    proptest::proptest! {
        #[test]
        fn bin_of_counts_the_cuts_below(
            cuts in proptest::collection::vec(-5i32..5, 1..48),
            x in -6.0f64..6.0,
        ) {
            // Integer cuts make ties with x likely; up to 47 cuts take both ways of counting.
            let mut cuts: Vec<f64> = cuts.into_iter().map(f64::from).collect();
            cuts.sort_by(f64::total_cmp);
            let b = QuantileBinning::from_cuts(cuts.clone()).unwrap();
            for x in [x, x.round(), -0.0, 0.0] {
                proptest::prop_assert_eq!(b.bin_of(x), Some(cuts.partition_point(|&c| c < x)));
            }
            proptest::prop_assert_eq!(b.bin_of(f64::NAN), None);
        }
    }

    #[test]
    fn rejects_unsorted_cuts_and_too_few_bins() {
        assert!(QuantileBinning::from_cuts(vec![2.0, 1.0]).is_err());
        assert!(QuantileBinning::from_reference(&[1.0, 2.0], 1).is_err());
        assert!(QuantileBinning::from_reference(&[], 10).is_err());
        assert!(QuantileBinning::from_reference(&[f64::NAN], 10).is_err());
    }

    #[test]
    fn categories_are_sorted_and_include_unseen() {
        let binning = CategoricalBinning::from_samples(&["b", "a", "b"], &["c", "a"]);
        assert_eq!(binning.categories(), ["a", "b", "c"]);
        assert_eq!(binning.counts(&["b", "a", "b"]), vec![1, 2, 0]);
        assert_eq!(binning.bin_of("z"), None);
    }
}
