//! `driftline demo` (what `make run` runs): the embedded broker, the demo model and a live feed
//! of simulated sensor events with their labels a little later ([`demo_labels`]), with a live
//! status line and a closing summary. With
//! `--bootstrap` it runs against any Kafka-protocol broker instead (topics are created with the
//! admin API when missing).
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;

use crate::cli::demo_labels::{self, DemoLabels};
use crate::cli::gen::{self, GenOptions};
use crate::config::Settings;
use crate::kafka::embedded::EmbeddedBroker;
use crate::telemetry::metrics::MetricsSnapshot;
use crate::topology::Pipeline;

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub config: PathBuf,
    pub bootstrap: Option<String>,
    pub events: u64,
    pub rate: u64,
    pub partitions: i32,
    pub malformed_every: u64,
    pub drift_after: Option<u64>,
    /// Seed of the simulated sensors.
    pub seed: u64,
    /// Labels a little after each event, and performance per window in the summary.
    pub labels: bool,
}

pub async fn run(options: DemoOptions) -> anyhow::Result<MetricsSnapshot> {
    let mut settings = Settings::load(Some(&options.config))?;
    crate::telemetry::logs::init(&settings.log);
    let embedded = match options.bootstrap {
        Some(_) => None,
        None => Some(EmbeddedBroker::start(1)?),
    };
    let bootstrap = match (&options.bootstrap, &embedded) {
        (Some(b), _) => b.clone(),
        (None, Some(broker)) => broker.bootstrap_servers().to_string(),
        (None, None) => unreachable!("an embedded broker is started when no bootstrap is given"),
    };
    settings.kafka.bootstrap_servers = bootstrap.clone();
    // A demo must not fail because another process (another demo) holds the health port.
    let listen = &settings.health.listen;
    if !listen.is_empty() && std::net::TcpListener::bind(listen).is_err() {
        settings.health.listen = "127.0.0.1:0".into();
    }
    let labels: Option<DemoLabels> = match options.labels && settings.drift.enabled {
        true => Some(demo_labels::prepare(&mut settings, options.seed)?),
        false => None,
    };
    let k = &settings.kafka;
    let topics: Vec<&str> = k
        .input_topics
        .iter()
        .map(String::as_str)
        .chain([k.output_topic.as_str(), k.dlq_topic.as_str()])
        .chain(
            settings
                .drift
                .enabled
                .then_some([k.drift_topic.as_str(), k.alerts_topic.as_str()])
                .into_iter()
                .flatten(),
        )
        .chain((!k.labels_topic.is_empty()).then_some(k.labels_topic.as_str()))
        .collect();
    create_topics(&bootstrap, &topics, options.partitions, embedded.as_ref()).await?;
    let input_topic = k.input_topics[0].clone();
    println!(
        "driftline demo: broker at {bootstrap}{}",
        if options.bootstrap.is_none() {
            " (embedded)"
        } else {
            ""
        }
    );
    println!(
        "  watch the predictions:  kcat -b {bootstrap} -C -t {} -o beginning",
        k.output_topic
    );
    println!(
        "  watch the dead letters: kcat -b {bootstrap} -C -t {} -o beginning -f '%h %s\\n'",
        k.dlq_topic
    );
    println!(
        "  watch the drift alerts: kcat -b {bootstrap} -C -t {} -o beginning",
        k.alerts_topic
    );

    let pipeline = Pipeline::build(settings.clone())?;
    println!(
        "  model {} on {}, {} events at {}/s",
        settings.model.name,
        pipeline.execution_provider(),
        options.events,
        options.rate
    );
    if let Some(addr) = pipeline.health_addr() {
        println!("  health and metrics:     curl http://{addr}/readyz  (and /metrics)");
    }
    let metrics = pipeline.metrics();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(pipeline.run(async {
        let _ = stop_rx.await;
    }));

    let stop_feed = Arc::new(AtomicBool::new(false));
    let feed_options = GenOptions {
        count: options.events,
        rate: options.rate,
        malformed_every: options.malformed_every,
        drift_after: options.drift_after,
        seed: options.seed,
        labels: labels.as_ref().map(|l| l.feed.clone()),
        ..GenOptions::default()
    };
    let feed = {
        let (bootstrap, stop) = (bootstrap.clone(), Arc::clone(&stop_feed));
        tokio::task::spawn_blocking(move || {
            gen::produce(&bootstrap, &input_topic, feed_options, &stop)
        })
    };

    let started = Instant::now();
    let limit = Duration::from_secs_f64(options.events as f64 / options.rate.max(1) as f64)
        + Duration::from_secs(60);
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    let (mut last_in, mut interrupted) = (0, false);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = tokio::signal::ctrl_c() => { interrupted = true; }
        }
        let m = metrics.snapshot();
        let done = m.predictions_out + m.dead_letters_out;
        eprint!(
            "\r[{:>4.0}s] in {:>9}  {:>7}/s  predictions {:>9}  DLQ {:>6}  p99 {:>7}   ",
            started.elapsed().as_secs_f64(),
            m.events_in,
            m.events_in - last_in,
            m.predictions_out,
            m.dead_letters_out,
            m.latency_p99_ms
                .map_or("-".into(), |p| format!("{p:.1} ms"))
        );
        last_in = m.events_in;
        // With labels, the last windows close once their labels came or were given up.
        let windows_closed = labels.as_ref().is_none_or(|l| {
            let closed = metrics.performance_reports.load(Ordering::Relaxed);
            closed >= m.predictions_out / l.window_events
        });
        if interrupted
            || (feed.is_finished() && done >= options.events && windows_closed)
            || started.elapsed() > limit
        {
            break;
        }
    }
    eprintln!();
    stop_feed.store(true, Ordering::Relaxed);
    let fed = feed.await.context("the event feed")??;
    let _ = stop_tx.send(());
    let summary = running.await.context("the pipeline task")??;
    print_summary(&summary, fed.produced, fed.malformed, started.elapsed());
    let performance_alerts = metrics.performance_alerts.load(Ordering::Relaxed);
    if labels.is_some() {
        println!("  performance alerts  {performance_alerts}");
    }
    if summary.drift_alerts + performance_alerts > 0 {
        print_alerts(&bootstrap, &settings.kafka.alerts_topic)?;
    }
    if let Some(labels) = &labels {
        demo_labels::print_performance(&bootstrap, &settings.kafka.drift_topic, labels)?;
    }
    Ok(summary)
}

async fn create_topics(
    bootstrap: &str,
    topics: &[&str],
    partitions: i32,
    embedded: Option<&EmbeddedBroker>,
) -> anyhow::Result<()> {
    if let Some(broker) = embedded {
        for t in topics {
            broker.create_topic(t, partitions)?;
        }
        return Ok(());
    }
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1)))
        .collect();
    for result in admin
        .create_topics(
            &new,
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await?
    {
        match result {
            Ok(_) | Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => anyhow::bail!("cannot create topic {topic}: {code}"),
        }
    }
    Ok(())
}

fn print_summary(m: &MetricsSnapshot, fed: u64, malformed: u64, elapsed: Duration) {
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1} ms"));
    println!("summary after {:.1}s", elapsed.as_secs_f64());
    println!("  events fed          {fed} ({malformed} malformed on purpose)");
    println!("  events consumed     {}", m.events_in);
    println!("  predictions out     {}", m.predictions_out);
    println!("  dead letters (DLQ)  {}", m.dead_letters_out);
    println!("  batches             {}", m.batches);
    println!(
        "  end-to-end latency  p50 {}  p95 {}  p99 {}  max {:.1} ms",
        ms(m.latency_p50_ms),
        ms(m.latency_p95_ms),
        ms(m.latency_p99_ms),
        m.latency_max_ms
    );
    let accounted = m.predictions_out + m.dead_letters_out;
    println!(
        "  accounted for       {accounted} of {fed} ({})",
        if accounted >= fed {
            "nothing lost"
        } else {
            "INCOMPLETE"
        }
    );
    println!("  drift reports       {}", m.drift_reports);
    println!("  drift alerts        {}", m.drift_alerts);
}

/// Reads the alerts topic back and prints each alert, as an alerting consumer would see it.
fn print_alerts(bootstrap: &str, topic: &str) -> anyhow::Result<()> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::Message;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "driftline-demo-summary")
        .set("enable.auto.commit", "false")
        .create()?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(5))?;
    let mut assignment = rdkafka::TopicPartitionList::new();
    for p in metadata.topics().iter().flat_map(|t| t.partitions()) {
        assignment.add_partition_offset(topic, p.id(), rdkafka::Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let mut idle = Instant::now();
    while idle.elapsed() < Duration::from_millis(1500) {
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        idle = Instant::now();
        let Ok(alert) =
            serde_json::from_slice::<serde_json::Value>(message?.payload().unwrap_or_default())
        else {
            continue;
        };
        if alert["kind"] == "performance" {
            // "performance open estimated accuracy from prediction 40000: 0.9528 outside [..]"
            println!(
                "    performance {} {} {} from prediction {}: {:.4} outside [{:.4}, {:.4}]",
                alert["state"].as_str().unwrap_or("?"),
                alert["source"].as_str().unwrap_or("?"),
                alert["metric"].as_str().unwrap_or("?"),
                alert["first_prediction"],
                alert["value"].as_f64().unwrap_or(f64::NAN),
                alert["lower_threshold"].as_f64().unwrap_or(f64::NAN),
                alert["upper_threshold"].as_f64().unwrap_or(f64::NAN),
            );
            continue;
        }
        // The statistics that said drift, each with its value and threshold.
        let mut said = Vec::new();
        if let Some(stats) = alert["statistics"].as_object() {
            for (name, s) in stats.iter().filter(|(_, s)| s["drift"] == true) {
                let (value, threshold) = match s["pvalue"].as_f64() {
                    Some(p) => (p, "p <="),
                    None => (s["value"].as_f64().unwrap_or(f64::NAN), ">="),
                };
                said.push(format!(
                    "{name} {value:.3e} ({threshold} {:.3e})",
                    s["threshold"].as_f64().unwrap_or(f64::NAN)
                ));
            }
        }
        println!(
            "    {:<8} {:<8} {:<18} window panes {}-{}: {}",
            alert["state"].as_str().unwrap_or("?"),
            alert["severity"].as_str().unwrap_or("?"),
            alert["column"].as_str().unwrap_or("?"),
            alert["window"]["first_pane"],
            alert["window"]["last_pane"],
            if said.is_empty() {
                "clean".to_string()
            } else {
                said.join(", ")
            },
        );
    }
    Ok(())
}
