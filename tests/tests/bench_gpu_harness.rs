//! The GPU benchmark's harness (`benches/src/bin/bench_gpu.rs`), run here on the CPU: it has
//! to work before a GPU machine's scarce minutes are spent on it. Real ONNX Runtime, the
//! models made by `models/make_gpu_models.py`, every layout; tiny runs, so no speed is judged.
use std::process::Command;

use driftline_tests::{built_bin, repo_root, venv_python};

#[test]
fn every_layout_scores_and_matches_bare_onnx_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let made = Command::new(venv_python())
        .arg(repo_root().join("models/make_gpu_models.py"))
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let small = dir.path().join("mlp_16x64x2.onnx");
    let demo = repo_root().join("models/anomaly_classifier.onnx");
    let json = dir.path().join("gpu.json");
    let run = bench_gpu(20_000, "0.2")
        .args([
            "--batches",
            "64,1024",
            "--decode-threads",
            "2",
            "--encode-threads",
            "1",
        ])
        .args(["--inference-threads", "2", "--json"])
        .arg(&json)
        .arg("--models")
        .arg(format!("{},{}", small.display(), demo.display()))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let rows: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    // 2 models × 2 batch sizes × (bare + 3 layouts).
    assert_eq!(rows.len(), 16, "{stdout}");
    for row in &rows {
        let rate = row["median_rows_per_s"].as_f64().unwrap();
        assert!(rate > 1000.0, "{row}");
        assert!(
            row["max_abs_diff_probabilities"].as_f64().unwrap() < 1e-3,
            "{row}"
        );
        assert!(row["run_ms_per_batch"].as_f64().unwrap() > 0.0, "{row}");
        if row["layout"] == "bare ORT" {
            assert_eq!(row["vs_bare"].as_f64().unwrap(), 1.0);
        }
    }
    let layouts: Vec<&str> = rows.iter().map(|r| r["layout"].as_str().unwrap()).collect();
    assert!(
        layouts.contains(&"pipeline (2 decode, 2 inference, 1 encode threads)"),
        "{layouts:?}"
    );
    assert!(
        stdout.contains("| mlp_16x64x2 | 1024 | bare ORT |"),
        "{stdout}"
    );
}

#[test]
fn a_model_without_the_demo_signature_is_refused_with_the_reason() {
    let run = bench_gpu(2_000, "0.1")
        .arg("--models")
        .arg(repo_root().join("tests/fixtures/two_inputs.onnx"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(
        stderr.contains("two_inputs.onnx") && stderr.contains("model.inputs"),
        "{stderr}"
    );
}

/// The harness on the CPU with this machine's ONNX Runtime: `events` payloads, one repeat of
/// `seconds` per run.
fn bench_gpu(events: u64, seconds: &str) -> Command {
    let mut command = Command::new(built_bin("driftline-benches", "bench_gpu"));
    command
        .env(
            "ORT_DYLIB_PATH",
            repo_root().join(".venv/libonnxruntime.so"),
        )
        .args(["--provider", "cpu", "--repeats", "1", "--seconds", seconds])
        .args(["--events", &events.to_string()]);
    command
}
