//! The drift page: one self-contained HTML file (inline CSS and SVG, no script, nothing fetched)
//! made from a [`DriftHistory`]. The overview ranks the columns; each column gets a section with
//! its distributions, its statistics over the windows, and its numbers as tables, so that a
//! screen reader and `grep` find them too.
use std::fmt::Write;

use driftline_operators::drift::alert::StatisticKind;
use driftline_operators::drift::monitor::{BinLabels, DriftReport};
use driftline_operators::drift::profile::{ColumnKind, ColumnRole};

use crate::report::charts::{self, StatisticSeries};
use crate::report::history::{ColumnHistory, DriftHistory};

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

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A number as a person reads it: three significant digits, or scientific notation.
pub fn number(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if (1e-3..1e5).contains(&a) {
        let decimals = (2 - a.log10().floor() as i32).max(0) as usize;
        format!("{v:.decimals$}")
    } else {
        format!("{v:.2e}")
    }
}

fn opt_number(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), number)
}

/// Epoch milliseconds as UTC `YYYY-MM-DD HH:MM:SS` (civil-from-days, H. Hinnant).
pub fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// An id for a column's section: letters, digits, `-` and `_` kept, anything else as `-`.
pub fn anchor(column: &str) -> String {
    let safe: String = (column.chars())
        .map(|c| match c.is_ascii_alphanumeric() || c == '_' {
            true => c,
            false => '-',
        })
        .collect();
    format!("column-{safe}")
}

/// The effect size of the column's test: KS D (numeric) or Cramér's V (categorical), with its
/// floor; and its p-value with the threshold it was judged by.
fn test_of(r: &DriftReport) -> (Option<f64>, Option<f64>, Option<f64>, Option<f64>) {
    match (&r.ks, &r.chi_square) {
        (Some(ks), _) => (
            Some(ks.statistic),
            Some(ks.min_statistic),
            Some(ks.pvalue),
            Some(ks.threshold),
        ),
        (None, Some(chi)) => (
            chi.cramers_v,
            Some(chi.min_cramers_v),
            Some(chi.pvalue),
            Some(chi.threshold),
        ),
        (None, None) => (None, None, None, None),
    }
}

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
    // Room for label-based and estimated performance (joined labels, CBPE) when they exist.
    html.push_str("<section id=\"performance\"><h2>Model performance</h2><p>No performance data in these reports: labels are not joined yet.</p></section>\n");
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
            let (effect, _, p, _) = test_of(r);
            format!(
                "{} {} (p {})",
                c.test_kind().name(),
                opt_number(effect),
                opt_number(p)
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
    let effect = series(&|r| test_of(r).0);
    let (_, floor, _, _) = test_of(latest);
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

/// Windows listed as table rows; older ones are listed as text lines below the table. A page of
/// 100 columns × 500 windows as table cells is 400 000 elements for the browser to build; as
/// one text block per column it is grep-able and opens in a fraction of the time.
pub const TABLE_WINDOWS: usize = 50;

/// One window's numbers as cells: panes, [events], psi, kl, effect, p, verdict and alert.
fn window_cells(r: &DriftReport, open: bool, with_events: bool) -> [String; 7] {
    let (effect, _, p, _) = test_of(r);
    let verdict = match r.verdict.drift {
        Some(true) => "drift",
        Some(false) => "no",
        None => "none",
    };
    [
        format!("{}-{}", r.window.first_pane, r.window.last_pane),
        if with_events {
            r.window.events.to_string()
        } else {
            String::new()
        },
        opt_number(r.psi.as_ref().map(|s| s.value)),
        opt_number(r.kl.as_ref().map(|s| s.value)),
        opt_number(effect),
        opt_number(p),
        format!("{verdict}{}", if open { " open" } else { "" }),
    ]
}

/// Every window's numbers: the latest [`TABLE_WINDOWS`] as a table (end tags left out, as HTML
/// allows), the older ones as aligned text lines with the same columns.
fn windows_table(html: &mut String, c: &ColumnHistory, open: &[bool]) {
    let test = c.test_kind().name();
    let effect = match c.test_kind() {
        StatisticKind::ChiSquare => "V",
        _ => "D",
    };
    // Count windows hold the same number of events: said once, not on every row.
    let first_events = c.reports.front().map_or(0, |r| r.window.events);
    let same_events = c.reports.iter().all(|r| r.window.events == first_events);
    let older = c.reports.len().saturating_sub(TABLE_WINDOWS);
    let _ = writeln!(
        html,
        "<details><summary>Every window ({} windows{}; p threshold {}; \"open\": the alert was open)</summary>",
        c.reports.len(),
        if same_events { format!(" of {first_events} events") } else { String::new() },
        c.latest_judged()
            .and_then(|r| test_of(r).3)
            .map_or("–".into(), number),
    );
    let headers = [
        "panes",
        if same_events { "" } else { "events" },
        "psi",
        "kl",
        &format!("{test} {effect}"),
        &format!("{test} p"),
        "verdict",
    ];
    if older > 0 {
        let _ = writeln!(
            html,
            "<pre class=\"windows-text\">{}",
            text_line(&headers.map(String::from))
        );
        for (r, open) in c.reports.iter().zip(open).take(older) {
            let _ = writeln!(html, "{}", text_line(&window_cells(r, *open, !same_events)));
        }
        html.push_str("</pre>\n");
    }
    html.push_str("<table class=\"windows\"><thead><tr>");
    for h in headers.iter().filter(|h| !h.is_empty()) {
        let _ = write!(html, "<th>{h}");
    }
    html.push_str("</thead><tbody>\n");
    for (r, open) in c.reports.iter().zip(open).skip(older) {
        html.push_str("<tr>");
        for cell in window_cells(r, *open, !same_events)
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 1 || !same_events)
        {
            let _ = write!(html, "<td>{}", cell.1);
        }
        html.push('\n');
    }
    html.push_str("</tbody></table></details>\n");
}

/// Cells as one line of fixed-width text (an empty cell takes no room).
fn text_line(cells: &[String; 7]) -> String {
    let widths = [9, 7, 9, 9, 13, 13, 10];
    let mut line = String::new();
    for (cell, width) in cells.iter().zip(widths) {
        if !cell.is_empty() {
            let _ = write!(line, "{cell:<width$}");
        }
    }
    line.trim_end().to_string()
}

fn bins_table(html: &mut String, r: &DriftReport, labels: &[String]) {
    html.push_str("<details><summary>Bins of the latest window</summary><table class=\"bins\"><thead><tr><th class=\"name\">bin</th><th>reference</th><th>current</th></tr></thead><tbody>\n");
    for (i, label) in labels.iter().enumerate() {
        let _ = writeln!(
            html,
            "<tr><td class=\"name\">{}</td><td>{}</td><td>{}</td></tr>",
            escape(label),
            r.bins.reference.get(i).copied().unwrap_or(0),
            r.bins.current.get(i).copied().unwrap_or(0)
        );
    }
    let _ = writeln!(
        html,
        "<tr><td class=\"name\">missing</td><td></td><td>{}</td></tr></tbody></table></details>",
        r.bins.missing
    );
}
