//! `driftline batch` through the binary: the stream's operators over a file. Predictions equal
//! Python onnxruntime's (the fixture), from JSONL and from CSV; rejected events are listed with
//! their record number and reason; with drift on, a shifted second half raises an alert.
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use driftline::cli::gen::{EventGenerator, GenOptions};
use driftline_tests::*;

/// Runs `driftline batch --config CONFIG` with drift off unless `env` turns it on.
fn batch_command(
    config: &str,
    input: &Path,
    output: &Path,
    env: &[(&str, &str)],
) -> std::process::Output {
    let mut cmd = Command::new(driftline_bin());
    cmd.current_dir(repo_root())
        .args(["batch", "--config", config, "--input"])
        .arg(input)
        .arg("--output")
        .arg(output)
        .env("DRIFTLINE__DRIFT__ENABLED", "false");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("driftline batch")
}

/// Runs `driftline batch` with the demo's config and `env`; returns its summary.
fn batch(input: &Path, output: &Path, env: &[(&str, &str)]) -> serde_json::Value {
    let out = batch_command("configs/demo.toml", input, output, env);
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
    assert_eq!(first[0]["verdict"]["drift"], false, "{}", first[0]);
}

/// Writes `n` generated events to `path`, event `i` stamped `ts(i)`, the temperature shifted
/// by `shift_sd` standard deviations from the first one (0: healthy).
fn write_events(path: &Path, n: u64, seed: u64, shift_sd: f64, ts: impl Fn(u64) -> i64) {
    let shift = (shift_sd != 0.0).then_some((0, shift_sd));
    write_generated_events(path, n, seed, shift, ts);
}

/// A reference profile of 20 000 healthy events, written by `driftline profile`.
fn healthy_profile(dir: &Path) -> std::path::PathBuf {
    let sample = dir.join("reference.jsonl");
    write_events(&sample, 20_000, 99, 0.0, |i| 1_600_000_000_000 + i as i64);
    let profile = dir.join("profile.json");
    write_demo_profile(&sample, &profile);
    profile
}

const DAY_MS: i64 = 86_400_000;
/// 2023-11-15 00:00 UTC: a day boundary.
const DAY0: i64 = 1_700_006_400_000;

/// One-day time windows (24 panes of an hour) over files of whole days, a reading a minute:
/// the end of the input closes the last day, whose report is complete and judged; the stream
/// start is a day boundary, so no window is partial. Before, a one-day file reported nothing.
#[test]
fn batch_closes_the_last_time_window_at_the_end_of_the_input() {
    let dir = tempfile::tempdir().expect("temp dir");
    let profile = healthy_profile(dir.path());
    let profile = profile.display().to_string();
    let day_windows = [
        ("DRIFTLINE__DRIFT__ENABLED", "true"),
        ("DRIFTLINE__DRIFT__PROFILE", profile.as_str()),
        ("DRIFTLINE__DRIFT__WINDOW", "time"),
        ("DRIFTLINE__DRIFT__PANE_MS", "3600000"),
        ("DRIFTLINE__DRIFT__PANES", "24"),
        ("DRIFTLINE__DRIFT__SLIDE", "24"),
        ("DRIFTLINE__DRIFT__LATENESS_MS", "0"),
    ];
    for days in [1u64, 2] {
        let input = dir.path().join(format!("{days}-days.jsonl"));
        // A reading a minute; the temperature 3 sd off all along.
        write_events(&input, days * 1440, 7, 3.0, |i| DAY0 + i as i64 * 60_000);
        let output = dir.path().join(format!("{days}-days.scored.jsonl"));
        let summary = batch(&input, &output, &day_windows);
        let reports = lines(
            &dir.path()
                .join(format!("{days}-days.scored.jsonl.drift.jsonl")),
        );
        let temperature: Vec<_> = reports
            .iter()
            .filter(|r| r["column"] == "temperature")
            .collect();
        assert_eq!(
            temperature.len() as u64,
            days,
            "one report a day: {summary}"
        );
        for (d, r) in temperature.iter().enumerate() {
            let w = &r["window"];
            assert_eq!(w["start_ms"], DAY0 + d as i64 * DAY_MS, "{r}");
            assert_eq!(w["end_ms"], DAY0 + (d as i64 + 1) * DAY_MS, "{r}");
            assert_eq!(
                (w["events"].as_u64(), &w["complete"]),
                (Some(1440), &true.into())
            );
            assert_eq!(w["min_event_ms"], DAY0 + d as i64 * DAY_MS, "{r}");
            assert_eq!(
                w["max_event_ms"],
                DAY0 + (d as i64 + 1) * DAY_MS - 60_000,
                "{r}"
            );
            // Record numbers (lines, from 1) of the day's first and last events.
            let sources = w["sources"].as_array().expect("sources");
            assert_eq!(sources.len(), 1, "{r}");
            assert_eq!(sources[0]["partition"], serde_json::Value::Null);
            assert_eq!(sources[0]["first"], d as u64 * 1440 + 1);
            assert_eq!(sources[0]["last"], (d as u64 + 1) * 1440);
            assert_eq!(r["verdict"]["drift"], true, "a 3 sd shift: {r}");
        }
        let alerts = lines(
            &dir.path()
                .join(format!("{days}-days.scored.jsonl.alerts.jsonl")),
        );
        let opened = alerts
            .iter()
            .filter(|a| a["column"] == "temperature" && a["state"] == "open")
            .count();
        assert_eq!(opened, 1, "{alerts:?}");
    }

    // Processing time: the whole file arrives at once, into the window of now; the end of the
    // input reports it (not complete: the window's span is not over), judged as it has
    // min_samples values.
    let input = dir.path().join("now.jsonl");
    write_events(&input, 1440, 7, 3.0, |i| DAY0 + i as i64 * 60_000);
    let output = dir.path().join("now.scored.jsonl");
    let mut env = day_windows.to_vec();
    env.push(("DRIFTLINE__DRIFT__TIME_SOURCE", "processing"));
    batch(&input, &output, &env);
    let reports = lines(&dir.path().join("now.scored.jsonl.drift.jsonl"));
    let temperature: Vec<_> = reports
        .iter()
        .filter(|r| r["column"] == "temperature")
        .collect();
    // One window, two if the run crossed midnight UTC.
    assert!(
        !temperature.is_empty() && temperature.len() <= 2,
        "{reports:?}"
    );
    let last = temperature[temperature.len() - 1];
    assert_eq!(last["window"]["complete"], false, "{last}");
    assert!(
        temperature.iter().all(|r| r["verdict"]["drift"] == true),
        "{temperature:?}"
    );
}

/// The reference learned from the stream holds exactly `warmup_events` events whatever the
/// batch size, and the first window starts with the next event. An input smaller than the
/// warm-up says why it has no drift output.
#[test]
fn warm_up_takes_exactly_warmup_events_and_says_when_it_never_finished() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("events.jsonl");
    write_events(&input, 3_000, 3, 0.0, |i| 1_700_000_000_000 + i as i64);
    for max_rows in ["1", "7", "1024"] {
        let output = dir.path().join(format!("scored-{max_rows}.jsonl"));
        batch(
            &input,
            &output,
            &[
                ("DRIFTLINE__DRIFT__ENABLED", "true"),
                ("DRIFTLINE__DRIFT__WARMUP_EVENTS", "1000"),
                ("DRIFTLINE__DRIFT__PANE_EVENTS", "500"),
                ("DRIFTLINE__DRIFT__PANES", "2"),
                ("DRIFTLINE__DRIFT__SLIDE", "2"),
                ("DRIFTLINE__BATCH__MAX_ROWS", max_rows),
            ],
        );
        let reports = lines(
            &dir.path()
                .join(format!("scored-{max_rows}.jsonl.drift.jsonl")),
        );
        let temperature: Vec<_> = reports
            .iter()
            .filter(|r| r["column"] == "temperature")
            .collect();
        assert_eq!(temperature.len(), 2, "max_rows {max_rows}: {temperature:?}");
        for (w, r) in temperature.iter().enumerate() {
            assert_eq!(r["window"]["events"], 1000, "max_rows {max_rows}: {r}");
            // Records 1-1000 were the reference; the first window starts at record 1001.
            let source = &r["window"]["sources"][0];
            assert_eq!(
                source["first"],
                1001 + w as u64 * 1000,
                "max_rows {max_rows}: {r}"
            );
            assert_eq!(
                source["last"],
                2000 + w as u64 * 1000,
                "max_rows {max_rows}: {r}"
            );
        }
    }
    let small = dir.path().join("small.jsonl");
    write_events(&small, 500, 3, 0.0, |i| 1_700_000_000_000 + i as i64);
    let summary = batch(
        &small,
        &dir.path().join("small.scored.jsonl"),
        &[("DRIFTLINE__DRIFT__ENABLED", "true")],
    );
    assert_eq!(summary["drift_reports"], 0);
    let note = summary["drift_note"].as_str().expect("drift_note");
    assert!(
        note.contains("first 20000 events") && note.contains("had 500"),
        "the note says how far the warm-up got: {note}"
    );
}

/// Drift without a model (configs/drift-only.toml has no [model] section): `profile` covers the
/// features alone, `batch` writes no predictions and reports drift on the features; with drift
/// off there is nothing to do, and the error says what to set.
#[test]
fn drift_without_a_model_watches_the_features_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sample = dir.path().join("reference.jsonl");
    write_events(&sample, 5_000, 99, 0.0, |i| 1_600_000_000_000 + i as i64);
    let profile = dir.path().join("profile.json");
    let out = Command::new(driftline_bin())
        .current_dir(repo_root())
        .args(["profile", "--config", "configs/drift-only.toml", "--input"])
        .arg(&sample)
        .arg("--out")
        .arg(&profile)
        .output()
        .expect("driftline profile");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&profile).expect("profile")).expect("JSON");
    let roles: Vec<&str> = (written["columns"].as_array().expect("columns").iter())
        .map(|c| c["role"].as_str().expect("role"))
        .collect();
    assert_eq!(roles.len(), 16, "the 16 features: {roles:?}");
    assert!(roles.iter().all(|r| *r == "feature"), "{roles:?}");

    let input = dir.path().join("shifted.jsonl");
    write_events(&input, 4_000, 7, 1.0, |i| 1_700_000_000_000 + i as i64);
    let output = dir.path().join("watched.jsonl");
    let profile = profile.display().to_string();
    let env = [
        ("DRIFTLINE__DRIFT__ENABLED", "true"),
        ("DRIFTLINE__DRIFT__PROFILE", profile.as_str()),
        ("DRIFTLINE__DRIFT__PANE_EVENTS", "1000"),
        ("DRIFTLINE__DRIFT__PANES", "2"),
        ("DRIFTLINE__DRIFT__SLIDE", "2"),
    ];
    let out = batch_command("configs/drift-only.toml", &input, &output, &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("summary");
    assert_eq!(summary["model"], serde_json::Value::Null, "{summary}");
    assert_eq!(
        (summary["events"].as_u64(), summary["predictions"].as_u64()),
        (Some(4_000), Some(0))
    );
    assert!(!output.exists(), "no predictions file without a model");
    let reports = lines(&dir.path().join("watched.jsonl.drift.jsonl"));
    assert_eq!(
        reports.len(),
        2 * 16,
        "two windows of 16 features: {reports:?}"
    );
    assert!(reports.iter().all(|r| r["role"] == "feature"));
    let alerts = lines(&dir.path().join("watched.jsonl.alerts.jsonl"));
    let opened: Vec<_> = (alerts.iter())
        .filter(|a| a["state"] == "open")
        .map(|a| a["column"].as_str().expect("column"))
        .collect();
    assert_eq!(opened, ["temperature"], "{alerts:?}");

    let out = batch_command("configs/drift-only.toml", &input, &output, &[]);
    assert!(
        !out.status.success(),
        "drift off and no model has nothing to do"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("model.path is not set") && stderr.contains("drift.enabled"),
        "{stderr}"
    );
}

/// Performance in a file (issue 17): labels drawn from the model's own probabilities (so the
/// model is calibrated and CBPE's estimate must land near the realized value); every tenth
/// event unlabeled. `driftline profile` over labeled events fits the estimator into the
/// profile; `driftline batch` then writes per window the realized metrics of the labeled
/// events, equal to the ones computed here from the predictions file, and the estimates.
#[test]
fn labeled_events_give_realized_and_estimated_performance_per_window() {
    const EVENTS: u64 = 8_000;
    let dir = tempfile::tempdir().expect("temp dir");
    let events = dir.path().join("events.jsonl");
    write_events(&events, EVENTS, 7, 0.0, |i| {
        1_700_000_000_000 + i as i64 * 10
    });
    // Without labels and without an estimator there is nothing to measure.
    let scored = dir.path().join("scored.jsonl");
    let summary = batch(&events, &scored, &[]);
    assert!(summary.get("performance_reports").is_none(), "{summary}");
    assert!(!dir.path().join("scored.jsonl.performance.jsonl").exists());
    let p1: Vec<f64> = lines(&scored)
        .iter()
        .map(|p| p["outputs"]["probabilities"][1].as_f64().expect("p1"))
        .collect();

    // The same events with labels ~ Bernoulli(p1); every tenth without one.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let text = std::fs::read_to_string(&events).expect("events");
    let mut labels: Vec<Option<i64>> = Vec::new();
    let (mut reference, mut analysis) = (String::new(), String::new());
    for (i, line) in text.lines().enumerate() {
        let mut event: serde_json::Value = serde_json::from_str(line).expect("event");
        let label = i64::from(uniform() < p1[i]);
        let keep = i % 10 != 9;
        if keep {
            event["label"] = label.into();
        }
        let half = if i < EVENTS as usize / 2 {
            &mut reference
        } else {
            labels.push(keep.then_some(label));
            &mut analysis
        };
        half.push_str(&event.to_string());
        half.push('\n');
    }
    let (reference_file, analysis_file) = (
        dir.path().join("reference.jsonl"),
        dir.path().join("analysis.jsonl"),
    );
    std::fs::write(&reference_file, reference).expect("write");
    std::fs::write(&analysis_file, analysis).expect("write");
    let window = [("DRIFTLINE__PERFORMANCE__WINDOW_EVENTS", "1000")];
    let profile = dir.path().join("profile.json");
    let out = Command::new(driftline_bin())
        .current_dir(repo_root())
        .args(["profile", "--config", "configs/demo.toml", "--input"])
        .arg(&reference_file)
        .arg("--out")
        .arg(&profile)
        .envs(window)
        .output()
        .expect("driftline profile");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fitted: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&profile).expect("profile")).expect("json");
    assert_eq!(fitted["performance"]["classes"], serde_json::json!([0, 1]));

    let output = dir.path().join("analysis-scored.jsonl");
    let profile_path = profile.display().to_string();
    let summary = batch(
        &analysis_file,
        &output,
        &[
            window[0],
            ("DRIFTLINE__DRIFT__PROFILE", profile_path.as_str()),
        ],
    );
    assert_eq!(summary["performance_reports"], 4, "{summary}");
    let predicted: Vec<i64> = lines(&output)
        .iter()
        .map(|p| p["outputs"]["label"].as_i64().expect("label"))
        .collect();
    let reports = lines(&dir.path().join("analysis-scored.jsonl.performance.jsonl"));
    for (w, report) in reports.iter().enumerate() {
        let rows = w * 1000..(w + 1) * 1000;
        let pairs: Vec<(i64, i64)> = rows
            .filter_map(|r| labels[r].map(|l| (l, predicted[r])))
            .collect();
        let right = pairs.iter().filter(|(l, p)| l == p).count();
        assert_eq!(report["kind"], "performance");
        assert_eq!(report["predictions"], 1000);
        assert_eq!(report["labeled"], pairs.len() as u64, "{report}");
        assert_eq!(report["labeled_fraction"], 0.9);
        let metric = |list: &str, name: &str| -> serde_json::Value {
            (report[list].as_array().expect("metrics").iter())
                .find(|m| m["metric"] == name)
                .unwrap_or_else(|| panic!("{list} {name} in {report}"))
                .clone()
        };
        let realized = metric("realized", "accuracy")["value"]
            .as_f64()
            .expect("accuracy");
        assert_eq!(realized, right as f64 / pairs.len() as f64, "{report}");
        let estimated = metric("estimated", "accuracy");
        let (value, error) = (
            estimated["value"].as_f64().expect("estimate"),
            estimated["sampling_error"]
                .as_f64()
                .expect("sampling error"),
        );
        assert!(
            (value - realized).abs() <= 4.0 * error + 0.01,
            "estimated {value} ± {error} vs realized {realized}: {report}"
        );
    }
}
