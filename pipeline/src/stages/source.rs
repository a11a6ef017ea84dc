//! The source stage: consumes on the async side of the pipeline, registers each event's offset,
//! and hands the events over in numbered chunks to the decode threads
//! ([`crate::stages::decode`]). It copies events out of the consumer and does nothing slower, so
//! that one thread keeps many decode threads fed.
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use driftline_operators::batch::BatchPolicy;
use futures_util::{FutureExt, StreamExt};
use rdkafka::consumer::MessageStream;
use rdkafka::error::KafkaResult;
use rdkafka::message::{BorrowedMessage, Message};
use tokio::sync::mpsc;

use crate::kafka::consumer::{SourceConsumer, SourceContext};
use crate::kafka::offsets::OffsetTracker;
use crate::stages::chunk::EventChunk;
use crate::stages::ordering::ChunkWindow;
use crate::telemetry::health::HealthState;
use crate::telemetry::metrics::PipelineMetrics;

/// The most messages taken from the consumer's queue in one go (see [`SourceStage::burst`]);
/// bounded so that shutdown, the linger deadline and failures are looked at between bursts.
const MAX_BURST: usize = 1024;

/// Consumes and hands events over in chunks of `policy.max_rows`.
pub struct SourceStage<'a> {
    pub consumer: &'a SourceConsumer,
    pub tracker: &'a OffsetTracker,
    pub metrics: &'a PipelineMetrics,
    pub health: &'a HealthState,
    /// Set by a stage thread that failed: the source stops as it does on shutdown.
    pub stage_failed: &'a AtomicBool,
    pub policy: BatchPolicy,
    /// The open chunk.
    pub chunk: EventChunk,
    pub chunk_tx: mpsc::Sender<EventChunk>,
    /// Bounds the chunks between here and the stage that restores their order.
    pub window: &'a ChunkWindow,
}

impl<'a> SourceStage<'a> {
    pub async fn run(&mut self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        tokio::pin!(shutdown);
        // One stream for the stage's life: `StreamConsumer::recv` makes (and drops) a stream,
        // with a locked waker registration, for every message.
        let consumer = self.consumer;
        let mut messages = consumer.stream();
        let mut deadline: Option<Instant> = None;
        let mut failure_check = tokio::time::interval(Duration::from_millis(100));
        loop {
            self.health.heartbeat();
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
                    if self.tracker.has_failed() || self.stage_failed.load(Ordering::Relaxed) {
                        break;
                    }
                }
                message = messages.next() => {
                    let message = message.expect("a Kafka message stream never ends");
                    self.burst(message, &mut messages, &mut deadline).await?;
                }
            }
        }
        self.flush().await
    }

    /// Takes `first` and then whatever librdkafka already holds, up to [`MAX_BURST`] messages
    /// or a full batch, without going back through the `select!` above: its timers, the stream's
    /// waker registration, the heartbeat and the clock reads are per burst, not per event (perf
    /// had them at about a fifth of this thread). A burst never waits for a message.
    async fn burst(
        &mut self,
        first: KafkaResult<BorrowedMessage<'a>>,
        messages: &mut MessageStream<'a, SourceContext>,
        deadline: &mut Option<Instant>,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(message) = next.take() {
            taken += 1;
            match message {
                Ok(message) => {
                    self.accept(&message);
                    if deadline.is_none() {
                        *deadline = Some(self.policy.deadline(started));
                    }
                    if self.policy.is_full(self.chunk.len()) {
                        self.flush().await?;
                        *deadline = None;
                        return Ok(());
                    }
                }
                Err(e) => {
                    PipelineMetrics::add(&self.metrics.consumer_errors, 1);
                    tracing::warn!(error = %e, "consumer error");
                }
            }
            if taken < MAX_BURST {
                // Ready now or not at all; on "not yet" the next `select!` turn waits for it.
                next = messages.next().now_or_never().flatten();
            }
        }
        Ok(())
    }

    /// Takes one message into the open chunk.
    fn accept(&mut self, message: &BorrowedMessage<'_>) {
        PipelineMetrics::add(&self.metrics.events_in, 1);
        let topic: Arc<str> = topic_arc(message.topic());
        self.tracker
            .register(&topic, message.partition(), message.offset());
        self.chunk.push(&topic, message);
        self.tracker.set_open_rows(self.chunk.len());
    }

    /// Closes the open chunk and hands it to the decode threads.
    async fn flush(&mut self) -> anyhow::Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let next = EventChunk::new(self.chunk.seq + 1, self.policy.max_rows);
        let chunk = std::mem::replace(&mut self.chunk, next);
        self.tracker.set_open_rows(0);
        // Waiting on backpressure is not being stuck: keep the liveness heartbeat going.
        let (window, chunk_tx) = (self.window, &self.chunk_tx);
        let send = async move {
            window.enter().await;
            chunk_tx.send(chunk).await
        };
        tokio::pin!(send);
        loop {
            tokio::select! {
                sent = &mut send => {
                    return sent.map_err(|_| anyhow::anyhow!("the decode stage stopped"));
                }
                () = tokio::time::sleep(Duration::from_millis(100)) => {
                    self.health.heartbeat();
                    if self.stage_failed.load(Ordering::Relaxed) {
                        // The failed stage's error is the one to report; these events are
                        // not acknowledged, so not committed.
                        return Ok(());
                    }
                }
            }
        }
    }
}

/// Reuses one `Arc<str>` per input topic rather than allocating per message.
fn topic_arc(topic: &str) -> Arc<str> {
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
