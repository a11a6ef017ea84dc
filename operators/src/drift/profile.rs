//! The reference profile: what "no drift" looks like, learned once from a
//! warm-up sample and stored as JSON.
//!
//! Guarantees:
//! - Numeric columns hold q10 cuts (type-7 quantiles at `1/bins, 2/bins, ..`)
//!   and per-bin counts computed from *every* non-missing value added, so a
//!   profile built from a sample gives exactly the bins and counts of the
//!   offline `compare` on that sample. The builder therefore keeps all
//!   numeric values until [`ProfileBuilder::finish`]; its memory is bounded
//!   by the caller's warm-up size, not by `sample_cap`.
//! - The stored KS sample is a seeded reservoir (Algorithm R) of at most
//!   `sample_cap` values, sorted; with no more values than that it is all of
//!   them, so KS against it is scipy's `ks_2samp` on the full reference.
//! - Categorical columns hold their categories sorted with counts.
//! - How an Arrow column becomes profile columns is [`flatten_columns`], the
//!   one function the builder and the monitor share: a `FixedSizeList` of
//!   width K is the K numeric columns `name[0]`..`name[K-1]`, an integer
//!   model output is a categorical label written in decimal. Nulls and NaN
//!   are missing.
//! - [`ReferenceProfile::from_json`] rejects other versions, unsorted or
//!   non-finite cuts, unsorted categories and mismatched count lengths, so a
//!   loaded profile can be binned against without further checks.

use std::collections::BTreeMap;

use arrow_array::ArrayRef;
use serde::{Deserialize, Serialize};

use super::binning::QuantileBinning;
use super::error::DriftError;

#[path = "profile_columns.rs"]
mod columns;
use columns::bad_column;
pub use columns::{flatten_columns, FlatColumn, FlatValues};

/// Version of the profile format written by [`ReferenceProfile::to_json`].
pub const PROFILE_VERSION: u32 = 1;

/// A learned reference for every flattened column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceProfile {
    /// Format version; [`PROFILE_VERSION`].
    pub version: u32,
    /// `ref-` and an FNV-1a hash of the content, so reports name the
    /// reference they were compared with.
    pub id: String,
    /// Events (rows) the profile was built from.
    pub n_events: u64,
    /// One entry per flattened column, in first-seen order.
    pub columns: Vec<ColumnProfile>,
    /// The classifier's performance estimator, fitted on the profile's labeled events
    /// (`driftline profile` over events that carry labels); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub performance: Option<crate::performance::cbpe::Cbpe>,
}

/// Whether a column is a model input or a model output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnRole {
    /// A model input.
    Feature,
    /// A model output.
    Output,
}

/// How a column is binned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnKind {
    /// By reference quantile cuts.
    Numeric,
    /// One bin per category.
    Categorical,
}

/// The reference of one flattened column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnProfile {
    /// Flattened name (`probabilities[1]` for a list element).
    pub name: String,
    /// Input or output.
    pub role: ColumnRole,
    /// Events with a null or NaN value.
    pub missing: u64,
    /// Bins and counts.
    pub stats: ColumnStats,
}

/// Bins and counts of one column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ColumnStats {
    /// q10 cuts, counts per bin (`cuts.len() + 1`), and the sorted KS sample.
    Numeric {
        /// Non-decreasing, finite cut points.
        cuts: Vec<f64>,
        /// Reference values per bin.
        counts: Vec<u64>,
        /// Sorted reservoir sample for exact KS.
        sample: Vec<f64>,
    },
    /// Sorted categories and their counts.
    Categorical {
        /// Strictly increasing (byte order).
        categories: Vec<String>,
        /// Reference values per category.
        counts: Vec<u64>,
    },
}

impl ColumnStats {
    /// Numeric or categorical.
    pub fn kind(&self) -> ColumnKind {
        match self {
            Self::Numeric { .. } => ColumnKind::Numeric,
            Self::Categorical { .. } => ColumnKind::Categorical,
        }
    }

    /// Reference counts per bin.
    pub fn counts(&self) -> &[u64] {
        match self {
            Self::Numeric { counts, .. } | Self::Categorical { counts, .. } => counts,
        }
    }
}

impl ReferenceProfile {
    /// The profile with a fitted performance estimator; its id names the new content.
    pub fn with_performance(mut self, cbpe: crate::performance::cbpe::Cbpe) -> Self {
        self.performance = Some(cbpe);
        self.id = String::new();
        self.id = format!("ref-{:016x}", fnv1a64(self.to_json().as_bytes()));
        self
    }

    /// Pretty JSON; [`ReferenceProfile::from_json`] reads it back.
    pub fn to_json(&self) -> String {
        // Plain data with string keys: serialisation cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Parses and checks a profile (see the module docs).
    pub fn from_json(text: &str) -> Result<Self, DriftError> {
        let profile: Self = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        profile.validate()?;
        Ok(profile)
    }

    /// The column called `name`, if profiled.
    pub fn column(&self, name: &str) -> Option<&ColumnProfile> {
        self.columns.iter().find(|c| c.name == name)
    }

    fn validate(&self) -> Result<(), DriftError> {
        if self.version != PROFILE_VERSION {
            return Err(invalid(format!(
                "version {} is not supported (expected {PROFILE_VERSION})",
                self.version
            )));
        }
        let mut names: Vec<&str> = self.columns.iter().map(|c| c.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(invalid(format!("column `{}` appears twice", w[0])));
        }
        for column in &self.columns {
            let bad = |why: &str| invalid(format!("column `{}`: {why}", column.name));
            match &column.stats {
                ColumnStats::Numeric {
                    cuts,
                    counts,
                    sample,
                } => {
                    QuantileBinning::from_cuts(cuts.clone())
                        .map_err(|e| bad(&format!("bad cuts: {e}")))?;
                    if counts.len() != cuts.len() + 1 {
                        return Err(bad("needs one count more than cuts"));
                    }
                    if sample.iter().any(|x| !x.is_finite()) || !is_sorted(sample) {
                        return Err(bad("the sample must be finite and sorted"));
                    }
                }
                ColumnStats::Categorical { categories, counts } => {
                    if categories.len() != counts.len() {
                        return Err(bad("needs one count per category"));
                    }
                    if categories.windows(2).any(|w| w[0] >= w[1]) {
                        return Err(bad("categories must be sorted and distinct"));
                    }
                }
            }
        }
        Ok(())
    }
}

fn is_sorted(values: &[f64]) -> bool {
    values.windows(2).all(|w| w[0] <= w[1])
}

fn invalid(reason: String) -> DriftError {
    DriftError::InvalidParameter {
        name: "reference profile",
        reason,
    }
}

/// SplitMix64: a tiny, seedable generator, so reservoirs are reproducible.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (multiply-shift; bias below 2^-64 · n).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

#[derive(Debug)]
enum Accumulator {
    Numeric(Vec<f64>),
    Categorical(BTreeMap<String, u64>),
}

#[derive(Debug)]
struct BuilderColumn {
    name: String,
    role: ColumnRole,
    acc: Accumulator,
}

/// Accumulates batches into a [`ReferenceProfile`].
#[derive(Debug)]
pub struct ProfileBuilder {
    sample_cap: usize,
    bins: usize,
    seed: u64,
    events: u64,
    columns: Vec<BuilderColumn>,
}

impl ProfileBuilder {
    /// Default KS sample size.
    pub const DEFAULT_SAMPLE_CAP: usize = 10_000;

    /// A builder keeping a KS sample of at most `sample_cap` values per
    /// numeric column, `bins` q10 bins, and a reservoir seeded by `seed`.
    pub fn new(sample_cap: usize, bins: usize, seed: u64) -> Self {
        Self {
            sample_cap,
            bins,
            seed,
            events: 0,
            columns: Vec::new(),
        }
    }

    /// Adds one batch (see [`flatten_columns`] for the accepted types).
    /// A column absent from some batches counts those rows as missing.
    pub fn add(&mut self, columns: &[(&str, ColumnRole, &ArrayRef)]) -> Result<(), DriftError> {
        let (rows, flat) = flatten_columns(columns)?;
        // Check every kind before touching state, so a bad batch adds nothing.
        for f in &flat {
            if let Some(c) = self.columns.iter().find(|c| c.name == f.name) {
                let kind = match c.acc {
                    Accumulator::Numeric(_) => ColumnKind::Numeric,
                    Accumulator::Categorical(_) => ColumnKind::Categorical,
                };
                if kind != f.values.kind() {
                    return Err(bad_column(
                        &f.name,
                        "changed between numeric and categorical",
                    ));
                }
            }
        }
        let mut buf = itoa::Buffer::new();
        for f in flat {
            let index = match self.columns.iter().position(|c| c.name == f.name) {
                Some(i) => i,
                None => {
                    let acc = match f.values.kind() {
                        ColumnKind::Numeric => Accumulator::Numeric(Vec::new()),
                        ColumnKind::Categorical => Accumulator::Categorical(BTreeMap::new()),
                    };
                    self.columns.push(BuilderColumn {
                        name: f.name.clone(),
                        role: f.role,
                        acc,
                    });
                    self.columns.len() - 1
                }
            };
            match &mut self.columns[index].acc {
                Accumulator::Numeric(values) => {
                    values.extend((0..rows).filter_map(|r| f.values.number(r)));
                }
                Accumulator::Categorical(counts) => {
                    for row in 0..rows {
                        if let Some(cat) = f.values.category(row, &mut buf) {
                            match counts.get_mut(cat) {
                                Some(n) => *n += 1,
                                None => {
                                    counts.insert(cat.to_string(), 1);
                                }
                            }
                        }
                    }
                }
            }
        }
        self.events += rows as u64;
        Ok(())
    }

    /// Events (rows) added so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The profile; fails when no events were added or a column never had
    /// a non-missing value (it could not be binned).
    pub fn finish(self) -> Result<ReferenceProfile, DriftError> {
        if self.events == 0 {
            return Err(DriftError::EmptySample { which: "reference" });
        }
        let mut rng = SplitMix64::new(self.seed);
        let mut columns = Vec::with_capacity(self.columns.len());
        for c in self.columns {
            let (recorded, stats) = match c.acc {
                Accumulator::Numeric(mut values) => {
                    let sample = reservoir(&values, self.sample_cap, &mut rng);
                    values.sort_by(f64::total_cmp);
                    let binning = QuantileBinning::from_sorted_reference(&values, self.bins)
                        .map_err(|e| bad_column(&c.name, &format!("cannot be binned: {e}")))?;
                    let stats = ColumnStats::Numeric {
                        counts: binning.counts(&values),
                        cuts: binning.cuts().to_vec(),
                        sample,
                    };
                    (values.len() as u64, stats)
                }
                Accumulator::Categorical(map) => {
                    if map.is_empty() {
                        return Err(bad_column(&c.name, "has no non-missing values"));
                    }
                    let recorded = map.values().sum();
                    let (categories, counts) = map.into_iter().unzip();
                    (recorded, ColumnStats::Categorical { categories, counts })
                }
            };
            columns.push(ColumnProfile {
                name: c.name,
                role: c.role,
                missing: self.events - recorded,
                stats,
            });
        }
        let mut profile = ReferenceProfile {
            version: PROFILE_VERSION,
            id: String::new(),
            n_events: self.events,
            columns,
            performance: None,
        };
        profile.id = format!("ref-{:016x}", fnv1a64(profile.to_json().as_bytes()));
        Ok(profile)
    }
}

/// Algorithm R over `values` in arrival order, then sorted: every value has
/// the same chance `cap / n` of being kept.
fn reservoir(values: &[f64], cap: usize, rng: &mut SplitMix64) -> Vec<f64> {
    let mut sample: Vec<f64> = values.iter().copied().take(cap).collect();
    for (i, &x) in values.iter().enumerate().skip(cap) {
        let j = rng.below(i as u64 + 1) as usize;
        if let Some(slot) = sample.get_mut(j) {
            *slot = x;
        }
    }
    sample.sort_by(f64::total_cmp);
    sample
}

/// FNV-1a, 64 bits: stable across platforms and releases, unlike `Hash`.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
#[path = "profile_tests.rs"]
mod tests;
