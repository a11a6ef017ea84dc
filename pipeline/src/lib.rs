//! driftline: streaming inference with drift detection.
//!
//! Follow the data from [`config`] (what to read, which model) through [`topology`], which wires
//! [`source`] → decode → batch → infer → encode → [`sink`], with [`offsets`] deciding what may
//! be committed. The operators themselves live in the `driftline-operators` crate.
//! Operations: [`health`] and [`health_server`] (probes, `/metrics`), [`otel_metrics`] and
//! [`telemetry`] (OpenTelemetry metrics, traces and logs), [`kafka_stats`] (lag, broker state).
#[cfg(feature = "mimalloc")]
mod allocator;
pub mod batch_cli;
pub mod canary;
pub mod cli;
pub mod config;
mod config_rules;
mod config_secrets;
pub mod delivery;
pub mod demo;
pub mod drift_cli;
pub mod drift_stage;
pub mod embedded_broker;
pub mod fuzz_checks;
pub mod gen;
pub mod health;
pub mod health_server;
pub mod infer_stage;
pub mod kafka_stats;
pub mod metrics;
pub mod model_reload;
pub mod model_set;
pub mod offsets;
pub mod otel_metrics;
pub mod process_stats;
pub mod profile_cli;
pub mod progress;
pub mod quality_gate;
pub mod shadow_agreement;
pub mod sink;
pub mod source;
pub mod source_stage;
pub mod telemetry;
pub mod topology;
pub mod trace_context;
pub mod validate;
pub mod variant_drift;

pub use config::Settings;
pub use topology::Pipeline;
