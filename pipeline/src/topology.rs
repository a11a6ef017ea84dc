//! The data path, top to bottom:
//!
//! ```text
//! source (async task) ─► numbered chunks ─[bounded]─► decode + batch (N threads) ─[bounded]─►
//!     infer (M sessions, a thread each) ─[bounded]─► sink (thread): back in chunk order, encode, produce
//!                                  decode ─► dead letters ─► producer
//!                                  sink ─[bounded]─► drift (thread) ─► drift and alerts topics
//! labels topic ─► labels reader (thread) ──[same bounded channel]──► drift's label join
//! producer acknowledgements ─► OffsetTracker ─► consumer offset store ─► commit
//! ```
//!
//! N is `pipeline.decode_threads` and M `runtime.sessions` ([`ThreadPlan`]). The source registers
//! every offset in consumption order and numbers the chunks; decode threads finish them in any
//! order and pass them on in order, sessions finish them in any order, and the sink takes them
//! back in order before it produces or shares them with drift, so each partition's outputs keep
//! its events' order ([`crate::stages::ordering`]). A [`ChunkWindow`] bounds the chunks between
//! the source and the sink.
//!
//! Without a model (drift on, `model.path` empty) the features-only stage takes the place of
//! infer and sink: batches go to drift alone, in order, and their offsets are released when
//! drift has them.
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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use driftline_operators::batch::{BatchBuilder, BatchPolicy};
use driftline_operators::decode::EventDecoder;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::producer::Producer;
use tokio::sync::mpsc;

use crate::config::threads::ThreadPlan;
use crate::config::Settings;
use crate::kafka::consumer::{self, SourceConsumer};
use crate::kafka::labels::check_co_partitioning;
use crate::kafka::offsets::OffsetTracker;
use crate::kafka::producer::{self, SinkProducer};
use crate::models::load::require_model_path;
use crate::models::set::ServingModels;
use crate::report::live::DriftBoard;
use crate::stages::chunk::EventChunk;
use crate::stages::decode::{DecodeWorker, DecodedInOrder};
use crate::stages::drift::stage::{self as drift_stage, DriftStage};
use crate::stages::features_only::features_only_stage;
use crate::stages::infer::infer_stage;
use crate::stages::labels::LabelsReader;
use crate::stages::messages::{LabelProgress, QueuedBatch, ScoredBatch};
use crate::stages::ordering::{ChunkWindow, Sequenced};
use crate::stages::reload::ModelReloader;
use crate::stages::sink::{sink_stage, SinkTopics};
use crate::stages::source::SourceStage;
use crate::telemetry::health::HealthState;
use crate::telemetry::metrics::{MetricsSnapshot, PipelineMetrics};
use crate::telemetry::otel::MetricsExporter;
use crate::telemetry::server::{HealthServer, Reload};

/// A pipeline whose model is loaded and whose clients are connected, ready to [`Pipeline::run`].
pub struct Pipeline {
    settings: Settings,
    /// One model set per inference session; empty: no model, drift watches the features alone.
    models: Vec<ServingModels>,
    threads: ThreadPlan,
    reloader: Option<Arc<ModelReloader>>,
    metrics: Arc<PipelineMetrics>,
    tracker: Arc<OffsetTracker>,
    consumer: Arc<SourceConsumer>,
    producer: Arc<SinkProducer>,
    drift: Option<DriftStage>,
    /// How far the drift stage has taken the labels topic: what the labels reader commits.
    label_progress: Arc<LabelProgress>,
    health: Arc<HealthState>,
    exporter: Arc<MetricsExporter>,
    /// Serves probes and `/metrics` from build until the pipeline is dropped.
    health_server: Option<HealthServer>,
}

impl Pipeline {
    /// Loads the model first (a broken model must fail before we join the group), then connects.
    pub fn build(settings: Settings) -> anyhow::Result<Pipeline> {
        tracing::debug!(settings = %settings.redacted_toml(), "effective settings");
        let mut models = match (settings.has_model(), settings.drift.enabled) {
            (true, _) => vec![ServingModels::load(&settings, None)?],
            (false, true) => {
                tracing::info!("no model: drift watches the features alone, nothing is scored");
                Vec::new()
            }
            (false, false) => {
                require_model_path(&settings.model.path)?;
                Vec::new()
            }
        };
        // The plan needs the provider the first session got (CUDA may have fallen back).
        let cuda = models.first().map(ServingModels::execution_provider) == Some("cuda");
        let threads =
            (settings.thread_plan(cuda, !models.is_empty())).map_err(|e| anyhow::anyhow!(e))?;
        while models.len() < threads.sessions {
            models.push(ServingModels::load(&settings, None)?);
        }
        if let Some(models) = models.first() {
            let identity = models.serving_identity();
            tracing::info!(model = %identity.name, version = %identity.version, sha256 = %identity.sha256, execution_provider = identity.execution_provider, models = %models.describe(), "models loaded");
        }
        tracing::info!(
            cores = threads.cores,
            decode_threads = threads.decode_threads,
            sessions = threads.sessions,
            intra_threads = settings.runtime.intra_threads,
            drift_has_a_core = threads.drift_has_a_core,
            "threads"
        );
        let exporter = Arc::new(MetricsExporter::new(&settings)?);
        let metrics = Arc::new(PipelineMetrics::new(exporter.meter()));
        let reloader = models.first().map(|models| {
            metrics.set_models(models);
            Arc::new(ModelReloader::new(
                settings.clone(),
                models,
                threads.sessions,
                Arc::clone(&metrics),
            ))
        });
        let health = Arc::new(HealthState::new(settings.health.stall_timeout_ms));
        // The live drift page's data: filled by the drift stage, shown by the health server.
        let drift_board = (settings.drift.enabled).then(|| Arc::new(DriftBoard::default()));
        // Without a model there is nothing to load: readiness waits on the broker alone.
        health.model_loaded.store(true, Ordering::Relaxed);
        exporter.observe(&settings, &metrics, &health);
        // Up before the clients connect, so probes answer "not ready" rather than nothing.
        let health_server = match settings.health.listen.as_str() {
            "" => None,
            listen => Some(HealthServer::start(
                listen,
                Arc::clone(&health),
                Arc::clone(&exporter),
                (reloader.as_ref())
                    .filter(|_| settings.health.admin)
                    .map(|r| Arc::clone(r) as Arc<dyn Reload>),
                drift_board.clone(),
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
        check_co_partitioning(&settings, &producer)?;
        let label_progress = Arc::new(LabelProgress::default());
        let drift = match drift_board {
            Some(board) => Some(DriftStage::new(
                &settings,
                Arc::clone(&producer),
                Arc::clone(&metrics),
                board,
                Arc::clone(&label_progress),
            )?),
            None => None,
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
            threads,
            reloader,
            metrics,
            tracker,
            consumer,
            producer,
            drift,
            label_progress,
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

    /// "cpu" or "cuda"; "none" without a model.
    pub fn execution_provider(&self) -> &'static str {
        (self.models.first()).map_or("none", ServingModels::execution_provider)
    }

    /// How many threads decode and how many sessions score.
    pub fn threads(&self) -> ThreadPlan {
        self.threads
    }

    /// Runs until `shutdown` resolves (or a fatal error), then drains, flushes and commits.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<MetricsSnapshot> {
        let Pipeline {
            settings,
            models,
            threads,
            reloader,
            metrics,
            tracker,
            consumer,
            producer,
            drift,
            label_progress,
            health,
            exporter,
            health_server,
        } = self;
        let capacity = settings.pipeline.channel_capacity;
        // Set by any stage thread that fails, so that the source stops as on shutdown.
        let failed = Arc::new(AtomicBool::new(false));
        let window = Arc::new(ChunkWindow::new(
            capacity,
            threads.decode_threads,
            threads.sessions,
        ));
        let (chunk_tx, chunk_rx) = mpsc::channel::<EventChunk>(capacity);
        let (batch_tx, batch_rx) = mpsc::channel::<Sequenced<QueuedBatch>>(capacity);

        let (drift_tx, drift_thread) = match drift {
            Some(stage) => {
                let (tx, rx) = drift_stage::channel(settings.drift.channel_capacity);
                let thread = spawn_stage("driftline-drift", &failed, move || stage.run(rx))?;
                (Some(tx), Some(thread))
            }
            None => (None, None),
        };
        // Labels join predictions in the drift stage, through the same channel.
        let labels_stop = Arc::new(AtomicBool::new(false));
        let labels_thread = match (&drift_tx, settings.kafka.labels_topic.is_empty()) {
            (Some(drift_tx), false) => {
                let reader = LabelsReader {
                    settings: settings.clone(),
                    source: Arc::clone(&consumer),
                    producer: Arc::clone(&producer),
                    metrics: Arc::clone(&metrics),
                    drift: drift_tx.clone(),
                    progress: label_progress,
                    stop: Arc::clone(&labels_stop),
                    dead_letters: Default::default(),
                };
                Some(spawn_stage("driftline-labels", &failed, move || {
                    reader.run()
                })?)
            }
            _ => None,
        };
        // Hot reload: SIGHUP and the file watcher load and check a new model off the hot path;
        // the inference stage swaps it in between two batches.
        let reload_stop = Arc::new(AtomicBool::new(false));
        if let (Some(reloader), true) = (&reloader, settings.model.watch_interval_ms > 0) {
            reloader.watch(
                Duration::from_millis(settings.model.watch_interval_ms),
                Arc::clone(&reload_stop),
            );
        }
        let sighup = tokio::spawn(reload_on_sighup(reloader.clone()));
        // Decode threads, then inference sessions and the sink (or the features-only stage):
        // joined in this order on shutdown, as each channel closes.
        let mut stages = Vec::new();
        let chunks = Arc::new(Mutex::new(chunk_rx));
        let decoded = Arc::new(DecodedInOrder::new(batch_tx));
        for i in 0..threads.decode_threads {
            let worker = DecodeWorker {
                producer: Arc::clone(&producer),
                metrics: Arc::clone(&metrics),
                decoder: EventDecoder::new(&settings.schema, settings.pipeline.max_event_bytes),
                builder: BatchBuilder::new(&settings.schema, settings.batch.max_rows),
                dlq_topic: settings.kafka.dlq_topic.clone(),
                max_dead_letter_bytes: settings.pipeline.max_dead_letter_bytes,
                max_key_bytes: settings.pipeline.max_key_bytes,
                chunks: Arc::clone(&chunks),
                batches: Arc::clone(&decoded),
            };
            let name = format!("dl-decode-{i}");
            stages.push(spawn_stage(&name, &failed, move || worker.run())?);
        }
        drop(decoded);
        match reloader {
            Some(reloader) => {
                let (scored_tx, scored_rx) = mpsc::channel::<Sequenced<ScoredBatch>>(capacity);
                let batches = Arc::new(Mutex::new(batch_rx));
                for (i, models) in models.into_iter().enumerate() {
                    let (reloader, metrics) = (Arc::clone(&reloader), Arc::clone(&metrics));
                    let (batches, scored_tx) = (Arc::clone(&batches), scored_tx.clone());
                    let name = format!("dl-infer-{i}");
                    stages.push(spawn_stage(&name, &failed, move || {
                        infer_stage(models, &reloader, &metrics, batches, scored_tx)
                    })?);
                }
                drop(scored_tx);
                let sink_producer = Arc::clone(&producer);
                let sink_tracker = Arc::clone(&tracker);
                let sink_metrics = Arc::clone(&metrics);
                let sink_window = Arc::clone(&window);
                let output_topic = settings.kafka.output_topic.clone();
                let shadow_topic = settings.kafka.shadow_topic.clone();
                stages.push(spawn_stage("driftline-sink", &failed, move || {
                    sink_stage(
                        &sink_producer,
                        &sink_tracker,
                        &sink_metrics,
                        SinkTopics {
                            output: &output_topic,
                            shadow: &shadow_topic,
                        },
                        scored_rx,
                        &sink_window,
                        drift_tx,
                    )
                })?);
            }
            None => {
                let drift_tx = drift_tx.context("no model and no drift: nothing to run")?;
                let (stage_tracker, stage_metrics) = (Arc::clone(&tracker), Arc::clone(&metrics));
                let stage_window = Arc::clone(&window);
                stages.push(spawn_stage("driftline-features", &failed, move || {
                    features_only_stage(
                        &stage_tracker,
                        &stage_metrics,
                        batch_rx,
                        &stage_window,
                        drift_tx,
                    )
                })?);
            }
        }

        let mut source = SourceStage {
            consumer: &consumer,
            tracker: &tracker,
            metrics: &metrics,
            health: &health,
            stage_failed: &failed,
            policy: BatchPolicy {
                max_rows: settings.batch.max_rows,
                linger: Duration::from_millis(settings.batch.linger_ms),
            },
            chunk: EventChunk::new(0, settings.batch.max_rows),
            chunk_tx,
            window: &window,
        };
        let source_result = source.run(shutdown).await;
        drop(source);
        // The labels reader holds a sender of the drift channel: it stops first, so that the
        // drift stage sees its channel close once inference has drained.
        labels_stop.store(true, Ordering::Relaxed);
        let labels_result = match labels_thread {
            Some(thread) => join_blocking(thread).await,
            None => Ok(()),
        };

        // The stages drain in order as each channel closes; the producer gets what is left of
        // the grace period to flush.
        health.stopping.store(true, Ordering::Relaxed);
        reload_stop.store(true, Ordering::Relaxed);
        sighup.abort();
        // A fifth of the grace (at most a second) is kept for the final commit and exit.
        let grace = Duration::from_millis(settings.pipeline.shutdown_grace_ms);
        let deadline = Instant::now() + grace - (grace / 5).min(Duration::from_secs(1));
        let mut scoring_result = Ok(());
        for thread in stages {
            let result = join_blocking(thread).await;
            scoring_result = scoring_result.and(result);
        }
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
        scoring_result?;
        drift_result.context("drift stage")?;
        labels_result.context("labels reader")?;
        if tracker.has_failed() {
            bail!("outputs could not be delivered; their inputs were not committed and will be redelivered");
        }
        Ok(metrics.snapshot())
    }
}

/// Starts a stage on a named thread; if it fails (an error or a panic) it sets `failed`.
fn spawn_stage(
    name: &str,
    failed: &Arc<AtomicBool>,
    stage: impl FnOnce() -> anyhow::Result<()> + Send + 'static,
) -> anyhow::Result<std::thread::JoinHandle<anyhow::Result<()>>> {
    /// Sets the flag when dropped without having been told the stage succeeded.
    struct FailedUnlessOk(Arc<AtomicBool>, bool);
    impl Drop for FailedUnlessOk {
        fn drop(&mut self) {
            if !self.1 {
                self.0.store(true, Ordering::Relaxed);
            }
        }
    }
    let failed = Arc::clone(failed);
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let mut guard = FailedUnlessOk(failed, false);
            let result = stage();
            guard.1 = result.is_ok();
            result
        })
        .with_context(|| format!("starting the {name} thread"))
}

/// SIGHUP reloads the model (the convention of nginx, Prometheus and most daemons); without a
/// model it is logged and ignored (its default action would end the process).
async fn reload_on_sighup(reloader: Option<Arc<ModelReloader>>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hangup) = signal(SignalKind::hangup()) else {
        tracing::warn!(
            "cannot install the SIGHUP handler; reload through the file watch or /admin/reload"
        );
        return;
    };
    while hangup.recv().await.is_some() {
        let Some(reloader) = reloader.clone() else {
            tracing::info!("SIGHUP: no model to reload");
            continue;
        };
        let _ = tokio::task::spawn_blocking(move || reloader.reload("SIGHUP")).await;
    }
}

async fn join_blocking(handle: std::thread::JoinHandle<anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || handle.join())
        .await
        .context("joining a stage")?
        .map_err(|_| anyhow::anyhow!("a pipeline stage panicked"))?
}
