//! The inference stage: runs the models over each batch on its own thread (inference is
//! CPU-bound and synchronous), and hands the scored batch to the sink and, shared, to the drift
//! side stream.
use std::sync::Arc;

use anyhow::{bail, Context};
use tokio::sync::mpsc;

use crate::models::set::ServingModels;
use crate::models::shadow;
use crate::stages::messages::{
    DriftInput, DriftMessage, QueuedBatch, ScoredBatch, ShadowDrift, ShadowScores,
};
use crate::stages::reload::ModelReloader;
use crate::telemetry::metrics::{PipelineMetrics, Stage};

/// Scores batches with `models` until the channel closes; models reloaded meanwhile are swapped
/// in between two batches, and each scored batch carries the models that scored it.
pub fn infer_stage(
    mut models: ServingModels,
    reloader: &ModelReloader,
    metrics: &PipelineMetrics,
    mut rx: mpsc::Receiver<QueuedBatch>,
    tx: mpsc::Sender<ScoredBatch>,
    drift_tx: Option<std::sync::mpsc::SyncSender<DriftMessage>>,
) -> anyhow::Result<()> {
    while let Some(QueuedBatch {
        batch: input,
        closed_at,
        span,
    }) = rx.blocking_recv()
    {
        metrics.record_stage(Stage::QueueWait, closed_at.elapsed());
        if let Some(reloaded) = reloader.take() {
            tracing::info!(from = %models.describe(), to = %reloaded.describe(), "models swapped in");
            models = reloaded;
            metrics.set_models(&models);
        }
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
        if let Some(drift) = &drift_tx {
            // Arrow arrays are reference-counted: sharing the batch copies no data.
            let shared = DriftInput {
                batch: input.batch.clone(),
                outputs: scores.outputs.clone(),
                partitions: input.sources.partitions.clone(),
                offsets: input.sources.offsets.clone(),
                variant_of_row: scores.variant_of_row.clone(),
                variants: Arc::clone(models.identities()),
                shadow: shadow.as_ref().map(|s| ShadowDrift {
                    name: s.model.name.clone(),
                    outputs: s.outputs.clone(),
                    agreement: s.agreement,
                }),
            };
            if drift.send(shared.into()).is_err() {
                bail!("the drift stage stopped");
            }
        }
        if tx
            .blocking_send(ScoredBatch {
                input,
                outputs: scores.outputs,
                models: Arc::clone(models.identities()),
                variant_of_row: scores.variant_of_row,
                shadow,
                span,
            })
            .is_err()
        {
            bail!("the sink stage stopped");
        }
    }
    Ok(())
}
