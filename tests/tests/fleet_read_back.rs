//! An aggregator killed between two reports of a window: the next one reads the reports topic
//! back, judges that window again and publishes only the columns that were missing, so every
//! (column, window) is on the topic once.
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
use driftline_operators::drift::monitor::{DriftMonitor, RowOrigins};
use driftline_operators::drift::partial::{FleetRecord, FleetWindow};
use driftline_operators::drift::partial_builder::{PartialSettings, PartialsBuilder};
use driftline_tests::in_process::{demo_settings, embedded_broker};
use driftline_tests::*;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::ClientConfig;
use serde_json::Value;

const PANE_MS: i64 = 2000;

fn produce(bootstrap: &str, topic: &str, partition: i32, records: &[(String, Vec<u8>)]) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("producer");
    for (key, payload) in records {
        let record = BaseRecord::to(topic)
            .partition(partition)
            .key(key.as_bytes())
            .payload(&payload[..]);
        producer.send(record).map_err(|(e, _)| e).expect("queued");
    }
    producer.flush(Duration::from_secs(30)).expect("flushed");
}

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
        .map(|r| {
            let key = match r {
                FleetRecord::Partial(p) => p.key(),
                FleetRecord::Progress(p) => p.key(),
            };
            (key, serde_json::to_vec(r).expect("json"))
        })
        .collect();
    produce(&b, "partials", partition, &keyed);

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
    let half: Vec<(String, Vec<u8>)> = reports[..columns / 2]
        .iter()
        .map(|r| (r.column.clone(), serde_json::to_vec(r).expect("json")))
        .collect();
    produce(&b, "fleet-drift", 0, &half);

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
    while high_watermarks(&b, "fleet-drift", 1)[0] < (2 * columns) as i64 {
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
    for record in &on_topic {
        let r: Value = serde_json::from_slice(&record.payload).expect("report");
        let key = (
            r["column"].as_str().expect("column").to_string(),
            r["window"]["start_ms"].as_i64().expect("start"),
        );
        *per_window.entry(key).or_default() += 1;
    }
    assert_eq!((end, on_topic.len()), (2 * columns, end), "{per_window:?}");
    assert!(per_window.values().all(|&n| n == 1), "{per_window:?}");
    let log = std::fs::read_to_string(dir.path().join("aggregate.log")).unwrap_or_default();
    assert!(
        log.contains("cut off while its reports were published"),
        "{log}"
    );
}
