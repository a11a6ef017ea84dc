//! The quality gate through the binary, as a CI/CD pipeline runs it before deploying a model:
//! `driftline validate --model M --labeled FILE --metric … --min X [--baseline B --max-drop D]`.
//! A deliberately worse model (the demo network trained for 3 steps) fails; the demo model
//! passes; the metrics equal what Python onnxruntime and numpy compute on the same file
//! (`models/make_gate_fixtures.py`).
use std::process::Command;

use driftline_tests::*;

struct Gate {
    code: Option<i32>,
    report: serde_json::Value,
    stderr: String,
}

fn gate(args: &[&str]) -> Gate {
    let out = Command::new(driftline_bin())
        .current_dir(repo_root())
        .args(["validate", "--config", "configs/demo.toml"])
        .args(["--labeled", "tests/fixtures/gate_labeled.jsonl"])
        .args(args)
        .output()
        .expect("driftline validate");
    Gate {
        code: out.status.code(),
        report: serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

const DEMO: &str = "models/anomaly_classifier.onnx";
const WORSE: &str = "tests/fixtures/anomaly_classifier_undertrained.onnx";

fn expected() -> serde_json::Value {
    let text = std::fs::read_to_string(repo_root().join("tests/fixtures/gate_expected.json"))
        .expect("gate_expected.json");
    serde_json::from_str(&text).expect("json")
}

fn value(g: &Gate) -> f64 {
    g.report["candidate"]["value"]
        .as_f64()
        .expect("candidate value")
}

#[test]
fn a_good_model_passes_and_a_worse_one_fails_the_threshold() {
    let expected = expected();
    let good = gate(&["--model", DEMO, "--metric", "accuracy", "--min", "0.9"]);
    assert_eq!(good.code, Some(0), "{}", good.stderr);
    assert_eq!(good.report["passed"], true);
    assert_eq!(good.report["candidate"]["events"], 3000);
    assert_eq!(good.report["output"], "label");
    // One event in 3 000 may land on the other side of a float32 boundary.
    let want = expected["demo"]["accuracy"].as_f64().expect("expected");
    assert!(
        (value(&good) - want).abs() <= 1.0 / 3000.0,
        "{} vs {want}",
        value(&good)
    );

    let worse = gate(&["--model", WORSE, "--metric", "accuracy", "--min", "0.9"]);
    assert_eq!(worse.code, Some(1), "{}", worse.stderr);
    assert_eq!(worse.report["passed"], false);
    assert!(
        worse.stderr.contains("below the minimum 0.9"),
        "{}",
        worse.stderr
    );
    assert_eq!(worse.report["candidate"]["model"]["version"], "0.1.0");
}

/// The gate on AUC against a baseline model, with `max_drop` as the margin.
fn auc_against(model: &str, baseline: &str, max_drop: &str) -> Gate {
    gate(&[
        "--model",
        model,
        "--baseline",
        baseline,
        "--metric",
        "auc",
        "--max-drop",
        max_drop,
    ])
}

#[test]
fn against_the_serving_model_the_margin_decides() {
    let worse = auc_against(WORSE, DEMO, "0.02");
    assert_eq!(worse.code, Some(1), "{}", worse.stderr);
    assert!(
        worse.stderr.contains("worse than the baseline"),
        "{}",
        worse.stderr
    );
    let expected = expected();
    for (got, name) in [
        (value(&worse), "undertrained"),
        (
            worse.report["baseline"]["value"]
                .as_f64()
                .expect("baseline"),
            "demo",
        ),
    ] {
        let want = expected[name]["auc"].as_f64().expect("auc");
        assert!(
            (got - want).abs() <= 1e-4,
            "{name}: auc {got} vs Python {want}"
        );
    }
    // The other way round it passes; and a generous margin lets the worse one through.
    let better = auc_against(DEMO, WORSE, "0.02");
    assert_eq!(better.code, Some(0), "{}", better.stderr);
    let lenient = auc_against(WORSE, DEMO, "0.1");
    assert_eq!(lenient.code, Some(0), "{}", lenient.stderr);
}

#[test]
fn rmse_is_lower_is_better_and_misuse_is_an_error() {
    let expected = expected();
    let args = |model| {
        vec![
            "--model",
            model,
            "--metric",
            "rmse",
            "--output",
            "probabilities[1]",
            "--max",
            "0.3",
        ]
    };
    let good = gate(&args(DEMO));
    assert_eq!(good.code, Some(0), "{}", good.stderr);
    let want = expected["demo"]["rmse"].as_f64().expect("rmse");
    assert!(
        (value(&good) - want).abs() <= 1e-5,
        "{} vs {want}",
        value(&good)
    );
    let worse = gate(&args(WORSE));
    assert_eq!(worse.code, Some(1), "{}", worse.stderr);
    assert!(
        worse.stderr.contains("above the maximum"),
        "{}",
        worse.stderr
    );

    let misuse = gate(&["--metric", "rmse", "--min", "0.1"]);
    assert_eq!(misuse.code, Some(2));
    assert!(misuse.stderr.contains("use --max"), "{}", misuse.stderr);
    let no_output = gate(&["--metric", "accuracy", "--output", "nope"]);
    assert_eq!(no_output.code, Some(2));
    assert!(
        no_output.stderr.contains("no output `nope`"),
        "{}",
        no_output.stderr
    );
}
