//! End to end against a real Kafka-protocol broker (tansu + sqlite) and the real `driftline`
//! binary: every input offset is accounted for, predictions equal Python onnxruntime's, bad
//! events are dead-lettered with their bytes and reason, and SIGTERM drains, commits, exits 0.
use std::collections::HashMap;
use std::time::Duration;

use driftline::cli::gen::{EventGenerator, GenOptions};

use driftline_tests::*;

const TOTAL: usize = 100_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_offset_is_accounted_for_and_predictions_match_onnxruntime() {
    let broker = Tansu::start();
    let b = broker.bootstrap.as_str();
    create_topics(b, &[("in", 3), ("out", 3), ("dlq", 1)]).await;

    // 2 000 fixture events, then generated ones with 1% malformed of several kinds.
    let fixture = fixture();
    let mut events: Vec<(String, Vec<u8>)> = fixture
        .iter()
        .map(|(e, _, _)| {
            (
                e["device_id"].as_str().expect("id").to_string(),
                serde_json::to_vec(e).expect("json"),
            )
        })
        .collect();
    let malformed = malformed_payloads();
    let mut generator =
        EventGenerator::new(GenOptions::default(), 1_700_000_000_000).expect("generator");
    let mut buf = Vec::new();
    let mut i = 0u64;
    while events.len() < TOTAL {
        if events.len() % 98 == 50 {
            let (payload, _) = malformed[(events.len() / 100) % malformed.len()];
            events.push((format!("bad-{}", events.len()), payload.to_vec()));
        } else {
            let key = generator.event(i, &mut buf);
            events.push((key, buf.clone()));
            i += 1;
        }
    }
    let expected_dead = events.iter().filter(|(k, _)| k.starts_with("bad-")).count();
    assert_eq!(expected_dead, 1000);
    produce_all(b, "in", &events);

    let dir = tempfile::tempdir().expect("temp dir");
    let mut driftline = DriftlineProcess::start(
        &pipeline_env(b, "in", "out", "dlq", "e2e"),
        &dir.path().join("driftline.log"),
    );
    // One phase at a time: tansu is pinned at one core and stalls under many concurrent clients.
    wait_for_outputs(
        b,
        &[("out", 3), ("dlq", 1)],
        TOTAL as i64,
        Duration::from_secs(2),
        Duration::from_secs(300),
    );
    let status = driftline.terminate(Duration::from_secs(30));
    let log = std::fs::read_to_string(dir.path().join("driftline.log")).unwrap_or_default();
    assert!(
        status.success(),
        "driftline exited with {status}; log:\n{log}"
    );
    let inputs = read_inputs(b, "in", TOTAL);
    assert_eq!(
        inputs.len(),
        TOTAL,
        "every produced event is in the input topic"
    );
    let predictions = read_topic(
        b,
        "out",
        TOTAL - expected_dead,
        Duration::from_secs(30),
        Duration::from_secs(240),
    );
    let dead = read_topic(
        b,
        "dlq",
        expected_dead,
        Duration::from_secs(10),
        Duration::from_secs(60),
    );

    // Exactly one output per input offset, and each output names its input.
    let mut seen: HashMap<(i32, i64), usize> = HashMap::new();
    for o in predictions.iter().chain(&dead) {
        *seen.entry(o.source()).or_default() += 1;
        let (key, _) = &inputs[&o.source()];
        assert_eq!(&o.key, key, "an output keeps its input's key");
    }
    let missing: Vec<_> = inputs
        .keys()
        .filter(|k| !seen.contains_key(k))
        .take(5)
        .collect();
    assert!(
        missing.is_empty(),
        "inputs without output, e.g. {missing:?}; log:\n{log}"
    );
    let duplicated = seen.values().filter(|&&n| n > 1).count();
    assert_eq!(duplicated, 0, "a clean run produces no duplicates");
    assert_eq!(seen.len(), TOTAL);

    // Dead letters carry the original bytes and the reason.
    let reasons: HashMap<&[u8], &str> = malformed.iter().copied().collect();
    assert_eq!(dead.len(), expected_dead);
    for d in &dead {
        let (_, original) = &inputs[&d.source()];
        assert_eq!(&d.payload, original, "dead letter keeps the original bytes");
        assert_eq!(
            d.headers.get("driftline.error.reason").map(String::as_str),
            reasons.get(&original[..]).copied(),
            "reason for {:?}",
            String::from_utf8_lossy(original)
        );
        assert!(d.headers.contains_key("driftline.error.detail"));
    }

    // Predictions equal Python onnxruntime's on the fixture rows.
    let by_id: HashMap<String, serde_json::Value> = predictions
        .iter()
        .map(|p| {
            let v = p.json();
            (v["id"].as_str().expect("id").to_string(), v)
        })
        .collect();
    let mut worst = 0.0f64;
    for (event, label, probs) in &fixture {
        let p = &by_id[event["device_id"].as_str().expect("id")];
        assert_eq!(p["model"], "anomaly_classifier");
        assert_eq!(p["model_version"], "1.0.0");
        assert_eq!(p["event_timestamp"], event["ts"]);
        assert_eq!(p["outputs"]["label"].as_i64(), Some(*label));
        for (k, expected) in probs.iter().enumerate() {
            worst = worst.max(
                (p["outputs"]["probabilities"][k]
                    .as_f64()
                    .expect("probability")
                    - expected)
                    .abs(),
            );
        }
    }
    assert!(
        worst <= 1e-5,
        "largest difference from Python onnxruntime: {worst}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_stream_then_restart_loses_nothing() {
    const N: usize = 30_000;
    let broker = Tansu::start();
    let b = broker.bootstrap.as_str();
    create_topics(b, &[("in", 3), ("out", 3), ("dlq", 1)]).await;
    // A live feed at 10k events/s, so the SIGTERM lands while events are still arriving.
    let feed = spawn_feed(
        b,
        "in",
        GenOptions {
            count: N as u64,
            rate: 10_000,
            malformed_every: 200,
            ..GenOptions::default()
        },
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let mut env = pipeline_env(b, "in", "out", "dlq", "restart");
    // The grace period is a promise to the orchestrator: exit 0 within it.
    const GRACE: Duration = Duration::from_secs(5);
    env.push((
        "DRIFTLINE__PIPELINE__SHUTDOWN_GRACE_MS",
        GRACE.as_millis().to_string(),
    ));
    let mut first = DriftlineProcess::start(&env, &dir.path().join("first.log"));
    let part_way = wait_for_outputs(
        b,
        &[("out", 3)],
        5_000,
        Duration::ZERO,
        Duration::from_secs(120),
    );
    let status = first.terminate(GRACE);
    assert!(status.success(), "first run exited with {status}");
    let after_first = topic_size(b, "out", 3) + topic_size(b, "dlq", 1);
    assert!(
        part_way >= 5_000 && after_first < N as i64,
        "the SIGTERM came mid-stream ({after_first} of {N} outputs)"
    );

    let mut second = DriftlineProcess::start(&env, &dir.path().join("second.log"));
    assert_eq!(feed.join().expect("feed thread").produced, N as u64);
    wait_for_outputs(
        b,
        &[("out", 3), ("dlq", 1)],
        N as i64,
        Duration::from_secs(3),
        Duration::from_secs(180),
    );
    let status = second.terminate(Duration::from_secs(30));
    assert!(status.success(), "second run exited with {status}");
    let inputs = read_inputs(b, "in", N);
    let outputs: Vec<Output> = read_topic(
        b,
        "out",
        usize::MAX,
        Duration::from_secs(5),
        Duration::from_secs(120),
    )
    .into_iter()
    .chain(read_topic(
        b,
        "dlq",
        usize::MAX,
        Duration::from_secs(5),
        Duration::from_secs(60),
    ))
    .collect();

    let mut seen: HashMap<(i32, i64), usize> = HashMap::new();
    for o in &outputs {
        *seen.entry(o.source()).or_default() += 1;
    }
    let lost: Vec<_> = inputs.keys().filter(|k| !seen.contains_key(k)).collect();
    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    println!("restart: {N} inputs, {} outputs, {} lost, {duplicates} duplicates (stopped after {after_first} outputs)", outputs.len(), lost.len());
    assert!(
        lost.is_empty(),
        "{} inputs without output after restart, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_output_topic_is_a_clear_startup_error() {
    let broker = Tansu::start();
    let b = broker.bootstrap.as_str();
    create_topics(b, &[("in", 1), ("dlq", 1)]).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut driftline = DriftlineProcess::start(
        &pipeline_env(b, "in", "missing-out", "dlq", "missing"),
        &dir.path().join("driftline.log"),
    );
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = driftline.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "driftline kept running without its output topic"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = std::fs::read_to_string(dir.path().join("driftline.log")).unwrap_or_default();
    assert!(
        !status.success(),
        "a missing output topic must fail startup"
    );
    assert!(
        log.contains("output topic `missing-out` does not exist"),
        "the error names the topic:\n{log}"
    );
}
