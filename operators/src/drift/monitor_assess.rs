//! One monitored column: how a row is binned, and how a closed window
//! becomes a report with its verdicts.
//!
//! Guarantees: the statistics are the library's own (`divergences` with the
//! q10 fill, `ks_2samp` through the window snapshot, `binned_ks`,
//! `chi_square_vs_reference`), computed on exactly the counts the report
//! carries, so a report can be re-checked from its own `bins`.

use super::{
    AlertEvent, AlertState, BinCounts, BinLabels, ChiSquareReport, ColumnBins, DriftReport,
    KsReport, KsReportMethod, MonitorColumn, Severity, StatVerdict, WindowBounds,
    MAX_UNSEEN_CATEGORIES, OTHER_CATEGORY, REPORT_SCHEMA_VERSION,
};
use crate::drift::alert::{AlertTransition, StatisticKind};
use crate::drift::chi_square::chi_square_vs_reference;
use crate::drift::divergence::{divergences, ZeroFill};
use crate::drift::error::DriftError;
use crate::drift::ks::{asymp_pvalue, binned_ks, KsMethod, KsMode};
use crate::drift::profile::{ColumnKind, FlatValues};
use crate::drift::window::{WindowKs, WindowSnapshot};

impl MonitorColumn {
    pub(super) fn kind(&self) -> ColumnKind {
        match self.bins {
            ColumnBins::Numeric(_) => ColumnKind::Numeric,
            ColumnBins::Categorical { .. } => ColumnKind::Categorical,
        }
    }

    /// Bin and raw value of `row`; `values` is `None` when the batch lacks
    /// the column, which counts as missing.
    #[inline]
    pub(super) fn bin_row(
        &mut self,
        values: Option<&FlatValues<'_>>,
        row: usize,
        buf: &mut itoa::Buffer,
    ) -> (Option<usize>, Option<f64>) {
        let Some(values) = values else {
            return (None, None);
        };
        match &mut self.bins {
            ColumnBins::Numeric(binning) => {
                let x = values.number(row);
                (x.and_then(|x| binning.bin_of(x)), x)
            }
            ColumnBins::Categorical { known, unseen } => {
                let Some(cat) = values.category(row, buf) else {
                    return (None, None);
                };
                if let Some(bin) = known.bin_of(cat) {
                    return (Some(bin), None);
                }
                let n = known.n_bins();
                if let Some(i) = unseen.iter().position(|u| u == cat) {
                    return (Some(n + i), None);
                }
                if unseen.len() < MAX_UNSEEN_CATEGORIES {
                    unseen.push(cat.to_string());
                    return (Some(n + unseen.len() - 1), None);
                }
                (Some(n + MAX_UNSEEN_CATEGORIES), None)
            }
        }
    }

    /// The report of one closed window and, when it had `min_samples`
    /// values, the verdicts that feed the alerts.
    pub(super) fn assess(
        &self,
        snapshot: &WindowSnapshot,
        reference_id: &str,
        instance: &str,
        partitions: Vec<i32>,
    ) -> Result<(DriftReport, Vec<Verdict>), DriftError> {
        let hist = &snapshot.histogram;
        let n = hist.binned();
        let enough = n > 0 && n >= self.thresholds.min_samples;
        let (labels, reference, current) = self.report_bins(snapshot);
        let (psi, kl) = if n > 0 {
            let d = divergences(&reference, &current, ZeroFill::Q10)?;
            (d.psi, d.kl_ref_cur)
        } else {
            (0.0, 0.0)
        };
        let t = &self.thresholds;
        let psi = StatVerdict {
            value: psi,
            threshold: t.psi,
            drift: enough && psi >= t.psi,
        };
        let kl = StatVerdict {
            value: kl,
            threshold: t.kl,
            drift: enough && kl >= t.kl,
        };
        let mut verdicts = Vec::new();
        if enough {
            verdicts.push(value_verdict(StatisticKind::Psi, &psi));
            verdicts.push(value_verdict(StatisticKind::Kl, &kl));
        }
        let (mut ks, mut chi_square) = (None, None);
        match self.kind() {
            ColumnKind::Numeric if n > 0 => {
                if let Some((report, p)) = self.ks(snapshot, enough) {
                    if enough {
                        verdicts.push(p_verdict(StatisticKind::Ks, p, report.threshold));
                    }
                    ks = Some(report);
                }
            }
            ColumnKind::Categorical if n > 0 => {
                let res = chi_square_vs_reference(&reference, &current)?;
                let drift = enough && res.pvalue <= self.alpha;
                if enough {
                    verdicts.push(p_verdict(StatisticKind::ChiSquare, res.pvalue, self.alpha));
                }
                chi_square = Some(ChiSquareReport {
                    statistic: res.statistic,
                    dof: res.dof,
                    pvalue: res.pvalue,
                    drift,
                });
            }
            _ => {}
        }
        let drift = psi.drift
            || kl.drift
            || ks.as_ref().is_some_and(|k| k.drift)
            || chi_square.as_ref().is_some_and(|c| c.drift);
        let total = hist.total();
        let report = DriftReport {
            schema_version: REPORT_SCHEMA_VERSION,
            column: self.name.clone(),
            role: self.role,
            kind: self.kind(),
            reference_id: reference_id.to_string(),
            instance: instance.to_string(),
            partitions,
            window: WindowBounds {
                start_ms: snapshot.start_ms.and_then(|t| i64::try_from(t).ok()),
                end_ms: snapshot.end_ms.and_then(|t| i64::try_from(t).ok()),
                first_pane: snapshot.first_pane,
                last_pane: snapshot.last_pane,
                events: total,
            },
            missing_rate: if total == 0 {
                0.0
            } else {
                hist.missing() as f64 / total as f64
            },
            psi,
            kl,
            ks,
            chi_square,
            bins: BinCounts {
                edges_or_categories: labels,
                reference,
                current,
                missing: hist.missing(),
            },
            drift,
        };
        Ok((report, verdicts))
    }

    /// Labels and counts as reported: numeric bins as they are; categories
    /// of the reference, then the unseen ones this window saw.
    fn report_bins(&self, snapshot: &WindowSnapshot) -> (BinLabels, Vec<u64>, Vec<u64>) {
        let counts = snapshot.histogram.counts();
        match &self.bins {
            ColumnBins::Numeric(binning) => (
                BinLabels::Cuts(binning.cuts().to_vec()),
                self.reference.clone(),
                counts.to_vec(),
            ),
            ColumnBins::Categorical { known, unseen } => {
                let n = known.n_bins();
                let mut labels = known.categories().to_vec();
                let mut reference = self.reference.clone();
                let mut current = counts.get(..n).unwrap_or_default().to_vec();
                let extra = counts.get(n..).unwrap_or_default();
                for (i, &c) in extra.iter().enumerate().filter(|(_, &c)| c > 0) {
                    let label = unseen.get(i).map_or(OTHER_CATEGORY, String::as_str);
                    labels.push(label.to_string());
                    reference.push(0);
                    current.push(c);
                }
                (BinLabels::Categories(labels), reference, current)
            }
        }
    }

    /// KS report and the p-value its verdict uses (binned: the asymptotic
    /// p-value of the lower bound on D, an upper bound on the true one).
    fn ks(&self, snapshot: &WindowSnapshot, enough: bool) -> Option<(KsReport, f64)> {
        let hist = &snapshot.histogram;
        let window_ks = if self.sample.is_empty() {
            binned_ks(&self.reference, hist.counts()).map(WindowKs::Binned)
        } else {
            snapshot.ks_against(&self.sample, &self.reference, KsMode::Auto)
        }?;
        let alpha = self.alpha;
        let (report, p) = match window_ks {
            WindowKs::Retained(r) => {
                let method = match r.method {
                    KsMethod::Exact => KsReportMethod::Exact,
                    KsMethod::Asymp => KsReportMethod::Asymp,
                };
                let report = KsReport {
                    statistic: r.statistic,
                    pvalue: Some(r.pvalue),
                    method,
                    error_bound: None,
                    threshold: alpha,
                    drift: enough && r.pvalue <= alpha,
                };
                (report, r.pvalue)
            }
            WindowKs::Binned(b) => {
                let n_ref: u64 = self.reference.iter().sum();
                let p = asymp_pvalue(n_ref, hist.binned(), b.statistic_lower_bound);
                let report = KsReport {
                    statistic: b.statistic_lower_bound,
                    pvalue: None,
                    method: KsReportMethod::Binned,
                    error_bound: Some(b.error_bound),
                    threshold: alpha,
                    drift: enough && p <= alpha,
                };
                (report, p)
            }
        };
        Some((report, p))
    }
}

fn value_verdict(statistic: StatisticKind, v: &StatVerdict) -> Verdict {
    Verdict {
        statistic,
        value: v.value,
        threshold: v.threshold,
        drift: v.drift,
        is_pvalue: false,
    }
}

fn p_verdict(statistic: StatisticKind, pvalue: f64, threshold: f64) -> Verdict {
    Verdict {
        statistic,
        value: pvalue,
        threshold,
        drift: pvalue <= threshold,
        is_pvalue: true,
    }
}

/// One statistic's verdict in a window with enough samples.
pub(super) struct Verdict {
    pub(super) statistic: StatisticKind,
    value: f64,
    threshold: f64,
    pub(super) drift: bool,
    is_pvalue: bool,
}

impl Verdict {
    pub(super) fn into_event(
        self,
        transition: AlertTransition,
        report: &DriftReport,
    ) -> AlertEvent {
        let critical = if self.is_pvalue {
            self.value < self.threshold / 10.0
        } else {
            self.value > 2.0 * self.threshold
        };
        AlertEvent {
            state: match transition {
                AlertTransition::Opened => AlertState::Open,
                AlertTransition::Resolved => AlertState::Resolved,
            },
            severity: if critical {
                Severity::Critical
            } else {
                Severity::Warning
            },
            column: report.column.clone(),
            statistic: self.statistic,
            value: self.value,
            threshold: self.threshold,
            window: report.window.clone(),
            reference_id: report.reference_id.clone(),
            instance: report.instance.clone(),
        }
    }
}
