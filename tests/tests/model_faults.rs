//! Model faults. At startup a corrupt, truncated, empty or incompatible model is a clear error
//! and a non-zero exit, before any broker is contacted. At hot reload (file watch, SIGHUP,
//! `POST /admin/reload`) a bad model is refused, logged and counted while the old one keeps
//! serving; a good one is swapped in between batches, and every prediction names the version
//! that produced it, with no event lost or scored twice by the swap.
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use driftline::cli::gen::GenOptions;
use driftline_tests::accounting::balance;
use driftline_tests::in_process::{demo_settings, embedded_broker, RunningPipeline};
use driftline_tests::*;

fn demo_model() -> Vec<u8> {
    std::fs::read(repo_root().join("models/anomaly_classifier.onnx")).expect("demo model")
}

/// `driftline run` with `model` as its model file: (exit code, stderr).
fn run_with_model(model: &Path) -> (Option<i32>, String) {
    let mut child = Command::new(driftline_bin())
        .current_dir(repo_root())
        .args(["run", "--config", "configs/demo.toml"])
        .env("DRIFTLINE__MODEL__PATH", model)
        .env("DRIFTLINE__KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:9")
        .env("DRIFTLINE__HEALTH__LISTEN", "127.0.0.1:0")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("driftline");
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("driftline kept running with a broken model");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_broken_model_at_startup_is_a_clear_error_and_a_nonzero_exit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let model = demo_model();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "garbage.onnx",
            b"this is not an ONNX model".to_vec(),
            "cannot load model",
        ),
        (
            "truncated.onnx",
            model[..model.len() / 2].to_vec(),
            "cannot load model",
        ),
        ("empty.onnx", Vec::new(), "cannot load model"),
        (
            "two_inputs.onnx",
            std::fs::read(repo_root().join("tests/fixtures/two_inputs.onnx")).expect("fixture"),
            "model and schema disagree",
        ),
    ];
    for (name, bytes, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).expect("write model");
        let (code, stderr) = run_with_model(&path);
        assert!(
            code.is_some_and(|c| c != 0),
            "{name}: exit {code:?}, stderr:\n{stderr}"
        );
        assert!(
            stderr.contains(expected) && stderr.contains(name),
            "{name}: the error names the file and says why:\n{stderr}"
        );
    }
    let (code, stderr) = run_with_model(&dir.path().join("missing.onnx"));
    assert!(
        code.is_some_and(|c| c != 0) && stderr.contains("missing.onnx"),
        "{stderr}"
    );
}

/// Replaces the model file the way a deploy should: write beside it, then rename over it.
fn replace(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_reload_refuses_bad_models_and_swaps_good_ones_under_load() {
    const EVENTS: u64 = 30_000;
    let dir = tempfile::tempdir().expect("temp dir");
    let model_path = dir.path().join("model.onnx");
    let v1 = demo_model();
    std::fs::write(&model_path, &v1).expect("model");
    // The same network as version 2.0.0: the demo model's metadata holds "1.0.0" exactly once,
    // and a same-length replacement keeps the protobuf valid.
    assert_eq!(v1.windows(5).filter(|w| w == b"1.0.0").count(), 1);
    let v2: Vec<u8> = {
        let at = v1.windows(5).position(|w| w == b"1.0.0").expect("version");
        let mut v2 = v1.clone();
        v2[at..at + 5].copy_from_slice(b"2.0.0");
        v2
    };

    let broker = embedded_broker(1, 3);
    let b = broker.bootstrap_servers().to_string();
    let settings = demo_settings(
        &b,
        "reload",
        &[
            ("DRIFTLINE__MODEL__PATH", model_path.display().to_string()),
            ("DRIFTLINE__MODEL__WATCH_INTERVAL_MS", "100".to_string()),
            ("DRIFTLINE__HEALTH__ADMIN", "true".to_string()),
            // Two sessions (issue 19): both swap at one point of the stream, so no partition
            // sees the old version after the new one.
            ("DRIFTLINE__RUNTIME__SESSIONS", "2".to_string()),
            ("DRIFTLINE__PIPELINE__DECODE_THREADS", "4".to_string()),
        ],
    );
    let pipeline = RunningPipeline::start(settings);
    let health = pipeline.health.expect("health server");
    let feed = spawn_feed(
        &b,
        "in",
        GenOptions {
            count: EVENTS,
            rate: 3_000,
            ..GenOptions::default()
        },
    );
    let failures = || pipeline.metrics.snapshot().model_reload_failures;
    let reloads = || pipeline.metrics.snapshot().model_reloads;
    async fn until(what: impl Fn() -> bool) -> bool {
        let started = Instant::now();
        while !what() && started.elapsed() < Duration::from_secs(20) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        what()
    }
    pipeline
        .wait_for_outputs(3_000, Duration::from_secs(60))
        .await;

    // 1. A corrupt file, seen by the watcher: refused, counted, v1 serves on.
    replace(&model_path, b"corrupt");
    assert!(
        until(|| failures() == 1).await,
        "the watcher's reload failed and was counted"
    );
    // 2. The admin endpoint with the corrupt file still there: 500 and why.
    let (status, body) = http::post(health, "/admin/reload");
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("cannot load model"), "{body}");
    // 3. An incompatible model (other inputs): refused.
    replace(
        &model_path,
        &std::fs::read(repo_root().join("tests/fixtures/two_inputs.onnx")).expect("fixture"),
    );
    assert!(
        until(|| failures() == 3).await,
        "the incompatible model was refused"
    );
    let before_swap = pipeline.outputs();
    assert!(before_swap > 3_000, "v1 kept serving through the failures");
    assert_eq!(reloads(), 0);

    // 4. Version 2 by the watcher: swapped in.
    replace(&model_path, &v2);
    assert!(until(|| reloads() == 1).await, "v2 was loaded");
    // 5. SIGHUP and the admin endpoint reload v2 again: both succeed.
    // SAFETY: kill(2) on our own PID; the pipeline's handler is installed (it is running).
    unsafe {
        libc::kill(libc::getpid(), libc::SIGHUP);
    }
    assert!(until(|| reloads() == 2).await, "SIGHUP reloaded");
    let (status, body) = http::post(health, "/admin/reload");
    assert_eq!(status, 200, "{body}");
    let identity: serde_json::Value = serde_json::from_str(&body).expect("identity JSON");
    assert_eq!(identity["version"], "2.0.0");
    assert_eq!(identity["sha256"].as_str().map(str::len), Some(64));
    let metrics = http::get(health, "/metrics").expect("metrics").1;
    assert!(
        metrics.contains("model_sha256=\"") && metrics.contains("model_version=\"2.0.0\""),
        "the serving model in /metrics"
    );

    assert_eq!(feed.join().expect("feed").produced, EVENTS);
    pipeline
        .wait_for_outputs(EVENTS, Duration::from_secs(60))
        .await;
    let summary = pipeline.stop().await.expect("the pipeline ends cleanly");
    assert_eq!(
        (summary.model_reloads, summary.model_reload_failures),
        (3, 3)
    );

    // Every event scored exactly once, by v1 then v2, never back.
    let ledger = balance(&b, "in", EVENTS as usize, &["out"]);
    assert!(
        ledger.lost.is_empty() && ledger.duplicates == 0,
        "{}",
        ledger.summary()
    );
    let predictions = read_topic(
        &b,
        "out",
        usize::MAX,
        Duration::from_secs(2),
        Duration::from_secs(60),
    );
    let mut by_partition: std::collections::BTreeMap<i32, Vec<(i64, String)>> = Default::default();
    let mut hashes: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        Default::default();
    for p in &predictions {
        let (partition, offset) = p.source();
        let json = p.json();
        let version = json["model_version"].as_str().expect("version").to_string();
        let sha = json["model_sha256"].as_str().expect("sha256").to_string();
        hashes.entry(version.clone()).or_default().insert(sha);
        by_partition
            .entry(partition)
            .or_default()
            .push((offset, version));
    }
    // Each version's predictions carry its file's hash: v2's is the one the reload reported.
    assert_eq!(hashes["1.0.0"].len(), 1);
    assert_eq!(hashes["2.0.0"].len(), 1);
    assert_eq!(
        hashes["2.0.0"].first().map(String::as_str),
        identity["sha256"].as_str()
    );
    assert_ne!(hashes["1.0.0"], hashes["2.0.0"]);
    let (mut v1_count, mut v2_count) = (0, 0);
    for (partition, mut rows) in by_partition {
        rows.sort();
        let first_v2 = rows
            .iter()
            .position(|(_, v)| v == "2.0.0")
            .unwrap_or(rows.len());
        assert!(
            rows[..first_v2].iter().all(|(_, v)| v == "1.0.0")
                && rows[first_v2..].iter().all(|(_, v)| v == "2.0.0"),
            "partition {partition}: versions interleave"
        );
        v1_count += first_v2;
        v2_count += rows.len() - first_v2;
    }
    println!("reload: {v1_count} predictions by 1.0.0, then {v2_count} by 2.0.0");
    assert!(v1_count as u64 >= before_swap && v2_count > 0);
}
