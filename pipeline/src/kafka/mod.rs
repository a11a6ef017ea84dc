//! The Kafka clients and what at-least-once rests on: the consumer, the producer and its delivery
//! callback, the offset tracker, the headers driftline writes, librdkafka's statistics, the labels topic's
//! events and co-partitioning, and the embedded broker of the demo and tests. No stage logic here.
pub mod client;
pub mod consumer;
pub mod delivery;
pub mod embedded;
pub mod headers;
pub mod labels;
pub mod offsets;
pub mod producer;
pub mod reader;
pub mod stats;
pub mod trace_context;

pub use consumer::SourceConsumer;
pub use offsets::OffsetTracker;
pub use producer::SinkProducer;
