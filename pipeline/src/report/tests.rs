use driftline_operators::drift::monitor::{AlertEvent, AlertState, DriftReport};

use crate::report::format::{escape, number, parse_time, utc};
use crate::report::history::DriftHistory;
use crate::report::page::{render, PageInfo};

/// A report as the monitor writes it, for column `column`'s window `w` (panes 2w, 2w+1).
fn report(column: &str, w: u64, psi: f64, drift: Option<bool>) -> DriftReport {
    let text = format!(
        r#"{{"schema_version":2,"column":"{column}","role":"feature","kind":"numeric","reference_id":"ref-1","instance":"i","partitions":[0],
        "window":{{"start_ms":null,"end_ms":null,"first_pane":{a},"last_pane":{b},"events":100,"complete":true,"min_event_ms":1700000000000,"max_event_ms":1700000060000,"sources":[]}},
        "missing_rate":0.0,"psi":{{"value":{psi},"threshold":0.2,"drift":false,"votes":false}},"kl":null,
        "ks":{{"statistic":0.123456,"pvalue":0.000123,"method":"exact","error_bound":null,"threshold":0.025,"min_statistic":0.05,"drift":true,"votes":true}},
        "chi_square":null,"family":{{"correction":"holm","alpha":0.05,"tests":2}},
        "bins":{{"edges_or_categories":{{"cuts":[1.0,2.0]}},"reference":[10,20,30],"current":[5,5,90],"missing":0}},
        "verdict":{{"drift":{drift},"reason":null,"voters":["ks"],"votes_for":1,"votes_needed":1}}}}"#,
        a = 2 * w,
        b = 2 * w + 1,
        drift = drift.map_or("null".to_string(), |d| d.to_string()),
    );
    serde_json::from_str(&text).expect("a report")
}

fn alert(column: &str, w: u64, state: AlertState) -> AlertEvent {
    let r = report(column, w, 0.3, Some(true));
    serde_json::from_value(serde_json::json!({
        "schema_version": 2, "state": state, "severity": "critical", "column": column,
        "role": "feature", "statistics": {}, "verdict": r.verdict, "window": r.window,
        "reference_id": "ref-1", "instance": "i"
    }))
    .expect("an alert")
}

#[test]
fn numbers_times_and_text_are_written_for_people() {
    assert_eq!(number(0.0), "0");
    assert_eq!(number(0.123456), "0.123");
    assert_eq!(number(12.3456), "12.3");
    assert_eq!(number(0.000123), "1.23e-4");
    assert_eq!(utc(0), "1970-01-01 00:00:00");
    assert_eq!(utc(1_700_006_400_000), "2023-11-15 00:00:00");
    assert_eq!(
        parse_time("2023-11-15T00:00:00Z").expect("time"),
        1_700_006_400_000
    );
    assert_eq!(
        parse_time("2024-02-29T12:30:15.250Z").expect("time"),
        1_709_209_815_250
    );
    assert_eq!(parse_time("1700006400000").expect("ms"), 1_700_006_400_000);
    assert!(parse_time("yesterday").is_err());
    assert_eq!(
        escape("<a href=\"x\">&'"),
        "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
    );
}

#[test]
fn alert_periods_follow_the_transitions() {
    let reports = (0..6).map(|w| report("t", w, 0.01 * w as f64, Some(w >= 2)));
    let alerts = [
        alert("t", 2, AlertState::Open),
        alert("t", 4, AlertState::Resolved),
    ];
    let history = DriftHistory::of(reports, alerts);
    let t = &history.columns[0];
    assert_eq!(
        t.alert_open_by_window(),
        [false, false, true, true, false, false]
    );
    assert!(!t.alert_open());
    assert_eq!(t.judged_and_drifted(), (6, 4));
}

#[test]
fn the_page_has_a_section_per_column_its_numbers_and_nothing_external() {
    let mut reports = Vec::new();
    for w in 0..3 {
        reports.push(report("quiet", w, 0.01, Some(false)));
        reports.push(report("loud <b>", w, 0.5, Some(true)));
    }
    let history = DriftHistory::of(reports, [alert("loud <b>", 0, AlertState::Open)]);
    let html = render(
        &history,
        &PageInfo {
            title: "t",
            source: "s",
            refresh_s: None,
        },
    );
    assert_eq!(html.matches("<section class=\"column\"").count(), 2);
    // Ranked: the column with the open alert first.
    let loud = html
        .find("<tr data-column=\"loud &lt;b&gt;\">")
        .expect("ranked row");
    let quiet = html.find("<tr data-column=\"quiet\">").expect("ranked row");
    assert!(loud < quiet);
    assert!(
        html.contains("<li data-column=\"loud &lt;b&gt;\">"),
        "open alert listed"
    );
    assert!(html.contains("<tr><td>4-5<td>0.500<td>–<td>0.123<td>1.23e-4<td>drift open"));
    for external in ["<script", "<link", "src=", "url("] {
        assert!(!html.contains(external), "{external}");
    }
    assert!(html.contains("<svg"), "charts are inline SVG");
}

#[test]
fn older_windows_are_text_lines_and_the_latest_a_table() {
    use crate::report::tables::TABLE_WINDOWS;
    let n = TABLE_WINDOWS as u64 + 10;
    let history = DriftHistory::of((0..n).map(|w| report("t", w, 0.01, Some(false))), []);
    let info = PageInfo {
        title: "t",
        source: "s",
        refresh_s: None,
    };
    let html = render(&history, &info);
    let text = &html[html
        .find("<pre class=\"windows-text\">")
        .expect("text lines")..];
    let text = &text[..text.find("</pre>").expect("end")];
    // A header line and the ten oldest windows, panes 0-1 to 18-19.
    assert_eq!(text.lines().count(), 11, "{text}");
    assert!(
        text.lines()
            .nth(1)
            .expect("line")
            .starts_with("0-1      0.0100"),
        "{text}"
    );
    let table = &html[html.find("<table class=\"windows\">").expect("table")..];
    let table = &table[..table.find("</table>").expect("end")];
    assert_eq!(table.matches("<tr><td>").count(), TABLE_WINDOWS);
    assert!(
        table.contains("<tr><td>20-21<td>"),
        "the table starts after the text"
    );
}

#[test]
fn performance_windows_get_a_row_with_realized_and_estimated_metrics() {
    use driftline_operators::performance::windows::PerformanceReport;
    let mut history = DriftHistory::of([report("t", 0, 0.01, Some(false))], []);
    let window: PerformanceReport = serde_json::from_value(serde_json::json!({
        "kind": "performance", "window": "count", "first_prediction": 0,
        "first_event_ms": 0, "last_event_ms": 9, "complete": true,
        "predictions": 10, "labeled": 8, "unlabeled": 2, "labeled_fraction": 0.8,
        "realized": [{"metric": "accuracy", "value": 0.875}],
        "estimated": [{"metric": "accuracy", "value": 0.61, "sampling_error": 0.01,
            "lower_bound": 0.58, "upper_bound": 0.64, "lower_threshold": 0.7,
            "upper_threshold": 1.0, "alert": true}]
    }))
    .expect("a performance report");
    let info = PageInfo {
        title: "t",
        source: "s",
        refresh_s: None,
    };
    let empty = render(&history, &info);
    assert!(empty.contains("No performance records"), "{empty}");
    history.performance.push(window);
    let html = render(&history, &info);
    let section = &html[html.find("id=\"performance\"").expect("section")..];
    assert!(section.contains("<th>accuracy</th>"), "{section}");
    assert!(section.contains("8 (80 %)"), "{section}");
    assert!(
        section.contains("<td class=\"drift\">0.875 / est. 0.610 ± 0.0300 ⚠</td>"),
        "{section}"
    );
    assert!(
        !section.contains("<th>mae</th>"),
        "metrics without values are not shown"
    );
}
