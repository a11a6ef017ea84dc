//! Logging setup: pretty or JSON, filtered by `log.level` (RUST_LOG wins when set).
//! ONNX Runtime's own INFO logging is very chatty, so `ort` is held at WARN unless asked.
use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};

pub fn init(log: &LogSettings) {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| format!("{},ort=warn", log.level));
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("info,ort=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}
