//! `driftline validate`: loads config, model and schema together and explains every problem it
//! finds, one per line, so a deploy pipeline can fail early with a message a person can act on.
use std::path::Path;

use driftline_operators::infer::{load_runtime, InferError, InferenceModel};

use crate::config::Settings;
use crate::models::set::ServingModels;

/// What validation found: the settings (when they loaded) and every problem.
pub struct Validation {
    pub settings: Option<Settings>,
    pub problems: Vec<String>,
    /// The execution provider the model would run on, when it loaded.
    pub provider: Option<&'static str>,
}

pub fn validate(config: Option<&Path>) -> Validation {
    let settings = match Settings::load(config) {
        Ok(s) => s,
        Err(crate::config::ConfigError::Invalid(problems)) => {
            return Validation {
                settings: None,
                problems,
                provider: None,
            }
        }
        Err(e) => {
            return Validation {
                settings: None,
                problems: vec![e.to_string()],
                provider: None,
            }
        }
    };
    let mut problems = Vec::new();
    let mut provider = None;
    if !settings.model.path.is_file() {
        problems.push(format!(
            "model.path {} is not a file",
            settings.model.path.display()
        ));
    } else {
        match load_runtime(&settings.onnxruntime_library()) {
            Err(e) => problems.push(format!(
                "{e} (set runtime.onnxruntime_library or ORT_DYLIB_PATH)"
            )),
            Ok(runtime) => {
                match InferenceModel::load(&runtime, &settings.model_options(), &settings.schema) {
                    Ok(model) => provider = Some(model.provider()),
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
    Validation {
        settings: Some(settings),
        problems,
        provider,
    }
}
