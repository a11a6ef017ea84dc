//! Shared pieces of the integration tests: a real tansu broker process (started on a free
//! loopback port in a temp dir, killed by PID when dropped), the `driftline` binary as a child
//! process, and plain rdkafka clients to feed topics and read them back.
use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::ClientConfig;

pub mod accounting;
pub mod browser;
pub mod http;
pub mod in_process;
pub mod otlp_receiver;
pub mod poison;
pub mod prometheus;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("repo root")
}

/// The `driftline` binary built beside this test executable (`make test` builds it first).
pub fn driftline_bin() -> PathBuf {
    built_bin("driftline", "driftline")
}

/// Binary `name` of package `package`, built beside this test executable (`make test` builds
/// the ones the tests run).
pub fn built_bin(package: &str, name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join(name);
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo build -p {package} --bin {name}` (make test does)",
        bin.display()
    );
    bin
}

/// Writes the reference profile of `sample` (events of `configs/demo.toml`) to `profile` with
/// `driftline profile`, as a user would.
pub fn write_demo_profile(sample: &Path, profile: &Path) {
    let out = std::process::Command::new(driftline_bin())
        .current_dir(repo_root())
        .args(["profile", "--config", "configs/demo.toml", "--input"])
        .arg(sample)
        .arg("--out")
        .arg(profile)
        .output()
        .expect("driftline profile");
    assert!(
        out.status.success(),
        "profile failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A reference profile as a user makes one: `n` healthy events of `driftline gen` (seed `seed`)
/// in `dir/reference.jsonl`, profiled by `driftline profile` into `dir/profile.json`, returned.
pub fn demo_reference_profile(dir: &Path, seed: u64, n: u64) -> PathBuf {
    let mut reference = driftline::cli::gen::EventGenerator::new(
        driftline::cli::gen::GenOptions {
            seed,
            ..driftline::cli::gen::GenOptions::default()
        },
        1_700_000_000_000,
    )
    .expect("generator");
    let (mut lines, mut buf) = (String::new(), Vec::new());
    for i in 0..n {
        reference.event(i, &mut buf);
        lines.push_str(std::str::from_utf8(&buf).expect("utf8"));
        lines.push('\n');
    }
    let (sample, profile) = (dir.join("reference.jsonl"), dir.join("profile.json"));
    std::fs::write(&sample, lines).expect("write sample");
    write_demo_profile(&sample, &profile);
    profile
}

/// Writes `n` events of `driftline gen`'s sensors to `path` (JSONL), event `i` stamped `ts(i)`;
/// with `shift = Some((from, sd))` the temperature is shifted by `sd` standard deviations from
/// event `from` on.
pub fn write_generated_events(
    path: &Path,
    n: u64,
    seed: u64,
    shift: Option<(u64, f64)>,
    ts: impl Fn(u64) -> i64,
) {
    let mut generator = driftline::cli::gen::EventGenerator::new(
        driftline::cli::gen::GenOptions {
            seed,
            drift_after: shift.map(|(from, _)| from),
            drift_shift_std: shift.map_or(0.0, |(_, sd)| sd),
            ..driftline::cli::gen::GenOptions::default()
        },
        1_700_000_000_000,
    )
    .expect("generator");
    let (mut text, mut buf) = (Vec::new(), Vec::new());
    for i in 0..n {
        generator.event(i, &mut buf);
        let mut event: serde_json::Value = serde_json::from_slice(&buf).expect("event");
        event["ts"] = ts(i).into();
        text.extend_from_slice(&serde_json::to_vec(&event).expect("json"));
        text.push(b'\n');
    }
    std::fs::write(path, text).expect("write events");
}

/// The Python in `.venv` (onnxruntime, confluent-kafka), installed by `make`.
pub fn venv_python() -> PathBuf {
    let p = repo_root().join(".venv/bin/python");
    assert!(
        p.is_file(),
        "{} is missing: run `make test`, which creates it",
        p.display()
    );
    p
}

/// The ONNX Runtime library: `ORT_DYLIB_PATH`, else the one `make` installs into `.venv`.
pub fn onnxruntime_library() -> PathBuf {
    std::env::var_os("ORT_DYLIB_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/libonnxruntime.so"))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A tansu broker process with the sqlite engine, stopped by PID on drop.
pub struct Tansu {
    child: Option<Child>,
    pub bootstrap: String,
    port: u16,
    dir: tempfile::TempDir,
}

impl Tansu {
    pub fn start() -> Tansu {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let child = Self::spawn(dir.path(), port);
        add_header_index(&dir.path().join("tansu.db"));
        Tansu {
            child: Some(child),
            bootstrap: format!("127.0.0.1:{port}"),
            port,
            dir,
        }
    }

    /// Kills the broker (its data stays, for [`Tansu::restart`]).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker again on the same port and data.
    pub fn restart(&mut self) {
        self.stop();
        self.child = Some(Self::spawn(self.dir.path(), self.port));
    }

    /// Where the tansu binary is: `TANSU_BIN`, else where `make` installs it.
    pub fn binary() -> PathBuf {
        std::env::var_os("TANSU_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var("HOME").unwrap_or_default())
                    .join(".cache/driftline/tools/bin/tansu")
            })
    }

    fn spawn(dir: &Path, port: u16) -> Child {
        let bin = Self::binary();
        assert!(
            bin.is_file(),
            "tansu not found at {} (make test installs it; or set TANSU_BIN)",
            bin.display()
        );
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            // tansu resolves the sqlite path against its working directory.
            .args(["--storage-engine", "sqlite://tansu.db"])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu");
        let bootstrap = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&bootstrap).is_err() {
            assert!(
                Instant::now() < deadline,
                "tansu did not start listening on {bootstrap}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        child
    }
}

/// tansu 0.6's sqlite schema has no index on `header (topition, offset_id)`, so once a topic
/// holds records with headers every fetch scans all headers (20k records with 3 headers each
/// took 40 s to read back, measured 2026-11-25). Adding the index makes it 0.8 s.
/// Uses python3's sqlite3 module (a fresh machine has python3) rather than a C build in Rust.
fn add_header_index(db: &Path) {
    let script = "import sqlite3, sys, time\n\
        for _ in range(100):\n\
        \x20   try:\n\
        \x20       c = sqlite3.connect(sys.argv[1], timeout=10)\n\
        \x20       c.execute('create index if not exists header_topition_offset on header (topition, offset_id)')\n\
        \x20       c.commit(); sys.exit(0)\n\
        \x20   except sqlite3.OperationalError:\n\
        \x20       time.sleep(0.05)\n\
        sys.exit('tansu schema never appeared')\n";
    let status = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(db)
        .status()
        .expect("python3");
    assert!(
        status.success(),
        "could not add the header index to {}",
        db.display()
    );
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Creates topics through the admin API (tansu supports it; the mock broker does not).
pub async fn create_topics(bootstrap: &str, topics: &[(&str, i32)]) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|(t, p)| NewTopic::new(t, *p, TopicReplication::Fixed(1)))
        .collect();
    for r in admin
        .create_topics(
            &new,
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .expect("create topics")
    {
        r.expect("topic created");
    }
}

/// A live feed on its own thread: `driftline gen` with `options` into `topic`.
pub fn spawn_feed(
    bootstrap: &str,
    topic: &str,
    options: driftline::cli::gen::GenOptions,
) -> std::thread::JoinHandle<driftline::cli::gen::GenReport> {
    let (bootstrap, topic) = (bootstrap.to_string(), topic.to_string());
    std::thread::spawn(move || {
        let stop = std::sync::atomic::AtomicBool::new(false);
        driftline::cli::gen::produce(&bootstrap, &topic, options, &stop).expect("feed")
    })
}

/// Produces every `(key, payload)` and waits for all to be acknowledged.
pub fn produce_all(bootstrap: &str, topic: &str, events: &[(String, Vec<u8>)]) {
    let events: Vec<_> = events
        .iter()
        .map(|(k, p)| (k.clone(), p.clone(), None))
        .collect();
    produce_with_traceparent(bootstrap, topic, &events);
}

/// Produces every `(key, payload)` to one partition of `topic` and waits for all to be
/// acknowledged.
pub fn produce_to_partition(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    records: &[(String, Vec<u8>)],
) {
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

/// As [`produce_all`], with a `traceparent` header on the events that have one.
pub fn produce_with_traceparent(
    bootstrap: &str,
    topic: &str,
    events: &[(String, Vec<u8>, Option<String>)],
) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    for (key, payload, traceparent) in events {
        let mut record = BaseRecord::to(topic)
            .key(key.as_bytes())
            .payload(&payload[..]);
        if let Some(tp) = traceparent {
            record = record.headers(OwnedHeaders::new().insert(Header {
                key: "traceparent",
                value: Some(tp.as_str()),
            }));
        }
        send_retrying(&producer, record);
    }
    producer
        .flush(Duration::from_secs(60))
        .expect("all events acknowledged");
}

/// Queues `record`, waiting while the producer's queue is full.
pub fn send_retrying<K, P>(
    producer: &ThreadedProducer<DefaultProducerContext>,
    mut record: BaseRecord<'_, K, P>,
) where
    K: rdkafka::message::ToBytes + ?Sized,
    P: rdkafka::message::ToBytes + ?Sized,
{
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((_, r)) => {
                record = r;
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
}

/// One record read back from an output topic.
#[derive(Debug, Clone)]
pub struct Output {
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: HashMap<String, String>,
    /// The record's Kafka timestamp: when driftline produced it (its create time).
    pub timestamp_ms: i64,
}

impl Output {
    /// The input (partition, offset) this output names in its source headers.
    pub fn source(&self) -> (i32, i64) {
        let get = |k: &str| {
            self.headers
                .get(k)
                .unwrap_or_else(|| panic!("output without header {k}: {self:?}"))
        };
        (
            get("driftline.source.partition")
                .parse()
                .expect("partition"),
            get("driftline.source.offset").parse().expect("offset"),
        )
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload).unwrap_or_else(|e| {
            panic!(
                "output is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.payload)
            )
        })
    }
}

/// A consumer assigned every partition of `topic` from the beginning. No consumer group: a
/// reader must not add group traffic to a broker under test (tansu stalls under it).
fn reader(bootstrap: &str, topic: &str) -> BaseConsumer {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "driftline-test-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let mut assignment = rdkafka::TopicPartitionList::new();
    for p in metadata.topics().iter().flat_map(|t| t.partitions()) {
        assignment
            .add_partition_offset(topic, p.id(), rdkafka::Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&assignment).expect("assign");
    consumer
}

/// Reads a topic from the beginning until `expected` records arrived or nothing new came for
/// `idle` (bounded by `limit` overall).
pub fn read_topic(
    bootstrap: &str,
    topic: &str,
    expected: usize,
    idle: Duration,
    limit: Duration,
) -> Vec<Output> {
    let consumer = reader(bootstrap, topic);
    let started = Instant::now();
    let mut last = Instant::now();
    let mut out = Vec::new();
    while out.len() < expected && last.elapsed() < idle && started.elapsed() < limit {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let headers = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| {
                                (
                                    h.key.to_string(),
                                    String::from_utf8_lossy(h.value.unwrap_or_default())
                                        .into_owned(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                out.push(Output {
                    key: m.key().map(<[u8]>::to_vec),
                    payload: m.payload().unwrap_or_default().to_vec(),
                    headers,
                    timestamp_ms: m.timestamp().to_millis().unwrap_or(0),
                });
                last = Instant::now();
            }
            Some(Err(e)) => panic!("reading {topic}: {e}"),
            None => {}
        }
    }
    out
}

/// The drift reports and alerts on `drift_topic` and `alerts_topic`, as a Python
/// confluent-kafka consumer reads them (tests/python/read_drift.py also checks their schema).
pub fn read_drift_with_python(
    bootstrap: &str,
    drift_topic: &str,
    alerts_topic: &str,
) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
    let read = Command::new(venv_python())
        .current_dir(repo_root())
        .args([
            "tests/python/read_drift.py",
            bootstrap,
            drift_topic,
            alerts_topic,
        ])
        .output()
        .expect("python reader");
    assert!(
        read.status.success(),
        "python reader failed: {}",
        String::from_utf8_lossy(&read.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&read.stdout).expect("reader summary");
    let list = |key: &str| seen[key].as_array().expect("a list").clone();
    (list("reports"), list("alerts"))
}

/// A `driftline run` child process, SIGKILLed on drop if still running.
pub struct DriftlineProcess {
    pub child: Child,
}

impl DriftlineProcess {
    /// Starts `driftline run --config configs/demo.toml` with `env` overrides, logging to `log`.
    pub fn start(env: &[(&str, String)], log: &Path) -> DriftlineProcess {
        Self::start_with_config("configs/demo.toml", env, log)
    }

    /// Starts `driftline run --config CONFIG` (relative to the repository) with `env` overrides.
    pub fn start_with_config(config: &str, env: &[(&str, String)], log: &Path) -> DriftlineProcess {
        Self::start_command("run", config, env, log)
    }

    /// Starts `driftline COMMAND --config CONFIG` (`run` or `aggregate`) with `env` overrides.
    pub fn start_command(
        command: &str,
        config: &str,
        env: &[(&str, String)],
        log: &Path,
    ) -> DriftlineProcess {
        let log = std::fs::File::create(log).expect("log file");
        let mut cmd = Command::new(driftline_bin());
        cmd.current_dir(repo_root())
            .args([command, "--config", config])
            .env("DRIFTLINE__LOG__LEVEL", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start driftline");
        DriftlineProcess { child }
    }

    /// SIGKILL, as a crash or the OOM killer would: no drain, no flush, no commit.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    /// Waits, bounded, for the process to exit on its own.
    pub fn wait_for_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                started.elapsed() < limit,
                "driftline still runs after {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn terminate(&mut self, limit: Duration) -> std::process::ExitStatus {
        // SAFETY: plain kill(2) on our own child's PID.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        self.wait_for_exit(limit)
    }
}

impl Drop for DriftlineProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The environment that points `driftline run` with configs/demo.toml at a broker and topics.
pub fn pipeline_env(
    bootstrap: &str,
    input: &str,
    output: &str,
    dlq: &str,
    group: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("DRIFTLINE__KAFKA__BOOTSTRAP_SERVERS", bootstrap.to_string()),
        ("DRIFTLINE__KAFKA__INPUT_TOPICS", input.to_string()),
        ("DRIFTLINE__KAFKA__OUTPUT_TOPIC", output.to_string()),
        ("DRIFTLINE__KAFKA__DLQ_TOPIC", dlq.to_string()),
        ("DRIFTLINE__KAFKA__GROUP_ID", group.to_string()),
        // configs/demo.toml turns drift on; tests of drift turn it back on with their topics.
        ("DRIFTLINE__DRIFT__ENABLED", "false".to_string()),
        // Tests run side by side: each health server takes a port of its own.
        ("DRIFTLINE__HEALTH__LISTEN", "127.0.0.1:0".to_string()),
    ]
}

/// The demo fixture: events and the outputs Python onnxruntime gave for them.
pub fn fixture() -> Vec<(serde_json::Value, i64, Vec<f64>)> {
    let text = std::fs::read_to_string(repo_root().join("tests/fixtures/demo_predictions.jsonl"))
        .expect("fixture");
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("fixture line");
            let probs = v["probabilities"]
                .as_array()
                .expect("probabilities")
                .iter()
                .map(|p| p.as_f64().expect("p"))
                .collect();
            (
                v["event"].clone(),
                v["label"].as_i64().expect("label"),
                probs,
            )
        })
        .collect()
}

/// Malformed payloads of several kinds, each with the reason driftline must give.
pub fn malformed_payloads() -> Vec<(&'static [u8], &'static str)> {
    vec![
        (
            b"{\"device_id\":\"x\",\"ts\":1,\"temperature\":",
            "invalid_json",
        ),
        (b"", "empty_payload"),
        (b"[1,2,3]", "not_an_object"),
        (b"{\"ts\":1,\"temperature\":1}", "missing_field"),
        (
            b"{\"device_id\":\"x\",\"ts\":1,\"temperature\":\"hot\"}",
            "wrong_type",
        ),
        (
            b"{\"device_id\":\"x\",\"ts\":1,\"temperature\":1e39}",
            "out_of_range",
        ),
        (
            b"{\"device_id\":\"x\",\"device_id\":\"y\"}",
            "duplicate_field",
        ),
        (b"\xff\xfe garbage", "invalid_json"),
    ]
}

/// How many partitions `topic` has.
pub fn partition_count(bootstrap: &str, topic: &str) -> i32 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    metadata
        .topics()
        .iter()
        .map(|t| t.partitions().len() as i32)
        .sum()
}

/// Number of records in a topic (sum of high watermarks; topics here are never compacted).
pub fn topic_size(bootstrap: &str, topic: &str, partitions: i32) -> i64 {
    watermarks(bootstrap, topic, partitions)
        .into_iter()
        .map(|w| w.map_or(0, |(_, high)| high))
        .sum()
}

/// (low, high) watermarks of each partition of `topic`.
fn watermarks(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
) -> Vec<rdkafka::error::KafkaResult<(i64, i64)>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("consumer");
    (0..partitions)
        .map(|p| consumer.fetch_watermarks(topic, p, Duration::from_secs(5)))
        .collect()
}

/// The low watermark of each partition of `topic`: above 0 where the broker deleted records
/// (the MockCluster keeps only 5 MiB per partition).
pub fn low_watermarks(bootstrap: &str, topic: &str, partitions: i32) -> Vec<i64> {
    watermarks(bootstrap, topic, partitions)
        .into_iter()
        .map(|w| w.expect("watermarks").0)
        .collect()
}

/// The high watermark (the next offset) of each partition of `topic`.
pub fn high_watermarks(bootstrap: &str, topic: &str, partitions: i32) -> Vec<i64> {
    watermarks(bootstrap, topic, partitions)
        .into_iter()
        .map(|w| w.expect("watermarks").1)
        .collect()
}

/// The offset `group` has committed on each partition of `topic` (-1 where none), read with an
/// OffsetFetch as a non-member: it neither joins the group nor moves its partitions.
pub fn committed_offsets(bootstrap: &str, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut list = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition(topic, p);
    }
    let Ok(offsets) = consumer.committed_offsets(list, Duration::from_secs(10)) else {
        return vec![-1; partitions as usize];
    };
    (0..partitions)
        .map(
            |p| match offsets.find_partition(topic, p).map(|e| e.offset()) {
                Some(rdkafka::Offset::Offset(o)) => o,
                _ => -1,
            },
        )
        .collect()
}

/// Waits (bounded) until `group`'s committed offsets on `topic` reach its high watermarks: every
/// input then has its outputs acknowledged. Returns the last committed offsets seen.
pub fn wait_for_commits_to_reach_the_end(
    bootstrap: &str,
    group: &str,
    topic: &str,
    partitions: i32,
    limit: Duration,
) -> Vec<i64> {
    let started = Instant::now();
    let end = high_watermarks(bootstrap, topic, partitions);
    loop {
        let committed = committed_offsets(bootstrap, group, topic, partitions);
        if committed == end || started.elapsed() > limit {
            return committed;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Waits (bounded) until the topics together hold at least `n` records and have stopped
/// growing for `settle`; returns their size.
pub fn wait_for_outputs(
    bootstrap: &str,
    topics: &[(&str, i32)],
    n: i64,
    settle: Duration,
    limit: Duration,
) -> i64 {
    let started = Instant::now();
    let (mut last, mut since) = (-1, Instant::now());
    loop {
        let size: i64 = topics
            .iter()
            .map(|(t, p)| topic_size(bootstrap, t, *p))
            .sum();
        if size != last {
            (last, since) = (size, Instant::now());
        }
        if (size >= n && since.elapsed() >= settle) || started.elapsed() > limit {
            return size;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// An input record by its position: `(partition, offset) -> (key, payload)`.
pub type InputRecords = HashMap<(i32, i64), (Option<Vec<u8>>, Vec<u8>)>;

/// Reads a topic back as `(partition, offset) -> (key, payload)`.
pub fn read_inputs(bootstrap: &str, topic: &str, expected: usize) -> InputRecords {
    let consumer = reader(bootstrap, topic);
    let started = Instant::now();
    let mut out = HashMap::new();
    while out.len() < expected && started.elapsed() < Duration::from_secs(120) {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            let m = m.expect("read input");
            out.insert(
                (m.partition(), m.offset()),
                (
                    m.key().map(<[u8]>::to_vec),
                    m.payload().unwrap_or_default().to_vec(),
                ),
            );
        }
    }
    out
}
