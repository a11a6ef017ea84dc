//! Broker faults on the embedded broker (librdkafka's MockCluster, three brokers), with the
//! pipeline in process and a live feed: retriable produce and fetch errors, failed offset
//! commits, every partition's leader moving, and every broker down for a while. driftline
//! recovers by itself, `/readyz` says when it cannot work, and no event is lost.
//! (A real broker restart mid-run is in `operations.rs`; kill -9 of driftline in `crash.rs`.)
use std::time::Duration;

use driftline::cli::gen::GenOptions;
use driftline_tests::accounting::balance;
use driftline_tests::http;
use driftline_tests::in_process::{demo_settings, RunningPipeline};
use driftline_tests::*;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

const EVENTS: u64 = 40_000;
const PARTITIONS: i32 = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_errors_leader_moves_and_an_outage_lose_nothing() {
    let broker = driftline::kafka::embedded::EmbeddedBroker::start(3).expect("embedded broker");
    for (topic, partitions) in [("in", PARTITIONS), ("out", PARTITIONS), ("dlq", 1)] {
        broker.create_topic(topic, partitions).expect("topic");
    }
    let b = broker.bootstrap_servers().to_string();
    let mock = broker.mock().expect("mock cluster");
    let settings = demo_settings(
        &b,
        "faults",
        &[(
            "DRIFTLINE__HEALTH__STATISTICS_INTERVAL_MS",
            "200".to_string(),
        )],
    );
    let pipeline = RunningPipeline::start(settings);
    let health = pipeline.health.expect("health server");
    let feed = spawn_feed(
        &b,
        "in",
        GenOptions {
            count: EVENTS,
            rate: 4_000,
            malformed_every: 400,
            ..GenOptions::default()
        },
    );
    let became_ready = http::wait_for(health, "/readyz", Duration::from_secs(30), |a| {
        a.is_some_and(|(s, _)| *s == 200)
    });
    assert_eq!(
        became_ready.map(|a| a.0),
        Some(200),
        "ready before the faults"
    );

    // 1. Retriable errors on produce, fetch and offset commit: librdkafka retries them.
    pipeline
        .wait_for_outputs(4_000, Duration::from_secs(60))
        .await;
    use RDKafkaRespErr::*;
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[
            RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        ],
    );
    mock.request_errors(
        RDKafkaApiKey::Fetch,
        &[
            RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
        ],
    );
    mock.request_errors(
        RDKafkaApiKey::OffsetCommit,
        &[
            RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
            RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
        ],
    );

    // 2. Every partition's leader moves to another broker.
    pipeline
        .wait_for_outputs(10_000, Duration::from_secs(60))
        .await;
    for topic in ["in", "out"] {
        for p in 0..PARTITIONS {
            mock.partition_leader(topic, p, Some(1 + (p + 1) % 3))
                .expect("leader move");
        }
    }
    mock.partition_leader("dlq", 0, Some(2))
        .expect("leader move");

    // 3. Every broker down: not ready (saying why) but alive; then back up, ready again.
    pipeline
        .wait_for_outputs(18_000, Duration::from_secs(60))
        .await;
    for id in 1..=3 {
        broker.set_broker_up(id, false).expect("broker down");
    }
    let during = http::wait_for(health, "/readyz", Duration::from_secs(30), |a| {
        a.is_some_and(|(s, _)| *s == 503)
    });
    let alive = http::get(health, "/healthz");
    let outputs_during = pipeline.outputs();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stuck = pipeline.outputs() - outputs_during;
    for id in 1..=3 {
        broker.set_broker_up(id, true).expect("broker up");
    }
    let after = http::wait_for(health, "/readyz", Duration::from_secs(60), |a| {
        a.is_some_and(|(s, _)| *s == 200)
    });

    assert_eq!(feed.join().expect("feed").produced, EVENTS);
    let outputs = pipeline
        .wait_for_outputs(EVENTS, Duration::from_secs(120))
        .await;
    let summary = pipeline.stop().await.expect("the pipeline ends cleanly");
    println!("faults: {summary:?}; {stuck} outputs acknowledged while every broker was down");

    let during = during.expect("an answer during the outage");
    assert_eq!(during.0, 503, "not ready while every broker is down");
    assert!(
        during.1.contains("broker"),
        "the reason names the broker: {:?}",
        during.1
    );
    assert_eq!(
        alive.map(|a| a.0),
        Some(200),
        "alive while the brokers are down"
    );
    assert_eq!(
        after.map(|a| a.0),
        Some(200),
        "ready again after the outage"
    );
    assert!(outputs >= EVENTS, "{outputs} of {EVENTS} outputs");
    let ledger = balance(&b, "in", EVENTS as usize, &["out", "dlq"]);
    println!("faults: {}", ledger.summary());
    assert_eq!(ledger.inputs, EVENTS as usize);
    assert!(
        ledger.lost.is_empty(),
        "lost: {:?}",
        &ledger.lost[..ledger.lost.len().min(5)]
    );
    assert_eq!(ledger.wrong_keys, 0);
}

/// A broker that refuses every produce for a while (retriable errors, which librdkafka retries):
/// the instance still consumes, but nothing is acknowledged, so `/readyz` turns 503 and says the
/// sink cannot deliver, `driftline_sink_undelivered_seconds` grows, and both come back once the
/// broker takes the outputs again. Nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_says_when_the_sink_cannot_deliver() {
    const SINK_EVENTS: u64 = 6_000;
    let broker = driftline::kafka::embedded::EmbeddedBroker::start(1).expect("embedded broker");
    for (topic, partitions) in [("in", 2), ("out", 2), ("dlq", 1)] {
        broker.create_topic(topic, partitions).expect("topic");
    }
    let b = broker.bootstrap_servers().to_string();
    let mock = broker.mock().expect("mock cluster");
    let settings = demo_settings(
        &b,
        "sink-stall",
        &[
            (
                "DRIFTLINE__HEALTH__STATISTICS_INTERVAL_MS",
                "200".to_string(),
            ),
            // Not ready after 2 s without an acknowledgement (a sixth of this).
            ("DRIFTLINE__HEALTH__STALL_TIMEOUT_MS", "12000".to_string()),
        ],
    );
    let pipeline = RunningPipeline::start(settings);
    let health = pipeline.health.expect("health server");
    let feed = spawn_feed(
        &b,
        "in",
        GenOptions {
            count: SINK_EVENTS,
            rate: 300,
            malformed_every: 0,
            ..GenOptions::default()
        },
    );
    let ready = http::wait_for(health, "/readyz", Duration::from_secs(30), |a| {
        a.is_some_and(|(s, _)| *s == 200)
    });
    assert_eq!(ready.map(|a| a.0), Some(200), "ready before the refusals");
    pipeline
        .wait_for_outputs(300, Duration::from_secs(60))
        .await;

    use RDKafkaRespErr::*;
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS; 40],
    );
    let during = http::wait_for(health, "/readyz", Duration::from_secs(30), |a| {
        a.is_some_and(|(s, _)| *s == 503)
    });
    let metrics = http::get(health, "/metrics")
        .map(|a| a.1)
        .unwrap_or_default();
    let undelivered: f64 = metrics
        .lines()
        .find(|l| l.starts_with("driftline_sink_undelivered_seconds"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1.0);
    let after = http::wait_for(health, "/readyz", Duration::from_secs(120), |a| {
        a.is_some_and(|(s, _)| *s == 200)
    });
    assert_eq!(feed.join().expect("feed").produced, SINK_EVENTS);
    let outputs = pipeline
        .wait_for_outputs(SINK_EVENTS, Duration::from_secs(120))
        .await;
    let summary = pipeline.stop().await.expect("the pipeline ends cleanly");

    let during = during.expect("an answer while the broker refuses");
    assert_eq!(during.0, 503, "not ready while nothing is acknowledged");
    assert!(during.1.contains("sink cannot deliver"), "{:?}", during.1);
    assert!(
        undelivered >= 2.0,
        "driftline_sink_undelivered_seconds {undelivered}"
    );
    assert_eq!(
        after.map(|a| a.0),
        Some(200),
        "ready again once outputs flow"
    );
    assert_eq!(outputs, SINK_EVENTS, "nothing lost");
    assert_eq!(summary.delivery_failures, 0);
}
