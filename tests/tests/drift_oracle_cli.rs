//! Every case of the drift oracle (scipy 1.17 `ks_2samp`, evidently 0.7.23 PSI/KL, and the q10
//! binning) through the real `driftline drift` command, within the oracle's tolerances.
use std::process::Command;

use driftline_tests::{driftline_bin, repo_root};

fn run(reference: &str, current: &str, binning: &str) -> serde_json::Value {
    let dir = repo_root().join("tests/fixtures/drift-oracle");
    let out = Command::new(driftline_bin())
        .args([
            "drift",
            "--format",
            "json",
            "--binning",
            binning,
            "--reference",
        ])
        .arg(dir.join(reference))
        .arg("--current")
        .arg(dir.join(current))
        .output()
        .expect("driftline drift");
    assert!(
        out.status.success(),
        "driftline drift failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

fn close(got: &serde_json::Value, expected: &serde_json::Value, tolerance: f64, what: &str) {
    let (g, e) = (
        got.as_f64().unwrap_or(f64::NAN),
        expected.as_f64().unwrap_or(f64::NAN),
    );
    assert!(
        (g - e).abs() <= tolerance,
        "{what}: got {g}, expected {e} (tolerance {tolerance})"
    );
}

#[test]
fn every_oracle_case_matches_scipy_and_evidently() {
    let text =
        std::fs::read_to_string(repo_root().join("tests/fixtures/drift-oracle/expected.json"))
            .expect("expected.json");
    let oracle: serde_json::Value = serde_json::from_str(&text).expect("json");
    let cases = oracle["cases"].as_object().expect("cases");
    assert!(cases.len() >= 5);
    for (name, case) in cases {
        let (r, c) = (
            case["files"]["ref"].as_str().expect("ref"),
            case["files"]["cur"].as_str().expect("cur"),
        );
        for binning in ["q10", "evidently"] {
            let got = run(r, c, binning);
            let what = |s: &str| format!("{name} {binning} {s}");
            assert_eq!(got["n_reference"], case["n_ref"], "{}", what("n_reference"));
            assert_eq!(got["n_current"], case["n_cur"], "{}", what("n_current"));
            assert_eq!(got["kind"], case["kind"], "{}", what("kind"));
            if case["kind"] == "numeric" {
                let ks = &case["ks"]["auto"];
                close(
                    &got["ks"]["statistic"],
                    &ks["statistic"],
                    1e-9,
                    &what("KS D"),
                );
                close(&got["ks"]["pvalue"], &ks["pvalue"], 1e-9, &what("KS p"));
                assert_eq!(
                    got["ks"]["method"],
                    ks["method_used"],
                    "{}",
                    what("KS method")
                );
            } else {
                assert!(got["ks"].is_null(), "{}", what("no KS for categories"));
            }
            let expected = match (binning, case["kind"].as_str()) {
                ("evidently", _) => &case["evidently_default"],
                (_, Some("numeric")) => &case["q10_eps1e-4"],
                _ => &case["explicit_categories_eps1e-4"],
            };
            close(&got["psi"]["value"], &expected["psi"], 1e-6, &what("PSI"));
            close(
                &got["kl"]["value"],
                &expected["kl_ref_cur"],
                1e-6,
                &what("KL"),
            );
            assert_eq!(
                got["psi"]["drift"].as_bool(),
                Some(expected["psi"].as_f64().expect("psi") >= 0.1),
                "{}",
                what("PSI verdict")
            );
        }
    }
}

#[test]
fn fail_on_drift_sets_the_exit_status() {
    let dir = repo_root().join("tests/fixtures/drift-oracle/data");
    let status = |case: &str| {
        Command::new(driftline_bin())
            .args(["drift", "--fail-on-drift", "--reference"])
            .arg(dir.join(format!("{case}_ref.csv")))
            .arg("--current")
            .arg(dir.join(format!("{case}_cur.csv")))
            .output()
            .expect("driftline drift")
            .status
            .code()
    };
    assert_eq!(status("mean_shift_0p5"), Some(2));
    assert_eq!(status("normal_no_drift"), Some(0));
}
