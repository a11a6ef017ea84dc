//! What the process says about itself: counters and latencies, health and readiness, the
//! OpenTelemetry exporters, logs and traces, and the server that answers probes and scrapes.
pub mod health;
pub mod logs;
pub mod metrics;
pub mod otel;
pub mod performance;
pub mod process;
pub mod server;

pub use logs::{init, init_with_traces};
