//! `driftline batch` through the binary: the stream's operators over a file. Predictions equal
//! Python onnxruntime's (the fixture), from JSONL and from CSV; rejected events are listed with
//! their record number and reason; with drift on, a shifted second half raises an alert.
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use driftline::cli::gen::{EventGenerator, GenOptions};
use driftline_tests::*;

/// Runs `driftline batch` with `env`; returns its summary.
fn batch(input: &Path, output: &Path, env: &[(&str, &str)]) -> serde_json::Value {
    let mut cmd = Command::new(driftline_bin());
    cmd.current_dir(repo_root())
        .args(["batch", "--config", "configs/demo.toml", "--input"])
        .arg(input)
        .arg("--output")
        .arg(output)
        .env("DRIFTLINE__DRIFT__ENABLED", "false");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("driftline batch");
    assert!(
        out.status.success(),
        "batch failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("summary JSON")
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .expect("output file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

/// Every fixture event's prediction equals Python onnxruntime's within 1e-5.
fn check_against_python(predictions: &[serde_json::Value]) {
    let by_id: HashMap<&str, &serde_json::Value> = predictions
        .iter()
        .map(|p| (p["id"].as_str().expect("id"), p))
        .collect();
    let fixture = fixture();
    assert_eq!(by_id.len(), fixture.len());
    for (event, label, probs) in &fixture {
        let p = by_id[event["device_id"].as_str().expect("id")];
        assert_eq!(p["outputs"]["label"].as_i64(), Some(*label));
        assert_eq!(p["model_version"], "1.0.0");
        assert_eq!(p["event_timestamp"], event["ts"]);
        for (k, expected) in probs.iter().enumerate() {
            let got = p["outputs"]["probabilities"][k].as_f64().expect("p");
            assert!((got - expected).abs() <= 1e-5, "{got} vs {expected}");
        }
    }
}

#[test]
fn jsonl_and_csv_give_python_onnxruntimes_predictions_and_list_rejects() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fixture = fixture();
    let mut jsonl = Vec::new();
    for (i, (event, _, _)) in fixture.iter().enumerate() {
        if i == 10 {
            jsonl.extend_from_slice(b"{\"device_id\":\"bad\",\"ts\":1,\"temperature\":\n");
        }
        if i == 20 {
            jsonl.extend_from_slice(b"\xff\xfe not utf-8\n");
        }
        jsonl.extend_from_slice(&serde_json::to_vec(event).expect("json"));
        jsonl.push(b'\n');
    }
    let input = dir.path().join("events.jsonl");
    std::fs::write(&input, &jsonl).expect("write");
    let output = dir.path().join("scored.jsonl");
    let summary = batch(&input, &output, &[]);
    assert_eq!(summary["events"], fixture.len() + 2);
    assert_eq!(summary["predictions"], fixture.len());
    assert_eq!(summary["rejected"], 2);
    assert_eq!(summary["model"]["sha256"].as_str().map(str::len), Some(64));
    let predictions = lines(&output);
    check_against_python(&predictions);
    assert!(predictions
        .iter()
        .all(|p| p["model_sha256"] == summary["model"]["sha256"]));
    let rejects = lines(&dir.path().join("scored.jsonl.rejected.jsonl"));
    let got: Vec<(i64, &str)> = rejects
        .iter()
        .map(|r| {
            (
                r["record"].as_i64().expect("record"),
                r["reason"].as_str().expect("reason"),
            )
        })
        .collect();
    assert_eq!(got, vec![(11, "invalid_json"), (22, "invalid_json")]);

    // The same events as CSV.
    let names: Vec<&str> = std::iter::once("device_id")
        .chain(std::iter::once("ts"))
        .chain(
            fixture[0]
                .0
                .as_object()
                .expect("object")
                .keys()
                .map(String::as_str)
                .filter(|k| *k != "device_id" && *k != "ts"),
        )
        .collect();
    let mut csv = names.join(",") + "\n";
    for (event, _, _) in &fixture {
        let row: Vec<String> = names
            .iter()
            .map(|n| match &event[*n] {
                serde_json::Value::String(s) => s.clone(),
                v => v.to_string(),
            })
            .collect();
        csv.push_str(&row.join(","));
        csv.push('\n');
    }
    let csv_input = dir.path().join("events.csv");
    std::fs::write(&csv_input, csv).expect("write csv");
    let csv_output = dir.path().join("scored-csv.jsonl");
    let summary = batch(&csv_input, &csv_output, &[]);
    assert_eq!(summary["predictions"], fixture.len());
    check_against_python(&lines(&csv_output));
}

#[test]
fn drift_in_a_file_raises_an_alert_after_the_shift() {
    // Warm-up ends after two batches of 1 024 (the reference: events 0–2 047); windows are two
    // panes of 500, so the first window (events 2 048–3 047) ends just before the shift.
    const EVENTS: u64 = 6_048;
    const SHIFT_AT: u64 = 3_048;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut generator = EventGenerator::new(
        GenOptions {
            drift_after: Some(SHIFT_AT),
            drift_shift_std: 2.0,
            ..GenOptions::default()
        },
        1_700_000_000_000,
    )
    .expect("generator");
    let (mut text, mut buf) = (Vec::new(), Vec::new());
    for i in 0..EVENTS {
        generator.event(i, &mut buf);
        text.extend_from_slice(&buf);
        text.push(b'\n');
    }
    let input = dir.path().join("events.jsonl");
    std::fs::write(&input, text).expect("write");
    let output = dir.path().join("scored.jsonl");
    let summary = batch(
        &input,
        &output,
        &[
            ("DRIFTLINE__DRIFT__ENABLED", "true"),
            ("DRIFTLINE__DRIFT__WARMUP_EVENTS", "2048"),
            ("DRIFTLINE__DRIFT__REFERENCE_SAMPLE", "2000"),
            ("DRIFTLINE__DRIFT__PANE_EVENTS", "500"),
            ("DRIFTLINE__DRIFT__PANES", "2"),
            ("DRIFTLINE__DRIFT__SLIDE", "2"),
        ],
    );
    assert_eq!(summary["predictions"], EVENTS);
    let reports = lines(&dir.path().join("scored.jsonl.drift.jsonl"));
    let alerts = lines(&dir.path().join("scored.jsonl.alerts.jsonl"));
    assert!(!reports.is_empty(), "windows closed and reported");
    let temperature: Vec<&serde_json::Value> = alerts
        .iter()
        .filter(|a| a["column"] == "temperature" && a["state"] == "open")
        .collect();
    assert!(
        !temperature.is_empty(),
        "the shifted temperature raised an alert: {alerts:?}"
    );
    // No drift before the shift: the first window (panes 0 and 1) is clean.
    let first: Vec<&serde_json::Value> = reports
        .iter()
        .filter(|r| r["column"] == "temperature" && r["window"]["last_pane"] == 1)
        .collect();
    assert_eq!(first.len(), 1, "one report for the first window");
    assert_eq!(first[0]["drift"], false, "{}", first[0]);
}
