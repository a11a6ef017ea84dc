//! Alert hysteresis per (feature, statistic), and the Bonferroni correction.
//!
//! Guarantees: an alert opens once when a window drifts and stays open
//! (no repeated "opened" events) until `resolve_after` consecutive clean
//! windows have been seen, when exactly one `Resolved` transition is
//! returned. A drifting window while open resets the clean streak.

use std::collections::HashMap;

/// The statistic an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatisticKind {
    /// Kolmogorov–Smirnov p-value.
    Ks,
    /// Population stability index.
    Psi,
    /// KL divergence.
    Kl,
    /// Chi-square p-value.
    ChiSquare,
}

impl StatisticKind {
    const ALL: usize = 4;
    fn slot(self) -> usize {
        self as usize
    }
}

/// A change of alert state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertTransition {
    /// The statistic crossed its threshold; the alert is now open.
    Opened,
    /// `resolve_after` consecutive clean windows; the alert is closed.
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

/// Alert state of every (feature, statistic) seen so far.
#[derive(Debug, Clone, Default)]
pub struct AlertTracker {
    policy: AlertPolicy,
    states: HashMap<String, [AlertState; StatisticKind::ALL]>,
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
    pub fn observe(
        &mut self,
        feature: &str,
        statistic: StatisticKind,
        drifted: bool,
    ) -> Option<AlertTransition> {
        // Look up by &str first so the steady state does not allocate a key.
        let states = match self.states.get_mut(feature) {
            Some(s) => s,
            None => self.states.entry(feature.to_string()).or_default(),
        };
        let state = &mut states[statistic.slot()];
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

    /// Whether the alert for (feature, statistic) is open.
    pub fn is_open(&self, feature: &str, statistic: StatisticKind) -> bool {
        self.states
            .get(feature)
            .is_some_and(|s| s[statistic.slot()].open)
    }
}

/// Per-test significance level that keeps the family-wise error rate at
/// `alpha` over `n_features` tests; `alpha` itself for 0 or 1 features.
pub fn bonferroni_alpha(alpha: f64, n_features: usize) -> f64 {
    alpha / n_features.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_once_and_resolves_after_k_clean_windows() {
        let mut t = AlertTracker::new(AlertPolicy { resolve_after: 2 });
        let ks = StatisticKind::Ks;
        let seq = [false, true, true, false, true, false, false, false, true];
        let got: Vec<_> = seq.iter().map(|&d| t.observe("age", ks, d)).collect();
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
        assert!(t.is_open("age", ks));
        assert!(!t.is_open("age", StatisticKind::Psi));
        assert!(!t.is_open("income", ks));
    }

    #[test]
    fn bonferroni_divides_alpha() {
        assert_eq!(bonferroni_alpha(0.05, 10), 0.005);
        assert_eq!(bonferroni_alpha(0.05, 0), 0.05);
    }
}
