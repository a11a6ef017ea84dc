//! Scale-up (issue 19): 4 decode threads and 2 inference sessions over one busy partition, the
//! case where any reordering would show, since every chunk comes from the same partition. With
//! poison events among the valid ones (and a run longer than a chunk, so whole chunks are
//! dead-lettered), the pipeline still:
//! - produces every prediction in its event's offset order (one output partition: Kafka's order
//!   is the production order);
//! - loses and duplicates nothing, and commits to the end;
//! - hands the drift stage every scored batch exactly once, in order: each count window spans
//!   exactly the next `PANE` valid offsets after the previous window.
use std::time::Duration;

use driftline::cli::gen::{EventGenerator, GenOptions};
use driftline_tests::accounting::balance;
use driftline_tests::in_process::{demo_settings, embedded_broker, RunningPipeline};
use driftline_tests::*;

const EVENTS: usize = 12_000;
const PANE: usize = 500;
const WARMUP: usize = 1_000;
const CHUNK_ROWS: usize = 64;

/// Every 37th event, and the run 3000..3200 (longer than three chunks), are not JSON.
fn is_poison(i: usize) -> bool {
    i % 37 == 5 || (3_000..3_200).contains(&i)
}

/// Names of this process's threads (Linux keeps 15 bytes of each).
fn thread_names() -> Vec<String> {
    let tasks = std::fs::read_dir("/proc/self/task").expect("/proc/self/task");
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|n| n.trim().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_decode_threads_and_two_sessions_keep_a_partition_in_order() {
    let broker = embedded_broker(1, 1);
    for topic in ["drift", "alerts"] {
        broker.create_topic(topic, 1).expect("topic");
    }
    let b = broker.bootstrap_servers().to_string();
    let mut generator = EventGenerator::new(GenOptions::default(), 1_700_000_000_000).expect("gen");
    let mut buf = Vec::new();
    let events: Vec<(String, Vec<u8>)> = (0..EVENTS)
        .map(|i| {
            let key = generator.event(i as u64, &mut buf);
            let payload = match is_poison(i) {
                true => format!("not json {i}").into_bytes(),
                false => buf.clone(),
            };
            (key, payload)
        })
        .collect();
    produce_all(&b, "in", &events);

    let env = [
        ("DRIFTLINE__PIPELINE__DECODE_THREADS", "4"),
        ("DRIFTLINE__RUNTIME__SESSIONS", "2"),
        ("DRIFTLINE__BATCH__MAX_ROWS", "64"),
        ("DRIFTLINE__DRIFT__ENABLED", "true"),
        ("DRIFTLINE__KAFKA__DRIFT_TOPIC", "drift"),
        ("DRIFTLINE__KAFKA__ALERTS_TOPIC", "alerts"),
        ("DRIFTLINE__DRIFT__WARMUP_EVENTS", "1000"),
        ("DRIFTLINE__DRIFT__PANE_EVENTS", "500"),
        ("DRIFTLINE__DRIFT__PANES", "1"),
        ("DRIFTLINE__DRIFT__SLIDE", "1"),
    ]
    .map(|(k, v)| (k, v.to_string()));
    assert_eq!(CHUNK_ROWS.to_string(), env[2].1);
    let pipeline = RunningPipeline::start(demo_settings(&b, "scale-up", &env));
    let outputs = pipeline
        .wait_for_outputs(EVENTS as u64, Duration::from_secs(180))
        .await;
    // The stage threads exist while the pipeline runs.
    let names = thread_names();
    let snapshot = pipeline.stop().await.expect("clean stop");
    assert_eq!(outputs, EVENTS as u64, "every event came out");
    let count = |prefix: &str| names.iter().filter(|n| n.starts_with(prefix)).count();
    assert_eq!(
        (count("dl-decode-"), count("dl-infer-")),
        (4, 2),
        "threads: {names:?}"
    );
    let poison = (0..EVENTS).filter(|&i| is_poison(i)).count();
    assert_eq!(snapshot.dead_letters_out, poison as u64);

    let ledger = balance(&b, "in", EVENTS, &["out", "dlq"]);
    assert!(
        ledger.lost.is_empty() && ledger.duplicates == 0,
        "{}",
        ledger.summary()
    );
    assert_eq!(
        committed_offsets(&b, "scale-up", "in", 1),
        vec![EVENTS as i64],
        "committed to the end"
    );

    // Predictions in offset order: the output topic has one partition.
    let predictions = read_topic(
        &b,
        "out",
        EVENTS - poison,
        Duration::from_secs(30),
        Duration::from_secs(60),
    );
    let offsets: Vec<i64> = predictions.iter().map(|p| p.source().1).collect();
    let expected: Vec<i64> = (0..EVENTS as i64)
        .filter(|&i| !is_poison(i as usize))
        .collect();
    assert_eq!(offsets.len(), expected.len());
    if let Some(i) = (0..offsets.len()).find(|&i| offsets[i] != expected[i]) {
        panic!(
            "prediction {i} is of offset {}, expected {} (around: {:?})",
            offsets[i],
            expected[i],
            &offsets[i.saturating_sub(3)..(i + 3).min(offsets.len())]
        );
    }

    // Drift: window w holds valid events WARMUP + w*PANE .. WARMUP + (w+1)*PANE, so its span of
    // offsets is exactly theirs. A batch seen twice or out of order would shift or overlap them.
    let reports = read_topic(
        &b,
        "drift",
        usize::MAX,
        Duration::from_secs(3),
        Duration::from_secs(60),
    );
    let mut windows: Vec<serde_json::Value> = reports
        .iter()
        .map(Output::json)
        .filter(|r| r["column"] == "temperature")
        .map(|r| r["window"].clone())
        .collect();
    windows.sort_by_key(|w| w["first_pane"].as_u64());
    // The complete windows, then the one the stop closed with what was left.
    let complete = (expected.len() - WARMUP) / PANE;
    assert_eq!(windows.len(), complete + 1, "windows");
    for (w, window) in windows.iter().enumerate() {
        let sources = window["sources"].as_array().expect("sources");
        assert_eq!(sources.len(), 1, "{window}");
        let span = (sources[0]["first"].as_i64(), sources[0]["last"].as_i64());
        let first = WARMUP + w * PANE;
        let last = (first + PANE).min(expected.len()) - 1;
        assert_eq!(
            span,
            (Some(expected[first]), Some(expected[last])),
            "window {w}: {window}"
        );
        assert_eq!(window["events"].as_u64(), Some((last + 1 - first) as u64));
        assert_eq!(window["complete"].as_bool(), Some(w < complete), "{window}");
    }
}
