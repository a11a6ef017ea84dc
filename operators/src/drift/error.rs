//! The one error type of the drift statistics.
//!
//! Every variant names what was wrong with which input, so a caller can turn
//! it into a user-facing message without knowing which function produced it.

use std::fmt;

/// Why a drift statistic could not be computed.
#[derive(Debug, Clone, PartialEq)]
pub enum DriftError {
    /// A sample that must hold at least one value was empty.
    EmptySample {
        /// Which sample: `"reference"` or `"current"`.
        which: &'static str,
    },
    /// A value that must be finite was NaN or infinite.
    NonFinite {
        /// Which sample or parameter held it.
        which: &'static str,
    },
    /// A parameter was out of its allowed range.
    InvalidParameter {
        /// The parameter's name.
        name: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// Two histograms or count vectors that must share bins did not.
    BinMismatch {
        /// Number of bins expected.
        expected: usize,
        /// Number of bins found.
        found: usize,
    },
    /// A bin index outside the histogram.
    BinOutOfRange {
        /// The offending index.
        bin: usize,
        /// Number of bins in the histogram.
        n_bins: usize,
    },
    /// Subtracting a histogram that was never added would make a count negative.
    CountUnderflow {
        /// The bin (or `None` for the missing count).
        bin: Option<usize>,
    },
}

impl fmt::Display for DriftError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptySample { which } => write!(f, "the {which} sample is empty"),
            Self::NonFinite { which } => write!(f, "the {which} holds a NaN or infinite value"),
            Self::InvalidParameter { name, reason } => write!(f, "invalid {name}: {reason}"),
            Self::BinMismatch { expected, found } => {
                write!(f, "expected {expected} bins, found {found}")
            }
            Self::BinOutOfRange { bin, n_bins } => {
                write!(f, "bin {bin} is outside a histogram of {n_bins} bins")
            }
            Self::CountUnderflow { bin: Some(bin) } => {
                write!(f, "subtracting would make the count of bin {bin} negative")
            }
            Self::CountUnderflow { bin: None } => {
                write!(f, "subtracting would make the missing count negative")
            }
        }
    }
}

impl std::error::Error for DriftError {}
