//! driftline: streaming inference with drift detection.
//!
//! # Layout
//! In layer order; each folder imports only the ones above it.
//! - [`clock`], [`config`]: the wall clock, and the settings every part reads.
//! - [`models`]: model files loaded and checked, the serving set, canary routing, shadow agreement.
//! - [`report`]: the drift report page (HTML from reports and alerts), its readers, the live board.
//! - [`telemetry`]: metrics, health, OpenTelemetry, logs, the probe and `/metrics` server.
//! - [`kafka`]: consumer, producer, delivery callback and offsets (at-least-once), headers.
//! - [`stages`]: the threads of the data path (source, infer, sink, drift, reload; features_only
//!   in place of infer and sink when there is no model).
//! - [`topology`]: wires the stages; read it first, it is the data path from top to bottom.
//! - [`aggregate`]: `driftline aggregate`, the fleet view's merge of every instance's partials.
//! - [`cli`]: the other subcommands (batch, profile, drift, report, gate, validate, gen, demo).
//!
//! The operators themselves (decode, batch, infer, encode, drift maths) live in the
//! `driftline-operators` crate.
pub mod aggregate;
#[cfg(feature = "mimalloc")]
mod allocator;
pub mod cli;
pub mod clock;
pub mod config;
pub mod fuzz_checks;
pub mod kafka;
pub mod models;
pub mod report;
pub mod stages;
pub mod telemetry;
pub mod topology;

pub use config::Settings;
pub use topology::Pipeline;
