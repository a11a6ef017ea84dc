//! The inference stage: runs the model over each batch on its own thread (inference is
//! CPU-bound and synchronous), and hands the scored batch to the sink and, shared, to the drift
//! side stream.
use std::sync::Arc;

use anyhow::{bail, Context};
use driftline_operators::infer::InferenceModel;
use tokio::sync::mpsc;

use crate::drift_stage::DriftInput;
use crate::metrics::{PipelineMetrics, Stage};
use crate::model_reload::{ModelIdentity, ModelReloader};
use crate::sink::ScoredBatch;
use crate::source_stage::QueuedBatch;

/// Scores batches with `model` until the channel closes; a model reloaded meanwhile is swapped
/// in between two batches, and each scored batch carries the version that scored it.
pub fn infer_stage(
    mut model: InferenceModel,
    mut serving: Arc<ModelIdentity>,
    reloader: &ModelReloader,
    metrics: &PipelineMetrics,
    mut rx: mpsc::Receiver<QueuedBatch>,
    tx: mpsc::Sender<ScoredBatch>,
    drift_tx: Option<std::sync::mpsc::SyncSender<DriftInput>>,
) -> anyhow::Result<()> {
    while let Some(QueuedBatch {
        batch: input,
        closed_at,
        span,
    }) = rx.blocking_recv()
    {
        metrics.record_stage(Stage::QueueWait, closed_at.elapsed());
        if let Some(reloaded) = reloader.take() {
            tracing::info!(from = %serving.version, to = %reloaded.identity.version, sha256 = %reloaded.identity.sha256, "model swapped in");
            model = reloaded.model;
            *metrics.model.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(reloaded.identity.clone());
            serving = Arc::new(reloaded.identity);
        }
        let outputs = {
            let _inference = tracing::info_span!(parent: &span, "inference").entered();
            let started = std::time::Instant::now();
            let outputs = model.run(&input.batch).context("inference")?;
            metrics.record_stage(Stage::Inference, started.elapsed());
            outputs
        };
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
        if tx
            .blocking_send(ScoredBatch {
                input,
                outputs,
                model: Arc::clone(&serving),
                span,
            })
            .is_err()
        {
            bail!("the sink stage stopped");
        }
    }
    Ok(())
}
