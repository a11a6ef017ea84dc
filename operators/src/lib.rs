//! driftline's operators: pure, synchronous functions and state machines over Arrow batches.
//!
//! The data path reads top to bottom: [`schema`] says what an event holds, [`decode`] turns
//! event bytes into rows of a [`batch::BatchBuilder`], [`batch`] closes them into a
//! [`batch::SourceBatch`] (a `RecordBatch` plus where each row came from), [`infer`] runs the
//! model over it, [`encode`] writes one prediction per row, and [`drift`] keeps the rolling
//! histograms on the side; [`performance`] measures the model against labels. Nothing here
//! knows about Kafka or an async runtime: the `driftline` crate owns those and calls into this
//! one.
pub mod batch;
pub mod decode;
pub mod drift;
pub mod encode;
pub mod error;
pub mod infer;
pub mod performance;
pub mod schema;

pub use error::ErrorKind;
