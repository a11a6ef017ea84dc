//! Performance alerts, with the drift alerts' hysteresis ([`AlertTracker`]): one alert per
//! metric and source (estimated or realized) opens when a window's value leaves the metric's
//! thresholds, and resolves after `resolve_after` windows back inside them.
//!
//! The thresholds are NannyML's: the reference's chunked performance, mean ± 3 standard
//! deviations, fitted into the profile with CBPE. An estimate is judged by CBPE's own alert
//! flag; a realized value by the same thresholds. Only complete windows give a verdict (nothing
//! from half a window), and a realized value only when the window has labels.
use serde::{Deserialize, Serialize};

use super::windows::PerformanceReport;
use crate::drift::alert::{AlertPolicy, AlertTracker, AlertTransition};
use crate::drift::monitor::{AlertState, REPORT_SCHEMA_VERSION};

/// One alert transition of a performance metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerformanceAlert {
    /// [`REPORT_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Always `performance` (the alerts topic's drift alerts have none).
    pub kind: String,
    /// Opened or resolved.
    pub state: AlertState,
    /// `performance.SOURCE.METRIC`, e.g. `performance.estimated.accuracy`: the alert's key, as
    /// a drift alert's is its column.
    pub column: String,
    pub metric: String,
    /// `estimated` (CBPE) or `realized` (labels).
    pub source: String,
    /// The window's value and the thresholds it was judged by.
    pub value: Option<f64>,
    pub lower_threshold: Option<f64>,
    pub upper_threshold: Option<f64>,
    /// The window that caused the transition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_start_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_end_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_prediction: Option<u64>,
    pub predictions: u64,
    pub labeled: u64,
}

/// The alert state of every performance metric.
pub struct PerformanceAlerting {
    tracker: AlertTracker,
}

/// One metric's verdict in a window.
struct Verdict<'a> {
    metric: &'a str,
    source: &'static str,
    value: Option<f64>,
    lower: Option<f64>,
    upper: Option<f64>,
    alert: bool,
}

impl PerformanceAlerting {
    pub fn new(policy: AlertPolicy) -> Self {
        PerformanceAlerting {
            tracker: AlertTracker::new(policy),
        }
    }

    /// The transitions a closed window causes.
    pub fn observe(&mut self, report: &PerformanceReport) -> Vec<PerformanceAlert> {
        if !report.complete {
            return Vec::new();
        }
        let mut verdicts = Vec::new();
        for estimate in &report.estimated {
            let (lower, upper) = (estimate.lower_threshold, estimate.upper_threshold);
            if estimate.value.is_some() {
                verdicts.push(Verdict {
                    metric: estimate.metric.name(),
                    source: "estimated",
                    value: estimate.value,
                    lower,
                    upper,
                    alert: estimate.alert,
                });
            }
            let realized = (report.realized.iter())
                .find(|m| m.metric == estimate.metric.name())
                .and_then(|m| m.value);
            if let (Some(value), true) = (realized, report.labeled > 0) {
                verdicts.push(Verdict {
                    metric: estimate.metric.name(),
                    source: "realized",
                    value: Some(value),
                    lower,
                    upper,
                    alert: outside(value, lower, upper),
                });
            }
        }
        let mut alerts = Vec::new();
        for v in verdicts {
            let column = format!("performance.{}.{}", v.source, v.metric);
            let Some(transition) = self.tracker.observe(&column, v.alert) else {
                continue;
            };
            alerts.push(PerformanceAlert {
                schema_version: REPORT_SCHEMA_VERSION,
                kind: "performance".into(),
                state: match transition {
                    AlertTransition::Opened => AlertState::Open,
                    AlertTransition::Resolved => AlertState::Resolved,
                },
                column,
                metric: v.metric.into(),
                source: v.source.into(),
                value: v.value,
                lower_threshold: v.lower,
                upper_threshold: v.upper,
                window_start_ms: report.window_start_ms,
                window_end_ms: report.window_end_ms,
                first_prediction: report.first_prediction,
                predictions: report.predictions,
                labeled: report.labeled,
            });
        }
        alerts
    }
}

/// NannyML's rule: a value below the lower or above the upper threshold (a missing threshold
/// does not alert).
fn outside(value: f64, lower: Option<f64>, upper: Option<f64>) -> bool {
    lower.is_some_and(|l| value < l) || upper.is_some_and(|u| value > u)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::performance::cbpe::{Estimate, Metric};
    use crate::performance::realized::MetricValue;

    fn report(estimated: f64, realized: f64, complete: bool) -> PerformanceReport {
        PerformanceReport {
            kind: "performance".into(),
            window: "count".into(),
            window_start_ms: None,
            window_end_ms: None,
            first_prediction: Some(0),
            first_event_ms: 0,
            last_event_ms: 0,
            complete,
            predictions: 10,
            labeled: 10,
            unlabeled: 0,
            labeled_fraction: 1.0,
            label_delay_ms: None,
            realized: vec![MetricValue {
                metric: "accuracy".into(),
                value: Some(realized),
            }],
            estimated: vec![Estimate {
                metric: Metric::Accuracy,
                value: Some(estimated),
                sampling_error: 0.01,
                lower_bound: None,
                upper_bound: None,
                lower_threshold: Some(0.8),
                upper_threshold: Some(1.0),
                alert: estimated < 0.8,
            }],
        }
    }

    #[test]
    fn an_alert_opens_once_below_the_threshold_and_resolves_after_clean_windows() {
        let mut alerting = PerformanceAlerting::new(AlertPolicy { resolve_after: 2 });
        assert!(alerting.observe(&report(0.9, 0.9, true)).is_empty());
        assert!(
            alerting.observe(&report(0.5, 0.5, false)).is_empty(),
            "an incomplete window gives no verdict"
        );
        let opened = alerting.observe(&report(0.7, 0.9, true));
        assert_eq!(opened.len(), 1, "estimated only: realized 0.9 is inside");
        assert_eq!(opened[0].column, "performance.estimated.accuracy");
        assert_eq!(opened[0].state, AlertState::Open);
        let realized = alerting.observe(&report(0.7, 0.6, true));
        assert_eq!(realized.len(), 1, "the estimate's alert is already open");
        assert_eq!(realized[0].column, "performance.realized.accuracy");
        assert!(alerting.observe(&report(0.9, 0.9, true)).is_empty());
        let resolved = alerting.observe(&report(0.9, 0.9, true));
        assert_eq!(resolved.len(), 2);
        assert!(resolved.iter().all(|a| a.state == AlertState::Resolved));
    }
}
