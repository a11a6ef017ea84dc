//! `driftline validate`: loads config, model and schema together, runs the same smoke inference
//! as `run` and `batch`, and explains every problem it finds, one per line, so a deploy pipeline
//! can fail early with a message a person can act on. Warnings (a float64 model fed f32
//! features) are printed but do not fail it.
use std::path::Path;

use driftline_operators::infer::{load_runtime, InferError, InferenceModel};

use crate::config::threads::ThreadPlan;
use crate::config::Settings;
use crate::models::load::{require_model_path, smoke_test};
use crate::models::set::ServingModels;

/// What validation found: the settings (when they loaded) and every problem.
pub struct Validation {
    pub settings: Option<Settings>,
    pub problems: Vec<String>,
    /// The execution provider the model would run on, when it loaded.
    pub provider: Option<&'static str>,
    /// What works but is likely not what the user meant.
    pub warnings: Vec<String>,
    /// The threads `run` would start on this machine, when the model loaded.
    pub threads: Option<ThreadPlan>,
}

pub fn validate(config: Option<&Path>) -> Validation {
    let settings = match Settings::load(config) {
        Ok(s) => s,
        Err(crate::config::ConfigError::Invalid(problems)) => {
            return Validation {
                settings: None,
                problems,
                provider: None,
                warnings: Vec::new(),
                threads: None,
            }
        }
        Err(e) => {
            return Validation {
                settings: None,
                problems: vec![e.to_string()],
                provider: None,
                warnings: Vec::new(),
                threads: None,
            }
        }
    };
    let mut problems = Vec::new();
    let mut provider = None;
    let mut warnings = Vec::new();
    if !settings.has_model() && settings.drift.enabled {
        // Drift without a model: the features alone are watched; nothing to load.
    } else if let Err(e) = require_model_path(&settings.model.path) {
        problems.push(e.to_string());
    } else if !settings.model.path.is_file() {
        problems.push(format!(
            "model.path {} is not a file",
            settings.model.path.display()
        ));
    } else {
        match load_runtime(&settings.onnxruntime_library()) {
            Err(e) => problems.push(e.to_string()),
            Ok(runtime) => {
                match InferenceModel::load(&runtime, &settings.model_options(), &settings.schema) {
                    Ok(mut model) => {
                        provider = Some(model.provider());
                        warnings.extend(model.precision_warnings(&settings.schema));
                        // What `run` and `batch` check before they start: one event through it.
                        if let Err(e) = smoke_test(&mut model, &settings.schema) {
                            problems.push(format!(
                                "smoke inference with model {}: {e:#}",
                                settings.model.path.display()
                            ));
                        }
                    }
                    Err(InferError::Signature(list)) => problems.extend(list),
                    Err(e) => problems.push(e.to_string()),
                }
                // Canary variants and the shadow load and check as the pipeline would.
                let m = &settings.model;
                let more_models = !m.variants.is_empty() || !m.shadow.path.as_os_str().is_empty();
                if problems.is_empty() && more_models {
                    if let Err(e) = ServingModels::load(&settings, None) {
                        problems.push(format!("{e:#}"));
                    }
                }
            }
        }
    }
    // As `run` resolves them: a fixed runtime.sessions the cores cannot hold is a problem.
    let scoring = settings.has_model();
    let threads = match (problems.is_empty(), scoring && provider.is_none()) {
        (true, false) => match settings.thread_plan(provider == Some("cuda"), scoring) {
            Ok(plan) => Some(plan),
            Err(e) => {
                problems.push(e);
                None
            }
        },
        _ => None,
    };
    Validation {
        settings: Some(settings),
        problems,
        provider,
        warnings,
        threads,
    }
}
