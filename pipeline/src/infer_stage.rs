//! The inference stage: runs the model over each batch on its own thread (inference is
//! CPU-bound and synchronous), and hands the scored batch to the sink and, shared, to the drift
//! side stream.
use anyhow::{bail, Context};
use driftline_operators::infer::InferenceModel;
use tokio::sync::mpsc;

use crate::drift_stage::DriftInput;
use crate::metrics::{PipelineMetrics, Stage};
use crate::sink::ScoredBatch;
use crate::source_stage::QueuedBatch;

pub fn infer_stage(
    mut model: InferenceModel,
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
                span,
            })
            .is_err()
        {
            bail!("the sink stage stopped");
        }
    }
    Ok(())
}
