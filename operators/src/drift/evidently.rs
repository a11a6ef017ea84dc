//! evidently 0.7's default binning of a numeric feature for PSI and KL.
//!
//! Guarantees: the same bins as evidently's `get_binned_data`: with more than
//! [`MAX_DISTINCT_FOR_VALUE_BINS`] distinct reference values, numpy's Sturges
//! equal-width edges over the pooled sample (`np.histogram_bin_edges(r ∪ c,
//! "sturges")`, last bin closed); otherwise one bin per distinct value of
//! `r ∪ c`. These bins depend on the current sample, so they suit offline
//! comparison only; streams use [`super::binning::QuantileBinning`].

use super::error::DriftError;

/// evidently switches from value bins to Sturges bins above this many
/// distinct reference values.
pub const MAX_DISTINCT_FOR_VALUE_BINS: usize = 20;

/// The bins evidently would use for one numeric feature.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EvidentlyBinning {
    /// Equal-width bins `[e_i, e_{i+1})`, the last one closed.
    EqualWidth {
        /// `k + 1` edges from the pooled minimum to the pooled maximum.
        edges: Vec<f64>,
    },
    /// One bin per distinct value, ascending.
    DistinctValues {
        /// The distinct values of `r ∪ c`.
        values: Vec<f64>,
    },
}

impl EvidentlyBinning {
    /// Chooses and builds the bins from both samples (finite values only).
    pub fn for_numeric(reference: &[f64], current: &[f64]) -> Result<Self, DriftError> {
        if reference.is_empty() {
            return Err(DriftError::EmptySample { which: "reference" });
        }
        if current.is_empty() {
            return Err(DriftError::EmptySample { which: "current" });
        }
        if reference.iter().any(|x| !x.is_finite()) {
            return Err(DriftError::NonFinite { which: "reference" });
        }
        if current.iter().any(|x| !x.is_finite()) {
            return Err(DriftError::NonFinite { which: "current" });
        }
        let reference_distinct = distinct_sorted(reference.iter().copied());
        if reference_distinct.len() > MAX_DISTINCT_FOR_VALUE_BINS {
            Ok(Self::EqualWidth {
                edges: sturges_edges(reference, current),
            })
        } else {
            Ok(Self::DistinctValues {
                values: distinct_sorted(reference.iter().chain(current).copied()),
            })
        }
    }

    /// Each bin in words: `[lo, hi)` (the last one closed), or its value.
    pub fn labels(&self) -> Vec<String> {
        match self {
            Self::EqualWidth { edges } => (edges.windows(2).enumerate())
                .map(|(i, e)| match i + 2 == edges.len() {
                    true => format!("[{}, {}]", e[0], e[1]),
                    false => format!("[{}, {})", e[0], e[1]),
                })
                .collect(),
            Self::DistinctValues { values } => values.iter().map(f64::to_string).collect(),
        }
    }

    /// Number of bins.
    pub fn n_bins(&self) -> usize {
        match self {
            Self::EqualWidth { edges } => edges.len().saturating_sub(1),
            Self::DistinctValues { values } => values.len(),
        }
    }

    /// Bin of `x`; `None` when it is outside every bin (or NaN).
    pub fn bin_of(&self, x: f64) -> Option<usize> {
        match self {
            Self::EqualWidth { edges } => {
                let (&first, &last) = (edges.first()?, edges.last()?);
                if !(first..=last).contains(&x) {
                    return None;
                }
                if x == last {
                    return Some(edges.len() - 2);
                }
                // Number of edges <= x, minus one: the half-open bin [e_i, e_{i+1}).
                Some(edges.partition_point(|&e| e <= x) - 1)
            }
            Self::DistinctValues { values } => {
                let i = values.partition_point(|&v| v < x);
                (values.get(i) == Some(&x)).then_some(i)
            }
        }
    }

    /// Counts per bin; values outside every bin are skipped.
    pub fn counts(&self, values: &[f64]) -> Vec<u64> {
        let mut counts = vec![0u64; self.n_bins()];
        for bin in values.iter().filter_map(|&x| self.bin_of(x)) {
            counts[bin] += 1;
        }
        counts
    }
}

/// Distinct values ascending; `-0.0` and `0.0` are one value, as in pandas.
fn distinct_sorted(values: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    v.dedup_by(|a, b| a == b);
    v
}

/// numpy's Sturges edges for the pooled sample, floating-point step by step:
/// the bin count is `ceil(ptp / (ptp / (log2(n) + 1)))`, which can differ
/// from `ceil(log2(n) + 1)` when `n` is a power of two.
fn sturges_edges(reference: &[f64], current: &[f64]) -> Vec<f64> {
    let pooled = reference.iter().chain(current);
    let min = pooled.clone().copied().fold(f64::INFINITY, f64::min);
    let max = pooled.copied().fold(f64::NEG_INFINITY, f64::max);
    let n = (reference.len() + current.len()) as f64;
    let (mut first, mut last) = (min, max);
    if first == last {
        first -= 0.5;
        last += 0.5;
    }
    let width = (max - min) / (n.log2() + 1.0);
    let k = if width > 0.0 {
        ((last - first) / width).ceil() as usize
    } else {
        1
    };
    // np.linspace(first, last, k + 1): i * step + first, last edge exact.
    let step = (last - first) / k as f64;
    let mut edges: Vec<f64> = (0..=k).map(|i| i as f64 * step + first).collect();
    edges[k] = last;
    edges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_distinct_values_get_value_bins() {
        let r = [1.0, 2.0, 2.0, 3.0];
        let c = [2.0, 5.0];
        let b = EvidentlyBinning::for_numeric(&r, &c).unwrap();
        assert_eq!(
            b,
            EvidentlyBinning::DistinctValues {
                values: vec![1.0, 2.0, 3.0, 5.0]
            }
        );
        assert_eq!(b.counts(&r), vec![1, 2, 1, 0]);
        assert_eq!(b.counts(&c), vec![0, 1, 0, 1]);
    }

    #[test]
    fn many_distinct_values_get_sturges_bins_with_closed_last_bin() {
        let r: Vec<f64> = (0..30).map(f64::from).collect();
        let c: Vec<f64> = (0..34).map(f64::from).collect();
        let b = EvidentlyBinning::for_numeric(&r, &c).unwrap();
        // n = 64 = 2^6: log2(n) + 1 = 7 exactly, and 33 / (33 / 7) == 7.
        assert_eq!(b.n_bins(), 7);
        assert_eq!(b.bin_of(0.0), Some(0));
        assert_eq!(b.bin_of(33.0), Some(6));
        assert_eq!(b.bin_of(33.5), None);
        assert_eq!(b.counts(&c).iter().sum::<u64>(), 34);
    }
}
