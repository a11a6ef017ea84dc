//! The one batch type of the data path, [`SourceBatch`]: an Arrow `RecordBatch` of decoded rows
//! plus, per row, the Kafka position it came from (so every output can name its source and every
//! offset can be acknowledged), and [`BatchPolicy`], which says when a batch is full.
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Float32Builder, Float64Builder, Int64Builder, StringBuilder,
};
use arrow_array::{ArrayRef, BinaryArray, RecordBatch};
use arrow_schema::{ArrowError, SchemaRef};

use crate::decode::{DecodedRow, SlotState};
use crate::schema::{EventSchema, FeatureType};

/// Where one row came from.
#[derive(Debug, Clone, Copy)]
pub struct SourcePosition<'a> {
    pub topic: &'a Arc<str>,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    /// The record's W3C `traceparent` and `tracestate` headers, carried to its output.
    pub traceparent: Option<&'a [u8]>,
    pub tracestate: Option<&'a [u8]>,
    /// The Kafka record's timestamp (ms), the start of end-to-end latency.
    pub kafka_timestamp_ms: i64,
}

impl<'a> SourcePosition<'a> {
    /// A row read from a file or made up (batch mode, the quality gate, profiling, smoke tests):
    /// `record` stands where a Kafka offset would, with no key and no trace context.
    pub fn offline(topic: &'a Arc<str>, record: i64, timestamp_ms: i64) -> Self {
        SourcePosition {
            topic,
            partition: 0,
            offset: record,
            key: None,
            traceparent: None,
            tracestate: None,
            kafka_timestamp_ms: timestamp_ms,
        }
    }
}

/// Per-row source positions, column by column.
#[derive(Debug, Clone)]
pub struct SourcePositions {
    pub topics: Vec<Arc<str>>,
    pub partitions: Vec<i32>,
    pub offsets: Vec<i64>,
    pub kafka_timestamps_ms: Vec<i64>,
    pub keys: BinaryArray,
    /// Null where the record had no such header.
    pub traceparents: BinaryArray,
    pub tracestates: BinaryArray,
}

/// Decoded rows and where they came from.
#[derive(Debug, Clone)]
pub struct SourceBatch {
    pub batch: RecordBatch,
    pub sources: SourcePositions,
}

impl SourceBatch {
    pub fn num_rows(&self) -> usize {
        self.batch.num_rows()
    }
}

/// When to close a batch: at `max_rows`, or `linger` after its first row arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchPolicy {
    pub max_rows: usize,
    pub linger: Duration,
}

impl BatchPolicy {
    pub fn is_full(&self, rows: usize) -> bool {
        rows >= self.max_rows
    }

    /// The instant at which a batch whose first row arrived at `first_row_at` must close.
    pub fn deadline(&self, first_row_at: Instant) -> Instant {
        first_row_at + self.linger
    }
}

enum FeatureColumn {
    F32(Float32Builder),
    F64(Float64Builder),
    I64(Int64Builder),
    Bool(BooleanBuilder),
    Category(StringBuilder),
}

/// Accumulates valid rows into Arrow column builders.
pub struct BatchBuilder {
    schema: SchemaRef,
    ids: StringBuilder,
    timestamps: Int64Builder,
    features: Vec<FeatureColumn>,
    topics: Vec<Arc<str>>,
    partitions: Vec<i32>,
    offsets: Vec<i64>,
    kafka_timestamps_ms: Vec<i64>,
    keys: BinaryBuilder,
    traceparents: BinaryBuilder,
    tracestates: BinaryBuilder,
    capacity: usize,
}

impl BatchBuilder {
    pub fn new(schema: &EventSchema, capacity: usize) -> Self {
        let features = schema
            .features
            .iter()
            .map(|f| match f.kind {
                FeatureType::F32 => FeatureColumn::F32(Float32Builder::with_capacity(capacity)),
                FeatureType::F64 => FeatureColumn::F64(Float64Builder::with_capacity(capacity)),
                FeatureType::I64 => FeatureColumn::I64(Int64Builder::with_capacity(capacity)),
                FeatureType::Bool => FeatureColumn::Bool(BooleanBuilder::with_capacity(capacity)),
                FeatureType::Category => {
                    FeatureColumn::Category(StringBuilder::with_capacity(capacity, capacity * 8))
                }
            })
            .collect();
        BatchBuilder {
            schema: schema.arrow_schema(),
            ids: StringBuilder::with_capacity(capacity, capacity * 16),
            timestamps: Int64Builder::with_capacity(capacity),
            features,
            topics: Vec::with_capacity(capacity),
            partitions: Vec::with_capacity(capacity),
            offsets: Vec::with_capacity(capacity),
            kafka_timestamps_ms: Vec::with_capacity(capacity),
            keys: BinaryBuilder::with_capacity(capacity, capacity * 16),
            // Most events carry no trace context: start small, grow when they do.
            traceparents: BinaryBuilder::with_capacity(capacity, 0),
            tracestates: BinaryBuilder::with_capacity(capacity, 0),
            capacity,
        }
    }

    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// Appends a row that the decoder accepted.
    pub fn push(&mut self, row: &DecodedRow, source: SourcePosition<'_>) {
        self.ids.append_value(&row.id);
        self.timestamps
            .append_value(row.timestamp_ms.unwrap_or(source.kafka_timestamp_ms));
        for (column, slot) in self.features.iter_mut().zip(&row.slots) {
            let present = slot.state == SlotState::Present;
            match column {
                FeatureColumn::F32(b) => b.append_option(present.then_some(slot.number as f32)),
                FeatureColumn::F64(b) => b.append_option(present.then_some(slot.number)),
                FeatureColumn::I64(b) => b.append_option(present.then_some(slot.integer)),
                FeatureColumn::Bool(b) => b.append_option(present.then_some(slot.boolean)),
                FeatureColumn::Category(b) => {
                    b.append_option(present.then_some(slot.text.as_str()))
                }
            }
        }
        self.topics.push(Arc::clone(source.topic));
        self.partitions.push(source.partition);
        self.offsets.push(source.offset);
        self.kafka_timestamps_ms.push(source.kafka_timestamp_ms);
        self.keys.append_option(source.key);
        self.traceparents.append_option(source.traceparent);
        self.tracestates.append_option(source.tracestate);
    }

    /// Closes the batch and leaves the builder empty for the next one.
    pub fn finish(&mut self) -> Result<SourceBatch, ArrowError> {
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(2 + self.features.len());
        columns.push(Arc::new(self.ids.finish()));
        columns.push(Arc::new(self.timestamps.finish()));
        for column in &mut self.features {
            columns.push(match column {
                FeatureColumn::F32(b) => Arc::new(b.finish()),
                FeatureColumn::F64(b) => Arc::new(b.finish()),
                FeatureColumn::I64(b) => Arc::new(b.finish()),
                FeatureColumn::Bool(b) => Arc::new(b.finish()),
                FeatureColumn::Category(b) => Arc::new(b.finish()),
            });
        }
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), columns)?;
        let capacity = self.capacity;
        let sources = SourcePositions {
            topics: std::mem::replace(&mut self.topics, Vec::with_capacity(capacity)),
            partitions: std::mem::replace(&mut self.partitions, Vec::with_capacity(capacity)),
            offsets: std::mem::replace(&mut self.offsets, Vec::with_capacity(capacity)),
            kafka_timestamps_ms: std::mem::replace(
                &mut self.kafka_timestamps_ms,
                Vec::with_capacity(capacity),
            ),
            keys: self.keys.finish(),
            traceparents: self.traceparents.finish(),
            tracestates: self.tracestates.finish(),
        };
        Ok(SourceBatch { batch, sources })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::EventDecoder;
    use crate::schema::FeatureSpec;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float32Type, Int64Type};
    use arrow_array::Array;

    fn schema() -> EventSchema {
        EventSchema {
            id_field: "id".into(),
            timestamp_field: "ts".into(),
            timestamp_required: false,
            features: vec![
                FeatureSpec {
                    name: "t".into(),
                    kind: FeatureType::F32,
                    required: true,
                },
                FeatureSpec {
                    name: "n".into(),
                    kind: FeatureType::I64,
                    required: false,
                },
                FeatureSpec {
                    name: "c".into(),
                    kind: FeatureType::Category,
                    required: false,
                },
            ],
        }
    }

    #[test]
    fn rows_land_in_typed_columns_with_their_sources() {
        let schema = schema();
        let mut decoder = EventDecoder::new(&schema, 1 << 20);
        let mut builder = BatchBuilder::new(&schema, 4);
        let topic: Arc<str> = Arc::from("in");
        let events: [&[u8]; 2] = [
            br#"{"id":"a","ts":5,"t":1.5,"n":7,"c":"x"}"#,
            br#"{"id":9,"t":2,"n":null}"#,
        ];
        for (i, e) in events.iter().enumerate() {
            let row = decoder.decode(e, Some(100)).expect("valid event");
            let key = format!("k{i}");
            builder.push(
                row,
                SourcePosition {
                    topic: &topic,
                    partition: 3,
                    offset: 10 + i as i64,
                    key: Some(key.as_bytes()),
                    traceparent: None,
                    tracestate: None,
                    kafka_timestamp_ms: 100,
                },
            );
        }
        let out = builder.finish().expect("batch");
        assert_eq!(out.num_rows(), 2);
        assert!(builder.is_empty());
        let ids = out.batch.column(0).as_string::<i32>();
        assert_eq!((ids.value(0), ids.value(1)), ("a", "9"));
        let ts = out.batch.column(1).as_primitive::<Int64Type>();
        assert_eq!(
            (ts.value(0), ts.value(1)),
            (5, 100),
            "missing timestamp falls back to Kafka's"
        );
        let t = out.batch.column(2).as_primitive::<Float32Type>();
        assert_eq!((t.value(0), t.value(1)), (1.5, 2.0));
        let n = out.batch.column(3).as_primitive::<Int64Type>();
        assert!(n.is_valid(0) && n.is_null(1));
        assert!(out.batch.column(4).is_null(1));
        assert_eq!(out.sources.offsets, vec![10, 11]);
        assert_eq!(out.sources.keys.value(1), b"k1");
    }

    #[test]
    fn policy_closes_on_rows_or_linger() {
        let p = BatchPolicy {
            max_rows: 3,
            linger: Duration::from_millis(5),
        };
        assert!(!p.is_full(2) && p.is_full(3));
        let t0 = Instant::now();
        assert_eq!(p.deadline(t0) - t0, Duration::from_millis(5));
    }
}
