//! The inference stage: `runtime.sessions` threads, each with its own session of every model
//! (inference is CPU- or GPU-bound and synchronous), all taking decoded batches from one bounded
//! queue, in order. Scored batches go to the sink in whatever order they finish; the sink puts
//! them back in order and shares them with the drift side stream.
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context};
use tokio::sync::mpsc;

use crate::models::set::ServingModels;
use crate::models::shadow;
use crate::stages::messages::{QueuedBatch, ScoredBatch, ShadowScores};
use crate::stages::ordering::Sequenced;
use crate::stages::reload::ModelReloader;
use crate::telemetry::metrics::{PipelineMetrics, Stage};

/// The decoded batches every session takes from: whichever session is free takes the next one.
pub type SharedBatches = Arc<Mutex<mpsc::Receiver<Sequenced<QueuedBatch>>>>;

/// Scores batches with `models` until the queue closes; models reloaded meanwhile are swapped
/// in between two of this session's batches (never inside one), and each scored batch carries
/// the models that scored it.
pub fn infer_stage(
    mut models: ServingModels,
    reloader: &ModelReloader,
    metrics: &PipelineMetrics,
    rx: SharedBatches,
    tx: mpsc::Sender<Sequenced<ScoredBatch>>,
) -> anyhow::Result<()> {
    // The reload generation these models belong to.
    let mut generation = 0;
    loop {
        // The lock is held while waiting: the other sessions wait on it instead of the queue.
        // A reload is looked for under the same lock, so batches taken after it, and only
        // those, get the new models: a swap happens at one point of the stream, not per session.
        let (next, reloaded) = {
            let mut queue = rx.lock().unwrap_or_else(|e| e.into_inner());
            let next = queue.blocking_recv();
            (next, reloader.take_newer(&mut generation))
        };
        if let Some(reloaded) = reloaded {
            tracing::info!(from = %models.describe(), to = %reloaded.describe(), "models swapped in");
            models = reloaded;
            metrics.set_models(&models);
        }
        let Some(Sequenced { seq, item }) = next else {
            return Ok(());
        };
        let Some(QueuedBatch {
            batch: input,
            closed_at,
            span,
        }) = item
        else {
            // A chunk whose events were all dead-lettered keeps its place in the order.
            if tx.blocking_send(Sequenced { seq, item: None }).is_err() {
                bail!("the sink stage stopped");
            }
            continue;
        };
        metrics.record_stage(Stage::QueueWait, closed_at.elapsed());
        let scores = {
            let _inference = tracing::info_span!(parent: &span, "inference").entered();
            let started = std::time::Instant::now();
            let scores = models.score(&input).context("inference")?;
            metrics.record_stage(Stage::Inference, started.elapsed());
            scores
        };
        metrics.count_variants(
            models.identities(),
            scores.variant_of_row.as_deref(),
            input.num_rows(),
        );
        // The shadow scores after the serving models, off their latency (not off the thread).
        let shadow = match models.score_shadow(&input)? {
            Some(outputs) => {
                let agreement = shadow::compare(&scores.outputs, &outputs);
                metrics
                    .shadow
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .add(&agreement);
                let model = Arc::clone(models.shadow_identity().expect("a shadow scored"));
                Some(ShadowScores {
                    model,
                    outputs,
                    agreement,
                })
            }
            None => None,
        };
        let scored = ScoredBatch {
            input,
            outputs: scores.outputs,
            models: Arc::clone(models.identities()),
            variant_of_row: scores.variant_of_row,
            shadow,
            span,
        };
        if tx
            .blocking_send(Sequenced {
                seq,
                item: Some(scored),
            })
            .is_err()
        {
            bail!("the sink stage stopped");
        }
    }
}
