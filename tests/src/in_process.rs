//! driftline's pipeline in this test process, on librdkafka's embedded MockCluster: the broker
//! whose faults a test can inject (brokers down, request errors, leader moves, latency).
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use driftline::kafka::embedded::EmbeddedBroker;
use driftline::telemetry::metrics::{MetricsSnapshot, PipelineMetrics};
use driftline::{Pipeline, Settings};
use std::sync::Arc;

use crate::{onnxruntime_library, pipeline_env, repo_root};

/// configs/demo.toml pointed at `bootstrap` and the topics `in`, `out`, `dlq`, with `extra`
/// overrides (`DRIFTLINE__…` names). Repo files are given by absolute path: in process, the
/// working directory is tests/.
pub fn demo_settings(bootstrap: &str, group: &str, extra: &[(&str, String)]) -> Settings {
    let root = repo_root();
    let env = pipeline_env(bootstrap, "in", "out", "dlq", group)
        .into_iter()
        .chain([
            (
                "DRIFTLINE__MODEL__PATH",
                root.join("models/anomaly_classifier.onnx")
                    .display()
                    .to_string(),
            ),
            (
                "DRIFTLINE__RUNTIME__ONNXRUNTIME_LIBRARY",
                onnxruntime_library().display().to_string(),
            ),
        ])
        .chain(extra.iter().cloned())
        .map(|(k, v)| (k.to_string(), v));
    Settings::load_with_env(Some(&root.join("configs/demo.toml")), env).expect("settings")
}

/// An embedded broker with `in`, `out` and `dlq` topics.
pub fn embedded_broker(brokers: u32, input_partitions: i32) -> EmbeddedBroker {
    let broker = EmbeddedBroker::start(brokers).expect("embedded broker");
    for (topic, partitions) in [
        ("in", input_partitions),
        ("out", input_partitions),
        ("dlq", 1),
    ] {
        broker.create_topic(topic, partitions).expect("topic");
    }
    broker
}

/// A pipeline running on this runtime until its outputs (predictions and dead letters) reach
/// a count, or a time limit passes.
pub struct RunningPipeline {
    pub metrics: Arc<PipelineMetrics>,
    pub health: Option<SocketAddr>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<MetricsSnapshot>>,
}

impl RunningPipeline {
    pub fn start(settings: Settings) -> RunningPipeline {
        let pipeline = Pipeline::build(settings).expect("pipeline");
        let (metrics, health) = (pipeline.metrics(), pipeline.health_addr());
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(pipeline.run(async {
            let _ = stop_rx.await;
        }));
        RunningPipeline {
            metrics,
            health,
            stop,
            task,
        }
    }

    /// Outputs acknowledged so far: predictions plus dead letters.
    pub fn outputs(&self) -> u64 {
        let s = self.metrics.snapshot();
        s.predictions_out + s.dead_letters_out
    }

    /// Waits (bounded) until at least `n` outputs were acknowledged; returns how many were.
    pub async fn wait_for_outputs(&self, n: u64, limit: Duration) -> u64 {
        let started = Instant::now();
        while self.outputs() < n && started.elapsed() < limit && !self.task.is_finished() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.outputs()
    }

    /// Asks the pipeline to stop and returns how its run ended.
    pub async fn stop(self) -> anyhow::Result<MetricsSnapshot> {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .map_err(|_| anyhow::anyhow!("the pipeline did not stop within 60 s"))?
            .map_err(|e| anyhow::anyhow!("pipeline task: {e}"))?
    }
}
