//! The data path, top to bottom:
//!
//! ```text
//! source (async task) ─► decode ─► batch ──[bounded]──► infer (thread) ──[bounded]──► encode + sink (thread)
//!            └─► dead letters ──────────────────────────────────────────────────────────► sink
//! producer acknowledgements ─► OffsetTracker ─► consumer offset store ─► commit
//! ```
//!
//! The stages live in [`crate::stages`] (source, infer, sink, drift), the Kafka clients in
//! [`crate::kafka`]; this file wires them and owns the order of shutdown.
//!
//! Bounded channels are the backpressure: when inference or the broker is slow, the source stops
//! polling and lag grows, memory does not. On shutdown the source stops consuming and closes its
//! channel; each stage drains what it holds and closes the next; the producer flushes and the
//! consumer commits what was acknowledged.
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use driftline_operators::batch::{BatchBuilder, BatchPolicy};
use driftline_operators::decode::EventDecoder;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::producer::Producer;
use tokio::sync::mpsc;

use crate::config::Settings;
use crate::kafka::consumer::{self, SourceConsumer};
use crate::kafka::offsets::OffsetTracker;
use crate::kafka::producer::{self, SinkProducer};
use crate::models::set::ServingModels;
use crate::stages::drift::stage::{self as drift_stage, DriftStage};
use crate::stages::infer::infer_stage;
use crate::stages::messages::{QueuedBatch, ScoredBatch};
use crate::stages::reload::ModelReloader;
use crate::stages::sink::sink_stage;
use crate::stages::source::SourceStage;
use crate::telemetry::health::HealthState;
use crate::telemetry::metrics::{MetricsSnapshot, PipelineMetrics};
use crate::telemetry::otel::MetricsExporter;
use crate::telemetry::server::{HealthServer, Reload};

/// A pipeline whose model is loaded and whose clients are connected, ready to [`Pipeline::run`].
pub struct Pipeline {
    settings: Settings,
    models: ServingModels,
    reloader: Arc<ModelReloader>,
    metrics: Arc<PipelineMetrics>,
    tracker: Arc<OffsetTracker>,
    consumer: Arc<SourceConsumer>,
    producer: Arc<SinkProducer>,
    drift: Option<DriftStage>,
    health: Arc<HealthState>,
    exporter: Arc<MetricsExporter>,
    /// Serves probes and `/metrics` from build until the pipeline is dropped.
    health_server: Option<HealthServer>,
}

impl Pipeline {
    /// Loads the model first (a broken model must fail before we join the group), then connects.
    pub fn build(settings: Settings) -> anyhow::Result<Pipeline> {
        tracing::debug!(settings = %settings.redacted_toml(), "effective settings");
        let models = ServingModels::load(&settings, None)?;
        let identity = models.serving_identity();
        tracing::info!(model = %identity.name, version = %identity.version, sha256 = %identity.sha256, execution_provider = identity.execution_provider, models = %models.describe(), "models loaded");
        let exporter = Arc::new(MetricsExporter::new(&settings)?);
        let metrics = Arc::new(PipelineMetrics::new(exporter.meter()));
        metrics.set_models(&models);
        let reloader = Arc::new(ModelReloader::new(
            settings.clone(),
            &models,
            Arc::clone(&metrics),
        ));
        let health = Arc::new(HealthState::new(settings.health.stall_timeout_ms));
        health.model_loaded.store(true, Ordering::Relaxed);
        exporter.observe(&settings, &metrics, &health);
        // Up before the clients connect, so probes answer "not ready" rather than nothing.
        let health_server = match settings.health.listen.as_str() {
            "" => None,
            listen => Some(HealthServer::start(
                listen,
                Arc::clone(&health),
                Arc::clone(&exporter),
                settings
                    .health
                    .admin
                    .then(|| Arc::clone(&reloader) as Arc<dyn Reload>),
            )?),
        };
        let tracker = Arc::new(OffsetTracker::new());
        let producer = producer::create_producer(
            &settings,
            Arc::clone(&tracker),
            Arc::clone(&metrics),
            Arc::clone(&health),
        )
        .context("creating the producer")?;
        producer::check_output_topics(&settings, &producer)?;
        let drift = match settings.drift.enabled {
            true => Some(DriftStage::new(
                &settings,
                Arc::clone(&producer),
                Arc::clone(&metrics),
            )?),
            false => None,
        };
        let consumer = consumer::create_consumer(
            &settings,
            Arc::clone(&tracker),
            Arc::clone(&health),
            Arc::clone(&metrics),
        )
        .context("creating the consumer")?;
        Ok(Pipeline {
            settings,
            models,
            reloader,
            metrics,
            tracker,
            consumer,
            producer,
            drift,
            health,
            exporter,
            health_server,
        })
    }

    /// Where the health server listens (the port is chosen by the OS for "IP:0").
    pub fn health_addr(&self) -> Option<SocketAddr> {
        self.health_server.as_ref().map(HealthServer::addr)
    }

    /// Live counters, readable while the pipeline runs.
    pub fn metrics(&self) -> Arc<PipelineMetrics> {
        Arc::clone(&self.metrics)
    }

    pub fn execution_provider(&self) -> &'static str {
        self.models.execution_provider()
    }

    /// Runs until `shutdown` resolves (or a fatal error), then drains, flushes and commits.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<MetricsSnapshot> {
        let Pipeline {
            settings,
            models,
            reloader,
            metrics,
            tracker,
            consumer,
            producer,
            drift,
            health,
            exporter,
            health_server,
        } = self;
        let capacity = settings.pipeline.channel_capacity;
        let (batch_tx, batch_rx) = mpsc::channel::<QueuedBatch>(capacity);
        let (scored_tx, scored_rx) = mpsc::channel::<ScoredBatch>(capacity);

        let (drift_tx, drift_thread) = match drift {
            Some(stage) => {
                let (tx, rx) = drift_stage::channel(settings.drift.channel_capacity);
                let thread = std::thread::Builder::new()
                    .name("driftline-drift".into())
                    .spawn(move || stage.run(rx))
                    .context("starting the drift thread")?;
                (Some(tx), Some(thread))
            }
            None => (None, None),
        };
        // Hot reload: SIGHUP and the file watcher load and check a new model off the hot path;
        // the inference stage swaps it in between two batches.
        let reload_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        if settings.model.watch_interval_ms > 0 {
            reloader.watch(
                Duration::from_millis(settings.model.watch_interval_ms),
                Arc::clone(&reload_stop),
            );
        }
        let sighup = tokio::spawn(reload_on_sighup(Arc::clone(&reloader)));
        let infer_metrics = Arc::clone(&metrics);
        let infer_reloader = Arc::clone(&reloader);
        let infer_thread = std::thread::Builder::new()
            .name("driftline-infer".into())
            .spawn(move || {
                infer_stage(
                    models,
                    &infer_reloader,
                    &infer_metrics,
                    batch_rx,
                    scored_tx,
                    drift_tx,
                )
            })
            .context("starting the inference thread")?;
        let sink_producer = Arc::clone(&producer);
        let sink_tracker = Arc::clone(&tracker);
        let sink_metrics = Arc::clone(&metrics);
        let output_topic = settings.kafka.output_topic.clone();
        let shadow_topic = settings.kafka.shadow_topic.clone();
        let sink_thread = std::thread::Builder::new()
            .name("driftline-sink".into())
            .spawn(move || {
                sink_stage(
                    &sink_producer,
                    &sink_tracker,
                    &sink_metrics,
                    &output_topic,
                    &shadow_topic,
                    scored_rx,
                )
            })
            .context("starting the sink thread")?;

        let mut source = SourceStage {
            consumer: &consumer,
            producer: &producer,
            tracker: &tracker,
            metrics: &metrics,
            health: &health,
            decoder: EventDecoder::new(&settings.schema, settings.pipeline.max_event_bytes),
            builder: BatchBuilder::new(&settings.schema, settings.batch.max_rows),
            policy: BatchPolicy {
                max_rows: settings.batch.max_rows,
                linger: Duration::from_millis(settings.batch.linger_ms),
            },
            dlq_topic: &settings.kafka.dlq_topic,
            max_dead_letter_bytes: settings.pipeline.max_dead_letter_bytes,
            max_key_bytes: settings.pipeline.max_key_bytes,
            batch_tx,
            decode_time: Duration::ZERO,
            links: Vec::new(),
        };
        let source_result = source.run(shutdown).await;
        drop(source);

        // The stages drain in order as each channel closes; the producer gets what is left of
        // the grace period to flush.
        health.stopping.store(true, Ordering::Relaxed);
        reload_stop.store(true, Ordering::Relaxed);
        sighup.abort();
        // A fifth of the grace (at most a second) is kept for the final commit and exit.
        let grace = Duration::from_millis(settings.pipeline.shutdown_grace_ms);
        let deadline = Instant::now() + grace - (grace / 5).min(Duration::from_secs(1));
        let infer_result = join_blocking(infer_thread).await;
        let sink_result = join_blocking(sink_thread).await;
        let drift_result = match drift_thread {
            Some(thread) => join_blocking(thread).await,
            None => Ok(()),
        };
        let flush_producer = Arc::clone(&producer);
        let grace = deadline.saturating_duration_since(Instant::now());
        let flush = tokio::task::spawn_blocking(move || flush_producer.flush(grace)).await;
        match flush {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, in_flight = tracker.in_flight(), "producer did not flush; unacknowledged events will be redelivered")
            }
            Err(e) => tracing::warn!(error = %e, "producer flush task failed"),
        }
        let commit_consumer = Arc::clone(&consumer);
        match tokio::task::spawn_blocking(move || {
            commit_consumer.commit_consumer_state(CommitMode::Sync)
        })
        .await
        {
            Ok(Ok(())) => tracing::info!("offsets committed"),
            Ok(Err(e)) => {
                tracing::info!(error = %e, "final commit (nothing new to commit is normal)")
            }
            Err(e) => tracing::warn!(error = %e, "final commit task failed"),
        }
        consumer.unsubscribe();
        exporter.shutdown();
        drop(health_server);
        source_result?;
        infer_result?;
        sink_result?;
        drift_result.context("drift stage")?;
        if tracker.has_failed() {
            bail!("outputs could not be delivered; their inputs were not committed and will be redelivered");
        }
        Ok(metrics.snapshot())
    }
}

/// SIGHUP reloads the model (the convention of nginx, Prometheus and most daemons).
async fn reload_on_sighup(reloader: Arc<ModelReloader>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hangup) = signal(SignalKind::hangup()) else {
        tracing::warn!(
            "cannot install the SIGHUP handler; reload through the file watch or /admin/reload"
        );
        return;
    };
    while hangup.recv().await.is_some() {
        let reloader = Arc::clone(&reloader);
        let _ = tokio::task::spawn_blocking(move || reloader.reload("SIGHUP")).await;
    }
}

async fn join_blocking(handle: std::thread::JoinHandle<anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || handle.join())
        .await
        .context("joining a stage")?
        .map_err(|_| anyhow::anyhow!("a pipeline stage panicked"))?
}
