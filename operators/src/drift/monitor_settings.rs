//! How the monitor runs: what each column is judged by, the multiple-testing correction, the
//! window shape and the hysteresis.
//!
//! Guarantees: thresholds deserialize with every key optional (defaults below) and unknown keys
//! rejected; a column's overrides ([`ColumnOverrides`]) replace only the keys they set, so
//! `[drift.columns.temperature] psi = 0.1` keeps every other global setting;
//! [`DriftThresholds::validate`] is what [`super::DriftMonitor::new`] applies to every column.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::drift::alert::{AlertPolicy, StatisticKind};
use crate::drift::error::DriftError;
use crate::drift::window::WindowConfig;

/// How a column is judged. The defaults are what README ("How often it pages") measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DriftThresholds {
    /// PSI drift when `psi >= this`.
    pub psi: f64,
    /// KL drift when `kl >= this`.
    pub kl: f64,
    /// Family-wise significance level of a window's KS and chi-square tests, before the
    /// correction divides it among them (`ks_pvalue` is its old name).
    #[serde(alias = "ks_pvalue")]
    pub alpha: f64,
    /// Non-missing values a window needs before any verdict.
    pub min_samples: u64,
    /// Effect-size floor of KS: a significant test votes drift only when `D >= this` (0: off).
    pub min_ks_statistic: f64,
    /// Effect-size floor of chi-square: Cramér's V must reach this (0: off).
    pub min_cramers_v: f64,
    /// The statistics whose verdicts vote for the column's verdict.
    pub vote: Vec<StatisticKind>,
    /// Votes a column needs to drift (capped at the voting statistics it has: a categorical
    /// column has no KS).
    pub min_votes: usize,
    /// Statistics not computed or reported for the column.
    pub skip: Vec<StatisticKind>,
    /// Not watched at all (an identifier, a free-text field).
    pub exclude: bool,
}

impl Default for DriftThresholds {
    fn default() -> Self {
        Self {
            psi: 0.2,
            kl: 0.1,
            alpha: 0.05,
            min_samples: 100,
            min_ks_statistic: 0.05,
            min_cramers_v: 0.05,
            vote: vec![StatisticKind::Ks, StatisticKind::ChiSquare],
            min_votes: 1,
            skip: Vec::new(),
            exclude: false,
        }
    }
}

impl DriftThresholds {
    pub(super) fn validate(&self, column: &str) -> Result<(), DriftError> {
        let unit = |x: f64| (0.0..=1.0).contains(&x);
        let ok = self.psi.is_finite()
            && self.psi >= 0.0
            && self.kl.is_finite()
            && self.kl >= 0.0
            && self.alpha > 0.0
            && self.alpha <= 1.0
            && unit(self.min_ks_statistic)
            && unit(self.min_cramers_v);
        if !ok {
            return Err(DriftError::InvalidParameter {
                name: "drift thresholds",
                reason: format!(
                    "`{column}`: psi and kl must be finite and >= 0, alpha in (0, 1], \
                     min_ks_statistic and min_cramers_v in [0, 1]"
                ),
            });
        }
        if self.min_votes == 0 && !self.exclude {
            return Err(DriftError::InvalidParameter {
                name: "drift thresholds",
                reason: format!("`{column}`: min_votes must be at least 1"),
            });
        }
        if let Some(s) = self.vote.iter().find(|s| self.skip.contains(s)) {
            return Err(DriftError::InvalidParameter {
                name: "drift thresholds",
                reason: format!("`{column}`: {} both votes and is skipped", s.name()),
            });
        }
        Ok(())
    }

    /// Whether `statistic` is computed and reported.
    pub fn computes(&self, statistic: StatisticKind) -> bool {
        !self.skip.contains(&statistic)
    }

    /// Whether `statistic` votes.
    pub fn votes(&self, statistic: StatisticKind) -> bool {
        self.vote.contains(&statistic)
    }
}

/// A column's settings that differ from the global ones; every key optional. The family-wise
/// `alpha` is global: one window, one family.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnOverrides {
    pub psi: Option<f64>,
    pub kl: Option<f64>,
    pub min_samples: Option<u64>,
    pub min_ks_statistic: Option<f64>,
    pub min_cramers_v: Option<f64>,
    pub vote: Option<Vec<StatisticKind>>,
    pub min_votes: Option<usize>,
    pub skip: Option<Vec<StatisticKind>>,
    pub exclude: Option<bool>,
}

impl ColumnOverrides {
    /// `base` with this column's keys replaced.
    pub fn over(&self, base: &DriftThresholds) -> DriftThresholds {
        let mut t = base.clone();
        macro_rules! take {
            ($($field:ident),*) => {$(
                if let Some(v) = &self.$field {
                    t.$field = v.clone();
                }
            )*};
        }
        take!(
            psi,
            kl,
            min_samples,
            min_ks_statistic,
            min_cramers_v,
            vote,
            min_votes,
            skip,
            exclude
        );
        t
    }
}

/// How a window's p-values are corrected for being many tests at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Correction {
    /// `alpha / m` for each of the `m` tests.
    Bonferroni,
    /// Holm's step-down: the family-wise rate of Bonferroni, never less power.
    #[default]
    Holm,
    /// Benjamini–Hochberg: controls the false discovery rate, not the family-wise rate.
    Bh,
    /// `alpha` for every test.
    None,
}

/// How the monitor runs.
#[derive(Debug, Clone)]
pub struct MonitorSettings {
    /// Window shape (shared by every column).
    pub window: WindowConfig,
    /// Settings of every column without an override; its `alpha` is the family's.
    pub thresholds: DriftThresholds,
    /// Overrides by flattened name, or by list name for all its elements.
    pub per_column: BTreeMap<String, ColumnOverrides>,
    /// Clean windows in a row that resolve an alert.
    pub resolve_after: u32,
    /// Correction of a window's p-values across every tested column.
    pub correction: Correction,
    /// Name of this instance in reports.
    pub instance: String,
}

impl MonitorSettings {
    /// Default thresholds, 3 clean windows to resolve, Holm's correction.
    pub fn new(window: WindowConfig, instance: impl Into<String>) -> Self {
        Self {
            window,
            thresholds: DriftThresholds::default(),
            per_column: BTreeMap::new(),
            resolve_after: AlertPolicy::default().resolve_after,
            correction: Correction::default(),
            instance: instance.into(),
        }
    }

    /// The settings of column `name` (`probabilities[1]` also takes those of `probabilities`).
    pub fn for_column(&self, name: &str) -> DriftThresholds {
        let base = name.split_once('[').map_or(name, |(b, _)| b);
        match self
            .per_column
            .get(name)
            .or_else(|| self.per_column.get(base))
        {
            Some(o) => o.over(&self.thresholds),
            None => self.thresholds.clone(),
        }
    }
}
