//! What an SRE checks before production, against real processes: Debian's Prometheus scrapes
//! driftline's `/metrics`; an OTLP receiver built from `opentelemetry-proto` gets its spans and
//! metrics, and a producer's `traceparent` reaches the predictions; `/readyz` follows a broker
//! outage (tansu killed and restarted) and nothing is lost across it.
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use driftline::cli::gen::GenOptions;
use driftline_tests::otlp_receiver::{attribute, OtlpReceiver, Received};
use driftline_tests::prometheus::Prometheus;
use driftline_tests::{
    create_topics, fixture, free_port, http, pipeline_env, produce_all, produce_with_traceparent,
    read_inputs, read_topic, spawn_feed, wait_for_outputs, DriftlineProcess, Output, Tansu,
};

fn health_addr() -> SocketAddr {
    format!("127.0.0.1:{}", free_port()).parse().expect("addr")
}

/// Polls a PromQL query (bounded) until `done` holds; returns the last result.
fn query_until(
    prom: &Prometheus,
    promql: &str,
    limit: Duration,
    done: impl Fn(&[(serde_json::Value, f64)]) -> bool,
) -> Vec<(serde_json::Value, f64)> {
    let started = Instant::now();
    loop {
        let result = prom.query(promql);
        if done(&result) || started.elapsed() > limit {
            return result;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_events_latency_stages_and_lag() {
    const N: u64 = 5_000;
    let broker = Tansu::start();
    let b = broker.bootstrap.as_str();
    create_topics(b, &[("in", 3), ("out", 3), ("dlq", 1)]).await;
    let health = health_addr();
    let mut env = pipeline_env(b, "in", "out", "dlq", "prometheus");
    env.push(("DRIFTLINE__HEALTH__LISTEN", health.to_string()));
    // A secret from the environment, and a log level that prints the effective settings.
    env.push(("DRIFTLINE__KAFKA__COMMON__SASL_PASSWORD", SECRET.into()));
    env.push(("DRIFTLINE__LOG__LEVEL", "info,driftline=debug".into()));
    env.push(("DRIFTLINE__LOG__FORMAT", "json".into()));
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("driftline.log");
    let mut driftline = DriftlineProcess::start(&env, &log);
    let prom = Prometheus::start(health, "driftline");

    let feed = spawn_feed(
        b,
        "in",
        GenOptions {
            count: N,
            rate: 5_000,
            malformed_every: 100,
            ..GenOptions::default()
        },
    );
    let report = feed.join().expect("feed");
    let outputs = wait_for_outputs(
        b,
        &[("out", 3), ("dlq", 1)],
        N as i64,
        Duration::from_secs(2),
        Duration::from_secs(120),
    );
    assert_eq!(outputs, N as i64);

    let value = |result: &[(serde_json::Value, f64)]| result.first().map(|r| r.1);
    let consumed = query_until(
        &prom,
        r#"messaging_client_consumed_messages_total{job="driftline"}"#,
        Duration::from_secs(30),
        |r| value(r) == Some(N as f64),
    );
    assert_eq!(value(&consumed), Some(N as f64), "{consumed:?}");
    let latencies = prom.query("driftline_end_to_end_duration_seconds_count");
    assert_eq!(value(&latencies), Some(N as f64), "{latencies:?}");
    let buckets = prom.query("driftline_end_to_end_duration_seconds_bucket");
    assert!(buckets.len() >= 10, "latency buckets: {buckets:?}");
    let p99 = prom.query("histogram_quantile(0.99, driftline_end_to_end_duration_seconds_bucket)");
    assert!(
        value(&p99).is_some_and(|s| s > 0.0 && s < 60.0),
        "p99 derivable from the buckets: {p99:?}"
    );
    let stages: BTreeSet<String> = prom
        .query("driftline_stage_duration_seconds_count > 0")
        .iter()
        .filter_map(|(labels, _)| labels["driftline_stage"].as_str().map(str::to_string))
        .collect();
    let expected: BTreeSet<String> = ["decode", "queue_wait", "inference", "encode", "produce_ack"]
        .map(String::from)
        .into();
    assert_eq!(stages, expected);
    let dead_letters = prom.query("sum(driftline_dead_letters_total)");
    assert_eq!(value(&dead_letters), Some(report.malformed as f64));
    // Lag per partition, down to zero once everything is acknowledged.
    let lag = query_until(
        &prom,
        "driftline_consumer_lag",
        Duration::from_secs(30),
        |r| r.len() == 3 && r.iter().all(|(_, v)| *v == 0.0),
    );
    let partitions: BTreeSet<&str> = lag
        .iter()
        .filter_map(|(labels, _)| labels["messaging_destination_partition_id"].as_str())
        .collect();
    assert_eq!(partitions, BTreeSet::from(["0", "1", "2"]), "{lag:?}");
    assert!(lag.iter().all(|(_, v)| *v == 0.0), "caught up: {lag:?}");
    // Every commit's result is counted: some accepted, none refused in a quiet run.
    let commits = prom.query("driftline_consumer_commits_total");
    assert!(value(&commits).is_some_and(|v| v >= 1.0), "{commits:?}");
    let refused = prom.query("driftline_consumer_commit_failures_total");
    assert_eq!(value(&refused), Some(0.0), "{refused:?}");
    let model = prom.query("driftline_model_info");
    assert_eq!(
        model
            .first()
            .map(|(l, _)| l["driftline_execution_provider"].clone()),
        Some("cpu".into())
    );

    let status = driftline.terminate(Duration::from_secs(30));
    assert!(status.success(), "driftline exited with {status}");

    // JSON logs, with the settings printed, and the secret nowhere in them.
    let log = std::fs::read_to_string(&log).expect("log");
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines
        .iter()
        .any(|l| l["fields"]["message"] == "effective settings"));
    assert!(log.contains("<redacted>") && !log.contains(SECRET));
}

const SECRET: &str = "hunter2-from-the-environment";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_gets_spans_and_metrics_and_traceparent_reaches_predictions() {
    let receiver = OtlpReceiver::start();
    let broker = Tansu::start();
    let b = broker.bootstrap.as_str();
    create_topics(b, &[("in", 3), ("out", 3), ("dlq", 1)]).await;
    let mut env = pipeline_env(b, "in", "out", "dlq", "otlp");
    env.push(("DRIFTLINE__TELEMETRY__OTLP_ENDPOINT", receiver.endpoint()));
    env.push(("DRIFTLINE__TELEMETRY__METRICS_INTERVAL_MS", "500".into()));
    env.push(("DRIFTLINE__HEALTH__STATISTICS_INTERVAL_MS", "200".into()));
    let dir = tempfile::tempdir().expect("temp dir");
    let mut driftline = DriftlineProcess::start(&env, &dir.path().join("driftline.log"));

    // Every tenth event carries a producer's trace context.
    let events: Vec<(String, Vec<u8>, Option<String>)> = fixture()
        .into_iter()
        .take(2_000)
        .enumerate()
        .map(|(i, (event, _, _))| {
            let traceparent =
                (i % 10 == 0).then(|| format!("00-{:032x}-{:016x}-01", 0xabc0_0000 + i, 0x51 + i));
            (
                format!("key-{i}"),
                event.to_string().into_bytes(),
                traceparent,
            )
        })
        .collect();
    let sent: HashMap<String, Option<String>> = events
        .iter()
        .map(|(k, _, tp)| (k.clone(), tp.clone()))
        .collect();
    produce_with_traceparent(b, "in", &events);
    let predictions = read_topic(
        b,
        "out",
        events.len(),
        Duration::from_secs(60),
        Duration::from_secs(120),
    );
    assert_eq!(predictions.len(), events.len());
    // Lag comes from the consumer's periodic statistics: wait (bounded) for an export with it.
    let started = Instant::now();
    while !metric_names(&receiver.received.lock().expect("lock")).contains("driftline.consumer.lag")
        && started.elapsed() < Duration::from_secs(20)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = driftline.terminate(Duration::from_secs(30));
    assert!(status.success(), "driftline exited with {status}");

    // The trace context travels with each event to its prediction, unchanged.
    for p in &predictions {
        let key = String::from_utf8(p.key.clone().expect("key")).expect("utf8 key");
        assert_eq!(
            p.headers.get("traceparent"),
            sent[&key].as_ref(),
            "prediction of {key}"
        );
    }

    let received = receiver.received.lock().expect("lock");
    assert!(received.rejected.is_empty(), "{:?}", received.rejected);
    let resource_spans: Vec<_> = received
        .traces
        .iter()
        .flat_map(|r| &r.resource_spans)
        .collect();
    let service = resource_spans
        .first()
        .and_then(|rs| rs.resource.as_ref())
        .and_then(|r| attribute(&r.attributes, "service.name"));
    assert_eq!(service, Some("driftline"));
    let spans: Vec<_> = resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
        .collect();
    let batches: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "driftline.batch")
        .collect();
    assert!(
        !batches.is_empty(),
        "no batch spans in {} spans",
        spans.len()
    );
    assert!(batches
        .iter()
        .all(|s| attribute(&s.attributes, "messaging.system") == Some("kafka")));
    // Every producer's trace is linked from the batch that scored its event.
    let linked: BTreeSet<&[u8]> = batches
        .iter()
        .flat_map(|s| &s.links)
        .map(|l| l.trace_id.as_slice())
        .collect();
    let traced: Vec<_> = sent.values().flatten().collect();
    for tp in &traced {
        let trace_id = hex(&tp[3..35]);
        assert!(linked.contains(trace_id.as_slice()), "no link to {tp}");
    }
    // Inference runs as a child of its batch's span.
    let batch_ids: BTreeSet<&[u8]> = batches.iter().map(|s| s.span_id.as_slice()).collect();
    let inference: Vec<_> = spans.iter().filter(|s| s.name == "inference").collect();
    assert!(!inference.is_empty());
    assert!(inference
        .iter()
        .all(|s| batch_ids.contains(s.parent_span_id.as_slice())));

    let metric_names = metric_names(&received);
    for name in [
        "messaging.client.consumed.messages",
        "messaging.client.sent.messages",
        "driftline.end_to_end.duration",
        "driftline.stage.duration",
        "driftline.consumer.lag",
        "driftline.model.info",
        "process.memory.usage",
    ] {
        assert!(
            metric_names.contains(name),
            "{name} not in {metric_names:?}"
        );
    }
}

fn metric_names(received: &Received) -> BTreeSet<String> {
    received
        .metrics
        .iter()
        .flat_map(|r| &r.resource_metrics)
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
        .map(|m| m.name.clone())
        .collect()
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_follows_a_broker_outage_and_nothing_is_lost() {
    let mut broker = Tansu::start();
    let b = broker.bootstrap.clone();
    create_topics(&b, &[("in", 3), ("out", 3), ("dlq", 1)]).await;
    let health = health_addr();
    let mut env = pipeline_env(&b, "in", "out", "dlq", "outage");
    env.push(("DRIFTLINE__HEALTH__LISTEN", health.to_string()));
    env.push(("DRIFTLINE__HEALTH__STATISTICS_INTERVAL_MS", "500".into()));
    let dir = tempfile::tempdir().expect("temp dir");
    let mut driftline = DriftlineProcess::start(&env, &dir.path().join("driftline.log"));
    let status_of = |path: &str, want: u16, limit: Duration| {
        http::wait_for(health, path, limit, |a| a.is_some_and(|(s, _)| *s == want))
    };

    let ready = status_of("/readyz", 200, Duration::from_secs(60));
    assert_eq!(ready.as_ref().map(|a| a.0), Some(200), "{ready:?}");
    let events: Vec<(String, Vec<u8>)> = fixture()
        .into_iter()
        .take(1_000)
        .enumerate()
        .map(|(i, (event, _, _))| (format!("k{i}"), event.to_string().into_bytes()))
        .collect();
    produce_all(&b, "in", &events[..500]);
    wait_for_outputs(
        &b,
        &[("out", 3)],
        500,
        Duration::ZERO,
        Duration::from_secs(60),
    );

    broker.stop();
    let down = status_of("/readyz", 503, Duration::from_secs(30));
    assert!(
        down.as_ref()
            .is_some_and(|(s, body)| *s == 503 && body.contains("broker")),
        "not ready while the broker is down: {down:?}"
    );
    let alive = http::get(health, "/healthz");
    assert_eq!(alive.map(|a| a.0), Some(200), "alive during the outage");

    broker.restart();
    let back = status_of("/readyz", 200, Duration::from_secs(90));
    assert_eq!(
        back.as_ref().map(|a| a.0),
        Some(200),
        "ready again: {back:?}"
    );
    produce_all(&b, "in", &events[500..]);
    wait_for_outputs(
        &b,
        &[("out", 3)],
        1_000,
        Duration::from_secs(2),
        Duration::from_secs(120),
    );
    let status = driftline.terminate(Duration::from_secs(30));
    assert!(status.success(), "driftline exited with {status}");

    let inputs = read_inputs(&b, "in", events.len());
    let outputs: Vec<Output> = read_topic(
        &b,
        "out",
        usize::MAX,
        Duration::from_secs(5),
        Duration::from_secs(60),
    );
    let seen: BTreeSet<(i32, i64)> = outputs.iter().map(Output::source).collect();
    let lost: Vec<_> = inputs.keys().filter(|k| !seen.contains(k)).collect();
    assert_eq!(inputs.len(), events.len());
    assert!(lost.is_empty(), "{} inputs without output", lost.len());
}

/// A SIGTERM that arrives while driftline is still starting (model loaded, clients connecting)
/// is a clean stop, exit 0, not death by the signal: the handlers are installed before the model
/// loads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_startup_is_a_clean_stop() {
    let broker = Tansu::start();
    let b = broker.bootstrap.as_str();
    create_topics(b, &[("in", 1), ("out", 1), ("dlq", 1)]).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("driftline.log");
    let mut driftline =
        DriftlineProcess::start(&pipeline_env(b, "in", "out", "dlq", "early-stop"), &log);
    let started = Instant::now();
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("models loaded")
    {
        assert!(started.elapsed() < Duration::from_secs(60), "never loaded");
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = driftline.terminate(Duration::from_secs(30));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "exit {status}; log:\n{text}");
    assert!(text.contains("SIGTERM: draining"), "{text}");
}
