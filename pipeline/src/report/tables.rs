//! A column's numbers as text: every window's statistics and verdict, and the latest window's
//! bins, so that `grep` and a screen reader find what the charts show.
use std::fmt::Write;

use driftline_operators::drift::alert::StatisticKind;
use driftline_operators::drift::monitor::DriftReport;

use crate::report::format::{escape, number, opt_number};
use crate::report::history::{test_numbers, ColumnHistory};

/// Windows listed as table rows; older ones are listed as text lines below the table. A page of
/// 100 columns × 500 windows as table cells is 400 000 elements for the browser to build; as
/// one text block per column it is grep-able and opens in a fraction of the time.
pub const TABLE_WINDOWS: usize = 50;

/// One window's numbers as cells: panes, [events], psi, kl, effect, p, verdict and alert.
fn window_cells(r: &DriftReport, open: bool, with_events: bool) -> [String; 7] {
    let test = test_numbers(r);
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
        opt_number(test.effect),
        opt_number(test.pvalue),
        format!("{verdict}{}", if open { " open" } else { "" }),
    ]
}

/// Every window's numbers: the latest [`TABLE_WINDOWS`] as a table (end tags left out, as HTML
/// allows), the older ones as aligned text lines with the same columns.
pub fn windows_table(html: &mut String, c: &ColumnHistory, open: &[bool]) {
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
            .and_then(|r| test_numbers(r).threshold)
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
        // The one cell that can be empty is `events`, left out when every window has as many.
        for cell in window_cells(r, *open, !same_events)
            .iter()
            .filter(|c| !c.is_empty())
        {
            let _ = write!(html, "<td>{cell}");
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

pub fn bins_table(html: &mut String, r: &DriftReport, labels: &[String]) {
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
