//! Drift without a model, on the real broker: `driftline run --config configs/drift-only.toml`
//! (no [model] section, no output topic). The reference is learned from the stream; a shifted
//! temperature pages and no other feature does; a malformed event goes to the dead-letter topic;
//! every input offset is committed although nothing is scored.
use std::time::Duration;

use driftline::cli::gen::{EventGenerator, GenOptions};
use driftline_tests::*;

const WARMUP: u64 = 4_000;
const PANE: u64 = 1_000;
const PANES: u64 = 2;
/// Two clean windows after the warm-up, then two shifted ones.
const SHIFT_AT: u64 = WARMUP + 2 * PANE * PANES;
const EVENTS: u64 = SHIFT_AT + 2 * PANE * PANES;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn features_drift_is_watched_and_offsets_committed_without_a_model() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = Tansu::start();
    let b = broker.bootstrap.as_str();
    // No output topic: a features-only run must not need one.
    create_topics(b, &[("in", 1), ("dlq", 1), ("drift", 1), ("alerts", 1)]).await;
    let mut generator = EventGenerator::new(
        GenOptions {
            drift_after: Some(SHIFT_AT),
            drift_shift_std: 1.0,
            ..GenOptions::default()
        },
        1_700_000_000_000,
    )
    .expect("generator");
    let mut buf = Vec::new();
    let mut events: Vec<(String, Vec<u8>)> = (0..EVENTS)
        .map(|i| (generator.event(i, &mut buf), buf.clone()))
        .collect();
    // A malformed event in a clean window: it must reach the dead-letter topic and not count.
    let malformed = (
        String::from("broken"),
        b"{\"device_id\": \"broken\",".to_vec(),
    );
    events.insert(WARMUP as usize + 500, malformed);
    produce_all(b, "in", &events);

    let group = "drift-only-test";
    let mut env = pipeline_env(b, "in", "", "dlq", group);
    env.extend([
        ("DRIFTLINE__KAFKA__DRIFT_TOPIC", "drift".to_string()),
        ("DRIFTLINE__KAFKA__ALERTS_TOPIC", "alerts".to_string()),
        ("DRIFTLINE__DRIFT__ENABLED", "true".to_string()),
        ("DRIFTLINE__DRIFT__WARMUP_EVENTS", WARMUP.to_string()),
        ("DRIFTLINE__DRIFT__REFERENCE_SAMPLE", WARMUP.to_string()),
        ("DRIFTLINE__DRIFT__PANE_EVENTS", PANE.to_string()),
        ("DRIFTLINE__DRIFT__PANES", PANES.to_string()),
        ("DRIFTLINE__DRIFT__SLIDE", PANES.to_string()),
    ]);
    let log_path = dir.path().join("driftline.log");
    let mut driftline =
        DriftlineProcess::start_with_config("configs/drift-only.toml", &env, &log_path);
    let committed = wait_for_commits_to_reach_the_end(b, group, "in", 1, Duration::from_secs(180));
    let status = driftline.terminate(Duration::from_secs(30));
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        status.success(),
        "driftline exited with {status}; log:\n{log}"
    );
    assert_eq!(
        committed,
        vec![EVENTS as i64 + 1],
        "every input committed; log:\n{log}"
    );
    assert_eq!(
        topic_size(b, "dlq", 1),
        1,
        "the malformed event is a dead letter"
    );

    let (reports, alerts) = read_drift_with_python(b, "drift", "alerts");
    assert!(
        reports.iter().all(|r| r["role"] == "feature"),
        "no model, no output columns"
    );
    let temperature: Vec<_> = (reports.iter())
        .filter(|r| r["column"] == "temperature")
        .collect();
    assert_eq!(temperature.len(), 4, "{temperature:?}");
    for (w, r) in temperature.iter().enumerate() {
        let window = &r["window"];
        assert_eq!(window["events"], PANE * PANES, "{r}");
        assert_eq!(window["complete"], true, "{r}");
        // Offsets: the warm-up took 0..3999, the malformed event sits at offset 4500.
        let first = WARMUP + (w as u64) * PANE * PANES + u64::from(w > 0);
        let source = &window["sources"][0];
        assert_eq!(
            (source["partition"].as_i64(), source["first"].as_u64()),
            (Some(0), Some(first)),
            "{r}"
        );
        assert_eq!(r["verdict"]["drift"], w >= 2, "drift from window 2 on: {r}");
    }
    let opened: Vec<&str> = (alerts.iter())
        .filter(|a| a["state"] == "open")
        .map(|a| a["column"].as_str().expect("column"))
        .collect();
    assert_eq!(opened, ["temperature"], "{alerts:?}");
}
