//! The drift page: one self-contained HTML file (inline CSS and SVG, no script, nothing fetched)
//! made from a [`DriftHistory`]. The overview ranks the columns; each column gets a section with
//! its distributions, its statistics over the windows, and its numbers as tables, so that a
//! screen reader and `grep` find them too.
use std::fmt::Write;

use driftline_operators::drift::alert::StatisticKind;
use driftline_operators::drift::monitor::{BinLabels, DriftReport};
use driftline_operators::drift::profile::{ColumnKind, ColumnRole};

use crate::report::charts::{self, StatisticSeries};
use crate::report::format::{anchor, escape, number, opt_number, utc};
use crate::report::history::{test_numbers, ColumnHistory, DriftHistory};
use crate::report::performance;
use crate::report::tables::{bins_table, windows_table};

/// What the page says about itself.
pub struct PageInfo<'a> {
    pub title: &'a str,
    /// Where the reports came from, in words (files, topics and time range, a comparison).
    pub source: &'a str,
    /// Live page: reload every this many seconds.
    pub refresh_s: Option<u32>,
}

/// `content-visibility: auto` lets the browser skip laying out and drawing the column sections
/// off screen: a page of 100 columns opens as fast as its first screen.
const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em auto;max-width:1100px;color:#222}\
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;margin-top:2em}table{border-collapse:collapse;font-size:12px}\
td,th{border:1px solid #ddd;padding:2px 6px;text-align:right}th{background:#f4f4f4}td.name,th.name{text-align:left}\
.drift{color:#b2182b;font-weight:bold}.ok{color:#1b7837}.none{color:#777}.badge{font-size:12px;padding:1px 6px;border-radius:3px;background:#eee}\
.badge.open{background:#fddbc7;color:#b2182b}section.column{margin:1.5em 0;padding-top:.5em;border-top:1px dashed #ddd;content-visibility:auto;contain-intrinsic-size:auto 700px}\
details{margin:.5em 0}dl.facts{display:grid;grid-template-columns:max-content auto;gap:2px 12px}dt{font-weight:bold}dd{margin:0}";

fn verdict_cell(r: &DriftReport) -> String {
    match r.verdict.drift {
        Some(true) => "<span class=\"drift\">drift</span>".into(),
        Some(false) => "<span class=\"ok\">no drift</span>".into(),
        None => format!(
            "<span class=\"none\" title=\"{}\">no verdict</span>",
            escape(r.verdict.reason.as_deref().unwrap_or(""))
        ),
    }
}

/// How far a column drifted, for ranking: open alert first, then the share of judged windows
/// that drifted, then the latest PSI.
fn rank_key(c: &ColumnHistory) -> (bool, u64, f64) {
    let (judged, drifted) = c.judged_and_drifted();
    let share = match judged {
        0 => 0,
        n => (drifted as u64 * 1_000_000) / n as u64,
    };
    let psi = (c.latest_judged().or(c.reports.back()))
        .and_then(|r| r.psi.as_ref())
        .map_or(0.0, |p| p.value);
    (c.alert_open(), share, psi)
}

/// The whole page.
pub fn render(history: &DriftHistory, info: &PageInfo<'_>) -> String {
    let mut html = String::with_capacity(64 * 1024);
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>",
        escape(info.title)
    );
    if let Some(s) = info.refresh_s {
        let _ = write!(html, "<meta http-equiv=\"refresh\" content=\"{s}\">");
    }
    let _ = writeln!(
        html,
        "<style>{STYLE}</style></head><body>\n<header><h1>{}</h1><p id=\"source\">{}</p></header>",
        escape(info.title),
        escape(info.source)
    );
    overview(&mut html, history);
    for (role, id, title) in [
        (ColumnRole::Feature, "features", "Features"),
        (ColumnRole::Output, "outputs", "Model outputs"),
    ] {
        let columns: Vec<&ColumnHistory> =
            history.columns.iter().filter(|c| c.role == role).collect();
        if columns.is_empty() {
            continue;
        }
        let _ = writeln!(html, "<section id=\"{id}\"><h2>{title}</h2>");
        for c in columns {
            column_section(&mut html, c);
        }
        html.push_str("</section>\n");
    }
    performance::section(&mut html, &history.performance);
    html.push_str("</body></html>\n");
    html
}

fn overview(html: &mut String, history: &DriftHistory) {
    html.push_str("<section id=\"overview\"><h2>Overview</h2><dl class=\"facts\">");
    let first = history.reports().next();
    let model = history.reports().find_map(|r| r.model.as_ref());
    let model = match model {
        Some(m) => format!(
            "{} {} (sha256 {})",
            m.name,
            m.version,
            &m.sha256[..m.sha256.len().min(12)]
        ),
        None => "none named (features only, or reports without a model)".into(),
    };
    let mut references: Vec<&str> = history.reports().map(|r| r.reference_id.as_str()).collect();
    references.sort_unstable();
    references.dedup();
    let reference_size = (history.columns.iter())
        .find_map(|c| c.reports.front())
        .map_or(0, |r| r.bins.reference.iter().sum::<u64>());
    let windows = window_settings(history);
    let family = first.map_or("–".into(), |r| {
        format!(
            "{:?} at alpha {} over {} tests per window",
            r.family.correction,
            number(r.family.alpha),
            r.family.tests
        )
        .to_lowercase()
    });
    let (from, to) = time_range(history);
    for (term, value) in [
        ("Model", model),
        (
            "Reference",
            format!(
                "{} ({reference_size} values per column)",
                references.join(", ")
            ),
        ),
        ("Windows", windows),
        ("Correction", family),
        (
            "Time covered",
            match (from, to) {
                (Some(a), Some(b)) => format!("{} to {} UTC", utc(a), utc(b)),
                _ => "–".into(),
            },
        ),
        ("Columns", history.columns.len().to_string()),
    ] {
        let _ = write!(html, "<dt>{term}</dt><dd>{}</dd>", escape(&value));
    }
    html.push_str("</dl>\n<h3>Open alerts</h3>\n");
    let open: Vec<_> = history.open_alerts().collect();
    if open.is_empty() {
        html.push_str("<p id=\"open-alerts\">None.</p>\n");
    } else {
        html.push_str("<ul id=\"open-alerts\">");
        for a in open {
            let voting: Vec<&str> = (a.statistics.iter())
                .filter(|(_, s)| s.drift)
                .map(|(k, _)| k.name())
                .collect();
            let _ = write!(
                html,
                "<li data-column=\"{}\"><a href=\"#{}\">{}</a>: {:?} since panes {}–{} ({})</li>",
                escape(&a.column),
                anchor(&a.column),
                escape(&a.column),
                a.severity,
                a.window.first_pane,
                a.window.last_pane,
                voting.join(", ")
            );
        }
        html.push_str("</ul>\n");
    }
    html.push_str("<h3>Columns, most drifted first</h3>\n<table id=\"ranking\"><thead><tr><th>#</th><th class=\"name\">column</th><th>role</th><th>latest verdict</th><th>windows drifted</th><th>latest PSI</th><th>latest test</th><th>PSI over the windows</th></tr></thead><tbody>\n");
    let mut ranked: Vec<&ColumnHistory> = history.columns.iter().collect();
    ranked.sort_by(|a, b| rank_key(b).partial_cmp(&rank_key(a)).expect("finite"));
    for (i, c) in ranked.iter().enumerate() {
        let latest = c.latest_judged().or(c.reports.back());
        let (judged, drifted) = c.judged_and_drifted();
        let psi: Vec<Option<f64>> = c
            .reports
            .iter()
            .map(|r| r.psi.as_ref().map(|p| p.value))
            .collect();
        let threshold = latest.and_then(|r| r.psi.as_ref()).map(|p| p.threshold);
        let spark = charts::sparkline(&StatisticSeries {
            name: "psi",
            values: &psi,
            threshold,
        });
        let test = latest.map_or(String::from("–"), |r| {
            let test = test_numbers(r);
            format!(
                "{} {} (p {})",
                c.test_kind().name(),
                opt_number(test.effect),
                opt_number(test.pvalue)
            )
        });
        let _ = writeln!(
            html,
            "<tr data-column=\"{col}\"><td>{}</td><td class=\"name\"><a href=\"#{}\">{col}</a>{}</td><td>{}</td><td>{}</td><td>{drifted} of {judged}</td><td>{}</td><td>{}</td><td>{spark}</td></tr>",
            i + 1,
            anchor(&c.column),
            if c.alert_open() { " <span class=\"badge open\">alert open</span>" } else { "" },
            role_name(c.role),
            latest.map_or(String::new(), verdict_cell),
            opt_number(latest.and_then(|r| r.psi.as_ref()).map(|p| p.value)),
            escape(&test),
            col = escape(&c.column),
        );
    }
    html.push_str("</tbody></table></section>\n");
}

fn role_name(role: ColumnRole) -> &'static str {
    match role {
        ColumnRole::Feature => "feature",
        ColumnRole::Output => "output",
    }
}

/// Panes per window, the slide and the window's size, read from the reports.
fn window_settings(history: &DriftHistory) -> String {
    let Some(c) = history.columns.first() else {
        return "–".into();
    };
    let Some(r) = c.reports.iter().find(|r| r.window.complete) else {
        return "–".into();
    };
    let panes = r.window.last_pane - r.window.first_pane + 1;
    let slide = (c.reports.iter().zip(c.reports.iter().skip(1)))
        .map(|(a, b)| b.window.first_pane.saturating_sub(a.window.first_pane))
        .find(|&d| d > 0);
    let size = match (r.window.start_ms, r.window.end_ms) {
        (Some(a), Some(b)) => format!("{} s of event time", (b - a) / 1000),
        _ => format!("{} events", r.window.events),
    };
    format!(
        "{panes} panes ({size}), sliding by {}",
        slide.map_or("–".into(), |s| s.to_string())
    )
}

/// The earliest and latest event time of any window.
fn time_range(history: &DriftHistory) -> (Option<i64>, Option<i64>) {
    let starts = history
        .reports()
        .filter_map(|r| r.window.min_event_ms.or(r.window.start_ms));
    let ends = history
        .reports()
        .filter_map(|r| r.window.max_event_ms.or(r.window.end_ms));
    (starts.min(), ends.max())
}

fn column_section(html: &mut String, c: &ColumnHistory) {
    let name = escape(&c.column);
    let kind = match c.kind {
        ColumnKind::Numeric => "numeric",
        ColumnKind::Categorical => "categorical",
    };
    let _ = writeln!(
        html,
        "<section class=\"column\" id=\"{}\" data-column=\"{name}\"><h3>{name} <span class=\"badge{}\">{}</span></h3>",
        anchor(&c.column),
        if c.alert_open() { " open" } else { "" },
        if c.alert_open() { "alert open".to_string() } else { format!("{} {kind}", role_name(c.role)) },
    );
    let Some(latest) = c.latest_judged().or(c.reports.back()) else {
        html.push_str("<p>No window reported.</p></section>\n");
        return;
    };
    let w = &latest.window;
    let _ = writeln!(
        html,
        "<p>Latest {} window: panes {}–{}, {} events{}, missing {}. Verdict: {}.</p>",
        if w.complete {
            "complete"
        } else {
            "(incomplete)"
        },
        w.first_pane,
        w.last_pane,
        w.events,
        match (w.min_event_ms, w.max_event_ms) {
            (Some(a), Some(b)) => format!(", event time {} to {} UTC", utc(a), utc(b)),
            _ => String::new(),
        },
        number(latest.missing_rate),
        verdict_cell(latest)
    );
    let labels = bin_labels(latest);
    html.push_str(&charts::distribution(
        &labels,
        &latest.bins.reference,
        &latest.bins.current,
    ));
    let open = c.alert_open_by_window();
    let series = |f: &dyn Fn(&DriftReport) -> Option<f64>| -> Vec<Option<f64>> {
        c.reports.iter().map(f).collect()
    };
    let psi = series(&|r| r.psi.as_ref().map(|s| s.value));
    let effect = series(&|r| test_numbers(r).effect);
    let floor = test_numbers(latest).floor;
    let effect_name = match c.test_kind() {
        StatisticKind::ChiSquare => "Cramér's V (chi-square) over the windows, floor in red",
        _ => "KS D over the windows, floor in red",
    };
    for s in [
        StatisticSeries {
            name: "PSI over the windows, threshold in red, alert periods shaded",
            values: &psi,
            threshold: latest.psi.as_ref().map(|p| p.threshold),
        },
        StatisticSeries {
            name: effect_name,
            values: &effect,
            threshold: floor,
        },
    ] {
        if s.values.iter().any(Option::is_some) {
            html.push_str(&charts::history(&s, &open));
        }
    }
    windows_table(html, c, &open);
    bins_table(html, latest, &labels);
    html.push_str("</section>\n");
}

fn bin_labels(r: &DriftReport) -> Vec<String> {
    match &r.bins.edges_or_categories {
        BinLabels::Categories(names) => names.clone(),
        BinLabels::Cuts(cuts) => (0..r.bins.reference.len())
            .map(
                |i| match (i.checked_sub(1).and_then(|j| cuts.get(j)), cuts.get(i)) {
                    (None, Some(hi)) => format!("≤ {}", number(*hi)),
                    (Some(lo), Some(hi)) => format!("({}, {}]", number(*lo), number(*hi)),
                    (Some(lo), None) => format!("> {}", number(*lo)),
                    (None, None) => "all".into(),
                },
            )
            .collect(),
    }
}
