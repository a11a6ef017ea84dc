//! One monitored column: how a row is binned, how a closed window is measured, and how a
//! window's columns are judged together.
//!
//! Guarantees: the statistics are the library's own (`divergences` with the q10 fill,
//! `ks_2samp` through the window snapshot, `binned_ks`, `chi2_contingency`), computed on exactly
//! the counts the report carries, so a report can be re-checked from its own `bins`; a report's
//! thresholds are the ones its verdicts were reached with.

use std::collections::BTreeMap;

use super::{
    AlertEvent, AlertState, AlertStatistic, BinCounts, BinLabels, ChiSquareReport, ColumnBins,
    Correction, DriftReport, Family, KsReport, KsReportMethod, MonitorColumn, Severity,
    StatVerdict, Verdict, WindowBounds, MAX_UNSEEN_CATEGORIES, OTHER_CATEGORY,
    REPORT_SCHEMA_VERSION,
};
use crate::drift::alert::{corrected_thresholds, AlertTransition, StatisticKind};
use crate::drift::chi_square::chi2_contingency;
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

    /// Every statistic of one closed window, before the window's family is corrected: the
    /// report with its verdict still open. `alpha` and `correction` only fill the report's
    /// [`Family`] until [`judge_window`] counts the tests.
    pub(super) fn measure(
        &self,
        snapshot: &WindowSnapshot,
        reference_id: &str,
        instance: &str,
        partitions: Vec<i32>,
        alpha: f64,
        correction: Correction,
    ) -> Result<Measured, DriftError> {
        let hist = &snapshot.histogram;
        let n = hist.binned();
        let t = &self.thresholds;
        let (labels, reference, current) = self.report_bins(snapshot);
        let (psi, kl) = if n > 0 {
            let d = divergences(&reference, &current, ZeroFill::Q10)?;
            (d.psi, d.kl_ref_cur)
        } else {
            (0.0, 0.0)
        };
        let value_stat = |kind: StatisticKind, value: f64, threshold: f64| {
            t.computes(kind).then(|| StatVerdict {
                value,
                threshold,
                drift: value >= threshold,
                votes: t.votes(kind),
            })
        };
        let psi = value_stat(StatisticKind::Psi, psi, t.psi);
        let kl = value_stat(StatisticKind::Kl, kl, t.kl);
        let (mut ks, mut chi_square) = (None, None);
        match self.kind() {
            ColumnKind::Numeric if n > 0 && t.computes(StatisticKind::Ks) => {
                ks = self.ks(snapshot);
            }
            ColumnKind::Categorical if n > 0 && t.computes(StatisticKind::ChiSquare) => {
                let res = chi2_contingency(&reference, &current)?;
                chi_square = Some(ChiSquareReport {
                    statistic: res.statistic,
                    dof: res.dof,
                    pvalue: res.pvalue,
                    cramers_v: res.cramers_v,
                    threshold: alpha,
                    min_cramers_v: t.min_cramers_v,
                    drift: false,
                    votes: t.votes(StatisticKind::ChiSquare),
                });
            }
            _ => {}
        }
        let voters: Vec<StatisticKind> = [
            (StatisticKind::Ks, ks.is_some()),
            (StatisticKind::Psi, psi.is_some()),
            (StatisticKind::Kl, kl.is_some()),
            (StatisticKind::ChiSquare, chi_square.is_some()),
        ]
        .into_iter()
        .filter(|&(kind, present)| present && t.votes(kind))
        .map(|(kind, _)| kind)
        .collect();
        let reason = if n < t.min_samples.max(1) {
            Some(format!(
                "too few values: {n} of the {} a verdict needs (min_samples)",
                t.min_samples.max(1)
            ))
        } else if voters.is_empty() {
            Some("no statistic of this column votes".to_string())
        } else {
            None
        };
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
                complete: snapshot.complete,
                min_event_ms: None,
                max_event_ms: None,
                sources: Vec::new(),
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
            family: Family {
                correction,
                alpha,
                tests: 0,
            },
            bins: BinCounts {
                edges_or_categories: labels,
                reference,
                current,
                missing: hist.missing(),
            },
            verdict: Verdict {
                drift: None,
                reason,
                votes_needed: t.min_votes.min(voters.len()),
                voters,
                votes_for: 0,
            },
            // The pipeline names the model; the monitor does not know it.
            model: None,
        };
        Ok(Measured {
            report,
            min_votes: t.min_votes,
        })
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

    /// KS of the window, its threshold still the uncorrected one (binned: the asymptotic
    /// p-value of the lower bound on D, an upper bound on the true one).
    fn ks(&self, snapshot: &WindowSnapshot) -> Option<KsReport> {
        let hist = &snapshot.histogram;
        let window_ks = if self.sample.is_empty() {
            binned_ks(&self.reference, hist.counts()).map(WindowKs::Binned)
        } else {
            snapshot.ks_against(&self.sample, &self.reference, KsMode::Auto)
        }?;
        let (statistic, pvalue, method, error_bound) = match window_ks {
            WindowKs::Retained(r) => {
                let method = match r.method {
                    KsMethod::Exact => KsReportMethod::Exact,
                    KsMethod::Asymp => KsReportMethod::Asymp,
                };
                (r.statistic, r.pvalue, method, None)
            }
            WindowKs::Binned(b) => {
                let n_ref: u64 = self.reference.iter().sum();
                let p = asymp_pvalue(n_ref, hist.binned(), b.statistic_lower_bound);
                let d = b.statistic_lower_bound;
                (d, p, KsReportMethod::Binned, Some(b.error_bound))
            }
        };
        Some(KsReport {
            statistic,
            pvalue: if pvalue.is_finite() { pvalue } else { 1.0 },
            method,
            error_bound,
            threshold: 0.0,
            min_statistic: self.thresholds.min_ks_statistic,
            drift: false,
            votes: self.thresholds.votes(StatisticKind::Ks),
        })
    }
}

/// A column's report whose verdict waits for the window's family.
pub(super) struct Measured {
    pub(super) report: DriftReport,
    min_votes: usize,
}

impl Measured {
    /// No verdict for this window, for `reason`.
    pub(super) fn withhold(&mut self, reason: String) {
        self.report.verdict.reason = Some(reason);
    }

    fn judged(&self) -> bool {
        self.report.verdict.reason.is_none()
    }

    /// The p-value tests that vote in a judged column: (is chi-square, p-value).
    fn family_tests(&self) -> Vec<(bool, f64)> {
        if !self.judged() {
            return Vec::new();
        }
        let r = &self.report;
        let ks = r.ks.as_ref().filter(|k| k.votes).map(|k| (false, k.pvalue));
        let chi = r
            .chi_square
            .as_ref()
            .filter(|c| c.votes)
            .map(|c| (true, c.pvalue));
        ks.into_iter().chain(chi).collect()
    }
}

/// Corrects the p-values of every judged column of one window together, then gives each
/// column its verdict. Tests that do not vote keep the uncorrected `alpha`.
pub(super) fn judge_window(columns: &mut [Measured], alpha: f64, correction: Correction) {
    let tests: Vec<(usize, bool, f64)> = columns
        .iter()
        .enumerate()
        .flat_map(|(i, m)| m.family_tests().into_iter().map(move |(c, p)| (i, c, p)))
        .collect();
    let pvalues: Vec<f64> = tests.iter().map(|t| t.2).collect();
    let thresholds = corrected_thresholds(&pvalues, alpha, correction);
    for m in columns.iter_mut() {
        m.report.family.tests = tests.len();
        if let Some(ks) = &mut m.report.ks {
            ks.threshold = alpha;
        }
        if let Some(chi) = &mut m.report.chi_square {
            chi.threshold = alpha;
        }
    }
    for (&(i, is_chi, _), &threshold) in tests.iter().zip(&thresholds) {
        let r = &mut columns[i].report;
        match (is_chi, &mut r.ks, &mut r.chi_square) {
            (false, Some(ks), _) => ks.threshold = threshold,
            (true, _, Some(chi)) => chi.threshold = threshold,
            _ => {}
        }
    }
    for m in columns.iter_mut() {
        let judged = m.judged();
        let r = &mut m.report;
        if let Some(ks) = &mut r.ks {
            ks.drift = ks.pvalue <= ks.threshold && ks.statistic >= ks.min_statistic;
        }
        if let Some(chi) = &mut r.chi_square {
            let v = chi.cramers_v.unwrap_or(0.0);
            chi.drift = chi.pvalue <= chi.threshold && v >= chi.min_cramers_v;
        }
        if !judged {
            for s in [&mut r.psi, &mut r.kl].into_iter().flatten() {
                s.drift = false;
            }
            if let Some(ks) = &mut r.ks {
                ks.drift = false;
            }
            if let Some(chi) = &mut r.chi_square {
                chi.drift = false;
            }
            continue;
        }
        let said_drift = |kind: StatisticKind| match kind {
            StatisticKind::Ks => r.ks.as_ref().is_some_and(|k| k.drift),
            StatisticKind::Psi => r.psi.as_ref().is_some_and(|s| s.drift),
            StatisticKind::Kl => r.kl.as_ref().is_some_and(|s| s.drift),
            StatisticKind::ChiSquare => r.chi_square.as_ref().is_some_and(|c| c.drift),
        };
        let votes_for = r.verdict.voters.iter().filter(|&&k| said_drift(k)).count();
        let needed = m.min_votes.min(r.verdict.voters.len()).max(1);
        r.verdict.votes_for = votes_for;
        r.verdict.votes_needed = needed;
        r.verdict.drift = Some(votes_for >= needed);
    }
}

/// The alert for a column's transition, with every statistic of the window.
pub(super) fn alert_event(transition: AlertTransition, report: &DriftReport) -> AlertEvent {
    let mut statistics = BTreeMap::new();
    for (kind, s) in [
        (StatisticKind::Psi, &report.psi),
        (StatisticKind::Kl, &report.kl),
    ] {
        if let Some(s) = s {
            let stat = AlertStatistic {
                value: s.value,
                pvalue: None,
                threshold: s.threshold,
                drift: s.drift,
                votes: s.votes,
            };
            statistics.insert(kind, stat);
        }
    }
    if let Some(k) = &report.ks {
        let stat = AlertStatistic {
            value: k.statistic,
            pvalue: Some(k.pvalue),
            threshold: k.threshold,
            drift: k.drift,
            votes: k.votes,
        };
        statistics.insert(StatisticKind::Ks, stat);
    }
    if let Some(c) = &report.chi_square {
        let stat = AlertStatistic {
            value: c.statistic,
            pvalue: Some(c.pvalue),
            threshold: c.threshold,
            drift: c.drift,
            votes: c.votes,
        };
        statistics.insert(StatisticKind::ChiSquare, stat);
    }
    // Critical: a voting statistic far past its threshold.
    let critical = statistics.values().any(|s| {
        s.votes
            && s.drift
            && match s.pvalue {
                Some(p) => p < s.threshold / 10.0,
                None => s.value > 2.0 * s.threshold,
            }
    });
    AlertEvent {
        schema_version: REPORT_SCHEMA_VERSION,
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
        role: report.role,
        statistics,
        verdict: report.verdict.clone(),
        window: report.window.clone(),
        reference_id: report.reference_id.clone(),
        instance: report.instance.clone(),
    }
}
