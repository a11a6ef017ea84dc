//! Drift statistics: pure, synchronous functions and small state machines.
//!
//! Offline comparison ([`compare`]) reproduces scipy 1.17 `ks_2samp` and
//! evidently 0.7 PSI/KL (checked against `tests/fixtures/drift-oracle`); the
//! streaming pieces ([`histogram`], [`window`], [`alert`]) keep constant
//! memory per feature and bin values against bins fixed at reference time
//! ([`binning::QuantileBinning`]), so partitions and instances merge exactly.

pub mod alert;
pub mod binning;
pub mod chi_square;
pub mod compare;
pub mod divergence;
pub mod error;
pub mod evidently;
pub mod histogram;
pub mod ks;
pub mod ks_grid;
pub mod kstwo;
pub mod monitor;
pub mod partial;
pub mod partial_builder;
pub mod profile;
pub mod quantile;
pub mod smirnov;
pub mod window;
pub mod window_config;

pub use alert::{corrected_thresholds, AlertPolicy, AlertTracker, AlertTransition, StatisticKind};
pub use binning::{CategoricalBinning, QuantileBinning};
pub use chi_square::{chi2_contingency, ChiSquareResult};
pub use compare::{
    compare_categorical, compare_numeric, compare_text, BinningChoice, CompareParams,
    DriftComparison, KsSummary, SampleKind, ScoreVerdict,
};
pub use divergence::{divergences, Divergences, ZeroFill};
pub use error::DriftError;
pub use evidently::EvidentlyBinning;
pub use histogram::BinnedHistogram;
pub use ks::{binned_ks, ks_2samp, BinnedKs, KsMethod, KsMode, KsResult};
pub use kstwo::{kstwo_sf, KstwoBranch};
pub use monitor::{
    AlertEvent, ColumnOverrides, Correction, DriftMonitor, DriftOutcome, DriftReport,
    DriftThresholds, Finish, MonitorSettings, RowOrigins,
};
pub use profile::{
    ColumnKind, ColumnProfile, ColumnRole, ColumnStats, ProfileBuilder, ReferenceProfile,
    PROFILE_VERSION,
};
pub use window::{Admission, PaneClock, RollingWindow, WindowConfig, WindowKs, WindowSnapshot};

#[cfg(test)]
mod oracle_tests;
