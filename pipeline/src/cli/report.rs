//! `driftline report`: the drift report as one self-contained HTML file, from the drift and
//! alerts topics between two times, from the files `driftline batch` writes, or from one
//! reference/current comparison (what `driftline drift --format html` writes too).
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use driftline_operators::drift::alert::StatisticKind;
use driftline_operators::drift::monitor::{
    BinCounts, BinLabels, Correction, DriftReport, Family, KsReport, KsReportMethod, StatVerdict,
    Verdict, WindowBounds, REPORT_SCHEMA_VERSION,
};
use driftline_operators::drift::profile::{ColumnKind, ColumnRole};
use driftline_operators::drift::{DriftComparison, KsMethod, SampleKind};

use crate::cli::args::ReportArgs;
use crate::cli::drift::{compare, DriftRequest};
use crate::clock::now_ms;
use crate::config::Settings;
use crate::report::format::{parse_time, utc};
use crate::report::history::DriftHistory;
use crate::report::page::{self, PageInfo};
use crate::report::read::{self, TopicRange};

/// The KS level of `driftline drift` (scipy's customary 0.05; its table says the same).
const COMPARISON_ALPHA: f64 = 0.05;

/// What a report run wrote.
pub struct ReportRun {
    pub columns: usize,
    pub windows: usize,
    pub open_alerts: usize,
    pub bytes: usize,
}

pub fn run(args: &ReportArgs) -> anyhow::Result<ReportRun> {
    let (history, source) = gather(args)?;
    let html = page::render(
        &history,
        &PageInfo {
            title: &args.title,
            source: &source,
            refresh_s: None,
        },
    );
    std::fs::write(&args.out, &html).with_context(|| format!("writing {}", args.out.display()))?;
    Ok(ReportRun {
        columns: history.columns.len(),
        windows: history
            .columns
            .iter()
            .map(|c| c.reports.len())
            .max()
            .unwrap_or(0),
        open_alerts: history.open_alerts().count(),
        bytes: html.len(),
    })
}

/// The reports to show, and where they came from in words.
fn gather(args: &ReportArgs) -> anyhow::Result<(DriftHistory, String)> {
    if let (Some(reference), Some(current)) = (&args.reference, &args.current) {
        let request = DriftRequest {
            reference,
            current,
            column: args.column.as_deref(),
            binning: "q10",
            bins: 10,
            psi_threshold: 0.1,
            kl_threshold: 0.1,
        };
        let comparison = compare(&request)?;
        return Ok(comparison_history(&comparison, &request));
    }
    if args.reference.is_some() || args.current.is_some() {
        bail!("--reference and --current go together");
    }
    if let Some(drift) = &args.drift {
        let alerts = args.alerts.clone().or_else(|| sibling_alerts(drift));
        let performance = sibling(drift, "performance");
        let history = read::from_files(drift, alerts.as_deref(), performance.as_deref())?;
        let source = match &alerts {
            Some(a) => format!("files {} and {}", drift.display(), a.display()),
            None => format!("file {} (no alerts file)", drift.display()),
        };
        return Ok((history, source));
    }
    let settings = Settings::load(args.config.as_deref())?;
    let k = &settings.kafka;
    let bootstrap = args.bootstrap.as_deref().unwrap_or(&k.bootstrap_servers);
    let from_ms = args
        .from
        .as_deref()
        .map(parse_time)
        .transpose()?
        .unwrap_or(0);
    let to_ms = match args.to.as_deref() {
        Some(t) => parse_time(t)?,
        None => now_ms(),
    };
    if from_ms > to_ms {
        bail!("--from is after --to");
    }
    let range = TopicRange {
        bootstrap,
        drift_topic: &k.drift_topic,
        alerts_topic: &k.alerts_topic,
        from_ms,
        to_ms,
        properties: (k.common.iter())
            .map(|(a, b)| (a.clone(), b.clone()))
            .collect(),
    };
    let history = read::from_topics(&range)?;
    let source = format!(
        "topics {} and {} on {bootstrap}, records from {} to {} UTC",
        k.drift_topic,
        k.alerts_topic,
        utc(from_ms),
        utc(to_ms)
    );
    Ok((history, source))
}

/// `X.drift.jsonl` → `X.alerts.jsonl`, when it exists.
fn sibling_alerts(drift: &Path) -> Option<PathBuf> {
    sibling(drift, "alerts")
}

/// `OUTPUT.WHAT.jsonl` beside `OUTPUT.drift.jsonl`, if it exists.
fn sibling(drift: &Path, what: &str) -> Option<PathBuf> {
    let name = drift.file_name()?.to_str()?;
    let stem = name.strip_suffix(".drift.jsonl")?;
    let path = drift.with_file_name(format!("{stem}.{what}.jsonl"));
    path.is_file().then_some(path)
}

/// One comparison as a one-report history, and its source in words.
fn comparison_history(c: &DriftComparison, request: &DriftRequest<'_>) -> (DriftHistory, String) {
    let column = request.column.unwrap_or("value");
    let report = comparison_report(c, column, request.reference);
    let source = format!(
        "driftline drift: {} against the reference {}",
        request.current.display(),
        request.reference.display()
    );
    (DriftHistory::of([report], []), source)
}

/// The page of one comparison: what `driftline drift --format html` prints.
pub fn comparison_page(c: &DriftComparison, request: &DriftRequest<'_>) -> String {
    let (history, source) = comparison_history(c, request);
    let info = PageInfo {
        title: "driftline drift comparison",
        source: &source,
        refresh_s: None,
    };
    page::render(&history, &info)
}

/// One comparison as a one-window report: PSI and KL at their thresholds, KS at 0.05, each
/// voting (the column drifts when any says so, as `driftline drift --fail-on-drift` decides).
fn comparison_report(c: &DriftComparison, column: &str, reference: &Path) -> DriftReport {
    let stat = |s: &driftline_operators::drift::ScoreVerdict| StatVerdict {
        value: s.value,
        threshold: s.threshold,
        drift: s.drift,
        votes: true,
    };
    let ks = c.ks.as_ref().map(|ks| KsReport {
        statistic: ks.statistic,
        pvalue: ks.pvalue,
        method: match ks.method {
            KsMethod::Exact => KsReportMethod::Exact,
            KsMethod::Asymp => KsReportMethod::Asymp,
        },
        error_bound: None,
        threshold: COMPARISON_ALPHA,
        min_statistic: 0.0,
        drift: ks.pvalue <= COMPARISON_ALPHA,
        votes: true,
    });
    let mut voters = vec![StatisticKind::Psi, StatisticKind::Kl];
    let mut votes_for = usize::from(c.psi.drift) + usize::from(c.kl.drift);
    if let Some(ks) = &ks {
        voters.insert(0, StatisticKind::Ks);
        votes_for += usize::from(ks.drift);
    }
    DriftReport {
        schema_version: REPORT_SCHEMA_VERSION,
        column: column.to_string(),
        role: ColumnRole::Feature,
        kind: match c.kind {
            SampleKind::Numeric => ColumnKind::Numeric,
            SampleKind::Categorical => ColumnKind::Categorical,
        },
        reference_id: format!("{} ({} values)", reference.display(), c.n_reference),
        instance: String::new(),
        partitions: Vec::new(),
        window: WindowBounds {
            start_ms: None,
            end_ms: None,
            first_pane: 0,
            last_pane: 0,
            events: c.n_current as u64,
            complete: true,
            min_event_ms: None,
            max_event_ms: None,
            sources: Vec::new(),
        },
        missing_rate: 0.0,
        psi: Some(stat(&c.psi)),
        kl: Some(stat(&c.kl)),
        ks,
        chi_square: None,
        family: Family {
            correction: Correction::None,
            alpha: COMPARISON_ALPHA,
            tests: 1,
        },
        // Every comparison carries its bins; only a JSON of an older driftline lacks them.
        bins: c.bins.clone().unwrap_or(BinCounts {
            edges_or_categories: BinLabels::Categories(Vec::new()),
            reference: Vec::new(),
            current: Vec::new(),
            missing: 0,
        }),
        verdict: Verdict {
            drift: Some(votes_for > 0),
            reason: None,
            voters,
            votes_for,
            votes_needed: 1,
        },
        model: None,
    }
}
