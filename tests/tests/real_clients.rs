//! driftline as its users meet it: through their own clients. Python's confluent-kafka against
//! tansu, and Debian's kcat against the embedded broker (kcat's librdkafka 2.0 cannot talk to
//! tansu).
use std::process::Command;
use std::time::Duration;

use driftline::kafka::embedded::EmbeddedBroker;
use driftline::{Pipeline, Settings};
use driftline_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_confluent_kafka_user_on_tansu() {
    let broker = Tansu::start();
    let b = broker.bootstrap.as_str();
    create_topics(b, &[("in", 2), ("out", 2), ("dlq", 1)]).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut driftline = DriftlineProcess::start(
        &pipeline_env(b, "in", "out", "dlq", "python-user"),
        &dir.path().join("driftline.log"),
    );
    let output = Command::new(venv_python())
        .current_dir(repo_root())
        .args(["tests/python/user_roundtrip.py", b, "in", "out", "dlq"])
        .output()
        .expect("run the Python user");
    let status = driftline.terminate(Duration::from_secs(30));
    let log = std::fs::read_to_string(dir.path().join("driftline.log")).unwrap_or_default();
    assert!(
        output.status.success(),
        "python user failed:\n{}{}\ndriftline log:\n{log}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(status.success(), "driftline exited with {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_on_the_embedded_broker() {
    let kcat = which("kcat");
    let broker = EmbeddedBroker::start(1).expect("embedded broker");
    let b = broker.bootstrap_servers().to_string();
    for (t, p) in [("in", 4), ("out", 4), ("dlq", 1)] {
        broker.create_topic(t, p).expect("topic");
    }
    let root = repo_root();
    let env = pipeline_env(&b, "in", "out", "dlq", "kcat")
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        // In process, the working directory is tests/: give the repo's files by absolute path.
        .chain([
            (
                "DRIFTLINE__MODEL__PATH".to_string(),
                root.join("models/anomaly_classifier.onnx")
                    .display()
                    .to_string(),
            ),
            (
                "DRIFTLINE__RUNTIME__ONNXRUNTIME_LIBRARY".to_string(),
                onnxruntime_library().display().to_string(),
            ),
        ]);
    let settings = Settings::load_with_env(Some(&repo_root().join("configs/demo.toml")), env)
        .expect("settings");
    let pipeline = Pipeline::build(settings).expect("pipeline");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(pipeline.run(async {
        let _ = stop_rx.await;
    }));

    // kcat produces "key:payload" lines; 200 valid events and 2 malformed.
    let sensors: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("models/sensors.json")).expect("sensors"),
    )
    .expect("json");
    let mut lines = String::new();
    for i in 0..200 {
        let mut event =
            serde_json::json!({"device_id": format!("kcat-{i}"), "ts": 1_700_000_000_000i64 + i});
        for s in sensors["sensors"].as_array().expect("sensors") {
            event[s["name"].as_str().expect("name")] = s["mean"].clone();
        }
        lines.push_str(&format!("kcat-{i}:{event}\n"));
    }
    lines.push_str("bad-0:{\"device_id\":\"x\"\nbad-1:[1,2]\n");
    let input = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(input.path(), lines).expect("write events");
    let produced = Command::new(&kcat)
        .args(["-b", &b, "-P", "-t", "in", "-K:", "-l"])
        .arg(input.path())
        .status()
        .expect("kcat -P");
    assert!(produced.success(), "kcat could not produce");

    let read = |topic: &str, count: usize| {
        let out = Command::new(&kcat)
            .args([
                "-b",
                &b,
                "-C",
                "-t",
                topic,
                "-o",
                "beginning",
                "-e",
                "-c",
                &count.to_string(),
                "-f",
                "%k\t%s\n",
                "-m",
                "60",
            ])
            .output()
            .expect("kcat -C");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let predictions = wait_for_lines(|| read("out", 200), 200);
    let _ = stop_tx.send(());
    let summary = running.await.expect("pipeline task").expect("pipeline run");
    assert_eq!(
        predictions.len(),
        200,
        "kcat read {} predictions",
        predictions.len()
    );
    for line in &predictions {
        let (key, json) = line.split_once('\t').expect("key and payload");
        let v: serde_json::Value = serde_json::from_str(json).expect("prediction JSON");
        assert_eq!(v["id"].as_str(), Some(key));
    }
    let dead = read("dlq", 2);
    assert_eq!(dead.len(), 2, "kcat read the dead letters: {dead:?}");
    assert_eq!(
        (summary.predictions_out, summary.dead_letters_out),
        (200, 2)
    );
}

/// Re-reads until `expected` lines arrived (consumers may start before outputs exist), bounded.
fn wait_for_lines(read: impl Fn() -> Vec<String>, expected: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let lines = read();
        if lines.len() >= expected || std::time::Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn which(tool: &str) -> String {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .expect("sh");
    assert!(
        found.status.success(),
        "{tool} is not installed (make test installs it: apt-get install {tool})"
    );
    String::from_utf8_lossy(&found.stdout).trim().to_string()
}
