//! How the monitor runs: thresholds per column, window shape, hysteresis.
//!
//! Guarantees: thresholds deserialize with every key optional (defaults
//! below) and unknown keys rejected; [`DriftThresholds::validate`] is what
//! [`super::DriftMonitor::new`] applies to every column's thresholds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::drift::alert::AlertPolicy;
use crate::drift::error::DriftError;
use crate::drift::window::WindowConfig;

/// Drift thresholds of a column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DriftThresholds {
    /// PSI drift when `psi >= this`.
    pub psi: f64,
    /// KL drift when `kl >= this`.
    pub kl: f64,
    /// KS (and chi-square) drift when `p <= this` (before Bonferroni).
    pub ks_pvalue: f64,
    /// Non-missing values a window needs before any verdict.
    pub min_samples: u64,
}

impl Default for DriftThresholds {
    fn default() -> Self {
        Self {
            psi: 0.2,
            kl: 0.1,
            ks_pvalue: 0.05,
            min_samples: 100,
        }
    }
}

impl DriftThresholds {
    pub(super) fn validate(&self, column: &str) -> Result<(), DriftError> {
        let ok = self.psi.is_finite()
            && self.psi >= 0.0
            && self.kl.is_finite()
            && self.kl >= 0.0
            && self.ks_pvalue > 0.0
            && self.ks_pvalue <= 1.0;
        if ok {
            return Ok(());
        }
        Err(DriftError::InvalidParameter {
            name: "drift thresholds",
            reason: format!("`{column}`: psi and kl must be finite and >= 0, ks_pvalue in (0, 1]"),
        })
    }
}

/// How the monitor runs.
#[derive(Debug, Clone)]
pub struct MonitorSettings {
    /// Window shape (shared by every column).
    pub window: WindowConfig,
    /// Thresholds for every column without an override.
    pub thresholds: DriftThresholds,
    /// Overrides by flattened name, or by list name for all its elements.
    pub per_column: BTreeMap<String, DriftThresholds>,
    /// Clean windows in a row that resolve an alert.
    pub resolve_after: u32,
    /// Divide the p-value threshold by the number of tests of its kind.
    pub bonferroni: bool,
    /// Name of this instance in reports.
    pub instance: String,
}

impl MonitorSettings {
    /// Default thresholds, 3 clean windows to resolve, no Bonferroni.
    pub fn new(window: WindowConfig, instance: impl Into<String>) -> Self {
        Self {
            window,
            thresholds: DriftThresholds::default(),
            per_column: BTreeMap::new(),
            resolve_after: AlertPolicy::default().resolve_after,
            bonferroni: false,
            instance: instance.into(),
        }
    }
}
