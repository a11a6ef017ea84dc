//! Backpressure: with the sink throttled (the broker that leads the output topics answers
//! produce requests a second late, and the producer sends small batches), driftline's memory
//! stays under the bound README documents and levels off, its input lag grows instead, and once
//! the throttle lifts every event comes out. driftline runs as a child process so that its RSS
//! is its own; the embedded broker (librdkafka's MockCluster) runs in this test.
use std::time::{Duration, Instant};

use driftline::cli::gen::{EventGenerator, GenOptions};
use driftline::kafka::embedded::EmbeddedBroker;
use driftline_tests::accounting::balance;
use driftline_tests::*;

// The embedded broker keeps 5 MiB per partition: 100k events of ~350 bytes over 12 partitions
// stay well inside it (more would be deleted before driftline reads them).
const EVENTS: usize = 100_000;
const PARTITIONS: i32 = 12;
/// README, "Backpressure": the documented bound for the default settings.
const RSS_BOUND_MIB: u64 = 256;

/// Resident memory of a process, from /proc (kB → MiB).
fn rss_mib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_sink_bounds_memory_and_loses_nothing() {
    // Broker 1 leads the input, broker 2 the outputs: only the sink is slowed.
    let broker = EmbeddedBroker::start(2).expect("embedded broker");
    for (topic, partitions) in [("in", PARTITIONS), ("out", PARTITIONS), ("dlq", 1)] {
        broker.create_topic(topic, partitions).expect("topic");
    }
    let mock = broker.mock().expect("mock cluster");
    for p in 0..PARTITIONS {
        mock.partition_leader("in", p, Some(1)).expect("leader");
        mock.partition_leader("out", p, Some(2)).expect("leader");
    }
    mock.partition_leader("dlq", 0, Some(2)).expect("leader");
    let b = broker.bootstrap_servers().to_string();

    let mut generator = EventGenerator::new(GenOptions::default(), 1_700_000_000_000).expect("gen");
    let mut buf = Vec::new();
    let events: Vec<(String, Vec<u8>)> = (0..EVENTS as u64)
        .map(|i| (generator.event(i, &mut buf), buf.clone()))
        .collect();
    produce_all(&b, "in", &events);
    drop(events);

    mock.broker_round_trip_time(2, Duration::from_millis(1000))
        .expect("throttle");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut env = pipeline_env(&b, "in", "out", "dlq", "backpressure");
    env.push((
        "DRIFTLINE__KAFKA__PRODUCER__BATCH_NUM_MESSAGES",
        "100".to_string(),
    ));
    // Issue 19: the bound holds with more decode threads and sessions than "auto" gives here.
    env.push(("DRIFTLINE__PIPELINE__DECODE_THREADS", "4".to_string()));
    env.push(("DRIFTLINE__RUNTIME__SESSIONS", "2".to_string()));
    let mut driftline = DriftlineProcess::start(&env, &dir.path().join("driftline.log"));
    let pid = driftline.child.id();

    // 20 s throttled: sample RSS and outputs.
    let started = Instant::now();
    let mut samples: Vec<(f64, u64)> = Vec::new();
    while started.elapsed() < Duration::from_secs(20) {
        if let Some(rss) = rss_mib(pid) {
            samples.push((started.elapsed().as_secs_f64(), rss));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let outputs_throttled = topic_size(&b, "out", PARTITIONS) + topic_size(&b, "dlq", 1);
    mock.broker_round_trip_time(2, Duration::ZERO)
        .expect("unthrottle");
    wait_for_outputs(
        &b,
        &[("out", PARTITIONS), ("dlq", 1)],
        EVENTS as i64,
        Duration::from_secs(3),
        Duration::from_secs(180),
    );
    let status = driftline.terminate(Duration::from_secs(30));
    let log = std::fs::read_to_string(dir.path().join("driftline.log")).unwrap_or_default();
    assert!(status.success(), "driftline exited with {status}:\n{log}");

    let peak = samples.iter().map(|s| s.1).max().expect("RSS samples");
    let first_half = samples
        .iter()
        .filter(|s| s.0 < 10.0)
        .map(|s| s.1)
        .max()
        .expect("samples");
    let second_half = samples
        .iter()
        .filter(|s| s.0 >= 10.0)
        .map(|s| s.1)
        .max()
        .expect("samples");
    println!(
        "backpressure: {outputs_throttled} of {EVENTS} outputs in 20 s throttled; RSS peak {peak} MiB (first 10 s {first_half}, last 10 s {second_half})"
    );
    assert!(
        (outputs_throttled as usize) < EVENTS / 2,
        "the throttle held the sink back ({outputs_throttled} outputs)"
    );
    assert!(
        peak <= RSS_BOUND_MIB,
        "RSS peaked at {peak} MiB, above the documented {RSS_BOUND_MIB} MiB"
    );
    assert!(
        second_half <= first_half + first_half / 10,
        "RSS kept growing under backpressure: {first_half} then {second_half} MiB"
    );
    let ledger = balance(&b, "in", EVENTS, &["out", "dlq"]);
    println!("backpressure: {}", ledger.summary());
    assert_eq!(ledger.inputs, EVENTS, "the broker kept every input");
    assert!(
        ledger.lost.is_empty(),
        "lost {:?}",
        &ledger.lost[..ledger.lost.len().min(5)]
    );
}
