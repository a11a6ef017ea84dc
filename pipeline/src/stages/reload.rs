//! Reloading the serving models while the stream runs.
//!
//! A reload reads the `--config` file's `[model]` section again, builds every session (serving
//! model, canary variants, shadow) off the hot path (on the thread that asked for it: SIGHUP, the
//! file watcher or `POST /admin/reload`), one set per inference session, and leaves them for the
//! sessions to swap in, each between two of its batches. A failed reload changes nothing: the old
//! models keep serving, and the failure is logged and counted.
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::Context;
use driftline_operators::infer::OutputInfo;

use crate::config::Settings;
use crate::models::identity::ModelIdentity;
use crate::models::set::ServingModels;
use crate::telemetry::metrics::PipelineMetrics;
use crate::telemetry::server::Reload;

/// Reloads of the serving models, asked for by SIGHUP, the file watcher or the admin endpoint.
pub struct ModelReloader {
    /// The settings the serving models were loaded with (their `[model]` replaced at each
    /// successful reload).
    settings: Mutex<Settings>,
    outputs: Vec<OutputInfo>,
    metrics: Arc<PipelineMetrics>,
    /// How many inference sessions there are: a reload loads one model set for each.
    sessions: usize,
    /// The latest reload's generation and the checked model sets it left, one per session that
    /// has not taken its own yet. `generation` lets a session look without taking the lock.
    pending: Mutex<(u64, Vec<ServingModels>)>,
    generation: AtomicU64,
    /// One reload at a time.
    reloading: Mutex<()>,
}

impl ModelReloader {
    pub fn new(
        settings: Settings,
        serving: &ServingModels,
        sessions: usize,
        metrics: Arc<PipelineMetrics>,
    ) -> Self {
        ModelReloader {
            settings: Mutex::new(settings),
            outputs: serving.outputs().to_vec(),
            metrics,
            sessions: sessions.max(1),
            pending: Mutex::new((0, Vec::new())),
            generation: AtomicU64::new(0),
            reloading: Mutex::new(()),
        }
    }

    /// The settings to reload with: the serving ones, with the `[model]` section read again from
    /// the `--config` file (under the startup's environment overrides) when there is one.
    fn settings_for_reload(&self) -> anyhow::Result<Settings> {
        let mut settings = self.lock_settings().clone();
        if let Some(file) = settings.source_file.clone() {
            let fresh = Settings::load_with_env(Some(&file), settings.source_env.clone())
                .with_context(|| format!("reading {} again", file.display()))?;
            settings.model = fresh.model;
        }
        Ok(settings)
    }

    fn lock_settings(&self) -> std::sync::MutexGuard<'_, Settings> {
        self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Loads and checks the model files again; on success they are swapped in before the next
    /// batch. On failure the serving models stay, and the error is logged, counted and returned.
    /// Returns the new serving model's identity.
    pub fn reload(&self, cause: &str) -> Result<ModelIdentity, String> {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|e| e.into_inner());
        let loaded = self.settings_for_reload().and_then(|settings| {
            let sets = (0..self.sessions)
                .map(|_| ServingModels::load(&settings, Some(&self.outputs)))
                .collect::<anyhow::Result<Vec<_>>>()?;
            Ok((settings, sets))
        });
        match loaded {
            Ok((settings, sets)) => {
                let models = &sets[0];
                let identity = models.serving_identity().as_ref().clone();
                tracing::info!(cause, version = %identity.version, sha256 = %identity.sha256, models = %models.describe(), "models reloaded; swapping them in before the next batch");
                *self.lock_settings() = settings;
                let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                let generation = pending.0 + 1;
                *pending = (generation, sets);
                self.generation.store(generation, Ordering::Release);
                PipelineMetrics::add(&self.metrics.model_reloads, 1);
                Ok(identity)
            }
            Err(e) => {
                let message = format!("{e:#}");
                tracing::error!(cause, error = %message, "model reload failed; the serving models stay");
                PipelineMetrics::add(&self.metrics.model_reload_failures, 1);
                Err(message)
            }
        }
    }

    /// A session's set of the latest reload, if it is newer than the session's `generation`
    /// (called by each inference session between its batches; it then holds the new generation).
    pub fn take_newer(&self, generation: &mut u64) -> Option<ServingModels> {
        if self.generation.load(Ordering::Acquire) <= *generation {
            return None;
        }
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        // One set per session: a session that skipped a generation takes one of the latest.
        let models = pending.1.pop()?;
        *generation = pending.0;
        Some(models)
    }

    /// Every model file of the current settings: the serving model's, the variants', the shadow's.
    fn watched_paths(&self) -> Vec<PathBuf> {
        let settings = self.lock_settings();
        let m = &settings.model;
        let mut paths = vec![m.path.clone()];
        paths.extend(m.variants.iter().map(|v| v.path.clone()));
        if !m.shadow.path.as_os_str().is_empty() {
            paths.push(m.shadow.path.clone());
        }
        paths
    }

    /// Watches the model files every `interval` and reloads when a modification time or size
    /// changes, until `stop` is set. Writers should replace a file atomically (write, then
    /// rename); a half-written file fails its checks and is retried at the next change.
    pub fn watch(self: &Arc<Self>, interval: std::time::Duration, stop: Arc<AtomicBool>) {
        let reloader = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("driftline-model-watch".into())
            .spawn(move || {
                let stamps =
                    |paths: &[PathBuf]| -> Vec<_> { paths.iter().map(|p| file_stamp(p)).collect() };
                let mut paths = reloader.watched_paths();
                let mut last = stamps(&paths);
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(interval);
                    let now = stamps(&paths);
                    if now != last && now.iter().all(Option::is_some) {
                        let _ = reloader.reload("model file changed");
                        // A reload may have changed which files serve.
                        paths = reloader.watched_paths();
                        last = stamps(&paths);
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the model file watcher");
        }
    }
}

fn file_stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

impl Reload for ModelReloader {
    fn reload(&self, cause: &str) -> Result<ModelIdentity, String> {
        ModelReloader::reload(self, cause)
    }
}
