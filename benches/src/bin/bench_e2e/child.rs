//! One measured run, in a process of its own (so its peak RSS and CPU time are its own): the
//! driver starts `bench_e2e child MODE …` and reads one JSON line from it.
//!
//! Throughput is timed from the first event consumed to the acknowledgement of the last output,
//! so group join and model loading are not counted; latency is the event's Kafka timestamp to
//! its output's acknowledgement.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use driftline::telemetry::metrics::LatencyHistogram;
use driftline::{Pipeline, Settings};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext};
use serde_json::json;

/// What every mode is told.
pub struct ChildArgs {
    pub mode: String,
    pub bootstrap: String,
    pub input: String,
    pub output: String,
    pub group: String,
    pub events: u64,
    pub drift: bool,
    pub limit: Duration,
}

impl ChildArgs {
    pub fn parse(args: &[String]) -> anyhow::Result<ChildArgs> {
        let get = |i: usize| args.get(i).cloned().context("child: missing argument");
        Ok(ChildArgs {
            mode: get(0)?,
            bootstrap: get(1)?,
            input: get(2)?,
            output: get(3)?,
            group: get(4)?,
            events: get(5)?.parse()?,
            drift: get(6)? == "drift",
            limit: Duration::from_secs(get(7)?.parse()?),
        })
    }
}

pub fn run(args: ChildArgs) -> anyhow::Result<()> {
    let result = match args.mode.as_str() {
        "passthrough" => passthrough(&args)?,
        "driftline" => driftline_run(&args)?,
        "memory" => crate::memory::run(args.events)?,
        other => bail!("unknown mode {other}"),
    };
    println!("{result}");
    Ok(())
}

/// The demo's settings (16 float features, the demo model) pointed at the run's topics.
pub fn settings(args: &ChildArgs) -> anyhow::Result<Settings> {
    let root = driftline_benches::repo_path("");
    let env = [
        ("KAFKA__BOOTSTRAP_SERVERS", args.bootstrap.clone()),
        ("KAFKA__INPUT_TOPICS", args.input.clone()),
        ("KAFKA__OUTPUT_TOPIC", args.output.clone()),
        ("KAFKA__DLQ_TOPIC", format!("{}.dlq", args.output)),
        ("KAFKA__DRIFT_TOPIC", format!("{}.drift", args.output)),
        ("KAFKA__ALERTS_TOPIC", format!("{}.alerts", args.output)),
        ("KAFKA__GROUP_ID", args.group.clone()),
        ("DRIFT__ENABLED", args.drift.to_string()),
        ("HEALTH__LISTEN", String::new()),
        // BENCH_E2E_LOG=warn (or info) shows what the pipeline says during a run.
        (
            "LOG__LEVEL",
            std::env::var("BENCH_E2E_LOG").unwrap_or_else(|_| "error".into()),
        ),
        (
            "MODEL__PATH",
            root.join("models/anomaly_classifier.onnx")
                .display()
                .to_string(),
        ),
    ]
    .map(|(k, v)| (format!("DRIFTLINE__{k}"), v));
    // The run's own settings last (the driver sets `pipeline.decode_threads` for some runs).
    let own = std::env::vars().filter(|(k, _)| k.starts_with("DRIFTLINE__"));
    let env = env
        .into_iter()
        .chain(
            std::env::var("ORT_DYLIB_PATH")
                .ok()
                .map(|p| ("DRIFTLINE__RUNTIME__ONNXRUNTIME_LIBRARY".to_string(), p)),
        )
        .chain(own);
    Ok(Settings::load_with_env(
        Some(&root.join("configs/demo.toml")),
        env,
    )?)
}

fn result(
    events: u64,
    seconds: f64,
    latency: &LatencyHistogram,
    rss_samples: &[u64],
    threads: serde_json::Map<String, serde_json::Value>,
) -> serde_json::Value {
    json!({
        "events": events,
        "seconds": seconds,
        "p50_ms": latency.quantile_ms(0.50),
        "p95_ms": latency.quantile_ms(0.95),
        "p99_ms": latency.quantile_ms(0.99),
        "rss_samples": rss_samples,
        "peak_rss_bytes": peak_rss_bytes(),
        "threads": threads,
    })
}

/// CPU seconds per thread name (threads of one name added up), from /proc/self/task: where a
/// run's CPU went, for the report.
pub fn thread_cpu() -> serde_json::Map<String, serde_json::Value> {
    let mut by_name = std::collections::BTreeMap::<String, f64>::new();
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
                continue;
            };
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                continue;
            };
            let name = stat[open + 1..close].to_string();
            let mut fields = stat[close + 1..].split_whitespace().skip(11);
            let user: f64 = fields.next().and_then(|f| f.parse().ok()).unwrap_or(0.0);
            let system: f64 = fields.next().and_then(|f| f.parse().ok()).unwrap_or(0.0);
            *by_name.entry(name).or_default() += (user + system) / ticks;
        }
    }
    by_name
        .into_iter()
        .map(|(k, v)| (k, serde_json::json!((v * 100.0).round() / 100.0)))
        .collect()
}

/// This process's resident high-water mark (VmHWM), in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The whole pipeline, in process, until `events` outputs are acknowledged.
fn driftline_run(args: &ChildArgs) -> anyhow::Result<serde_json::Value> {
    let settings = settings(args)?;
    driftline::telemetry::init(&settings.log);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let pipeline = Pipeline::build(settings)?;
        let metrics = pipeline.metrics();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let watcher = std::thread::spawn({
            let metrics = Arc::clone(&metrics);
            let (n, limit) = (args.events, args.limit);
            move || {
                let started = Instant::now();
                let mut first: Option<Instant> = None;
                let mut rss = Vec::new();
                let mut next_sample = Instant::now();
                let mut progress = Progress::default();
                let timeline = std::env::var_os("BENCH_E2E_TIMELINE").is_some();
                loop {
                    let m = metrics.snapshot();
                    if first.is_none() && m.events_in > 0 {
                        first = Some(Instant::now());
                    }
                    let stalled = progress.stalled(m.predictions_out + m.dead_letters_out);
                    if Instant::now() >= next_sample {
                        rss.push(driftline::telemetry::process::resident_bytes().unwrap_or(0));
                        next_sample += Duration::from_secs(1);
                        if timeline {
                            // One line a second: where a run falls behind, and which stage.
                            eprintln!(
                                "t={} in={} out={} rss_mib={}",
                                rss.len(),
                                m.events_in,
                                m.predictions_out,
                                rss.last().copied().unwrap_or(0) >> 20
                            );
                        }
                    }
                    if m.predictions_out + m.dead_letters_out >= n
                        || started.elapsed() > limit
                        || stalled
                    {
                        let seconds = progress
                            .last_change
                            .duration_since(first.unwrap_or(started))
                            .as_secs_f64();
                        // Before shutdown joins the stage threads and they disappear.
                        let threads = thread_cpu();
                        let _ = done_tx.send(());
                        return (
                            m.predictions_out + m.dead_letters_out,
                            seconds,
                            rss,
                            threads,
                        );
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        });
        pipeline
            .run(async {
                let _ = done_rx.await;
            })
            .await?;
        let (events, seconds, rss, threads) = watcher.join().expect("watcher");
        Ok(result(events, seconds, &metrics.end_to_end, &rss, threads))
    })
}

/// Ends a run whose outputs stopped growing: on the MockCluster (5 MiB per partition) a consumer
/// that falls far enough behind loses events to retention, and their outputs never come. The
/// run then reports what was acknowledged, timed to the last acknowledgement.
struct Progress {
    count: u64,
    last_change: Instant,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            count: 0,
            last_change: Instant::now(),
        }
    }
}

impl Progress {
    const IDLE: Duration = Duration::from_secs(20);

    fn stalled(&mut self, count: u64) -> bool {
        if count != self.count {
            (self.count, self.last_change) = (count, Instant::now());
        }
        self.count > 0 && self.last_change.elapsed() > Self::IDLE
    }
}

/// Counts acknowledgements and their latency.
struct Acks {
    acked: AtomicU64,
    latency: LatencyHistogram,
}

impl ClientContext for Acks {}

impl ProducerContext for Acks {
    type DeliveryOpaque = Box<i64>;

    fn delivery(&self, result: &DeliveryResult<'_>, kafka_timestamp_ms: Box<i64>) {
        if result.is_ok() {
            let ms = driftline::clock::now_ms() - *kafka_timestamp_ms;
            self.latency.record_us(ms.max(0) as u64 * 1000);
            self.acked.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// (a) The I/O limit: consume → produce the same bytes, with driftline's client settings.
fn passthrough(args: &ChildArgs) -> anyhow::Result<serde_json::Value> {
    let settings = settings(args)?;
    let k = &settings.kafka;
    let mut consumer_config = ClientConfig::new();
    for (key, value) in k.common.iter().chain(&k.consumer) {
        consumer_config.set(key, value);
    }
    let consumer: BaseConsumer = consumer_config
        .set("bootstrap.servers", &args.bootstrap)
        .set("group.id", &args.group)
        .set("auto.offset.reset", "earliest")
        .create()?;
    consumer.subscribe(&[&args.input])?;
    let mut producer_config = ClientConfig::new();
    for (key, value) in k.common.iter().chain(&k.producer) {
        producer_config.set(key, value);
    }
    let producer: ThreadedProducer<Acks> = producer_config
        .set("bootstrap.servers", &args.bootstrap)
        .create_with_context(Acks {
            acked: AtomicU64::new(0),
            latency: LatencyHistogram::default(),
        })?;
    let started = Instant::now();
    let mut first = None;
    let mut rss = Vec::new();
    let mut next_sample = Instant::now();
    let mut progress = Progress::default();
    while producer.context().acked.load(Ordering::Relaxed) < args.events
        && started.elapsed() < args.limit
        && !progress.stalled(producer.context().acked.load(Ordering::Relaxed))
    {
        if Instant::now() >= next_sample {
            rss.push(driftline::telemetry::process::resident_bytes().unwrap_or(0));
            next_sample += Duration::from_secs(1);
        }
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = message?;
        first.get_or_insert_with(Instant::now);
        let timestamp = message.timestamp().to_millis().unwrap_or(0);
        let mut record = BaseRecord::with_opaque_to(&args.output, Box::new(timestamp))
            .payload(message.payload().unwrap_or_default());
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        while let Err((_, r)) = producer.send(record) {
            record = r;
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    let seconds = progress
        .last_change
        .duration_since(first.unwrap_or(started))
        .as_secs_f64();
    let acks = producer.context();
    Ok(result(
        acks.acked.load(Ordering::Relaxed),
        seconds,
        &acks.latency,
        &rss,
        thread_cpu(),
    ))
}
