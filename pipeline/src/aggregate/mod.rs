//! `driftline aggregate`: one drift view for a whole consumer group. It reads the partials
//! that every `driftline run` instance of the fleet publishes (`fleet.partials_topic`, in its
//! own consumer group `aggregate.group_id`), merges each time window's partials over every
//! partition of the input topic ([`pending`]), judges the merged window with the instance's
//! own monitor (same statistics, correction, verdict and hysteresis), and publishes fleet
//! reports and alerts in the instance's schema to `aggregate.reports_topic` and
//! `aggregate.alerts_topic`.
//!
//! At-least-once, and no window twice: the partials topic is committed only up to the first
//! partial of the oldest window not yet judged, and only after the reports of every judged
//! window were acknowledged; an aggregator that starts (or takes over the fleet's partition)
//! first reads its reports topic back, so windows judged already are skipped and each
//! column's alert hysteresis continues from its published verdicts.
pub mod metrics;
pub mod pending;
mod read_back;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use driftline_operators::drift::monitor::DriftMonitor;
use driftline_operators::drift::partial::FleetRecord;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde::Serialize;

use crate::clock::now_ms;
use crate::config::Settings;
use crate::kafka::client::{client_config, Role};
use crate::kafka::producer::send_waiting;
use crate::kafka::reader::PartitionReader;
use crate::stages::drift::fleet::partials_partition;
use crate::stages::drift::tracker::{load_profile, monitor_settings};
use crate::telemetry::health::HealthState;
use crate::telemetry::otel::MetricsExporter;
use crate::telemetry::server::HealthServer;
use metrics::{AggregateMetrics, AggregateSummary};
use pending::{FleetWindows, Taken};
use read_back::{read_back, PartlyPublished};

type FleetProducer = ThreadedProducer<DefaultProducerContext>;

/// The fleet's name on its reports (`instance`), so that one reports topic can hold several
/// fleets and a read-back finds its own.
pub fn fleet_instance(settings: &Settings) -> String {
    format!("fleet:{}", settings.fleet_name())
}

/// Runs until `stop` is set.
pub fn run(settings: &Settings, stop: &AtomicBool) -> anyhow::Result<AggregateSummary> {
    if !settings.fleet.enabled {
        bail!(
            "driftline aggregate merges what instances with fleet.enabled publish: give it their config, with fleet.enabled = true"
        );
    }
    let (f, a) = (&settings.fleet, &settings.aggregate);
    let reader = PartitionReader::new(settings, Duration::from_secs(30))?;
    let input_partitions = reader.partitions(&settings.kafka.input_topics[0])?;
    let partials_partitions = reader.partitions(&f.partials_topic)?;
    for topic in [&a.reports_topic, &a.alerts_topic] {
        reader.partitions(topic)?;
    }
    let fleet = settings.fleet_name();
    let my_partition = partials_partition(&fleet, partials_partitions);
    let profile = load_profile(Path::new(&settings.drift.profile))?;
    tracing::info!(fleet = %fleet, partitions = input_partitions, partials = %f.partials_topic, partition = my_partition, "aggregate: merging the fleet's partials");

    let metrics = Arc::new(AggregateMetrics::default());
    let health = Arc::new(HealthState::new(settings.health.stall_timeout_ms));
    let exporter = Arc::new(MetricsExporter::new(settings)?);
    metrics.observe(&exporter);
    let _server = match settings.health.listen.as_str() {
        "" => None,
        listen => Some(HealthServer::start(
            listen,
            Arc::clone(&health),
            Arc::clone(&exporter),
            None,
            None,
        )?),
    };

    let producer = create_producer(settings)?;
    let consumer = create_consumer(settings)?;
    consumer.subscribe(&[&f.partials_topic])?;
    health.consumer.set_up(true);
    health.producer.set_up(true);

    let new_state = || -> anyhow::Result<(DriftMonitor, FleetWindows, Option<PartlyPublished>)> {
        let mut monitor_settings = monitor_settings(settings);
        monitor_settings.instance = fleet_instance(settings);
        let mut monitor = DriftMonitor::new(&profile, monitor_settings)?;
        let mut windows = FleetWindows::new(&fleet, &profile.id, input_partitions, a.max_wait_ms);
        let partly = read_back(settings, &reader, &mut monitor, &mut windows)?;
        Ok((monitor, windows, partly))
    };
    let (mut monitor, mut windows, mut partly) = new_state()?;
    health.model_loaded.store(true, Ordering::Relaxed);

    let mut next_offsets: HashMap<i32, i64> = HashMap::new();
    let mut holds_fleet = false;
    let mut last_commit = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        health.heartbeat();
        let assigned: Vec<i32> = consumer
            .assignment()
            .map(|tpl| tpl.elements().iter().map(|e| e.partition()).collect())
            .unwrap_or_default();
        health
            .assigned_partitions
            .store(assigned.len(), Ordering::Relaxed);
        // The fleet's partition moved here (startup, or another aggregator stopped): start
        // from what the reports topic says was judged.
        let holds_now = assigned.contains(&my_partition);
        if holds_now && !holds_fleet {
            (monitor, windows, partly) = new_state()?;
            next_offsets.clear();
            tracing::info!(
                partition = my_partition,
                "aggregate: holding the fleet's partition"
            );
        }
        holds_fleet = holds_now;
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            // As the pipeline's consumer: librdkafka retries, the error is worth a line.
            Some(Err(e)) => tracing::warn!(error = %e, "aggregate: consumer error"),
            Some(Ok(m)) => {
                next_offsets.insert(m.partition(), m.offset() + 1);
                let record = m
                    .payload()
                    .and_then(|b| serde_json::from_slice::<FleetRecord>(b).ok());
                let taken = match record {
                    Some(r) if m.partition() == my_partition => {
                        windows.take(r, m.offset(), now_ms())
                    }
                    _ => Taken::Ignored,
                };
                metrics.taken(taken);
            }
        }
        let due = windows.due(now_ms());
        for window in &due {
            let outcome = match monitor.judge_fleet(window) {
                Ok(outcome) => outcome,
                Err(why) => {
                    // Counts that do not add up come from a publisher configured apart from
                    // the profile: say so and go on with the next window.
                    tracing::error!(start_ms = window.start_ms, %why, "fleet window skipped");
                    continue;
                }
            };
            // Alerts before reports: an aggregator killed in between publishes the alerts
            // again (at least once) rather than never (the read-back finds the reports).
            for alert in &outcome.alerts {
                tracing::warn!(column = %alert.column, state = ?alert.state, "fleet drift alert");
                send(&producer, &a.alerts_topic, &alert.column, alert)?;
            }
            let already = partly
                .take_if(|p| p.start_ms == window.start_ms)
                .map(|p| p.columns)
                .unwrap_or_default();
            let mut sent = 0;
            for report in outcome
                .reports
                .iter()
                .filter(|r| !already.contains(&r.column))
            {
                send(&producer, &a.reports_topic, &report.column, report)?;
                sent += 1;
            }
            let complete = window.missing_partitions.is_empty();
            metrics.judged(complete, sent, outcome.alerts.len());
            tracing::info!(
                start_ms = window.start_ms,
                events = window.events(),
                complete,
                missing = ?window.missing_partitions,
                "fleet window judged"
            );
        }
        metrics.pending.store(windows.pending(), Ordering::Relaxed);
        if !due.is_empty() || last_commit.elapsed() > Duration::from_secs(1) {
            settle(
                &producer,
                &consumer,
                &f.partials_topic,
                &next_offsets,
                my_partition,
                &windows,
            )?;
            last_commit = Instant::now();
        }
    }
    settle(
        &producer,
        &consumer,
        &f.partials_topic,
        &next_offsets,
        my_partition,
        &windows,
    )?;
    health.stopping.store(true, Ordering::Relaxed);
    exporter.shutdown();
    Ok(metrics.summary())
}

fn create_producer(settings: &Settings) -> anyhow::Result<FleetProducer> {
    client_config(settings, Role::Producer)
        .create()
        .context("creating the aggregator's producer")
}

fn create_consumer(settings: &Settings) -> anyhow::Result<BaseConsumer> {
    client_config(settings, Role::Consumer)
        .set("group.id", &settings.aggregate.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .context("creating the aggregator's consumer")
}

fn send(
    producer: &FleetProducer,
    topic: &str,
    key: &str,
    value: &impl Serialize,
) -> anyhow::Result<()> {
    let payload = serde_json::to_vec(value)?;
    let record = BaseRecord::to(topic)
        .key(key.as_bytes())
        .payload(&payload[..]);
    send_waiting(producer, record).with_context(|| format!("producing to {topic}"))
}

/// Waits for the reports sent so far to be acknowledged, then commits the partials they came
/// from.
fn settle(
    producer: &FleetProducer,
    consumer: &BaseConsumer,
    topic: &str,
    next_offsets: &HashMap<i32, i64>,
    my_partition: i32,
    windows: &FleetWindows,
) -> anyhow::Result<()> {
    producer
        .flush(Duration::from_secs(30))
        .context("fleet reports were not acknowledged")?;
    commit(consumer, topic, next_offsets, my_partition, windows);
    Ok(())
}

/// Commits what may be committed: the fleet's partition up to its oldest window in waiting,
/// the others (other fleets') up to what was read.
fn commit(
    consumer: &BaseConsumer,
    topic: &str,
    next_offsets: &HashMap<i32, i64>,
    my_partition: i32,
    windows: &FleetWindows,
) {
    let mut tpl = TopicPartitionList::new();
    for (&partition, &next) in next_offsets {
        let offset = match partition == my_partition {
            true => windows.commit_offset(next),
            false => next,
        };
        let _ = tpl.add_partition_offset(topic, partition, Offset::Offset(offset));
    }
    if tpl.count() == 0 {
        return;
    }
    if let Err(e) = consumer.commit(&tpl, CommitMode::Sync) {
        tracing::warn!(error = %e, "aggregate: committing the partials topic");
    }
}
