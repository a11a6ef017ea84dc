//! An aggregator killed between two reports of a window: the next one reads the reports topic
//! back, judges that window again and publishes only the columns that were missing, so every
//! (column, window) is on the topic once. The topic holds a long history before: the read-back
//! reads only its end, and the alert hysteresis continues from it.
//!
//! On the embedded broker: partials of two windows over two partitions, built here as an
//! instance builds them; the reports topic already holds the first half of window 1's reports
//! (what the dead aggregator published, computed here with the aggregator's own monitor). Then
//! `driftline aggregate` runs until both windows are on the topic.
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use driftline::cli::gen::{EventGenerator, GenOptions};
use driftline::stages::drift::fleet::partials_partition;
use driftline::stages::drift::tracker::{drift_columns, load_profile, monitor_settings};
use driftline_operators::batch::{BatchBuilder, SourcePosition};
use driftline_operators::decode::EventDecoder;
use driftline_operators::drift::monitor::{DriftMonitor, DriftReport, RowOrigins};
use driftline_operators::drift::partial::{FleetRecord, FleetWindow};
use driftline_operators::drift::partial_builder::{PartialSettings, PartialsBuilder};
use driftline_tests::in_process::{demo_settings, embedded_broker};
use driftline_tests::*;
use serde_json::Value;

const PANE_MS: i64 = 2000;

#[test]
fn a_window_cut_off_between_two_reports_is_completed_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let profile_path = demo_reference_profile(dir.path(), 1, 5_000);
    let broker = embedded_broker(1, 2);
    let b = broker.bootstrap_servers().to_string();
    for topic in ["partials", "fleet-drift", "fleet-alerts"] {
        broker.create_topic(topic, 1).expect("topic");
    }
    let env: Vec<(&str, String)> = vec![
        ("DRIFTLINE__DRIFT__ENABLED", "true".into()),
        (
            "DRIFTLINE__DRIFT__PROFILE",
            profile_path.display().to_string(),
        ),
        ("DRIFTLINE__DRIFT__WINDOW", "time".into()),
        ("DRIFTLINE__DRIFT__TIME_SOURCE", "event".into()),
        ("DRIFTLINE__DRIFT__PANE_MS", PANE_MS.to_string()),
        ("DRIFTLINE__DRIFT__PANES", "1".into()),
        ("DRIFTLINE__DRIFT__SLIDE", "1".into()),
        ("DRIFTLINE__DRIFT__LATENESS_MS", "0".into()),
        ("DRIFTLINE__FLEET__ENABLED", "true".into()),
        ("DRIFTLINE__FLEET__PARTIALS_TOPIC", "partials".into()),
        ("DRIFTLINE__AGGREGATE__REPORTS_TOPIC", "fleet-drift".into()),
        ("DRIFTLINE__AGGREGATE__ALERTS_TOPIC", "fleet-alerts".into()),
        ("DRIFTLINE__LOG__FORMAT", "json".into()),
    ];
    let settings = demo_settings(&b, "fleet", &env);
    let profile = load_profile(Path::new(&settings.drift.profile)).expect("profile");

    // Two windows of 300 events over two partitions, and a third that closes them.
    let mut builder = PartialsBuilder::new(
        &profile,
        PartialSettings {
            fleet: settings.fleet_name(),
            instance: "test".into(),
            pane_ms: PANE_MS as u64,
            panes: 1,
            slide: 1,
            lateness_ms: 0,
            ks_grid_points: settings.fleet.ks_grid_points,
        },
    )
    .expect("builder");
    let start = 1_800_000_000_000 / PANE_MS * PANE_MS;
    for p in 0..2 {
        let _ = builder.follow(p, 0, start);
    }
    let mut generator = EventGenerator::new(GenOptions::default(), start).expect("generator");
    let mut decoder = EventDecoder::new(&settings.schema, settings.pipeline.max_event_bytes);
    let mut batch = BatchBuilder::new(&settings.schema, 1000);
    let topic: Arc<str> = Arc::from("in");
    let (mut buf, mut times) = (Vec::new(), Vec::new());
    for i in 0..660i64 {
        generator.event(i as u64, &mut buf);
        let mut event: Value = serde_json::from_slice(&buf).expect("event");
        let ts = start + i * PANE_MS / 300;
        event["ts"] = ts.into();
        times.push(ts);
        let bytes = serde_json::to_vec(&event).expect("json");
        let row = decoder.decode(&bytes, Some(ts)).expect("valid");
        let position = SourcePosition {
            topic: &topic,
            partition: (i % 2) as i32,
            offset: i / 2,
            key: None,
            traceparent: None,
            tracestate: None,
            kafka_timestamp_ms: ts,
        };
        batch.push(row, position);
    }
    let scored = batch.finish().expect("batch");
    let records = builder
        .observe(
            &drift_columns(&scored.batch, &[]),
            &RowOrigins {
                event_times_ms: &times,
                partitions: &scored.sources.partitions,
                positions: &scored.sources.offsets,
            },
        )
        .expect("partials");
    let window_1: Vec<_> = records
        .iter()
        .filter_map(|r| match r {
            FleetRecord::Partial(p) if p.start_ms == start => Some(p.clone()),
            _ => None,
        })
        .collect();
    let partition = partials_partition(&settings.fleet_name(), 1);
    let keyed: Vec<(String, Vec<u8>)> = records
        .iter()
        .map(|r| (r.key(), serde_json::to_vec(r).expect("json")))
        .collect();
    produce_to_partition(&b, "partials", partition, &keyed);

    // What the dead aggregator published of window 1: its first half of the columns.
    let mut monitor_settings = monitor_settings(&settings);
    monitor_settings.instance = driftline::aggregate::fleet_instance(&settings);
    let mut monitor = DriftMonitor::new(&profile, monitor_settings).expect("monitor");
    let merged = FleetWindow::merge(&window_1, Vec::new())
        .expect("merge")
        .expect("window");
    let reports = monitor.judge_fleet(&merged).expect("judged").reports;
    let columns = reports.len();
    assert!(columns > 10, "{columns} columns");
    // Window 2's verdicts, for the alert the restored hysteresis must give.
    let window_2: Vec<_> = records
        .iter()
        .filter_map(|r| match r {
            FleetRecord::Partial(p) if p.start_ms == start + PANE_MS => Some(p.clone()),
            _ => None,
        })
        .collect();
    let merged_2 = FleetWindow::merge(&window_2, Vec::new())
        .expect("merge")
        .expect("window 2");
    let verdicts_2 = monitor.judge_fleet(&merged_2).expect("judged").reports;
    // A column clean in both windows: its alert, opened two windows before window 1 in the
    // history below, resolves in window 2 (`resolve_after` 3: clean before window 1, in 1, in
    // 2), but only if the read-back restored it.
    let clean = |r: &&DriftReport| r.verdict.drift == Some(false);
    let resolving = (reports[..columns / 2].iter().filter(clean))
        .map(|r| r.column.clone())
        .find(|c| verdicts_2.iter().filter(clean).any(|r| &r.column == c))
        .expect("a column clean in both windows");

    // The aggregator's history: HISTORY windows before window 1, every column clean but
    // `resolving`, which drifted two windows before window 1. Then what the dead aggregator
    // published of window 1: its first half of the columns.
    const HISTORY: i64 = 200;
    let mut published: Vec<(String, Vec<u8>)> = Vec::new();
    for k in (1..=HISTORY).rev() {
        for r in &reports {
            let mut old = r.clone();
            old.window.start_ms = Some(start - k * PANE_MS);
            old.window.end_ms = Some(start - (k - 1) * PANE_MS);
            old.verdict.drift = Some(k == 2 && r.column == resolving);
            published.push((old.column.clone(), serde_json::to_vec(&old).expect("json")));
        }
    }
    let history = published.len();
    published.extend(
        reports[..columns / 2]
            .iter()
            .map(|r| (r.column.clone(), serde_json::to_vec(r).expect("json"))),
    );
    produce_to_partition(&b, "fleet-drift", 0, &published);

    let mut aggregator = DriftlineProcess::start_command(
        "aggregate",
        "configs/demo.toml",
        &pipeline_env(&b, "in", "out", "dlq", "fleet")
            .into_iter()
            .chain(env.iter().cloned())
            .collect::<Vec<_>>(),
        &dir.path().join("aggregate.log"),
    );
    let limit = Instant::now() + Duration::from_secs(60);
    while high_watermarks(&b, "fleet-drift", 1)[0] < (history + 2 * columns) as i64 {
        assert!(
            Instant::now() < limit,
            "{} reports; log:\n{}",
            high_watermarks(&b, "fleet-drift", 1)[0],
            std::fs::read_to_string(dir.path().join("aggregate.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Stopped, it has flushed all it would publish: the topic's end is final.
    assert!(aggregator.terminate(Duration::from_secs(30)).success());
    let end = high_watermarks(&b, "fleet-drift", 1)[0] as usize;
    let on_topic = read_topic(
        &b,
        "fleet-drift",
        end,
        Duration::from_secs(30),
        Duration::from_secs(30),
    );
    let mut per_window: BTreeMap<(String, i64), usize> = BTreeMap::new();
    for record in &on_topic[history..] {
        let r: Value = serde_json::from_slice(&record.payload).expect("report");
        let key = (
            r["column"].as_str().expect("column").to_string(),
            r["window"]["start_ms"].as_i64().expect("start"),
        );
        *per_window.entry(key).or_default() += 1;
    }
    assert_eq!(
        (end, on_topic.len()),
        (history + 2 * columns, end),
        "{per_window:?}"
    );
    assert!(per_window.values().all(|&n| n == 1), "{per_window:?}");
    assert_eq!(
        per_window.len(),
        2 * columns,
        "windows 1 and 2, each column"
    );
    let log = std::fs::read_to_string(dir.path().join("aggregate.log")).unwrap_or_default();
    assert!(
        log.contains("cut off while its reports were published"),
        "{log}"
    );

    // The hysteresis came back from the history: `resolving`'s alert resolves in window 2,
    // and nothing opened it again.
    let alerts_end = high_watermarks(&b, "fleet-alerts", 1)[0] as usize;
    let alerts: Vec<Value> = read_topic(
        &b,
        "fleet-alerts",
        alerts_end,
        Duration::from_secs(30),
        Duration::from_secs(30),
    )
    .iter()
    .map(|r| serde_json::from_slice(&r.payload).expect("alert"))
    .filter(|a: &Value| a["column"] == resolving.as_str())
    .collect();
    let states: Vec<(&Value, &Value)> = (alerts.iter())
        .map(|a| (&a["state"], &a["window"]["start_ms"]))
        .collect();
    assert_eq!(
        states,
        [(&Value::from("resolved"), &Value::from(start + PANE_MS))],
        "{resolving}"
    );
    // And it read only the end of the history to get there.
    let read: i64 = (log.lines())
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["fields"]["message"] == "aggregate: reports read back")
        .and_then(|l| l["fields"]["records"].as_i64())
        .expect("the read-back's log line");
    assert!(
        read < (history / 2) as i64,
        "read {read} of {history} reports back"
    );
}
