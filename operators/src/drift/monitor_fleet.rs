//! The monitor over a fleet's merged partials: the same measurement, family correction,
//! verdict and alert hysteresis as a window the monitor closed itself, from counts summed over
//! the partitions ([`FleetWindow`]) instead of rows.
//!
//! Guarantees: PSI, KL and chi-square are computed on the merged counts, so they equal what one
//! monitor reading every partition reports; KS comes from the merged KS grid cells
//! ([`KsGrid::ks`]), exact on a full grid and otherwise with its error bound in the report
//! (`method: "grid"`); a window that some partition did not report is incomplete and gets no
//! verdict (it leaves alerts alone), and a window without events is not reported.
use super::assess::Measured;
use super::{
    ColumnBins, DriftMonitor, DriftOutcome, KsReport, KsReportMethod, MonitorColumn,
    MAX_UNSEEN_CATEGORIES, OTHER_CATEGORY,
};
use crate::drift::error::DriftError;
use crate::drift::histogram::BinnedHistogram;
use crate::drift::ks::KsMode;
use crate::drift::ks_grid::KsGrid;
use crate::drift::partial::{dense, FleetWindow, MergedColumn};
use crate::drift::window::WindowSnapshot;

impl DriftMonitor {
    /// Judges one fleet window; see the module docs.
    pub fn judge_fleet(&mut self, window: &FleetWindow) -> Result<DriftOutcome, DriftError> {
        let mut outcome = DriftOutcome::default();
        if window.events() == 0 {
            return Ok(outcome);
        }
        let complete = window.missing_partitions.is_empty();
        let mut measured: Vec<Measured> = Vec::with_capacity(self.columns.len());
        for column in &mut self.columns {
            let merged = window.columns.get(&column.name);
            let snapshot = column.merged_snapshot(window, merged)?;
            let mut m = column.measure(
                &snapshot,
                &self.reference_id,
                &self.instance,
                window.partitions.clone(),
                self.alpha,
                self.correction,
            )?;
            if let (Some(ks), Some(merged)) = (&mut m.report.ks, merged) {
                if let Some(grid_ks) = column.grid_ks(merged, ks)? {
                    *ks = grid_ks;
                }
            }
            let w = &mut m.report.window;
            w.complete = complete;
            w.sources = window.sources.clone();
            w.min_event_ms = window.min_event_ms;
            w.max_event_ms = window.max_event_ms;
            if !complete {
                let missing: Vec<String> = (window.missing_partitions.iter())
                    .map(i32::to_string)
                    .collect();
                m.withhold(format!(
                    "incomplete: partition(s) {} had not reported the window",
                    missing.join(", ")
                ));
            }
            measured.push(m);
        }
        self.conclude_window(measured, &mut outcome);
        Ok(outcome)
    }

    /// The columns this monitor reports on, in the order of its reports.
    pub fn column_names(&self) -> Vec<&str> {
        self.columns.iter().map(|c| c.name.as_str()).collect()
    }

    /// Replays a verdict that was published before (an aggregator that restarts reads its
    /// reports back), so the alert hysteresis continues where it was; no transition is
    /// returned, because its alert was published then.
    pub fn restore_verdict(&mut self, column: &str, drift: bool) {
        let _ = self.alerts.observe(column, drift);
    }
}

impl MonitorColumn {
    /// The window's histogram from merged counts (no raw values: KS comes from the grid).
    fn merged_snapshot(
        &mut self,
        window: &FleetWindow,
        merged: Option<&MergedColumn>,
    ) -> Result<WindowSnapshot, DriftError> {
        let empty = MergedColumn::default();
        let merged = merged.unwrap_or(&empty);
        let bad = |reason: String| DriftError::InvalidParameter {
            name: "partials",
            reason: format!("column `{}`: {reason}", self.name),
        };
        let counts = match &mut self.bins {
            ColumnBins::Numeric(binning) => dense(&merged.bins, binning.n_bins()).map_err(bad)?,
            ColumnBins::Categorical { known, unseen } => {
                let n = known.n_bins();
                let mut counts = dense(&merged.bins, n).map_err(bad)?;
                counts.resize(n + MAX_UNSEEN_CATEGORIES + 1, 0);
                // Unseen categories get bins as the monitor gives them: known names keep
                // theirs, new ones take the next free bin, then all share `__other__`.
                for (name, &c) in &merged.unseen {
                    let i = match unseen.iter().position(|u| u == name) {
                        Some(i) => i,
                        None if name != OTHER_CATEGORY && unseen.len() < MAX_UNSEEN_CATEGORIES => {
                            unseen.push(name.clone());
                            unseen.len() - 1
                        }
                        None => MAX_UNSEEN_CATEGORIES,
                    };
                    counts[n + i] += c;
                }
                counts
            }
        };
        let binned: u64 = counts.iter().sum();
        if binned + merged.missing != merged.events {
            return Err(bad(format!(
                "{} binned and {} missing of {} events",
                binned, merged.missing, merged.events
            )));
        }
        Ok(WindowSnapshot {
            first_pane: window.first_pane,
            last_pane: window.last_pane,
            start_ms: u64::try_from(window.start_ms).ok(),
            end_ms: u64::try_from(window.end_ms).ok(),
            histogram: BinnedHistogram::from_counts(counts, merged.missing),
            values: None,
            complete: window.missing_partitions.is_empty(),
        })
    }

    /// KS from the merged grid cells, in place of the binned KS `measure` found; `None`
    /// without a reference sample (the binned one stands).
    fn grid_ks(
        &self,
        merged: &MergedColumn,
        binned: &KsReport,
    ) -> Result<Option<KsReport>, DriftError> {
        if self.sample.is_empty() || merged.ks_cells.is_empty() {
            return Ok(None);
        }
        let grid = KsGrid::from_sorted_sample(&self.sample, merged.ks_grid_points)?;
        if grid.points().len() != merged.ks_grid_points {
            return Err(DriftError::InvalidParameter {
                name: "partials",
                reason: format!(
                    "column `{}`: a KS grid of {} points, the profile makes {}",
                    self.name,
                    merged.ks_grid_points,
                    grid.points().len()
                ),
            });
        }
        let cells = dense(&merged.ks_cells, grid.n_cells()).map_err(|reason| {
            DriftError::InvalidParameter {
                name: "partials",
                reason,
            }
        })?;
        Ok(grid
            .ks(&self.sample, &cells, KsMode::Auto)
            .map(|g| KsReport {
                statistic: g.result.statistic,
                pvalue: if g.result.pvalue.is_finite() {
                    g.result.pvalue
                } else {
                    1.0
                },
                method: KsReportMethod::Grid,
                error_bound: Some(g.error_bound),
                ..binned.clone()
            }))
    }
}
