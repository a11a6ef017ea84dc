//! The stage that stands in for inference and the sink when no model is configured: drift
//! watches the features alone. Each batch goes to the drift side stream, and its input offsets
//! are released as soon as the drift stage has taken it (there is no output to wait for; drift
//! reports never hold offsets back, with or without a model). The decode threads pass batches on
//! in the source's order.
use std::sync::Arc;

use anyhow::bail;
use tokio::sync::mpsc;

use crate::kafka::offsets::OffsetTracker;
use crate::stages::messages::{DriftInput, DriftMessage, QueuedBatch};
use crate::stages::ordering::{ChunkWindow, Sequenced};
use crate::telemetry::metrics::{PipelineMetrics, Stage};

/// Hands every batch to `drift_tx` until the channel closes, then acknowledges its rows.
pub fn features_only_stage(
    tracker: &OffsetTracker,
    metrics: &PipelineMetrics,
    mut rx: mpsc::Receiver<Sequenced<QueuedBatch>>,
    window: &ChunkWindow,
    drift_tx: std::sync::mpsc::SyncSender<DriftMessage>,
) -> anyhow::Result<()> {
    while let Some(piece) = rx.blocking_recv() {
        if let Some(queued) = piece.item {
            share(tracker, metrics, queued, &drift_tx)?;
        }
        window.leave();
    }
    Ok(())
}

/// Hands one batch to drift, then releases its offsets.
fn share(
    tracker: &OffsetTracker,
    metrics: &PipelineMetrics,
    queued: QueuedBatch,
    drift_tx: &std::sync::mpsc::SyncSender<DriftMessage>,
) -> anyhow::Result<()> {
    let QueuedBatch {
        batch: input,
        closed_at,
        span,
    } = queued;
    metrics.record_stage(Stage::QueueWait, closed_at.elapsed());
    let sources = &input.sources;
    let shared = DriftInput {
        batch: input.batch.clone(),
        outputs: Vec::new(),
        partitions: sources.partitions.clone(),
        offsets: sources.offsets.clone(),
        variant_of_row: None,
        variants: Arc::new([]),
        shadow: None,
    };
    // The channel is bounded: when drift falls behind, this waits and the source stops
    // polling, so every event is counted.
    if drift_tx.send(shared.into()).is_err() {
        bail!("the drift stage stopped");
    }
    tracker.acknowledge_rows(&sources.topics, &sources.partitions, &sources.offsets);
    drop(span);
    Ok(())
}
