//! Drift on the real broker: a reference profile built offline by `driftline profile`, then a
//! stream whose temperature mean shifts by one standard deviation at a known event. No alert for
//! it before the shift; an alert within two windows after; reports and alerts are JSON that a
//! Python confluent-kafka consumer reads.
use std::time::Duration;

use driftline::cli::gen::{EventGenerator, GenOptions};
use driftline_tests::*;

const EVENTS: u64 = 30_000;
const SHIFT_AT: u64 = 15_000;
const PANE: u64 = 1_000;
const PANES: u64 = 3;

/// Profiles a healthy sample, streams EVENTS events (1 ms of event time apart, the temperature
/// shifted from SHIFT_AT on) through driftline with `window_env`, and returns the drift reports
/// and alerts as a Python consumer read them.
async fn run_stream(
    window_env: &[(&'static str, String)],
) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
    let dir = tempfile::tempdir().expect("temp dir");
    // The reference: 20 000 healthy events (a different seed from the stream).
    let profile = demo_reference_profile(dir.path(), 99, 20_000);
    let mut buf = Vec::new();

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
    let mut stream = EventGenerator::new(
        GenOptions {
            drift_after: Some(SHIFT_AT),
            drift_shift_std: 1.0,
            ..GenOptions::default()
        },
        1_700_000_000_000,
    )
    .expect("generator");
    let events: Vec<(String, Vec<u8>)> = (0..EVENTS)
        .map(|i| (stream.event(i, &mut buf), buf.clone()))
        .collect();
    produce_all(b, "in", &events);

    let mut env = pipeline_env(b, "in", "out", "dlq", "drift-test");
    env.extend([
        ("DRIFTLINE__KAFKA__DRIFT_TOPIC", "drift".to_string()),
        ("DRIFTLINE__KAFKA__ALERTS_TOPIC", "alerts".to_string()),
        ("DRIFTLINE__DRIFT__ENABLED", "true".to_string()),
        ("DRIFTLINE__DRIFT__PROFILE", profile.display().to_string()),
    ]);
    env.extend(window_env.iter().cloned());
    let mut driftline = DriftlineProcess::start(&env, &dir.path().join("driftline.log"));
    wait_for_outputs(
        b,
        &[("out", 1)],
        EVENTS as i64,
        Duration::from_secs(2),
        Duration::from_secs(180),
    );
    let status = driftline.terminate(Duration::from_secs(30));
    let log = std::fs::read_to_string(dir.path().join("driftline.log")).unwrap_or_default();
    assert!(
        status.success(),
        "driftline exited with {status}; log:\n{log}"
    );

    read_drift_with_python(b, "drift", "alerts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mean_shift_raises_an_alert_within_two_windows_and_not_before() {
    let (reports, alerts) = run_stream(&[
        ("DRIFTLINE__DRIFT__PANE_EVENTS", PANE.to_string()),
        ("DRIFTLINE__DRIFT__PANES", PANES.to_string()),
        ("DRIFTLINE__DRIFT__SLIDE", PANES.to_string()),
    ])
    .await;

    let windows = EVENTS / (PANE * PANES);
    let temperature: Vec<_> = reports
        .iter()
        .filter(|r| r["column"] == "temperature")
        .collect();
    assert_eq!(
        temperature.len() as u64,
        windows,
        "one temperature report per window"
    );
    assert!(
        reports.iter().any(|r| r["role"] == "output"),
        "model outputs are monitored too"
    );
    for r in &temperature {
        assert_eq!(r["window"]["events"].as_u64(), Some(PANE * PANES), "{r}");
        let current: u64 = r["bins"]["current"]
            .as_array()
            .expect("bins")
            .iter()
            .map(|c| c.as_u64().expect("count"))
            .sum();
        assert_eq!(
            current + r["bins"]["missing"].as_u64().unwrap_or(0),
            PANE * PANES,
            "raw counts cover the window"
        );
    }
    // Window w covers events [w*3000, (w+1)*3000); the shift starts in window 5.
    let window_of =
        |v: &serde_json::Value| v["window"]["first_pane"].as_u64().expect("first_pane") / PANES;
    let shift_window = SHIFT_AT / (PANE * PANES);
    let opened: Vec<_> = alerts
        .iter()
        .filter(|a| a["column"] == "temperature" && a["state"] == "open")
        .collect();
    assert!(
        opened.iter().all(|a| window_of(a) >= shift_window),
        "alert before the shift: {opened:?}"
    );
    let first = opened
        .iter()
        .map(|a| window_of(a))
        .min()
        .unwrap_or_else(|| panic!("no temperature alert; alerts: {alerts:?}"));
    assert!(
        first < shift_window + 2,
        "first alert in window {first}, the shift began in window {shift_window}"
    );
    for r in temperature.iter().filter(|r| window_of(r) < shift_window) {
        assert_eq!(
            r["psi"]["drift"], false,
            "no PSI drift before the shift: {r}"
        );
    }
    assert_eq!(
        opened.len(),
        1,
        "one alert for the column, not one per statistic or per window: {opened:?}"
    );
    let stats = &opened[0]["statistics"];
    assert!(
        stats["ks"]["drift"] == true && stats["psi"]["value"].is_f64(),
        "the alert carries every statistic: {stats}"
    );
}

/// Event-time windows over old timestamps (2023): windows close as event time passes, whatever
/// the wall clock says, so a backfill is windowed like live data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_time_windows_over_old_timestamps_close_and_alert() {
    const WINDOW_MS: u64 = PANE * PANES; // events are 1 ms apart: 3 000 events per window
    let (reports, alerts) = run_stream(&[
        ("DRIFTLINE__DRIFT__WINDOW", "time".to_string()),
        ("DRIFTLINE__DRIFT__PANE_MS", PANE.to_string()),
        ("DRIFTLINE__DRIFT__PANES", PANES.to_string()),
        ("DRIFTLINE__DRIFT__SLIDE", PANES.to_string()),
        ("DRIFTLINE__DRIFT__LATENESS_MS", "0".to_string()),
    ])
    .await;
    let shift_ms = 1_700_000_000_000 + SHIFT_AT;
    let temperature: Vec<_> = reports
        .iter()
        .filter(|r| r["column"] == "temperature")
        .collect();
    assert!(
        temperature.len() >= 8,
        "{} temperature windows closed of 10",
        temperature.len()
    );
    for r in &temperature {
        assert!(
            r["window"]["start_ms"].is_i64() && r["window"]["end_ms"].is_i64(),
            "time windows carry their bounds: {r}"
        );
        if r["window"]["end_ms"].as_u64().expect("end") <= shift_ms {
            assert_eq!(
                r["psi"]["drift"], false,
                "no PSI drift before the shift: {r}"
            );
        }
    }
    let first_alert = alerts
        .iter()
        .filter(|a| a["column"] == "temperature" && a["state"] == "open")
        .map(|a| a["window"]["start_ms"].as_u64().expect("start"))
        .min()
        .unwrap_or_else(|| panic!("no temperature alert; alerts: {alerts:?}"));
    assert!(
        first_alert + WINDOW_MS > shift_ms && first_alert < shift_ms + 2 * WINDOW_MS,
        "first alert window starts at {first_alert}, shift at {shift_ms}"
    );
}
