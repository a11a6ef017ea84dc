//! The drift report and the live drift page as a person sees them: headless Chromium (Debian's
//! `chromium`, no network) renders each; the tests read the rendered DOM and take a screenshot.
//! One section per column, the open alerts listed, the numbers those of the reports, nothing
//! fetched and no console error. A report made from the topics of a live `driftline run` equals
//! the one `driftline batch` gives over the same events.
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use driftline_tests::browser::{self, table_rows};
use driftline_tests::http;
use driftline_tests::*;

/// Warm-up, then windows of two panes of 500 events, tumbling.
const WARMUP: u64 = 2_000;
const WINDOW: u64 = 1_000;
/// Six windows; the temperature shifts by 1 sd from the start of the fourth.
const EVENTS: u64 = WARMUP + 6 * WINDOW;
const SHIFT_AT: u64 = WARMUP + 3 * WINDOW;

fn drift_env() -> Vec<(&'static str, String)> {
    vec![
        ("DRIFTLINE__DRIFT__ENABLED", "true".into()),
        ("DRIFTLINE__DRIFT__WARMUP_EVENTS", WARMUP.to_string()),
        ("DRIFTLINE__DRIFT__REFERENCE_SAMPLE", WARMUP.to_string()),
        ("DRIFTLINE__DRIFT__PANE_EVENTS", (WINDOW / 2).to_string()),
        ("DRIFTLINE__DRIFT__PANES", "2".into()),
        ("DRIFTLINE__DRIFT__SLIDE", "2".into()),
    ]
}

fn events_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("events.jsonl");
    let ts = |i: u64| 1_700_000_000_000 + i as i64 * 100;
    write_generated_events(&path, EVENTS, 5, Some((SHIFT_AT, 1.0)), ts);
    path
}

fn driftline(args: &[&str], env: &[(&str, String)]) -> String {
    let out = Command::new(driftline_bin())
        .current_dir(repo_root())
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("driftline");
    assert!(
        out.status.success(),
        "driftline {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `driftline batch` with drift over `input`; the drift and alerts files.
fn batch_drift(input: &Path, dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let output = dir.join("scored.jsonl");
    driftline(
        &[
            "batch",
            "--config",
            "configs/demo.toml",
            "--input",
            &input.display().to_string(),
            "--output",
            &output.display().to_string(),
        ],
        &drift_env(),
    );
    (
        dir.join("scored.jsonl.drift.jsonl"),
        dir.join("scored.jsonl.alerts.jsonl"),
    )
}

fn jsonl(path: &Path) -> Vec<serde_json::Value> {
    (std::fs::read_to_string(path).expect("jsonl").lines())
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect()
}

/// The rendered section of `column`: where it starts in the DOM.
fn section_of(dom: &str, column: &str) -> usize {
    dom.find(&format!("data-column=\"{column}\"><h3>"))
        .unwrap_or_else(|| panic!("no section for {column}"))
}

/// A number the page printed (3 significant digits) against the report's.
fn assert_shown(shown: &str, value: f64, what: &str) {
    let parsed: f64 = shown
        .parse()
        .unwrap_or_else(|_| panic!("{what}: {shown:?}"));
    assert!(
        (parsed - value).abs() <= 5e-3 * value.abs() + 1e-12,
        "{what}: page {shown}, report {value}"
    );
}

#[test]
fn the_report_shows_every_column_the_open_alerts_and_the_reports_numbers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = events_file(dir.path());
    let (drift, alerts) = batch_drift(&input, dir.path());
    let page = dir.path().join("report.html");
    let said = driftline(
        &[
            "report",
            "--drift",
            &drift.display().to_string(),
            "--out",
            &page.display().to_string(),
        ],
        &[],
    );
    assert!(said.contains("alerts open"), "{said}");
    let url = format!("file://{}", page.display());
    let shown = browser::render(&url);
    assert!(
        shown.console_errors().is_empty(),
        "{:?}",
        shown.console_errors()
    );
    let dom = &shown.dom;

    let reports = jsonl(&drift);
    let columns: BTreeSet<&str> = reports
        .iter()
        .map(|r| r["column"].as_str().expect("column"))
        .collect();
    assert_eq!(
        dom.matches("<section class=\"column\"").count(),
        columns.len(),
        "one section per column"
    );
    for column in &columns {
        section_of(dom, column);
    }
    // The open alerts: each column whose last transition opened it.
    let mut last_state = BTreeMap::new();
    for a in jsonl(&alerts) {
        last_state.insert(
            a["column"].as_str().expect("column").to_string(),
            a["state"].clone(),
        );
    }
    let open: Vec<&String> = (last_state.iter())
        .filter(|(_, s)| *s == "open")
        .map(|(c, _)| c)
        .collect();
    assert!(open.iter().any(|c| *c == "temperature"), "{last_state:?}");
    let listed = &dom[dom.find("id=\"open-alerts\"").expect("open alerts")..];
    let listed = &listed[..listed.find("</ul>").unwrap_or(listed.len())];
    for column in &open {
        assert!(
            listed.contains(&format!("data-column=\"{column}\"")),
            "{column} not listed"
        );
    }
    assert_eq!(listed.matches("<li").count(), open.len(), "{listed}");

    // Every window's numbers in the temperature table equal its report's.
    let temperature: Vec<&serde_json::Value> = reports
        .iter()
        .filter(|r| r["column"] == "temperature")
        .collect();
    let rows = table_rows(dom, section_of(dom, "temperature"), "windows");
    assert_eq!(rows.len(), temperature.len());
    for (row, r) in rows.iter().zip(&temperature) {
        let w = &r["window"];
        assert_eq!(row[0], format!("{}-{}", w["first_pane"], w["last_pane"]));
        assert_shown(&row[1], r["psi"]["value"].as_f64().expect("psi"), "psi");
        assert_shown(&row[2], r["kl"]["value"].as_f64().expect("kl"), "kl");
        assert_shown(&row[3], r["ks"]["statistic"].as_f64().expect("D"), "ks D");
        assert_shown(&row[4], r["ks"]["pvalue"].as_f64().expect("p"), "ks p");
        let verdict = if r["verdict"]["drift"] == true {
            "drift"
        } else {
            "no"
        };
        assert!(row[5].starts_with(verdict), "{row:?} vs {}", r["verdict"]);
    }
    browser::screenshot(&url, &dir.path().join("report.png"), 1280, 1600);
}

#[test]
fn a_comparison_renders_as_the_same_page() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (reference, current) = (dir.path().join("r.txt"), dir.path().join("c.txt"));
    let values = |shift: f64| {
        (0..400)
            .map(|i| format!("{}\n", (i % 97) as f64 + shift))
            .collect::<String>()
    };
    std::fs::write(&reference, values(0.0)).expect("write");
    std::fs::write(&current, values(20.0)).expect("write");
    let args = [
        "drift",
        "--reference",
        &reference.display().to_string(),
        "--current",
        &current.display().to_string(),
    ];
    let json: serde_json::Value = serde_json::from_str(&driftline(
        &[&args[..], &["--format", "json"]].concat(),
        &[],
    ))
    .expect("json");
    let page = dir.path().join("drift.html");
    std::fs::write(
        &page,
        driftline(&[&args[..], &["--format", "html"]].concat(), &[]),
    )
    .expect("page");
    let shown = browser::render(&format!("file://{}", page.display()));
    assert!(
        shown.console_errors().is_empty(),
        "{:?}",
        shown.console_errors()
    );
    assert_eq!(shown.dom.matches("<section class=\"column\"").count(), 1);
    let rows = table_rows(&shown.dom, section_of(&shown.dom, "value"), "windows");
    assert_eq!(rows.len(), 1);
    assert_shown(
        &rows[0][1],
        json["psi"]["value"].as_f64().expect("psi"),
        "psi",
    );
    assert_shown(
        &rows[0][3],
        json["ks"]["statistic"].as_f64().expect("D"),
        "D",
    );
    assert!(rows[0][5].starts_with("drift"), "{:?}", rows[0]);
    let url = format!("file://{}", page.display());
    browser::screenshot(&url, &dir.path().join("drift.png"), 1280, 1200);
}

/// The live page of a running instance shows what /drift.json holds; after it stops, the report
/// made from its topics equals the one made from `driftline batch` over the same events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_page_and_a_report_from_the_topics_match_batch() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = events_file(dir.path());
    let broker = Tansu::start();
    let b = broker.bootstrap.as_str();
    create_topics(
        b,
        &[
            ("in", 1),
            ("out", 1),
            ("dlq", 1),
            ("drift", 1),
            ("alerts", 1),
        ],
    )
    .await;
    let events: Vec<(String, Vec<u8>)> = (std::fs::read_to_string(&input).expect("events").lines())
        .map(|l| (String::new(), l.as_bytes().to_vec()))
        .collect();
    produce_all(b, "in", &events);

    let health: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let mut env = pipeline_env(b, "in", "out", "dlq", "report-test");
    env.extend(drift_env());
    env.extend([
        ("DRIFTLINE__KAFKA__DRIFT_TOPIC", "drift".to_string()),
        ("DRIFTLINE__KAFKA__ALERTS_TOPIC", "alerts".to_string()),
        ("DRIFTLINE__HEALTH__LISTEN", health.to_string()),
    ]);
    let log = dir.path().join("driftline.log");
    let mut process = DriftlineProcess::start(&env, &log);
    wait_for_commits_to_reach_the_end(b, "report-test", "in", 1, Duration::from_secs(180));
    // The drift thread publishes after the offsets move: wait for the last window.
    let windows = (EVENTS - WARMUP) / WINDOW;
    let all_windows = |answer: Option<&(u16, String)>| {
        answer.is_some_and(|(_, body)| {
            serde_json::from_str::<serde_json::Value>(body).is_ok_and(|v| {
                (v["columns"].as_array().into_iter().flatten()).any(|c| {
                    c["column"] == "temperature"
                        && c["history"].as_array().map_or(0, Vec::len) as u64 == windows
                })
            })
        })
    };
    let live = http::wait_for(health, "/drift.json", Duration::from_secs(60), all_windows);
    assert!(all_windows(live.as_ref()), "{live:?}");
    let live: serde_json::Value =
        serde_json::from_str(&live.expect("an answer").1).expect("drift.json");
    let shown = browser::render(&format!("http://{health}/drift"));
    assert!(
        shown.console_errors().is_empty(),
        "{:?}",
        shown.console_errors()
    );
    let columns = live["columns"].as_array().expect("columns");
    assert_eq!(
        shown.dom.matches("<section class=\"column\"").count(),
        columns.len()
    );
    let temperature = columns
        .iter()
        .find(|c| c["column"] == "temperature")
        .expect("temperature");
    assert_eq!(temperature["alert_open"], true, "{temperature}");
    let rows = table_rows(&shown.dom, section_of(&shown.dom, "temperature"), "windows");
    let last = rows.last().expect("rows");
    assert_shown(
        &last[1],
        temperature["latest"]["psi"]["value"].as_f64().expect("psi"),
        "live psi",
    );
    let live_page = format!("http://{health}/drift");
    browser::screenshot(&live_page, &dir.path().join("live.png"), 1280, 1600);
    let status = process.terminate(Duration::from_secs(30));
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );

    let from_topics = dir.path().join("topics.html");
    let mut report_env = env.clone();
    report_env.retain(|(k, _)| k.starts_with("DRIFTLINE__KAFKA"));
    driftline(
        &[
            "report",
            "--config",
            "configs/demo.toml",
            "--bootstrap",
            b,
            "--out",
            &from_topics.display().to_string(),
        ],
        &report_env,
    );
    let batch_dir = dir.path().join("batch");
    std::fs::create_dir(&batch_dir).expect("dir");
    let (drift, _) = batch_drift(&input, &batch_dir);
    let from_batch = dir.path().join("batch.html");
    driftline(
        &[
            "report",
            "--drift",
            &drift.display().to_string(),
            "--out",
            &from_batch.display().to_string(),
        ],
        &[],
    );
    // The pages differ only in the line that says where their reports came from.
    let without_source = |path: &Path| {
        let html = std::fs::read_to_string(path).expect("page");
        let start = html.find("<p id=\"source\">").expect("source");
        let end = start + html[start..].find("</p>").expect("end");
        format!("{}{}", &html[..start], &html[end..])
    };
    let (topics, batch) = (without_source(&from_topics), without_source(&from_batch));
    assert!(topics.contains("<section class=\"column\""), "{topics}");
    if topics != batch {
        let line = topics
            .lines()
            .zip(batch.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        panic!(
            "topics and batch reports differ at line {line}:\n{:?}\n{:?}",
            topics.lines().nth(line),
            batch.lines().nth(line)
        );
    }
}
