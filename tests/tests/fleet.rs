//! The fleet view on the real broker (tansu): three `driftline run` instances in one consumer
//! group over 12 partitions publish partials, and `driftline aggregate` merges them. Beside
//! them a single instance in its own group reads all 12 partitions: the reference.
//!
//! While a live feed runs (event time = the wall clock, 2 s windows), one instance is killed
//! with SIGKILL in the middle of a window, and the aggregator is killed (SIGKILL) and a new one
//! started. In the last third of the feed, partitions 0 and 1 only get temperatures 3 standard
//! deviations (of the reference sample) higher: 1 event in 6 of each fleet window.
//!
//! Checked: every fleet window the single instance judged is reported once per column,
//! complete, with the single instance's counts, PSI, KL and chi-square exactly and KS D within
//! its stated bound of the exact D that this test computes from the events it produced; the
//! killed instance's partitions were read back by their new owners; the shift opens exactly
//! one fleet alert for `temperature`, and no column opens two.
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use driftline::cli::gen::{EventGenerator, GenOptions};
use driftline_operators::drift::{ks_2samp, KsMode};
use driftline_tests::*;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::ClientConfig;
use serde_json::Value;

const PARTITIONS: i32 = 12;
const PANE_MS: i64 = 2000;
const RATE: u64 = 2400;
const FEED_MS: u64 = 27_000;
const KILL_AT_MS: u64 = 7_000;
const AGGREGATOR_RESTART_AT_MS: u64 = 12_000;
const SHIFT_AT_MS: u64 = 18_000;
const SHIFT_SD: f64 = 3.0;

/// One produced event: (partition, event ms, temperature as the pipeline reads it).
type Sent = (i32, i64, f64);

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}

/// Produces the live feed: event `i` to partition `i % 12`, stamped with the wall clock (as its
/// `ts` field and its record timestamp); temperatures of partitions 0 and 1 shifted from
/// `SHIFT_AT_MS` on.
fn feed(bootstrap: String, shift: f64) -> std::thread::JoinHandle<Vec<Sent>> {
    std::thread::spawn(move || {
        let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("linger.ms", "5")
            .create()
            .expect("producer");
        let mut generator = EventGenerator::new(
            GenOptions {
                seed: 11,
                ..GenOptions::default()
            },
            now_ms(),
        )
        .expect("generator");
        let (started, mut buf) = (Instant::now(), Vec::new());
        let mut sent = Vec::new();
        let total = RATE * FEED_MS / 1000;
        for i in 0..total {
            // Paced: event i leaves at i / RATE seconds (bounded: `total` events).
            let due = Duration::from_micros(i * 1_000_000 / RATE);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
            let key = generator.event(i, &mut buf);
            let mut event: Value = serde_json::from_slice(&buf).expect("event");
            let partition = (i % PARTITIONS as u64) as i32;
            let ts = now_ms();
            event["ts"] = ts.into();
            let mut t = event["temperature"].as_f64().expect("temperature");
            if partition < 2 && started.elapsed() >= Duration::from_millis(SHIFT_AT_MS) {
                t += shift;
                event["temperature"] = t.into();
            }
            sent.push((partition, ts, f64::from(t as f32)));
            let payload = serde_json::to_vec(&event).expect("json");
            let record = BaseRecord::to("in")
                .partition(partition)
                .timestamp(ts)
                .key(key.as_bytes())
                .payload(&payload[..]);
            send_retrying(&producer, record);
        }
        producer.flush(Duration::from_secs(60)).expect("flushed");
        sent
    })
}

/// One event per partition far ahead in event time: it closes every window of the feed, in
/// the fleet (each partition's watermark) and in the single instance, which has read the
/// whole feed by then (its lateness is long enough that no row of the feed was late there).
fn close_every_window(bootstrap: &str, after_ms: i64) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("producer");
    let mut generator = EventGenerator::new(GenOptions::default(), after_ms).expect("generator");
    let mut buf = Vec::new();
    let end = after_ms + 200_000;
    for partition in 0..PARTITIONS {
        let key = generator.event(partition as u64, &mut buf);
        let mut event: Value = serde_json::from_slice(&buf).expect("event");
        event["ts"] = end.into();
        let payload = serde_json::to_vec(&event).expect("json");
        let record = BaseRecord::to("in")
            .partition(partition)
            .timestamp(end)
            .key(key.as_bytes())
            .payload(&payload[..]);
        producer.send(record).map_err(|(e, _)| e).expect("marker");
    }
    producer.flush(Duration::from_secs(60)).expect("flushed");
}

/// Every record of the one-partition `topic` up to its high watermark, as JSON.
fn reports(bootstrap: &str, topic: &str) -> Vec<Value> {
    let high = high_watermarks(bootstrap, topic, 1)[0] as usize;
    let records = read_topic(
        bootstrap,
        topic,
        high,
        Duration::from_secs(60),
        Duration::from_secs(60),
    );
    assert_eq!(records.len(), high, "{topic} read to its end");
    records
        .iter()
        .map(|o| serde_json::from_slice(&o.payload).expect("report json"))
        .collect()
}

fn by_window(reports: &[Value]) -> BTreeMap<(String, i64), Vec<Value>> {
    let mut out: BTreeMap<(String, i64), Vec<Value>> = BTreeMap::new();
    for r in reports {
        let key = (
            r["column"].as_str().expect("column").to_string(),
            r["window"]["start_ms"].as_i64().expect("time window"),
        );
        out.entry(key).or_default().push(r.clone());
    }
    out
}

/// The single instance's windows that it judged whole (not the first, the shutdown ones).
fn judged_starts(reports: &[Value]) -> BTreeSet<i64> {
    reports
        .iter()
        .filter(|r| r["window"]["complete"] == true)
        .filter(|r| {
            !r["verdict"]["reason"]
                .as_str()
                .unwrap_or("")
                .starts_with("shutdown")
        })
        .map(|r| r["window"]["start_ms"].as_i64().expect("start"))
        .collect()
}

/// On a mismatch: the window's partials, the progress of the partitions the fleet report
/// lacks, and what the instances logged about following partitions (last, so that the tail
/// of a CI log shows it). The logs are also kept under `$CARGO_TARGET_TMPDIR/fleet-failure`.
fn diagnose(
    bootstrap: &str,
    column: &str,
    start: i64,
    lacking: &BTreeSet<i64>,
    dir: &std::path::Path,
) {
    let high: i64 = high_watermarks(bootstrap, "partials", 3).iter().sum();
    let records = read_topic(
        bootstrap,
        "partials",
        high as usize,
        Duration::from_secs(60),
        Duration::from_secs(60),
    );
    for r in records {
        let v: Value = serde_json::from_slice(&r.payload).unwrap_or_default();
        if v["column"] == column && v["start_ms"] == start {
            eprintln!(
                "partial p{} events {} offsets {}..{} by {}",
                v["partition"], v["events"], v["first_offset"], v["last_offset"], v["instance"]
            );
        }
        let partition = v["partition"].as_i64().unwrap_or(-1);
        if v["type"] == "progress" && lacking.contains(&partition) {
            eprintln!(
                "progress p{} through {} next {} by {} at {}",
                v["partition"], v["through_pane"], v["next_offset"], v["instance"], r.timestamp_ms
            );
        }
    }
    let kept = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("fleet-failure");
    let _ = std::fs::remove_dir_all(&kept);
    let _ = std::fs::create_dir_all(&kept);
    for n in [
        "fleet-0.log",
        "fleet-1.log",
        "fleet-2.log",
        "aggregate-0.log",
        "aggregate-1.log",
    ] {
        let _ = std::fs::copy(dir.join(n), kept.join(n));
        for l in log_of(dir, n).lines().filter(|l| {
            [
                "following a partition",
                "progress read back",
                "gap",
                "no offset",
                "assigned",
                "revoked",
            ]
            .iter()
            .any(|p| l.contains(p))
        }) {
            let v: Value = serde_json::from_str(l).unwrap_or_default();
            eprintln!("{n}: {} {}", v["timestamp"], v["fields"]);
        }
    }
    eprintln!("logs kept in {}", kept.display());
    panic!("window {start} of {column} differs");
}

fn log_of(dir: &std::path::Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_default()
}

/// The partitions of the latest assignment `name`'s log reports (0 before any).
fn assigned(dir: &std::path::Path, name: &str) -> i64 {
    log_of(dir, name)
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["fields"]["message"] == "partitions assigned")
        .and_then(|l| l["fields"]["partitions"].as_i64())
        .unwrap_or(0)
}

/// Waits (bounded) until the group's members in `names` hold every partition between them,
/// each some: the group is settled before the feed, so that no instance follows a partition
/// that another one owns from the start.
fn wait_for_assignments(dir: &std::path::Path, names: &[&str], limit: Duration) {
    let started = Instant::now();
    loop {
        let held: Vec<i64> = names.iter().map(|n| assigned(dir, n)).collect();
        if held.iter().all(|&n| n > 0) && held.iter().sum::<i64>() == PARTITIONS as i64 {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "not settled in {limit:?}: {held:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The partitions `name`'s log says it followed (or read a gap of) after its first `skip`
/// such lines, with where it read them back from and to.
fn followed(dir: &std::path::Path, name: &str, skip: usize) -> Vec<(i64, i64, i64)> {
    log_of(dir, name)
        .lines()
        .filter(|l| l.contains("reading it back"))
        .skip(skip)
        .filter_map(|l| {
            let l: Value = serde_json::from_str(l).ok()?;
            let f = &l["fields"];
            Some((
                f["partition"].as_i64()?,
                f["from"].as_i64()?,
                f["to"].as_i64()?,
            ))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_and_an_aggregator_report_what_one_instance_reports() {
    let dir = tempfile::tempdir().expect("temp dir");
    // The reference: 20 000 events of the same generator, profiled as a user would.
    let profile = demo_reference_profile(dir.path(), GenOptions::default().seed, 20_000);
    let profile_json: Value =
        serde_json::from_str(&std::fs::read_to_string(&profile).expect("profile")).expect("json");
    let temperature_sample: Vec<f64> = profile_json["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .find(|c| c["name"] == "temperature")
        .expect("temperature profiled")["stats"]["sample"]
        .as_array()
        .expect("sample")
        .iter()
        .map(|v| v.as_f64().expect("number"))
        .collect();
    let n = temperature_sample.len() as f64;
    let mean = temperature_sample.iter().sum::<f64>() / n;
    let sd = (temperature_sample
        .iter()
        .map(|x| (x - mean).powi(2))
        .sum::<f64>()
        / n)
        .sqrt();

    let broker = Tansu::start();
    let b = broker.bootstrap.as_str();
    create_topics(
        b,
        &[
            ("in", PARTITIONS),
            ("out", PARTITIONS),
            ("out-single", PARTITIONS),
            ("dlq", 1),
            ("drift", 1),
            ("alerts", 1),
            ("drift-single", 1),
            ("alerts-single", 1),
            ("partials", 3),
            ("fleet-drift", 1),
            ("fleet-alerts", 1),
        ],
    )
    .await;
    let drift_env = |group: &str, out: &str, drift: &str, alerts: &str, fleet: bool| {
        // The fleet closes a partition's window 3 s (of event time) after that partition
        // passed it. The single instance has one watermark for all 12 partitions, and on two
        // loaded cores it reads some partitions more than 3 s behind others: with 3 s it
        // drops their rows as late. So it waits 120 s, and an event 200 s ahead in each
        // partition, sent once it has read the feed, closes its windows.
        let lateness = if fleet { "3000" } else { "120000" };
        let mut env = pipeline_env(b, "in", out, "dlq", group);
        env.extend([
            ("DRIFTLINE__KAFKA__DRIFT_TOPIC", drift.to_string()),
            ("DRIFTLINE__KAFKA__ALERTS_TOPIC", alerts.to_string()),
            (
                "DRIFTLINE__KAFKA__CONSUMER__SESSION_TIMEOUT_MS",
                "6000".into(),
            ),
            ("DRIFTLINE__DRIFT__ENABLED", "true".to_string()),
            ("DRIFTLINE__DRIFT__PROFILE", profile.display().to_string()),
            ("DRIFTLINE__DRIFT__WINDOW", "time".to_string()),
            ("DRIFTLINE__DRIFT__TIME_SOURCE", "event".to_string()),
            ("DRIFTLINE__DRIFT__PANE_MS", PANE_MS.to_string()),
            ("DRIFTLINE__DRIFT__PANES", "1".to_string()),
            ("DRIFTLINE__DRIFT__SLIDE", "1".to_string()),
            ("DRIFTLINE__DRIFT__LATENESS_MS", lateness.to_string()),
            ("DRIFTLINE__DRIFT__RETAIN_VALUES", "100000".to_string()),
            ("DRIFTLINE__FLEET__ENABLED", fleet.to_string()),
            ("DRIFTLINE__FLEET__PARTIALS_TOPIC", "partials".to_string()),
            (
                "DRIFTLINE__AGGREGATE__GROUP_ID",
                "fleet-aggregate".to_string(),
            ),
            (
                "DRIFTLINE__AGGREGATE__REPORTS_TOPIC",
                "fleet-drift".to_string(),
            ),
            (
                "DRIFTLINE__AGGREGATE__ALERTS_TOPIC",
                "fleet-alerts".to_string(),
            ),
            ("DRIFTLINE__AGGREGATE__MAX_WAIT_MS", "90000".to_string()),
            ("DRIFTLINE__LOG__FORMAT", "json".to_string()),
        ]);
        env
    };
    let fleet_env = drift_env("fleet", "out", "drift", "alerts", true);
    let single_env = drift_env(
        "single",
        "out-single",
        "drift-single",
        "alerts-single",
        false,
    );
    let d = dir.path();
    let mut instances: Vec<DriftlineProcess> = (0..3)
        .map(|i| DriftlineProcess::start(&fleet_env, &d.join(format!("fleet-{i}.log"))))
        .collect();
    let mut single = DriftlineProcess::start(&single_env, &d.join("single.log"));
    let start_aggregator = |name: &str| {
        DriftlineProcess::start_command("aggregate", "configs/demo.toml", &fleet_env, &d.join(name))
    };
    let mut aggregator = start_aggregator("aggregate-0.log");
    wait_for_assignments(
        d,
        &["fleet-0.log", "fleet-1.log", "fleet-2.log"],
        Duration::from_secs(90),
    );
    wait_for_assignments(d, &["single.log"], Duration::from_secs(90));

    let feeding = feed(b.to_string(), SHIFT_SD * sd);
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(KILL_AT_MS));
    // SIGKILL in the middle of a window (2 s windows; 7 s after the feed began, +- a little).
    instances[1].kill9();
    std::thread::sleep(
        Duration::from_millis(AGGREGATOR_RESTART_AT_MS).saturating_sub(started.elapsed()),
    );
    aggregator.kill9();
    aggregator = start_aggregator("aggregate-1.log");
    let sent = feeding.join().expect("feed");
    assert_eq!(sent.len() as u64, RATE * FEED_MS / 1000);

    // Wait (bounded) until the fleet has reported every window the single instance judged,
    // and the single instance every window whose end plus lateness the feed passed.
    let last_ts = sent.iter().map(|s| s.1).max().expect("events");
    let read =
        wait_for_commits_to_reach_the_end(b, "single", "in", PARTITIONS, Duration::from_secs(240));
    assert_eq!(
        read,
        high_watermarks(b, "in", PARTITIONS),
        "the single instance read the feed"
    );
    close_every_window(b, last_ts);
    let first_ts = sent.iter().map(|s| s.1).min().expect("events");
    let closable = last_ts / PANE_MS - first_ts / PANE_MS + 1;
    let limit = Instant::now() + Duration::from_secs(240);
    let (single_reports, fleet_reports) = loop {
        let single_reports = reports(b, "drift-single");
        let fleet_reports = reports(b, "fleet-drift");
        let want = judged_starts(&single_reports);
        let have: BTreeSet<i64> = fleet_reports
            .iter()
            .map(|r| r["window"]["start_ms"].as_i64().expect("start"))
            .collect();
        if want.len() as i64 >= closable && want.is_subset(&have) {
            break (single_reports, fleet_reports);
        }
        assert!(
            Instant::now() < limit,
            "fleet windows {have:?}, single instance's {want:?} (of {closable})\n{}",
            log_of(d, "aggregate-1.log")
        );
        std::thread::sleep(Duration::from_secs(2));
    };
    let fleet_alerts: Vec<Value> = reports(b, "fleet-alerts");
    // The aggregator serves its probes and metrics like `run`.
    let addr: std::net::SocketAddr = log_of(d, "aggregate-1.log")
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|l| l["fields"]["addr"].as_str().and_then(|a| a.parse().ok()))
        .expect("the aggregator logs its health server's address");
    let (status, _) = driftline_tests::http::get(addr, "/readyz").expect("/readyz");
    assert_eq!(status, 200, "the aggregator holds the partials topic");
    let (_, metrics) = driftline_tests::http::get(addr, "/metrics").expect("/metrics");
    assert!(
        metrics.contains("driftline_fleet_windows_total{complete=\"true\""),
        "{metrics}"
    );
    let _ = aggregator.terminate(Duration::from_secs(30));
    let _ = single.terminate(Duration::from_secs(60));
    for i in [0, 2] {
        let _ = instances[i].terminate(Duration::from_secs(60));
    }

    // The survivors held 8 partitions when the group settled; after the kill they followed
    // all 12: the killed instance's 4 were taken over, each read back from the start of the
    // window after the last one published for it (or of its first window).
    let survivors: Vec<(i64, i64, i64)> = ["fleet-0.log", "fleet-2.log"]
        .iter()
        .flat_map(|name| followed(d, name, 0))
        .collect();
    let partitions: BTreeSet<i64> = survivors.iter().map(|f| f.0).collect();
    assert_eq!(
        partitions.len(),
        PARTITIONS as usize,
        "followed by the survivors: {survivors:?}"
    );
    let fleet = by_window(&fleet_reports);
    let single = by_window(&single_reports);
    let judged = judged_starts(&single_reports);
    let mut compared = 0;
    for ((column, start), f) in &fleet {
        assert_eq!(f.len(), 1, "{column} at {start} reported {} times", f.len());
        if !judged.contains(start) {
            continue;
        }
        let f = &f[0];
        let s = &single[&(column.clone(), *start)][0];
        assert_eq!(f["window"]["complete"], true, "{column} at {start}: {f}");
        if f["window"]["events"] != s["window"]["events"] {
            eprintln!(
                "fleet {} events, sources {}",
                f["window"]["events"], f["window"]["sources"]
            );
            eprintln!(
                "single {} events, sources {}",
                s["window"]["events"], s["window"]["sources"]
            );
            eprintln!(
                "single reports of the window: {}",
                single[&(column.clone(), *start)].len()
            );
            let sources = |r: &Value| -> BTreeSet<i64> {
                (r["window"]["sources"].as_array().into_iter().flatten())
                    .filter_map(|s| s["partition"].as_i64())
                    .collect()
            };
            let lacking = &sources(s) - &sources(f);
            diagnose(b, column, *start, &lacking, d);
        }
        for key in ["bins", "psi", "kl", "chi_square", "missing_rate", "family"] {
            assert_eq!(f[key], s[key], "{column} at {start}: {key}");
        }
        assert_eq!(f["window"]["events"], s["window"]["events"]);
        assert_eq!(f["window"]["sources"], s["window"]["sources"]);
        if f["ks"].is_object() {
            let bound = f["ks"]["error_bound"].as_f64().expect("bound");
            let d_fleet = f["ks"]["statistic"].as_f64().expect("D");
            assert!((d_fleet - s["ks"]["statistic"].as_f64().expect("D")).abs() <= bound + 1e-12);
            if column == "temperature" {
                let values: Vec<f64> = sent
                    .iter()
                    .filter(|e| e.1.div_euclid(PANE_MS) * PANE_MS == *start)
                    .map(|e| e.2)
                    .collect();
                let exact = ks_2samp(&temperature_sample, &values, KsMode::Auto)
                    .expect("ks")
                    .statistic;
                assert!(
                    d_fleet <= exact + 1e-12 && exact <= d_fleet + bound + 1e-12,
                    "temperature at {start}: fleet D {d_fleet} (+{bound}), exact {exact}"
                );
            }
        }
        assert_eq!(f["verdict"], s["verdict"], "{column} at {start}");
        compared += 1;
    }
    let windows = compared
        / fleet
            .keys()
            .map(|k| &k.0)
            .collect::<BTreeSet<_>>()
            .len()
            .max(1);
    assert!(
        windows as i64 >= closable,
        "{windows} windows compared of {closable}"
    );

    // The shift in 2 of 12 partitions: one fleet alert for temperature, none twice.
    let opened: Vec<&str> = fleet_alerts
        .iter()
        .filter(|a| a["state"] == "open")
        .map(|a| a["column"].as_str().expect("column"))
        .collect();
    assert_eq!(
        opened.iter().filter(|c| **c == "temperature").count(),
        1,
        "fleet alerts opened: {opened:?}"
    );
    let distinct: BTreeSet<&&str> = opened.iter().collect();
    assert_eq!(
        distinct.len(),
        opened.len(),
        "a column opened twice: {opened:?}"
    );
}
