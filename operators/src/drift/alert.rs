//! Alert hysteresis per column, and the multiple-testing corrections.
//!
//! Guarantees: an alert opens once when a column's verdict is drift and stays open (no repeated
//! "opened" events) until `resolve_after` consecutive clean verdicts have been seen, when
//! exactly one `Resolved` transition is returned. A drifting window while open resets the clean
//! streak. A window without a verdict (incomplete, too few values) leaves the state alone.
//! [`corrected_thresholds`] gives, for each p-value of a family, the threshold it is judged by,
//! such that `p <= threshold` is exactly the procedure's rejection.

use std::collections::HashMap;

use super::monitor::Correction;

/// A statistic of a column.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum StatisticKind {
    /// Kolmogorov–Smirnov two-sample test (numeric columns).
    Ks,
    /// Population stability index.
    Psi,
    /// KL divergence.
    Kl,
    /// Chi-square test on the contingency table (categorical columns).
    ChiSquare,
}

impl StatisticKind {
    /// The name used in configs and reports.
    pub fn name(self) -> &'static str {
        match self {
            StatisticKind::Ks => "ks",
            StatisticKind::Psi => "psi",
            StatisticKind::Kl => "kl",
            StatisticKind::ChiSquare => "chi_square",
        }
    }
}

/// A change of alert state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertTransition {
    /// The column's verdict became drift; the alert is now open.
    Opened,
    /// `resolve_after` consecutive clean verdicts; the alert is closed.
    Resolved,
}

/// Hysteresis settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertPolicy {
    /// Consecutive clean windows that resolve an open alert (at least 1).
    pub resolve_after: u32,
}

impl Default for AlertPolicy {
    fn default() -> Self {
        Self { resolve_after: 3 }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct AlertState {
    open: bool,
    clean_streak: u32,
}

/// Alert state of every column seen so far.
#[derive(Debug, Clone, Default)]
pub struct AlertTracker {
    policy: AlertPolicy,
    states: HashMap<String, AlertState>,
}

impl AlertTracker {
    /// A tracker with the given policy (`resolve_after` 0 is treated as 1).
    pub fn new(policy: AlertPolicy) -> Self {
        Self {
            policy: AlertPolicy {
                resolve_after: policy.resolve_after.max(1),
            },
            states: HashMap::new(),
        }
    }

    /// Feeds one window's verdict; returns a transition when the state changes.
    pub fn observe(&mut self, column: &str, drifted: bool) -> Option<AlertTransition> {
        // Look up by &str first so the steady state does not allocate a key.
        let state = match self.states.get_mut(column) {
            Some(s) => s,
            None => self.states.entry(column.to_string()).or_default(),
        };
        match (state.open, drifted) {
            (false, true) => {
                *state = AlertState {
                    open: true,
                    clean_streak: 0,
                };
                Some(AlertTransition::Opened)
            }
            (false, false) => None,
            (true, true) => {
                state.clean_streak = 0;
                None
            }
            (true, false) => {
                state.clean_streak += 1;
                if state.clean_streak >= self.policy.resolve_after {
                    *state = AlertState::default();
                    Some(AlertTransition::Resolved)
                } else {
                    None
                }
            }
        }
    }

    /// Whether the column's alert is open.
    pub fn is_open(&self, column: &str) -> bool {
        self.states.get(column).is_some_and(|s| s.open)
    }
}

/// The threshold each of `pvalues` is judged by under `correction` at family level `alpha`:
/// `pvalues[i] <= thresholds[i]` exactly when the procedure rejects test `i`.
/// - Bonferroni: `alpha / m`.
/// - Holm: the `k`-th smallest p-value gets `alpha / (m − k + 1)` while every smaller one was
///   rejected; from the first that is not, all larger ones get that step's threshold (which
///   their p-values exceed).
/// - Benjamini–Hochberg: with `k` the largest rank whose p-value is `<= k·alpha/m`, every test
///   gets `k·alpha/m` (`alpha/m` when there is no such rank).
/// - None: `alpha`.
pub fn corrected_thresholds(pvalues: &[f64], alpha: f64, correction: Correction) -> Vec<f64> {
    let m = pvalues.len();
    if m == 0 {
        return Vec::new();
    }
    let mf = m as f64;
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| pvalues[a].total_cmp(&pvalues[b]).then(a.cmp(&b)));
    match correction {
        Correction::None => vec![alpha; m],
        Correction::Bonferroni => vec![alpha / mf; m],
        Correction::Holm => {
            let mut out = vec![0.0; m];
            let mut failed: Option<f64> = None;
            for (rank, &i) in order.iter().enumerate() {
                let step = alpha / (mf - rank as f64);
                out[i] = match failed {
                    Some(t) => t,
                    None if pvalues[i] <= step => step,
                    None => {
                        failed = Some(step);
                        step
                    }
                };
            }
            out
        }
        Correction::Bh => {
            let cutoff = order
                .iter()
                .enumerate()
                .rev()
                .find(|(rank, &i)| pvalues[i] <= (*rank as f64 + 1.0) * alpha / mf)
                .map(|(rank, _)| (rank as f64 + 1.0) * alpha / mf)
                .unwrap_or(alpha / mf);
            vec![cutoff; m]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_once_and_resolves_after_k_clean_windows() {
        let mut t = AlertTracker::new(AlertPolicy { resolve_after: 2 });
        let seq = [false, true, true, false, true, false, false, false, true];
        let got: Vec<_> = seq.iter().map(|&d| t.observe("age", d)).collect();
        use AlertTransition::*;
        let want = [
            None,
            Some(Opened),
            None,
            None,
            None,
            None,
            Some(Resolved),
            None,
            Some(Opened),
        ];
        assert_eq!(got, want);
        assert!(t.is_open("age"));
        assert!(!t.is_open("income"));
    }

    proptest::proptest! {
        /// What the aggregator's read-back relies on: a column's last `resolve_after` verdicts
        /// (or more), replayed on a new tracker, leave it where the whole history left it (open
        /// or not, and the same clean streak: every later verdict gives the same transition).
        #[test]
        fn the_last_resolve_after_verdicts_give_the_state_of_the_whole_history(
            history in proptest::collection::vec(proptest::bool::ANY, 0..60),
            later in proptest::collection::vec(proptest::bool::ANY, 0..12),
            resolve_after in 1u32..5,
            extra in 0usize..4,
        ) {
            let policy = AlertPolicy { resolve_after };
            let mut whole = AlertTracker::new(policy);
            for &d in &history {
                whole.observe("c", d);
            }
            let keep = (resolve_after as usize + extra).min(history.len());
            let mut tail = AlertTracker::new(policy);
            for &d in &history[history.len() - keep..] {
                tail.observe("c", d);
            }
            proptest::prop_assert_eq!(whole.is_open("c"), tail.is_open("c"));
            for &d in &later {
                proptest::prop_assert_eq!(whole.observe("c", d), tail.observe("c", d));
            }
        }
    }

    /// The procedures' textbook definitions, rejection by rejection, against the thresholds.
    #[test]
    fn thresholds_reject_exactly_what_each_procedure_rejects() {
        let p = [0.01, 0.04, 0.03, 0.005, 0.2, 0.0125];
        let alpha = 0.05;
        let rejected = |c| -> Vec<bool> {
            let t = corrected_thresholds(&p, alpha, c);
            p.iter().zip(&t).map(|(p, t)| p <= t).collect()
        };
        // Bonferroni: alpha/6 = 0.00833.
        assert_eq!(
            rejected(Correction::Bonferroni),
            [false, false, false, true, false, false]
        );
        // Holm: sorted 0.005 (<= .05/6), 0.01 (<= .05/5), 0.0125 (<= .05/4), 0.03 (> .05/3): stop.
        assert_eq!(
            rejected(Correction::Holm),
            [true, false, false, true, false, true]
        );
        // BH: k·alpha/6 = .0083 .0167 .025 .0333 .0417 .05; largest k with p_(k) <= it: k = 5
        // (0.04 <= 0.0417), so the five smallest.
        assert_eq!(
            rejected(Correction::Bh),
            [true, true, true, true, false, true]
        );
        assert_eq!(
            rejected(Correction::None),
            [true, true, true, true, false, true]
        );
        // Holm's later ranks are judged by the step that failed: a p just under its own step
        // is not rejected after a larger step failed.
        let t = corrected_thresholds(&[0.03, 0.04], 0.05, Correction::Holm);
        assert_eq!(t, vec![0.025, 0.025]);
        assert!(corrected_thresholds(&[], 0.05, Correction::Holm).is_empty());
    }
}
