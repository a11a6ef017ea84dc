//! The command line: one subcommand per job.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "driftline",
    version,
    about = "Streaming inference with drift detection: Kafka in, ONNX Runtime, Kafka out"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the pipeline until SIGINT/SIGTERM, then drain, flush, commit and exit 0.
    Run(ConfigArg),
    /// The fleet view: merge the partials every instance of the consumer group publishes
    /// (fleet.enabled) into one drift report and alert stream (aggregate.*), until
    /// SIGINT/SIGTERM.
    Aggregate(ConfigArg),
    /// Check config, model and schema together; print every problem; exit 1 if any. With
    /// --labeled: the quality gate, scoring --model (and --baseline) on a labeled file.
    Validate(ValidateArgs),
    /// Produce simulated IoT sensor events to a topic.
    Gen(GenArgs),
    /// The demo: embedded broker, demo model, live event feed, summary.
    Demo(DemoArgs),
    /// Compare a reference sample with a current one: KS (as scipy), PSI and KL (as evidently).
    Drift(DriftArgs),
    /// Build the drift reference profile from a sample file (JSONL or CSV) with the configured schema and model.
    Profile(ProfileArgs),
    /// Score a file (JSONL, CSV or Parquet) with the stream's operators: predictions, rejected
    /// events and, with drift on, drift reports and alerts, each to a JSONL file.
    Batch(BatchArgs),
    /// Write the drift report: one self-contained HTML page, from the drift and alerts topics
    /// (--bootstrap, --from, --to), from `batch`'s files (--drift, --alerts), or from a
    /// reference and a current sample (--reference, --current).
    Report(ReportArgs),
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The HTML file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Config whose kafka section names the topics (drift_topic, alerts_topic) and the client
    /// properties.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Read the topics from this broker (default: kafka.bootstrap_servers of the config).
    #[arg(long)]
    pub bootstrap: Option<String>,
    /// Records from this time: epoch milliseconds or UTC `YYYY-MM-DDTHH:MM:SSZ` (default: the start).
    #[arg(long)]
    pub from: Option<String>,
    /// Records up to this time, inclusive (default: now).
    #[arg(long)]
    pub to: Option<String>,
    /// A `.drift.jsonl` file from `driftline batch` (instead of the topics).
    #[arg(long)]
    pub drift: Option<PathBuf>,
    /// Its `.alerts.jsonl` (default: beside --drift, when there).
    #[arg(long)]
    pub alerts: Option<PathBuf>,
    /// A reference sample, as `driftline drift` takes it (with --current).
    #[arg(long)]
    pub reference: Option<PathBuf>,
    #[arg(long)]
    pub current: Option<PathBuf>,
    /// The column of --reference and --current (CSV or JSONL).
    #[arg(long)]
    pub column: Option<String>,
    /// The page's title.
    #[arg(long, default_value = "driftline drift report")]
    pub title: String,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// The candidate model (default: model.path of the config).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Events with a label field (JSONL, CSV or Parquet): turns on the quality gate.
    #[arg(long)]
    pub labeled: Option<PathBuf>,
    /// accuracy (predicted class = label), auc (score vs 0/1 label) or rmse.
    #[arg(long, default_value = "accuracy")]
    pub metric: String,
    /// Fail below this (accuracy, auc).
    #[arg(long)]
    pub min: Option<f64>,
    /// Fail above this (rmse).
    #[arg(long)]
    pub max: Option<f64>,
    /// The model serving now, scored on the same file.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Fail when the candidate is worse than the baseline by more than this.
    #[arg(long)]
    pub max_drop: Option<f64>,
    /// The label's field in each event.
    #[arg(long, default_value = "label")]
    pub label_field: String,
    /// The output to score: `name`, or `name[k]` for a column of an [N, K] output.
    #[arg(long)]
    pub output: Option<String>,
}

#[derive(Debug, Args)]
pub struct BatchArgs {
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Events: `.jsonl` (one per line), `.csv` (a header row) or `.parquet`.
    #[arg(long)]
    pub input: PathBuf,
    /// Predictions, one JSON object per line; `OUTPUT.rejected.jsonl`, `OUTPUT.drift.jsonl` and
    /// `OUTPUT.alerts.jsonl` are written beside it.
    #[arg(long)]
    pub output: PathBuf,
    /// Fail (exit 1, every file still written) when more than this share of the events is
    /// rejected, 0 to 1. A run that scores no event fails whatever this is.
    #[arg(long, default_value_t = 0.1)]
    pub max_rejected: f64,
}

#[derive(Debug, Args)]
pub struct ProfileArgs {
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    #[arg(long)]
    pub input: PathBuf,
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct DriftArgs {
    /// One value per line, or a CSV (header row) / JSONL file with --column.
    #[arg(long)]
    pub reference: PathBuf,
    #[arg(long)]
    pub current: PathBuf,
    #[arg(long)]
    pub column: Option<String>,
    /// `q10`: reference deciles (what the stream uses); `evidently`: evidently's default bins.
    #[arg(long, default_value = "q10")]
    pub binning: String,
    /// Number of quantile bins for q10 (evidently's binning ignores it, as evidently does).
    #[arg(long, default_value_t = 10)]
    pub bins: usize,
    #[arg(long, default_value_t = 0.1)]
    pub psi_threshold: f64,
    #[arg(long, default_value_t = 0.1)]
    pub kl_threshold: f64,
    /// `json` (one object), `table`, or `html` (the report page for this comparison).
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Exit with status 2 when any statistic says drift.
    #[arg(long)]
    pub fail_on_drift: bool,
}

#[derive(Debug, Args)]
pub struct ConfigArg {
    /// TOML file layered over the built-in defaults (configs/default.toml).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct GenArgs {
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub bootstrap: String,
    #[arg(long, default_value = "sensor-events")]
    pub topic: String,
    #[arg(long, default_value_t = 100_000)]
    pub count: u64,
    /// Events per second (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    #[arg(long, default_value_t = 500)]
    pub devices: u32,
    /// From this event index on, shift one sensor's mean (injected drift).
    #[arg(long)]
    pub drift_after: Option<u64>,
    #[arg(long, default_value = "temperature")]
    pub drift_sensor: String,
    /// Size of the drift in the sensor's standard deviations.
    #[arg(long, default_value_t = 1.0)]
    pub drift_shift_std: f64,
    /// Every Nth event is malformed (0: none).
    #[arg(long, default_value_t = 0)]
    pub malformed_every: u64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write the events to this JSONL file instead of a topic (a sample for `driftline
    /// profile`, e.g. in a container that has no other way to make one).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[arg(long, default_value = "configs/demo.toml")]
    pub config: PathBuf,
    /// Use this broker instead of the embedded one (tansu, or any Kafka).
    #[arg(long)]
    pub bootstrap: Option<String>,
    #[arg(long, default_value_t = 200_000)]
    pub events: u64,
    #[arg(long, default_value_t = 20_000)]
    pub rate: u64,
    #[arg(long, default_value_t = 6)]
    pub partitions: i32,
    #[arg(long, default_value_t = 500)]
    pub malformed_every: u64,
    /// From this event on, the temperature sensor drifts (so the demo shows drift alerts).
    #[arg(long, default_value_t = 120_000)]
    pub drift_after: u64,
    /// Feed without injected drift.
    #[arg(long)]
    pub no_drift: bool,
    /// Feed without labels (and without performance windows in the summary).
    #[arg(long)]
    pub no_labels: bool,
    /// Seed of the simulated sensors.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}
