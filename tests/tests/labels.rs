//! Labels from Kafka, end to end on tansu: events on a two-partition input topic, their labels on
//! a co-partitioned labels topic, some before their event, most after it and out of order, some
//! twice, some never, plus labels for unknown ids and label events that cannot be read. Each
//! complete performance window on the drift topic counts its predictions as labeled or
//! unlabeled exactly, and its realized metrics equal those of the same (label, prediction)
//! pairs read back from the output topic. A labels topic that is not co-partitioned stops
//! startup with a clear error.
use std::collections::HashMap;
use std::time::{Duration, Instant};

use driftline::cli::gen::{EventGenerator, GenOptions};
use driftline_operators::performance::realized::classifier_metrics;
use driftline_tests::http::get;
use driftline_tests::*;

const EVENTS: u64 = 6_000;
/// Events are fed in chunks, each once the previous one was scored: event time then advances
/// on both partitions together, and no prediction is late for its window.
const CHUNK: u64 = 500;
/// Events are 1 ms of event time apart: 1 000 per window.
const WINDOW_MS: i64 = 1_000;
const START_MS: i64 = 1_700_000_000_000;

/// What happens to the label of event `i`.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Fate {
    /// Sent after its prediction, in reverse order within the chunk.
    Late,
    /// Sent before its event.
    Early,
    /// Sent twice, after its prediction.
    Twice,
    /// Never sent: the prediction is given up after labels.max_delay_ms.
    Missing,
}

fn fate(i: u64) -> Fate {
    match i % 10 {
        9 => Fate::Missing,
        8 => Fate::Twice,
        7 => Fate::Early,
        _ => Fate::Late,
    }
}

/// A label that agrees with the model often but not always.
fn label(i: u64) -> i64 {
    i64::from(i * 7_919 % 13 < 4)
}

fn label_event(i: u64) -> (String, Vec<u8>) {
    let id = format!("ev-{i}");
    let body =
        serde_json::json!({"id": id, "label": label(i), "known_at": START_MS + i as i64 + 2_000});
    (id, body.to_string().into_bytes())
}

/// Events with unique ids (the generator's device ids repeat), keyed by their id.
fn events() -> Vec<(String, Vec<u8>)> {
    let mut generator = EventGenerator::new(GenOptions::default(), START_MS).expect("generator");
    let mut buf = Vec::new();
    (0..EVENTS)
        .map(|i| {
            generator.event(i, &mut buf);
            let mut event: serde_json::Value = serde_json::from_slice(&buf).expect("event");
            let id = format!("ev-{i}");
            event["device_id"] = serde_json::Value::String(id.clone());
            (id, event.to_string().into_bytes())
        })
        .collect()
}

/// The input and output topics (two partitions each), and a labels topic of `labels` partitions.
async fn create_labels_topics(b: &str, labels: i32) {
    create_topics(
        b,
        &[
            ("in", 2),
            ("out", 2),
            ("dlq", 1),
            ("drift", 1),
            ("alerts", 1),
            ("labels", labels),
        ],
    )
    .await;
}

fn labels_env(b: &str, group: &str) -> Vec<(&'static str, String)> {
    let mut env = pipeline_env(b, "in", "out", "dlq", group);
    env.extend([
        ("DRIFTLINE__KAFKA__DRIFT_TOPIC", "drift".to_string()),
        ("DRIFTLINE__KAFKA__ALERTS_TOPIC", "alerts".to_string()),
        ("DRIFTLINE__KAFKA__LABELS_TOPIC", "labels".to_string()),
        ("DRIFTLINE__DRIFT__ENABLED", "true".to_string()),
        ("DRIFTLINE__DRIFT__LATENESS_MS", "1500".to_string()),
        ("DRIFTLINE__PERFORMANCE__WINDOW", "time".to_string()),
        ("DRIFTLINE__PERFORMANCE__WINDOW_MS", WINDOW_MS.to_string()),
        ("DRIFTLINE__LABELS__MAX_DELAY_MS", "3000".to_string()),
        ("DRIFTLINE__LABELS__TIMESTAMP_FIELD", "known_at".to_string()),
    ]);
    env
}

/// The performance reports on the drift topic.
fn performance_reports(b: &str, at_least: usize, limit: Duration) -> Vec<serde_json::Value> {
    let started = Instant::now();
    loop {
        let reports: Vec<serde_json::Value> =
            read_topic(b, "drift", usize::MAX, Duration::from_secs(2), limit)
                .iter()
                .map(Output::json)
                .filter(|r| r["kind"] == "performance")
                .collect();
        if reports.len() >= at_least || started.elapsed() > limit {
            return reports;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_early_duplicate_and_missing_labels_are_joined_and_counted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = Tansu::start();
    let b = broker.bootstrap.as_str();
    create_labels_topics(b, 2).await;
    let events = events();
    let log = dir.path().join("driftline.log");
    let health: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let mut env = labels_env(b, "labels-test");
    env.push(("DRIFTLINE__HEALTH__LISTEN", health.to_string()));
    let mut driftline = DriftlineProcess::start(&env, &log);

    // Labels nobody predicted, and label events that cannot be read.
    let ghosts: Vec<(String, Vec<u8>)> = (0..20)
        .map(|g| {
            (
                format!("ghost-{g}"),
                format!(r#"{{"id":"ghost-{g}","label":1,"known_at":0}}"#).into_bytes(),
            )
        })
        .collect();
    produce_all(b, "labels", &ghosts);
    let unreadable: Vec<(String, Vec<u8>)> = vec![
        ("ev-0".into(), b"not json".to_vec()),
        ("ev-1".into(), br#"{"id":"ev-1"}"#.to_vec()),
        (
            "ev-2".into(),
            br#"{"id":"ev-2","label":"yes","known_at":0}"#.to_vec(),
        ),
    ];
    produce_all(b, "labels", &unreadable);

    for chunk in 0..EVENTS / CHUNK {
        let range = chunk * CHUNK..(chunk + 1) * CHUNK;
        let early: Vec<_> = (range.clone())
            .filter(|&i| fate(i) == Fate::Early)
            .map(label_event)
            .collect();
        produce_all(b, "labels", &early);
        produce_all(b, "in", &events[range.start as usize..range.end as usize]);
        let scored = wait_for_outputs(
            b,
            &[("out", 2)],
            range.end as i64,
            Duration::ZERO,
            Duration::from_secs(60),
        );
        assert!(
            scored >= range.end as i64,
            "chunk {chunk}: {scored} outputs"
        );
        let mut late: Vec<_> = (range.clone())
            .rev()
            .filter(|&i| matches!(fate(i), Fate::Late | Fate::Twice))
            .map(label_event)
            .collect();
        late.extend((range).filter(|&i| fate(i) == Fate::Twice).map(label_event));
        produce_all(b, "labels", &late);
    }
    // Windows close once event time has passed their end by the lateness (1.5 s) and their
    // missing labels were given up (3 s): all but the last two.
    let windows = (EVENTS as i64 / WINDOW_MS) as usize;
    let closed = performance_reports(b, windows - 2, Duration::from_secs(60));
    assert!(
        closed.len() >= windows - 2,
        "{} performance windows closed of {windows}",
        closed.len()
    );
    let body = get(health, "/metrics")
        .map(|(_, body)| body)
        .unwrap_or_default();
    let counted =
        |outcome: &str| metric(&body, "driftline_labels_joined", &format!("\"{outcome}\""));
    assert_eq!(
        counted("invalid"),
        Some(3.0),
        "the unreadable label events:\n{body}"
    );
    assert_eq!(
        counted("misrouted"),
        Some(0.0),
        "labels keyed like their events:\n{body}"
    );
    let status = driftline.terminate(Duration::from_secs(30));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        status.success(),
        "driftline exited with {status}; log:\n{text}"
    );

    // The predictions, by id.
    let predictions: HashMap<String, serde_json::Value> = read_topic(
        b,
        "out",
        EVENTS as usize,
        Duration::from_secs(5),
        Duration::from_secs(60),
    )
    .iter()
    .map(Output::json)
    .map(|p| (p["id"].as_str().expect("id").to_string(), p))
    .collect();
    assert_eq!(predictions.len(), EVENTS as usize);

    let reports = performance_reports(b, windows, Duration::from_secs(30));
    let total: u64 = reports
        .iter()
        .map(|r| r["predictions"].as_u64().expect("predictions"))
        .sum();
    assert_eq!(
        total, EVENTS,
        "every prediction is in one window: {reports:?}"
    );
    let complete: Vec<_> = reports.iter().filter(|r| r["complete"] == true).collect();
    assert!(
        complete.len() >= windows - 2,
        "{} complete windows",
        complete.len()
    );
    for report in complete {
        let start = report["window_start_ms"].as_i64().expect("a time window");
        let first = (start - START_MS) as u64;
        let ids = first..first + WINDOW_MS as u64;
        let labeled: Vec<u64> = ids.clone().filter(|&i| fate(i) != Fate::Missing).collect();
        assert_eq!(report["predictions"], WINDOW_MS, "{report}");
        assert_eq!(report["labeled"], labeled.len(), "{report}");
        assert_eq!(
            report["unlabeled"],
            WINDOW_MS as usize - labeled.len(),
            "{report}"
        );
        assert_eq!(
            report["label_delay_ms"], 2_000.0,
            "known_at is 2 s after each event"
        );
        // The same pairs, read back from the output topic.
        let of = |i: u64| &predictions[&format!("ev-{i}")]["outputs"];
        let truth: Vec<i64> = labeled.iter().map(|&i| label(i)).collect();
        let predicted: Vec<i64> = (labeled.iter())
            .map(|&i| of(i)["label"].as_i64().expect("label"))
            .collect();
        let scores: Vec<Vec<f64>> = (0..2)
            .map(|k| {
                (labeled.iter())
                    .map(|&i| of(i)["probabilities"][k].as_f64().expect("probability"))
                    .collect()
            })
            .collect();
        let score_refs: Vec<&[f64]> = scores.iter().map(Vec::as_slice).collect();
        let expected = classifier_metrics(&[0, 1], &truth, &predicted, &score_refs);
        for want in expected {
            let got = (report["realized"].as_array().expect("realized"))
                .iter()
                .find(|m| m["metric"] == want.metric.as_str())
                .unwrap_or_else(|| panic!("no {} in {report}", want.metric));
            match want.value {
                Some(v) => {
                    let g = got["value"].as_f64().expect("a value");
                    assert!((g - v).abs() <= 1e-9, "{}: {g} against {v}", want.metric);
                }
                None => assert!(got["value"].is_null(), "{}: {got}", want.metric),
            }
        }
    }
    // The unreadable label events are dead letters with their bytes and reason.
    let dead: Vec<Output> =
        read_topic(b, "dlq", 3, Duration::from_secs(5), Duration::from_secs(30));
    let reasons: Vec<&str> = dead
        .iter()
        .map(|d| d.headers["driftline.error.reason"].as_str())
        .collect();
    assert_eq!(
        reasons,
        ["invalid_json", "missing_field", "wrong_type"],
        "{dead:?}"
    );
    assert_eq!(dead[0].payload, b"not json");
    assert_eq!(dead[0].headers["driftline.source.topic"], "labels");
    assert!(text.contains("labels: reading the partitions"), "{text}");
    // Every label event was taken (or dead-lettered and acknowledged): the labels group's
    // committed offsets reach the end of the labels topic.
    assert_eq!(
        committed_offsets(b, "labels-test.labels", "labels", 2),
        high_watermarks(b, "labels", 2),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_labels_topic_with_another_partition_count_stops_startup_and_says_why() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = Tansu::start();
    let b = broker.bootstrap.as_str();
    create_labels_topics(b, 1).await;
    let log = dir.path().join("driftline.log");
    let mut driftline = DriftlineProcess::start(&labels_env(b, "copartition-test"), &log);
    let status = driftline.wait_for_exit(Duration::from_secs(60));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!status.success(), "driftline started; log:\n{text}");
    assert!(
        text.contains("has 1 partitions but input topic `in` has 2")
            && text.contains("co-partitioned"),
        "{text}"
    );
}

/// A sample of `/metrics`: the value of the series `name` whose labels contain `label`.
fn metric(body: &str, name: &str, label: &str) -> Option<f64> {
    body.lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

/// Labels stop (an outage of whatever produces them) while events keep coming: at most
/// `labels.max_pending` predictions wait, the older ones are given up as unlabeled and their
/// windows close; when labels come back, the predictions still waiting get them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_labels_outage_holds_at_most_max_pending_predictions() {
    const PENDING: u64 = 500;
    const WINDOW: u64 = 1_000;
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = Tansu::start();
    let b = broker.bootstrap.as_str();
    create_labels_topics(b, 2).await;
    let events = events();
    let health: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let mut env = labels_env(b, "outage-test");
    env.extend([
        ("DRIFTLINE__PERFORMANCE__WINDOW", "count".to_string()),
        ("DRIFTLINE__PERFORMANCE__WINDOW_EVENTS", WINDOW.to_string()),
        ("DRIFTLINE__LABELS__MAX_PENDING", PENDING.to_string()),
        ("DRIFTLINE__LABELS__MAX_DELAY_MS", "600000".to_string()),
        ("DRIFTLINE__HEALTH__LISTEN", health.to_string()),
    ]);
    let log = dir.path().join("driftline.log");
    let mut driftline = DriftlineProcess::start(&env, &log);

    let mut most_waiting: f64 = 0.0;
    for chunk in 0..EVENTS / CHUNK {
        let range = (chunk * CHUNK) as usize..((chunk + 1) * CHUNK) as usize;
        produce_all(b, "in", &events[range.clone()]);
        let scored = wait_for_outputs(
            b,
            &[("out", 2)],
            range.end as i64,
            Duration::ZERO,
            Duration::from_secs(60),
        );
        assert!(
            scored >= range.end as i64,
            "chunk {chunk}: {scored} outputs"
        );
        // The gauges follow each batch the drift stage takes; read them once it has this chunk.
        let started = Instant::now();
        loop {
            let body = get(health, "/metrics")
                .map(|(_, body)| body)
                .unwrap_or_default();
            let waiting = metric(&body, "driftline_labels_waiting", "\"predictions\"");
            let evicted = metric(&body, "driftline_labels_joined", "\"evicted\"").unwrap_or(0.0);
            if let Some(waiting) = waiting {
                most_waiting = most_waiting.max(waiting);
                if waiting + evicted >= range.end as f64 {
                    break;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "chunk {chunk}: the join's gauges did not reach {} predictions:\n{body}",
                range.end
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    assert_eq!(
        most_waiting, PENDING as f64,
        "the join held more than max_pending"
    );
    let body = get(health, "/metrics")
        .map(|(_, body)| body)
        .unwrap_or_default();
    let evicted = metric(&body, "driftline_labels_joined", "\"evicted\"");
    assert_eq!(evicted, Some((EVENTS - PENDING) as f64), "{body}");
    // The windows whose predictions were all given up closed, unlabeled.
    let closed = performance_reports(b, 5, Duration::from_secs(30));
    assert_eq!(closed.len(), 5, "{closed:?}");
    for report in &closed {
        assert_eq!(
            (report["labeled"].as_u64(), report["unlabeled"].as_u64()),
            (Some(0), Some(WINDOW)),
            "{report}"
        );
        assert_eq!(report["complete"], true, "{report}");
    }

    // Labels come back for the last window: the 500 predictions still waiting get theirs.
    let back: Vec<_> = (EVENTS - WINDOW..EVENTS).map(label_event).collect();
    produce_all(b, "labels", &back);
    let reports = performance_reports(b, 6, Duration::from_secs(60));
    let last = reports
        .iter()
        .find(|r| r["first_prediction"] == EVENTS - WINDOW)
        .unwrap_or_else(|| panic!("the last window did not close: {reports:?}"));
    assert_eq!(
        (last["labeled"].as_u64(), last["unlabeled"].as_u64()),
        (Some(PENDING), Some(WINDOW - PENDING)),
        "{last}"
    );
    assert_eq!(last["complete"], true, "{last}");
    let status = driftline.terminate(Duration::from_secs(30));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        status.success(),
        "driftline exited with {status}; log:\n{text}"
    );
}
