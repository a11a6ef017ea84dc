//! Settings: the embedded `configs/default.toml`, then the user's file, then
//! `DRIFTLINE__SECTION__KEY` environment variables. Every section denies unknown keys, so a typo
//! is an error that names the key, not a silently ignored setting.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use driftline_operators::drift::monitor::{ColumnOverrides, Correction, DriftThresholds};
use driftline_operators::infer::{InputBinding, ModelOptions, Provider};
use driftline_operators::schema::EventSchema;
use serde::{Deserialize, Serialize};

// `Settings`' cross-field rules and secret references, as methods in files of their own.
pub mod fleet;
mod rules;
mod secrets;
pub mod threads;

pub use threads::ThreadCount;

/// The defaults, compiled in so the binary runs without any file beside it.
pub const DEFAULT_TOML: &str = include_str!("../../../configs/default.toml");
const ENV_PREFIX: &str = "DRIFTLINE";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub kafka: KafkaSettings,
    pub schema: EventSchema,
    pub batch: BatchSettings,
    pub drift: DriftSettings,
    pub fleet: fleet::FleetSettings,
    pub aggregate: fleet::AggregateSettings,
    pub performance: PerformanceSettings,
    pub labels: LabelSettings,
    pub model: ModelSettings,
    pub runtime: RuntimeSettings,
    pub pipeline: PipelineSettings,
    pub health: HealthSettings,
    pub telemetry: TelemetrySettings,
    pub log: LogSettings,
    /// The `--config` file these settings came from, read again by a model reload so that a
    /// changed `[model]` section (a canary promoted, a shadow added) takes effect.
    #[serde(skip)]
    pub source_file: Option<PathBuf>,
    /// The `DRIFTLINE__…` environment overrides applied at load, applied again on reload (so a
    /// reload changes what the file changed, not what the environment set at startup).
    #[serde(skip)]
    pub source_env: Vec<(String, String)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSettings {
    pub bootstrap_servers: String,
    pub group_id: String,
    pub input_topics: Vec<String>,
    pub output_topic: String,
    pub dlq_topic: String,
    pub drift_topic: String,
    pub alerts_topic: String,
    pub shadow_topic: String,
    /// Label events joined to predictions by id (`[labels]`); empty: none.
    pub labels_topic: String,
    pub auto_offset_reset: String,
    /// librdkafka properties for both clients.
    pub common: BTreeMap<String, String>,
    pub consumer: BTreeMap<String, String>,
    pub producer: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchSettings {
    pub max_rows: usize,
    pub linger_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WindowKind {
    Count,
    Time,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeSource {
    Event,
    Processing,
}

/// `[performance]`: realized and estimated performance per window (configs/default.toml).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerformanceSettings {
    pub label_field: String,
    pub window: WindowKind,
    pub window_events: u64,
    pub window_ms: i64,
    pub max_open_windows: usize,
}

/// `[labels]`: the label events of `kafka.labels_topic` and how long predictions wait for them
/// (configs/default.toml).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelSettings {
    pub id_field: String,
    pub label_field: String,
    pub timestamp_field: String,
    pub max_delay_ms: i64,
    pub max_pending: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftSettings {
    pub enabled: bool,
    pub profile: String,
    pub warmup_events: u64,
    pub reference_sample: usize,
    pub bins: usize,
    pub window: WindowKind,
    pub time_source: TimeSource,
    pub pane_events: u64,
    pub pane_ms: i64,
    pub lateness_ms: i64,
    pub panes: usize,
    pub slide: usize,
    pub retain_values: usize,
    pub resolve_after: u32,
    /// How a window's p-values are corrected together (was `bonferroni = true`).
    pub correction: Correction,
    pub channel_capacity: usize,
    pub thresholds: DriftThresholds,
    /// Per-column overrides; a key not given takes its value from `thresholds`.
    pub columns: BTreeMap<String, ColumnOverrides>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSettings {
    pub path: PathBuf,
    pub name: String,
    pub version: String,
    pub inputs: Vec<InputBindingSettings>,
    pub watch_interval_ms: u64,
    /// This model's share of the traffic when `variants` are configured.
    pub weight: u32,
    /// Canary variants: other models taking a share of the traffic by key hash.
    pub variants: Vec<VariantSettings>,
    /// A model scoring every event beside the serving one, into `kafka.shadow_topic`.
    pub shadow: ShadowSettings,
}

/// One canary variant: a model file, its name on predictions and metrics, and its weight.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantSettings {
    pub name: String,
    pub path: PathBuf,
    #[serde(default)]
    pub version: String,
    pub weight: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShadowSettings {
    /// Empty: no shadow model.
    pub path: PathBuf,
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputBindingSettings {
    pub input: String,
    pub features: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionProvider {
    Cpu,
    Cuda,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSettings {
    pub onnxruntime_library: String,
    pub execution_provider: ExecutionProvider,
    pub cuda_device_id: i32,
    pub cuda_require: bool,
    pub intra_threads: usize,
    /// Inference sessions, each on its own thread ([`threads::ThreadPlan`]).
    pub sessions: ThreadCount,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSettings {
    /// Threads that decode events into batches ([`threads::ThreadPlan`]).
    pub decode_threads: ThreadCount,
    /// The cores "auto" thread counts plan for; "auto": what the process may use.
    pub cores: ThreadCount,
    pub channel_capacity: usize,
    pub max_event_bytes: usize,
    pub max_key_bytes: usize,
    pub max_dead_letter_bytes: usize,
    pub shutdown_grace_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSettings {
    pub listen: String,
    pub stall_timeout_ms: u64,
    pub statistics_interval_ms: u64,
    pub admin: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    pub otlp_endpoint: String,
    pub metrics_interval_ms: u64,
    pub service_name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
}

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or the environment could not be read or parsed. Held as text, not as a source
    /// error, so that `{:#}` prints the message once.
    #[error("{0}")]
    Load(String),
    #[error("invalid settings:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
}

impl From<config::ConfigError> for ConfigError {
    fn from(e: config::ConfigError) -> Self {
        ConfigError::Load(readable_key_paths(&e.to_string()))
    }
}

/// The `config` crate writes a key inside a list as `schema.features[0]type`; users write
/// `schema.features[0].type`.
fn readable_key_paths(message: &str) -> String {
    let mut out = String::with_capacity(message.len() + 4);
    let mut chars = message.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == ']' && chars.peek().is_some_and(|n| n.is_alphabetic() || *n == '_') {
            out.push('.');
        }
    }
    out
}

/// Keys whose value names a file; in a config file, a relative one is relative to the file.
const PATH_KEYS: [&str; 3] = ["model.path", "model.shadow.path", "drift.profile"];

/// Which path settings a config file sets itself, so that they resolve against its folder.
struct FileRelative {
    folder: PathBuf,
    /// `PATH_KEYS` the file sets and the environment does not override.
    keys: Vec<&'static str>,
    variants: bool,
}

impl FileRelative {
    fn of(file: &Path, env: &[(String, String)]) -> Result<FileRelative, ConfigError> {
        let own = config::Config::builder()
            .add_source(config::File::from(file).format(config::FileFormat::Toml))
            .build()?;
        let from_env = |key: &str| {
            let var = format!("{ENV_PREFIX}__{}", key.replace('.', "__").to_uppercase());
            env.iter().any(|(k, _)| k.eq_ignore_ascii_case(&var))
        };
        let parent = file.parent().filter(|p| !p.as_os_str().is_empty());
        let folder = parent.unwrap_or(Path::new("."));
        Ok(FileRelative {
            folder: std::fs::canonicalize(folder).unwrap_or_else(|_| folder.to_path_buf()),
            keys: PATH_KEYS
                .into_iter()
                .filter(|k| own.get_string(k).is_ok() && !from_env(k))
                .collect(),
            variants: own.get_array("model.variants").is_ok() && !from_env("model.variants"),
        })
    }

    fn resolve(&self, path: &mut PathBuf) {
        if !path.as_os_str().is_empty() && path.is_relative() {
            *path = self.folder.join(&*path);
        }
    }

    fn apply(&self, settings: &mut Settings) {
        for key in &self.keys {
            match *key {
                "model.path" => self.resolve(&mut settings.model.path),
                "model.shadow.path" => self.resolve(&mut settings.model.shadow.path),
                "drift.profile" if !settings.drift.profile.is_empty() => {
                    let mut p = PathBuf::from(&settings.drift.profile);
                    self.resolve(&mut p);
                    settings.drift.profile = p.display().to_string();
                }
                _ => {}
            }
        }
        if self.variants {
            for v in &mut settings.model.variants {
                self.resolve(&mut v.path);
            }
        }
    }
}

impl Settings {
    /// Defaults, then `file`, then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        Self::load_with_env(file, std::env::vars())
    }

    /// As [`Settings::load`], with the environment given (tests use this).
    pub fn load_with_env(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let source_file = file.map(Path::to_path_buf);
        let env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .collect();
        let source_env = env.clone();
        let relative = file.map(|f| FileRelative::of(f, &env)).transpose()?;
        let file = file.map(|path| {
            config::File::from(path)
                .format(config::FileFormat::Toml)
                .required(true)
        });
        let mut settings = Self::load_from(file, env, relative.as_ref())?;
        settings.source_file = source_file;
        settings.source_env = source_env;
        Ok(settings)
    }

    /// Defaults, then `text` as a config file; no environment (the config fuzz target uses it).
    pub fn from_toml(text: &str) -> Result<Settings, ConfigError> {
        let file = config::File::from_str(text, config::FileFormat::Toml);
        Self::load_from(Some(file), std::iter::empty(), None)
    }

    fn load_from<S: config::Source + Send + Sync + 'static>(
        file: Option<S>,
        env: impl IntoIterator<Item = (String, String)>,
        relative: Option<&FileRelative>,
    ) -> Result<Settings, ConfigError> {
        let mut builder = config::Config::builder().add_source(config::File::from_str(
            DEFAULT_TOML,
            config::FileFormat::Toml,
        ));
        if let Some(file) = file {
            builder = builder.add_source(file);
        }
        let env: config::Map<String, String> = env.into_iter().collect();
        builder = builder.add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("__")
                .separator("__")
                .list_separator(",")
                .with_list_parse_key("kafka.input_topics")
                .try_parsing(true)
                .source(Some(env)),
        );
        let mut settings: Settings = builder.build()?.try_deserialize()?;
        settings.normalise_property_names();
        if let Some(relative) = relative {
            relative.apply(&mut settings);
        }
        let mut problems = settings.resolve_secret_references();
        problems.extend(settings.problems());
        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// Environment variables cannot hold dots, so `SASL_PASSWORD` means `sasl.password`.
    fn normalise_property_names(&mut self) {
        for map in [
            &mut self.kafka.common,
            &mut self.kafka.consumer,
            &mut self.kafka.producer,
        ] {
            *map = std::mem::take(map)
                .into_iter()
                .map(|(k, v)| (k.replace('_', "."), v))
                .collect();
        }
    }

    pub fn provider(&self) -> Provider {
        match self.runtime.execution_provider {
            ExecutionProvider::Cpu => Provider::Cpu,
            ExecutionProvider::Cuda => Provider::Cuda {
                device_id: self.runtime.cuda_device_id,
                require: self.runtime.cuda_require,
            },
        }
    }

    /// Whether a model is configured. Without one, drift (when on) watches the features alone:
    /// nothing is scored and nothing goes to the output topic.
    pub fn has_model(&self) -> bool {
        !self.model.path.as_os_str().is_empty()
    }

    /// How to load and run the model: the one place settings become [`ModelOptions`].
    pub fn model_options(&self) -> ModelOptions {
        let inputs = self.model.inputs.iter();
        ModelOptions {
            path: self.model.path.clone(),
            provider: self.provider(),
            intra_threads: self.runtime.intra_threads,
            inputs: inputs
                .map(|b| InputBinding {
                    input: b.input.clone(),
                    features: b.features.clone(),
                })
                .collect(),
        }
    }

    /// The ONNX Runtime library: the setting, else `ORT_DYLIB_PATH`, else the one in `.venv`.
    pub fn onnxruntime_library(&self) -> PathBuf {
        if !self.runtime.onnxruntime_library.is_empty() {
            return PathBuf::from(&self.runtime.onnxruntime_library);
        }
        std::env::var_os("ORT_DYLIB_PATH")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(".venv/libonnxruntime.so"))
    }

    /// The settings as TOML with secrets replaced, safe to print or log.
    pub fn redacted_toml(&self) -> String {
        let mut copy = self.clone();
        for map in [
            &mut copy.kafka.common,
            &mut copy.kafka.consumer,
            &mut copy.kafka.producer,
        ] {
            for (k, v) in map.iter_mut() {
                if is_secret(k) {
                    *v = "<redacted>".into();
                }
            }
        }
        toml_text(&copy)
    }
}

/// Whether a librdkafka property holds a secret that must never be printed.
pub fn is_secret(property: &str) -> bool {
    [
        "password",
        "secret",
        "sasl.oauthbearer.config",
        "ssl.key.pem",
        "ssl.keystore",
        "ssl.certificate.pem",
        "ssl_key",
    ]
    .iter()
    .any(|s| property.contains(s))
}

fn toml_text(settings: &Settings) -> String {
    // serde_json is already a dependency; TOML output would need another crate for one command.
    serde_json::to_string_pretty(settings)
        .unwrap_or_else(|e| format!("<cannot print settings: {e}>"))
}

impl Settings {
    /// This pipeline's threads on this machine, given the provider its models got (`cuda`) and
    /// whether a model scores at all.
    pub fn thread_plan(&self, cuda: bool, scoring: bool) -> Result<threads::ThreadPlan, String> {
        threads::ThreadPlan::resolve(threads::PlanInputs {
            decode_threads: self.pipeline.decode_threads,
            sessions: self.runtime.sessions,
            intra_threads: self.runtime.intra_threads,
            cuda,
            drift: self.drift.enabled,
            scoring,
            cores: match self.pipeline.cores {
                ThreadCount::Fixed(n) => n,
                ThreadCount::Auto => threads::ThreadPlan::available_cores(),
            },
        })
    }
}

#[cfg(test)]
mod tests;
