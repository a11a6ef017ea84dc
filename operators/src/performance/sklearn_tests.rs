//! Every case of `tests/fixtures/performance_cases.json` (scikit-learn 1.9.1, written by
//! `scripts/make_performance_cases.py`) to 1e-9.
use serde_json::Value;

use super::classification::{accuracy, class_scores, macro_scores, roc_auc, roc_auc_ovr_macro};
use super::regression::{mae, mape, r2, rmse};

const TOL: f64 = 1e-9;

fn cases() -> Vec<Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/performance_cases.json"
    );
    let text = std::fs::read_to_string(path).expect("performance cases");
    let mut all: Value = serde_json::from_str(&text).expect("json");
    let cases = all["cases"].take();
    cases.as_array().expect("cases").clone()
}

fn ints(v: &Value) -> Vec<i64> {
    (v.as_array().expect("array").iter())
        .map(|x| x.as_i64().expect("int"))
        .collect()
}

fn floats(v: &Value) -> Vec<f64> {
    (v.as_array().expect("array").iter())
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

/// `got` equals the expected number to [`TOL`] (relative for large ones), or both are absent.
fn check(case: &str, metric: &str, got: Option<f64>, expected: &Value) {
    match (got, expected.as_f64()) {
        (Some(g), Some(e)) => assert!(
            (g - e).abs() <= TOL * e.abs().max(1.0),
            "{case}: {metric} {g} != scikit-learn's {e}"
        ),
        (None, None) => {}
        (g, e) => panic!("{case}: {metric} {g:?}, scikit-learn {e:?}"),
    }
}

#[test]
fn every_case_equals_scikit_learn() {
    let cases = cases();
    assert!(cases.len() >= 20, "{} cases", cases.len());
    for case in &cases {
        let name = case["name"].as_str().expect("name");
        let e = &case["expected"];
        match case["kind"].as_str().expect("kind") {
            "binary" => {
                let (labels, predicted) = (ints(&case["labels"]), ints(&case["predicted"]));
                let scores = floats(&case["scores"]);
                let s = class_scores(&labels, &predicted, 1);
                check(
                    name,
                    "accuracy",
                    accuracy(&labels, &predicted),
                    &e["accuracy"],
                );
                check(name, "precision", Some(s.precision), &e["precision"]);
                check(name, "recall", Some(s.recall), &e["recall"]);
                check(name, "f1", Some(s.f1), &e["f1"]);
                let positive: Vec<bool> = labels.iter().map(|&l| l == 1).collect();
                check(name, "roc_auc", roc_auc(&positive, &scores), &e["roc_auc"]);
            }
            "multiclass" => {
                let (labels, predicted) = (ints(&case["labels"]), ints(&case["predicted"]));
                let classes = ints(&case["classes"]);
                let columns: Vec<Vec<f64>> = (case["scores"].as_array().expect("columns"))
                    .iter()
                    .map(floats)
                    .collect();
                let columns: Vec<&[f64]> = columns.iter().map(Vec::as_slice).collect();
                let s = macro_scores(&labels, &predicted).expect("pairs");
                check(
                    name,
                    "accuracy",
                    accuracy(&labels, &predicted),
                    &e["accuracy"],
                );
                check(name, "precision", Some(s.precision), &e["precision"]);
                check(name, "recall", Some(s.recall), &e["recall"]);
                check(name, "f1", Some(s.f1), &e["f1"]);
                let auc = roc_auc_ovr_macro(&labels, &classes, &columns);
                check(name, "roc_auc", auc, &e["roc_auc"]);
            }
            "regression" => {
                let (labels, predicted) = (floats(&case["labels"]), floats(&case["predicted"]));
                check(name, "mae", mae(&labels, &predicted), &e["mae"]);
                check(name, "rmse", rmse(&labels, &predicted), &e["rmse"]);
                check(name, "mape", mape(&labels, &predicted), &e["mape"]);
                check(name, "r2", r2(&labels, &predicted), &e["r2"]);
            }
            other => panic!("unknown kind {other}"),
        }
    }
}

#[test]
fn nothing_to_measure_is_none() {
    assert_eq!(accuracy(&[], &[]), None);
    assert_eq!(macro_scores(&[], &[]), None);
    assert_eq!(roc_auc(&[true, true], &[0.2, 0.4]), None);
    assert_eq!(mae(&[], &[]), None);
    assert_eq!(r2(&[], &[]), None);
}
