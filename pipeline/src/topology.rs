//! The data path, top to bottom:
//!
//! ```text
//! source (async task) ─► decode ─► batch ──[bounded]──► infer (thread) ──[bounded]──► encode + sink (thread)
//!            └─► dead letters ──────────────────────────────────────────────────────────► sink
//! producer acknowledgements ─► OffsetTracker ─► consumer offset store ─► commit
//! ```
//!
//! Bounded channels are the backpressure: when inference or the broker is slow, the source stops
//! polling and lag grows, memory does not. On shutdown the source stops consuming and closes its
//! channel; each stage drains what it holds and closes the next; the producer flushes and the
//! consumer commits what was acknowledged.
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use driftline_operators::batch::{BatchBuilder, BatchPolicy, SourceBatch, SourcePosition};
use driftline_operators::decode::{DecodeError, EventDecoder};
use driftline_operators::encode::PredictionEncoder;
use driftline_operators::infer::{load_runtime, InferenceModel};
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{BaseRecord, Producer};
use tokio::sync::mpsc;

use crate::config::Settings;
use crate::drift_stage::{self, DriftInput, DriftStage};
use crate::metrics::{MetricsSnapshot, PipelineMetrics};
use crate::offsets::OffsetTracker;
use crate::sink::{
    self, sink_stage, Delivery, DeliveryKind, ScoredBatch, SendRefusal, SinkProducer,
};
use crate::source::{self, SourceConsumer};

/// A pipeline whose model is loaded and whose clients are connected, ready to [`Pipeline::run`].
pub struct Pipeline {
    settings: Settings,
    model: InferenceModel,
    model_version: String,
    metrics: Arc<PipelineMetrics>,
    tracker: Arc<OffsetTracker>,
    consumer: Arc<SourceConsumer>,
    producer: Arc<SinkProducer>,
    drift: Option<DriftStage>,
}

impl Pipeline {
    /// Loads the model first (a broken model must fail before we join the group), then connects.
    pub fn build(settings: Settings) -> anyhow::Result<Pipeline> {
        let runtime = load_runtime(&settings.onnxruntime_library())?;
        let model = InferenceModel::load(&runtime, &settings.model_options(), &settings.schema)?;
        let model_version = match settings.model.version.as_str() {
            "" => model
                .metadata_version()
                .unwrap_or_else(|| "unversioned".into()),
            v => v.to_string(),
        };
        tracing::info!(model = %settings.model.name, version = %model_version, execution_provider = model.provider(), "model loaded");
        let metrics = Arc::new(PipelineMetrics::default());
        let _ = metrics.execution_provider.set(model.provider());
        let tracker = Arc::new(OffsetTracker::new());
        let producer = sink::create_producer(&settings, Arc::clone(&tracker), Arc::clone(&metrics))
            .context("creating the producer")?;
        sink::check_output_topics(&settings, &producer)?;
        let drift = match settings.drift.enabled {
            true => Some(DriftStage::new(
                &settings,
                Arc::clone(&producer),
                Arc::clone(&metrics),
            )?),
            false => None,
        };
        let consumer = source::create_consumer(&settings, Arc::clone(&tracker))
            .context("creating the consumer")?;
        Ok(Pipeline {
            settings,
            model,
            model_version,
            metrics,
            tracker,
            consumer,
            producer,
            drift,
        })
    }

    /// Live counters, readable while the pipeline runs.
    pub fn metrics(&self) -> Arc<PipelineMetrics> {
        Arc::clone(&self.metrics)
    }

    pub fn execution_provider(&self) -> &'static str {
        self.model.provider()
    }

    /// Runs until `shutdown` resolves (or a fatal error), then drains, flushes and commits.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<MetricsSnapshot> {
        let Pipeline {
            settings,
            model,
            model_version,
            metrics,
            tracker,
            consumer,
            producer,
            drift,
        } = self;
        let capacity = settings.pipeline.channel_capacity;
        let (batch_tx, batch_rx) = mpsc::channel::<SourceBatch>(capacity);
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
        let infer_thread = std::thread::Builder::new()
            .name("driftline-infer".into())
            .spawn(move || infer_stage(model, batch_rx, scored_tx, drift_tx))
            .context("starting the inference thread")?;
        let encoder = PredictionEncoder::new(&settings.model.name, &model_version);
        let sink_producer = Arc::clone(&producer);
        let sink_tracker = Arc::clone(&tracker);
        let output_topic = settings.kafka.output_topic.clone();
        let sink_thread = std::thread::Builder::new()
            .name("driftline-sink".into())
            .spawn(move || {
                sink_stage(
                    &sink_producer,
                    &sink_tracker,
                    encoder,
                    &output_topic,
                    scored_rx,
                )
            })
            .context("starting the sink thread")?;

        let mut source = SourceStage {
            consumer: &consumer,
            producer: &producer,
            tracker: &tracker,
            metrics: &metrics,
            decoder: EventDecoder::new(&settings.schema, settings.pipeline.max_event_bytes),
            builder: BatchBuilder::new(&settings.schema, settings.batch.max_rows),
            policy: BatchPolicy {
                max_rows: settings.batch.max_rows,
                linger: Duration::from_millis(settings.batch.linger_ms),
            },
            dlq_topic: &settings.kafka.dlq_topic,
            batch_tx,
        };
        let source_result = source.run(shutdown).await;
        drop(source);

        // The stages drain in order as each channel closes.
        let grace = Duration::from_millis(settings.pipeline.shutdown_grace_ms);
        let infer_result = join_blocking(infer_thread).await;
        let sink_result = join_blocking(sink_thread).await;
        let drift_result = match drift_thread {
            Some(thread) => join_blocking(thread).await,
            None => Ok(()),
        };
        let flush_producer = Arc::clone(&producer);
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

async fn join_blocking(handle: std::thread::JoinHandle<anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || handle.join())
        .await
        .context("joining a stage")?
        .map_err(|_| anyhow::anyhow!("a pipeline stage panicked"))?
}

/// Consumes, decodes and batches; dead-letters what cannot be decoded.
struct SourceStage<'a> {
    consumer: &'a SourceConsumer,
    producer: &'a SinkProducer,
    tracker: &'a OffsetTracker,
    metrics: &'a PipelineMetrics,
    decoder: EventDecoder,
    builder: BatchBuilder,
    policy: BatchPolicy,
    dlq_topic: &'a str,
    batch_tx: mpsc::Sender<SourceBatch>,
}

impl SourceStage<'_> {
    async fn run(&mut self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        tokio::pin!(shutdown);
        let mut deadline: Option<Instant> = None;
        let mut failure_check = tokio::time::interval(Duration::from_millis(100));
        loop {
            let linger = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                () = linger => {
                    self.flush().await?;
                    deadline = None;
                }
                _ = failure_check.tick() => {
                    if self.tracker.has_failed() {
                        break;
                    }
                }
                message = self.consumer.recv() => match message {
                    Ok(message) => {
                        if self.accept(&message).await? && deadline.is_none() {
                            deadline = Some(self.policy.deadline(Instant::now()));
                        }
                        if self.policy.is_full(self.builder.len()) {
                            self.flush().await?;
                            deadline = None;
                        }
                    }
                    Err(e) => {
                        PipelineMetrics::add(&self.metrics.consumer_errors, 1);
                        tracing::warn!(error = %e, "consumer error");
                    }
                },
            }
        }
        self.flush().await
    }

    /// Takes one message: into the batch (true) or to the dead-letter topic (false).
    async fn accept(&mut self, message: &BorrowedMessage<'_>) -> anyhow::Result<bool> {
        PipelineMetrics::add(&self.metrics.events_in, 1);
        let topic: Arc<str> = self.topic_arc(message.topic());
        self.tracker
            .register(&topic, message.partition(), message.offset());
        let kafka_timestamp_ms = message.timestamp().to_millis();
        let payload = message.payload().unwrap_or_default();
        match self.decoder.decode(payload, kafka_timestamp_ms) {
            Ok(row) => {
                let position = SourcePosition {
                    topic: &topic,
                    partition: message.partition(),
                    offset: message.offset(),
                    key: message.key(),
                    kafka_timestamp_ms: kafka_timestamp_ms.unwrap_or_else(sink::now_ms),
                };
                self.builder.push(row, position);
                Ok(true)
            }
            Err(error) => {
                self.dead_letter(message, topic, &error).await?;
                Ok(false)
            }
        }
    }

    /// Reuses one `Arc<str>` per input topic rather than allocating per message.
    fn topic_arc(&self, topic: &str) -> Arc<str> {
        thread_local! {
            static TOPICS: std::cell::RefCell<Vec<Arc<str>>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        TOPICS.with_borrow_mut(|topics| match topics.iter().find(|t| &***t == topic) {
            Some(t) => Arc::clone(t),
            None => {
                let t: Arc<str> = Arc::from(topic);
                topics.push(Arc::clone(&t));
                t
            }
        })
    }

    async fn dead_letter(
        &self,
        message: &BorrowedMessage<'_>,
        topic: Arc<str>,
        error: &DecodeError,
    ) -> anyhow::Result<()> {
        tracing::debug!(topic = %topic, partition = message.partition(), offset = message.offset(), error = %error, "dead-lettering event");
        let delivery = Delivery {
            topic,
            partition: message.partition(),
            offset: message.offset(),
            kafka_timestamp_ms: message.timestamp().to_millis().unwrap_or_else(sink::now_ms),
            kind: DeliveryKind::DeadLetter,
        };
        let headers = sink::dead_letter_headers(
            message.headers(),
            error.reason.as_str(),
            error.field.as_deref(),
            &error.detail,
            &delivery,
        );
        let mut record =
            BaseRecord::with_opaque_to(self.dlq_topic, Box::new(delivery)).headers(headers);
        if let Some(payload) = message.payload() {
            record = record.payload(payload);
        }
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        loop {
            match sink::try_send(self.producer, record) {
                Ok(()) => return Ok(()),
                Err(SendRefusal::QueueFull(r)) => {
                    record = r;
                    tokio::time::sleep(sink::QUEUE_FULL_BACKOFF).await;
                }
                Err(SendRefusal::Fatal(e)) => bail!(
                    "cannot produce to the dead-letter topic {}: {e}",
                    self.dlq_topic
                ),
            }
        }
    }

    async fn flush(&mut self) -> anyhow::Result<()> {
        if self.builder.is_empty() {
            return Ok(());
        }
        let batch = self.builder.finish().context("closing a batch")?;
        PipelineMetrics::add(&self.metrics.batches, 1);
        self.batch_tx
            .send(batch)
            .await
            .map_err(|_| anyhow::anyhow!("the inference stage stopped"))
    }
}

/// Runs the model over each batch, on its own thread (inference is CPU-bound and synchronous),
/// and hands the scored batch to the sink and, shared, to the drift side stream.
fn infer_stage(
    mut model: InferenceModel,
    mut rx: mpsc::Receiver<SourceBatch>,
    tx: mpsc::Sender<ScoredBatch>,
    drift_tx: Option<std::sync::mpsc::SyncSender<DriftInput>>,
) -> anyhow::Result<()> {
    while let Some(input) = rx.blocking_recv() {
        let outputs = model.run(&input.batch).context("inference")?;
        if let Some(drift) = &drift_tx {
            // Arrow arrays are reference-counted: sharing the batch copies no data.
            let shared = DriftInput {
                batch: input.batch.clone(),
                outputs: outputs.clone(),
                partitions: input.sources.partitions.clone(),
            };
            if drift.send(shared).is_err() {
                bail!("the drift stage stopped");
            }
        }
        if tx.blocking_send(ScoredBatch { input, outputs }).is_err() {
            bail!("the sink stage stopped");
        }
    }
    Ok(())
}
