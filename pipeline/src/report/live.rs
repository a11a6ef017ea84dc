//! The live drift page: the drift stage adds each window's reports and alerts to a
//! [`DriftBoard`], and the health server renders it at `GET /drift` (the report page, reloading
//! itself) and `GET /drift.json` (the same data as JSON).
use std::sync::Mutex;

use driftline_operators::drift::monitor::{AlertEvent, DriftOutcome, DriftReport};
use driftline_operators::drift::profile::{ColumnKind, ColumnRole};
use driftline_operators::performance::windows::PerformanceReport;
use serde::Serialize;

use crate::report::history::{test_numbers, ColumnHistory, DriftHistory};
use crate::report::page::{self, PageInfo};

/// Windows kept per column on the live page.
pub const LIVE_WINDOWS: usize = 100;
/// How often the live page reloads itself.
const REFRESH_S: u32 = 10;

/// The recent drift of every column, shared by the drift stage and the health server.
pub struct DriftBoard {
    history: Mutex<DriftHistory>,
}

/// One window of a column, as the live JSON lists its history.
#[derive(Debug, Serialize)]
pub struct WindowPoint {
    pub first_pane: u64,
    pub last_pane: u64,
    pub events: u64,
    pub complete: bool,
    pub psi: Option<f64>,
    pub kl: Option<f64>,
    /// KS D or Cramér's V.
    pub effect: Option<f64>,
    pub pvalue: Option<f64>,
    pub drift: Option<bool>,
}

/// One column on the live JSON.
#[derive(Debug, Serialize)]
pub struct LiveColumn {
    pub column: String,
    pub role: ColumnRole,
    pub kind: ColumnKind,
    pub alert_open: bool,
    /// The latest window with a verdict (a complete one).
    pub latest: Option<DriftReport>,
    /// Up to [`LIVE_WINDOWS`] windows, oldest first.
    pub history: Vec<WindowPoint>,
}

/// `GET /drift.json`.
#[derive(Debug, Serialize)]
pub struct LiveDrift {
    pub columns: Vec<LiveColumn>,
    pub open_alerts: Vec<AlertEvent>,
}

impl Default for DriftBoard {
    fn default() -> Self {
        DriftBoard {
            history: Mutex::new(DriftHistory::new(LIVE_WINDOWS)),
        }
    }
}

fn point(r: &DriftReport) -> WindowPoint {
    let test = test_numbers(r);
    WindowPoint {
        first_pane: r.window.first_pane,
        last_pane: r.window.last_pane,
        events: r.window.events,
        complete: r.window.complete,
        psi: r.psi.as_ref().map(|s| s.value),
        kl: r.kl.as_ref().map(|s| s.value),
        effect: test.effect,
        pvalue: test.pvalue,
        drift: r.verdict.drift,
    }
}

fn live_column(c: &ColumnHistory) -> LiveColumn {
    LiveColumn {
        column: c.column.clone(),
        role: c.role,
        kind: c.kind,
        alert_open: c.alert_open(),
        latest: c.latest_judged().cloned(),
        history: c.reports.iter().map(point).collect(),
    }
}

impl DriftBoard {
    /// Adds what a window close produced.
    pub fn add(&self, outcome: &DriftOutcome) {
        let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        for r in &outcome.reports {
            history.add_report(r.clone());
        }
        for a in &outcome.alerts {
            history.add_alert(a.clone());
        }
    }

    /// The live page.
    /// Adds closed performance windows, keeping the latest [`LIVE_WINDOWS`].
    pub fn add_performance(&self, reports: &[PerformanceReport]) {
        if reports.is_empty() {
            return;
        }
        let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        history.performance.extend(reports.iter().cloned());
        let excess = history.performance.len().saturating_sub(LIVE_WINDOWS);
        history.performance.drain(..excess);
    }

    pub fn page(&self) -> String {
        let history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let source = format!(
            "Live: the last {LIVE_WINDOWS} windows per column of this instance; reloads every {REFRESH_S} s."
        );
        page::render(
            &history,
            &PageInfo {
                title: "driftline: live drift",
                source: &source,
                refresh_s: Some(REFRESH_S),
            },
        )
    }

    /// The live data.
    pub fn snapshot(&self) -> LiveDrift {
        let history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        LiveDrift {
            columns: history.columns.iter().map(live_column).collect(),
            open_alerts: history.open_alerts().cloned().collect(),
        }
    }
}
