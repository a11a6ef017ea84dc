//! The report's "Model performance" section: one row per performance window, each metric's
//! realized value (from labels) beside CBPE's estimate with its band, an estimate outside its
//! thresholds marked.
use std::fmt::Write;

use driftline_operators::performance::windows::PerformanceReport;

use crate::report::format::{escape, opt_number, utc};

/// The metrics a window may carry, in the order shown.
const METRICS: [&str; 9] = [
    "accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "mae",
    "rmse",
    "mape",
    "r2",
];

pub fn section(html: &mut String, windows: &[PerformanceReport]) {
    html.push_str("<section id=\"performance\"><h2>Model performance</h2>\n");
    if windows.is_empty() {
        html.push_str("<p>No performance records: join labels (<code>kafka.labels_topic</code>) or fit the profile on labeled events (<code>driftline profile</code>) to measure the model per window.</p></section>\n");
        return;
    }
    let shown: Vec<&str> = (METRICS.iter().copied())
        .filter(|m| {
            windows.iter().any(|w| {
                w.realized
                    .iter()
                    .any(|r| r.metric == *m && r.value.is_some())
                    || w.estimated.iter().any(|e| e.metric.name() == *m)
            })
        })
        .collect();
    html.push_str("<p>Per window: the realized metric of the labeled predictions, and CBPE's estimate over all of them (± 3 sampling errors); an estimate outside the reference's thresholds is marked.</p>\n");
    html.push_str("<table class=\"performance\"><thead><tr><th>window</th><th>predictions</th><th>labeled</th>");
    for m in &shown {
        let _ = write!(html, "<th>{}</th>", escape(m));
    }
    html.push_str("</tr></thead><tbody>\n");
    for w in windows {
        let window = match (w.window_start_ms, w.first_prediction) {
            (Some(start), _) => utc(start),
            (None, Some(first)) => format!("from prediction {first}"),
            (None, None) => utc(w.first_event_ms),
        };
        let _ = write!(
            html,
            "<tr><td>{}{}</td><td>{}</td><td>{} ({:.0} %)</td>",
            escape(&window),
            if w.complete { "" } else { " (incomplete)" },
            w.predictions,
            w.labeled,
            100.0 * w.labeled_fraction
        );
        for m in &shown {
            let realized = (w.realized.iter())
                .find(|r| r.metric == *m)
                .and_then(|r| r.value);
            let estimate = w.estimated.iter().find(|e| e.metric.name() == *m);
            let mut cell = opt_number(realized);
            let mut class = "";
            if let Some(e) = estimate {
                let _ = write!(
                    cell,
                    " / est. {} ± {}",
                    opt_number(e.value),
                    opt_number(Some(3.0 * e.sampling_error))
                );
                if e.alert {
                    class = " class=\"drift\"";
                    cell.push_str(" ⚠");
                }
            }
            let _ = write!(html, "<td{class}>{}</td>", escape(&cell));
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</tbody></table></section>\n");
}
