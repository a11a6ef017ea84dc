//! What the stages hand each other through their channels: a closed batch to inference, a
//! scored batch to the sink, and the same scores to the drift stage. Arrow arrays are
//! reference-counted, so a batch travels without a copy.
use std::sync::Arc;
use std::time::Instant;

use arrow_array::{ArrayRef, RecordBatch};
use driftline_operators::batch::SourceBatch;

use crate::models::identity::ModelIdentity;
use crate::models::shadow::Agreement;

/// A closed batch on its way to inference.
pub struct QueuedBatch {
    pub batch: SourceBatch,
    pub closed_at: Instant,
    pub span: tracing::Span,
}

/// A scored batch on its way to the sink.
pub struct ScoredBatch {
    pub input: SourceBatch,
    pub outputs: Vec<(String, ArrayRef)>,
    /// The models that scored it, serving model first (they change when a reload is swapped in).
    pub models: Arc<[Arc<ModelIdentity>]>,
    /// Per row, its model's index in `models`; `None`: all rows by `models[0]`.
    pub variant_of_row: Option<Arc<[u8]>>,
    /// The shadow model's predictions of the same rows, for the shadow topic.
    pub shadow: Option<ShadowScores>,
    /// The batch's span, ended when the sink has handed every prediction to the producer.
    pub span: tracing::Span,
}

/// A shadow model's outputs for a batch, and how far they agree with the serving ones.
pub struct ShadowScores {
    pub model: Arc<ModelIdentity>,
    pub outputs: Vec<(String, ArrayRef)>,
    pub agreement: Agreement,
}

/// One scored batch, as the drift stage sees it.
pub struct DriftInput {
    pub batch: RecordBatch,
    pub outputs: Vec<(String, ArrayRef)>,
    pub partitions: Vec<i32>,
    /// Per row, the Kafka offset (`driftline batch`: the record number; `partitions` is then
    /// empty).
    pub offsets: Vec<i64>,
    /// Per row, the index in `variants` of the model that scored it; `None`: `variants[0]`.
    pub variant_of_row: Option<Arc<[u8]>>,
    /// The serving model and its canary variants.
    pub variants: Arc<[Arc<ModelIdentity>]>,
    /// The shadow's scores of the same rows.
    pub shadow: Option<ShadowDrift>,
}

/// A shadow's name, outputs and agreement with the serving outputs, for the drift stage.
pub struct ShadowDrift {
    pub name: String,
    pub outputs: Vec<(String, ArrayRef)>,
    pub agreement: Agreement,
}

/// What the drift stage receives: scored batches from inference, label events from the labels
/// reader.
pub enum DriftMessage {
    Scored(DriftInput),
    Labels(LabelBatch),
}

impl From<DriftInput> for DriftMessage {
    fn from(input: DriftInput) -> Self {
        DriftMessage::Scored(input)
    }
}

/// One label event of the labels topic, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelEvent {
    pub id: String,
    pub label: f64,
    /// When the label became known (`labels.timestamp_field`), epoch ms.
    pub at_ms: Option<i64>,
    pub partition: i32,
}

/// Label events read together, and how far each partition was read (the next offset to read,
/// dead-lettered events included): once the drift stage has taken them, these offsets may be
/// committed.
#[derive(Debug, Default)]
pub struct LabelBatch {
    pub events: Vec<LabelEvent>,
    pub read_up_to: Vec<(i32, i64)>,
}

/// Per partition of the labels topic, the next offset after the label events the drift stage
/// has taken: what the labels reader commits.
pub type LabelProgress = std::sync::Mutex<std::collections::BTreeMap<i32, i64>>;
