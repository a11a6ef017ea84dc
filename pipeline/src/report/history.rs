//! What a drift page is made of: every column's reports in window order, and the alert
//! transitions. Built from files, from the topics, or live from the drift stage.
use std::collections::{HashMap, VecDeque};

use driftline_operators::drift::alert::StatisticKind;
use driftline_operators::drift::monitor::{AlertEvent, AlertState, DriftReport};
use driftline_operators::drift::profile::{ColumnKind, ColumnRole};
use driftline_operators::performance::windows::PerformanceReport;
use serde::Serialize;

/// One column's reports, oldest window first.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnHistory {
    pub column: String,
    pub role: ColumnRole,
    pub kind: ColumnKind,
    pub reports: VecDeque<DriftReport>,
    /// The column's alert transitions, oldest first.
    pub alerts: Vec<AlertEvent>,
}

/// Every column's reports and alerts.
#[derive(Debug, Clone, Default)]
pub struct DriftHistory {
    /// In the order columns were first reported (the profile's order).
    pub columns: Vec<ColumnHistory>,
    index: HashMap<String, usize>,
    /// Reports kept per column (the live page's bound); 0: all.
    max_windows: usize,
    /// The model's performance per window (`kind: "performance"` records), oldest first.
    pub performance: Vec<PerformanceReport>,
}

impl ColumnHistory {
    /// Whether the column's alert is open after its last transition.
    pub fn alert_open(&self) -> bool {
        self.alerts
            .last()
            .is_some_and(|a| a.state == AlertState::Open)
    }

    /// The newest report with a verdict: the latest complete window.
    pub fn latest_judged(&self) -> Option<&DriftReport> {
        self.reports
            .iter()
            .rev()
            .find(|r| r.verdict.drift.is_some())
    }

    /// Windows judged, and of those the ones that drifted.
    pub fn judged_and_drifted(&self) -> (usize, usize) {
        let judged = self.reports.iter().filter(|r| r.verdict.drift.is_some());
        let drifted = judged.clone().filter(|r| r.drifted()).count();
        (judged.count(), drifted)
    }

    /// Per report, whether the column's alert was open in its window (opened at or before it,
    /// not resolved since).
    pub fn alert_open_by_window(&self) -> Vec<bool> {
        let key = |r: &DriftReport| (r.window.last_pane, r.window.first_pane);
        self.reports
            .iter()
            .map(|r| {
                let last = (self.alerts.iter())
                    .rev()
                    .find(|a| (a.window.last_pane, a.window.first_pane) <= key(r));
                last.is_some_and(|a| a.state == AlertState::Open)
            })
            .collect()
    }

    /// The test that votes for this kind of column: KS (numeric) or chi-square (categorical).
    pub fn test_kind(&self) -> StatisticKind {
        match self.kind {
            ColumnKind::Numeric => StatisticKind::Ks,
            ColumnKind::Categorical => StatisticKind::ChiSquare,
        }
    }
}

impl DriftHistory {
    /// Keeps at most `max_windows` reports per column (0: all).
    pub fn new(max_windows: usize) -> Self {
        DriftHistory {
            max_windows,
            ..DriftHistory::default()
        }
    }

    /// All of `reports` and `alerts`, each column's put in window order.
    pub fn of(
        reports: impl IntoIterator<Item = DriftReport>,
        alerts: impl IntoIterator<Item = AlertEvent>,
    ) -> Self {
        let mut history = DriftHistory::new(0);
        for report in reports {
            history.add_report(report);
        }
        for alert in alerts {
            history.add_alert(alert);
        }
        for c in &mut history.columns {
            c.reports
                .make_contiguous()
                .sort_by_key(|r| (r.window.last_pane, r.window.first_pane));
            c.alerts
                .sort_by_key(|a| (a.window.last_pane, a.window.first_pane));
        }
        history
    }

    fn column(&mut self, name: &str, role: ColumnRole, kind: ColumnKind) -> &mut ColumnHistory {
        let i = match self.index.get(name) {
            Some(&i) => i,
            None => {
                self.columns.push(ColumnHistory {
                    column: name.to_string(),
                    role,
                    kind,
                    reports: VecDeque::new(),
                    alerts: Vec::new(),
                });
                self.index.insert(name.to_string(), self.columns.len() - 1);
                self.columns.len() - 1
            }
        };
        &mut self.columns[i]
    }

    pub fn add_report(&mut self, report: DriftReport) {
        let max = self.max_windows;
        let c = self.column(&report.column, report.role, report.kind);
        c.reports.push_back(report);
        if max > 0 && c.reports.len() > max {
            c.reports.pop_front();
        }
    }

    pub fn add_alert(&mut self, alert: AlertEvent) {
        let kind = match alert.statistics.contains_key(&StatisticKind::ChiSquare) {
            true => ColumnKind::Categorical,
            false => ColumnKind::Numeric,
        };
        let max = self.max_windows;
        let c = self.column(&alert.column, alert.role, kind);
        c.alerts.push(alert);
        if max > 0 && c.alerts.len() > max {
            c.alerts.remove(0);
        }
    }

    /// Every report, column by column.
    pub fn reports(&self) -> impl Iterator<Item = &DriftReport> {
        self.columns.iter().flat_map(|c| c.reports.iter())
    }

    /// Columns whose alert is open now.
    pub fn open_alerts(&self) -> impl Iterator<Item = &AlertEvent> {
        (self.columns.iter())
            .filter(|c| c.alert_open())
            .filter_map(|c| c.alerts.last())
    }
}

/// A report's test (KS for numeric columns, chi-square for categorical ones) as the page and the
/// live JSON show it.
#[derive(Debug, Clone, Copy, Default)]
pub struct TestNumbers {
    /// KS D or Cramér's V.
    pub effect: Option<f64>,
    /// The effect-size floor: `min_ks_statistic` or `min_cramers_v`.
    pub floor: Option<f64>,
    pub pvalue: Option<f64>,
    /// The corrected threshold the p-value was judged by.
    pub threshold: Option<f64>,
}

/// The numbers of `r`'s test; all `None` when it has none (a skipped statistic).
pub fn test_numbers(r: &DriftReport) -> TestNumbers {
    match (&r.ks, &r.chi_square) {
        (Some(ks), _) => TestNumbers {
            effect: Some(ks.statistic),
            floor: Some(ks.min_statistic),
            pvalue: Some(ks.pvalue),
            threshold: Some(ks.threshold),
        },
        (None, Some(chi)) => TestNumbers {
            effect: chi.cramers_v,
            floor: Some(chi.min_cramers_v),
            pvalue: Some(chi.pvalue),
            threshold: Some(chi.threshold),
        },
        (None, None) => TestNumbers::default(),
    }
}
