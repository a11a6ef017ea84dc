//! `driftline validate` explains each problem it finds and exits 1; a good config exits 0.
use std::process::Command;

use driftline_tests::{driftline_bin, repo_root};

/// Writes `config_text` to a temporary file and validates it. Paths in a config file are
/// relative to its folder, so the repository's model and fixture paths are made absolute.
fn validate(config_text: &str) -> (i32, String) {
    let file = tempfile::Builder::new()
        .suffix(".toml")
        .tempfile()
        .expect("temp");
    let root = repo_root().display().to_string();
    let config_text = config_text
        .replace("\"../models/", &format!("\"{root}/models/"))
        .replace("\"tests/fixtures/", &format!("\"{root}/tests/fixtures/"));
    std::fs::write(file.path(), config_text).expect("write");
    let out = Command::new(driftline_bin())
        .current_dir(repo_root())
        .args(["validate", "--config"])
        .arg(file.path())
        .output()
        .expect("validate");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn demo_with(extra: &str) -> String {
    let demo = std::fs::read_to_string(repo_root().join("configs/demo.toml")).expect("demo.toml");
    format!("{demo}\n{extra}")
}

#[test]
fn the_demo_config_is_valid() {
    let (code, out) = validate(&demo_with(""));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("execution provider cpu"), "{out}");
}

/// The threads `run` would start are shown; counts the machine cannot hold, or zero, are
/// problems.
#[test]
fn the_threads_are_shown_and_impossible_counts_refused() {
    let (code, out) = validate(&demo_with("[pipeline]\ndecode_threads = 3\n"));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("threads on this machine: 3 decode thread(s), 1 inference session(s)"),
        "{out}"
    );
    // More sessions than any machine this runs on has cores, on the CPU provider.
    let (code, out) = validate(&demo_with("[runtime]\nsessions = 4096\n"));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("runtime.sessions = 4096"), "{out}");
    let (code, out) = validate(&demo_with("[pipeline]\ndecode_threads = 0\n"));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("pipeline.decode_threads must be at least 1"),
        "{out}"
    );
    let (code, out) = validate(&demo_with("[pipeline]\ndecode_threads = \"many\"\n"));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("expected \"auto\" or a number"), "{out}");
}

/// configs/drift-only.toml has no [model]: valid with drift on, nothing to do with it off.
#[test]
fn drift_without_a_model_is_valid_and_without_drift_is_not() {
    let drift_only =
        std::fs::read_to_string(repo_root().join("configs/drift-only.toml")).expect("config");
    let (code, out) = validate(&drift_only);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("no model: drift watches the features alone"),
        "{out}"
    );
    let (code, out) = validate(&drift_only.replace("enabled = true", "enabled = false"));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("model.path is not set"), "{out}");
}

#[test]
fn an_unknown_key_is_named() {
    let (code, out) = validate(&demo_with("[pipeline]\nchanel_capacity = 3\n"));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("chanel_capacity"), "{out}");
}

#[test]
fn canary_and_shadow_models_are_checked_like_the_serving_one() {
    let demo = std::fs::read_to_string(repo_root().join("configs/demo.toml")).expect("demo.toml");
    let with = |model: &str| {
        demo.replace(
            "name = \"anomaly_classifier\"",
            &format!("name = \"anomaly_classifier\"\n{model}"),
        )
    };
    let good = with(
        "variants = [{ name = \"candidate\", path = \"tests/fixtures/anomaly_classifier_undertrained.onnx\", weight = 10 }]\nshadow = { path = \"tests/fixtures/anomaly_classifier_undertrained.onnx\", name = \"challenger\", version = \"\" }",
    );
    let (code, out) = validate(&good);
    assert_eq!(code, 0, "{out}");
    // A variant with other inputs than the schema feeds, and a shadow whose file is missing.
    let (code, out) = validate(&with(
        "variants = [{ name = \"candidate\", path = \"tests/fixtures/two_inputs.onnx\", weight = 10 }]",
    ));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("canary variant `candidate`"), "{out}");
    let (code, out) = validate(&with(
        "shadow = { path = \"models/nope.onnx\", name = \"challenger\", version = \"\" }",
    ));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("shadow model") && out.contains("models/nope.onnx"),
        "{out}"
    );
    // Names that would collide in metrics and drift columns.
    let (code, out) = validate(&with(
        "variants = [{ name = \"anomaly_classifier\", path = \"tests/fixtures/anomaly_classifier_undertrained.onnx\", weight = 10 }]",
    ));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("is used twice"), "{out}");
}

#[test]
fn a_missing_model_file_is_named() {
    let demo = std::fs::read_to_string(repo_root().join("configs/demo.toml")).expect("demo.toml");
    let (code, out) = validate(&demo.replace("models/anomaly_classifier.onnx", "models/nope.onnx"));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("models/nope.onnx is not a file"), "{out}");
}

#[test]
fn model_inputs_that_do_not_match_the_features_are_each_explained() {
    let demo = std::fs::read_to_string(repo_root().join("configs/demo.toml")).expect("demo.toml");
    let config = demo
        .replace("{ name = \"battery_v\", type = \"f32\" },", "{ name = \"battery_v\", type = \"f32\" },\n  { name = \"site\", type = \"category\" },")
        .replace("name = \"anomaly_classifier\"", "name = \"anomaly_classifier\"\ninputs = [{ input = \"features\", features = [\"temperature\", \"site\", \"ghost\"] }]");
    let (code, out) = validate(&config);
    assert_eq!(code, 1, "{out}");
    for needle in [
        "takes 16 features but 3 are configured",
        "`site` is a category",
        "`ghost`, which is not in schema.features",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
}

#[test]
fn secrets_are_never_printed() {
    let (_, out) = validate(&demo_with(
        "[kafka.common]\n\"sasl.password\" = \"hunter2\"\n[pipeline]\nbogus = 1\n",
    ));
    assert!(!out.contains("hunter2"), "{out}");
}
