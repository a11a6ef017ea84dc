//! The first hour of a new user, through the binary: each test is a trap a user fell into with a
//! model or config of their own (issue "a first hour without traps"), and fails without its fix.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use driftline_tests::{driftline_bin, fixture, repo_root};

/// configs/demo.toml with its model path made absolute, so the text works from any folder.
fn demo_config() -> String {
    let demo = std::fs::read_to_string(repo_root().join("configs/demo.toml")).expect("demo.toml");
    let model = repo_root().join("models/anomaly_classifier.onnx");
    let relative = "path = \"../models/anomaly_classifier.onnx\"";
    assert!(
        demo.contains(relative),
        "demo.toml names its model relatively"
    );
    demo.replace(relative, &format!("path = \"{}\"", model.display()))
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("folder");
    }
    std::fs::write(&path, text).expect("write");
    path
}

/// The demo fixture's events as JSONL.
fn events_file(dir: &Path) -> PathBuf {
    let mut text = String::new();
    for (event, _, _) in fixture() {
        text.push_str(&event.to_string());
        text.push('\n');
    }
    write(dir, "events.jsonl", &text)
}

/// Runs `driftline ARGS` in `cwd` with `env`.
fn driftline(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(driftline_bin());
    cmd.current_dir(cwd)
        .args(args)
        .env("DRIFTLINE__DRIFT__ENABLED", "false");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("driftline")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn batch(dir: &Path, config: &Path, input: &Path, extra: &[&str]) -> Output {
    let output = dir.join("scored.jsonl");
    let mut args = vec![
        "batch",
        "--config",
        config.to_str().expect("utf-8"),
        "--input",
        input.to_str().expect("utf-8"),
        "--output",
        output.to_str().expect("utf-8"),
    ];
    args.extend_from_slice(extra);
    driftline(dir, &args, &[])
}

fn validate(dir: &Path, config: &Path) -> Output {
    driftline(
        dir,
        &["validate", "--config", config.to_str().expect("utf-8")],
        &[],
    )
}

/// Trap 1: A batch run that rejects every event (a misspelt feature name) is a failure, with the
/// summary and the reason; a share above `--max-rejected` fails too.
#[test]
fn batch_fails_when_it_rejects_every_event_or_more_than_max_rejected() {
    let dir = tempfile::tempdir().expect("dir");
    let misspelt = demo_config().replace("name = \"humidity\"", "name = \"humidty\"");
    let config = write(dir.path(), "misspelt.toml", &misspelt);
    let input = events_file(dir.path());
    let n = fixture().len();
    let out = batch(dir.path(), &config, &input, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let summary: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the summary is still printed");
    assert_eq!(summary["rejected"], n);
    assert_eq!(summary["predictions"], 0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("no event was scored: {n} of {n} rejected"))
            && stderr.contains("humidty"),
        "{stderr}"
    );

    // Two bad lines of n + 2: fine by default, a failure with --max-rejected 0.
    let mut lines = std::fs::read_to_string(&input).expect("events");
    lines.push_str("not json\n{\"device_id\":\"x\"}\n");
    let input = write(dir.path(), "some-bad.jsonl", &lines);
    let config = write(dir.path(), "demo.toml", &demo_config());
    let out = batch(dir.path(), &config, &input, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = batch(dir.path(), &config, &input, &["--max-rejected", "0"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("more than --max-rejected 0 allows"),
        "{}",
        text(&out)
    );
}

/// Trap 2: Relative paths in a config file are relative to the file, not to the working directory.
#[test]
fn paths_in_a_config_file_are_relative_to_its_folder() {
    let dir = tempfile::tempdir().expect("dir");
    let project = dir.path().join("project");
    std::fs::create_dir_all(project.join("models")).expect("folder");
    std::fs::copy(
        repo_root().join("models/anomaly_classifier.onnx"),
        project.join("models/model.onnx"),
    )
    .expect("copy model");
    std::fs::copy(
        repo_root().join("tests/fixtures/anomaly_classifier_undertrained.onnx"),
        project.join("models/shadow.onnx"),
    )
    .expect("copy shadow");
    let model = repo_root().join("models/anomaly_classifier.onnx");
    let text_with = demo_config().replace(
        &format!("path = \"{}\"", model.display()),
        "path = \"models/model.onnx\"\nshadow = { path = \"models/shadow.onnx\", name = \"s\", version = \"\" }",
    );
    let config = write(&project, "driftline.toml", &text_with);
    // From another folder: the model is found beside the config, not under the working dir.
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("folder");
    let out = validate(&elsewhere, &config);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains(
            &project
                .canonicalize()
                .expect("canonical")
                .join("models/model.onnx")
                .display()
                .to_string()
        ),
        "{}",
        text(&out)
    );
}

/// Trap 3: Without `model.path`, `run`, `batch` and `validate` say so; the demo model is not used.
#[test]
fn a_config_without_a_model_path_is_an_error_that_says_so() {
    let dir = tempfile::tempdir().expect("dir");
    let model = repo_root().join("models/anomaly_classifier.onnx");
    let without = demo_config().replace(&format!("path = \"{}\"", model.display()), "");
    let config = write(dir.path(), "no-model.toml", &without);
    let input = events_file(dir.path());
    for out in [
        validate(dir.path(), &config),
        batch(dir.path(), &config, &input, &[]),
    ] {
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(
            text(&out).contains("model.path is not set"),
            "{}",
            text(&out)
        );
    }
}

/// Trap 4: A config error is printed once, not once per level of its error chain.
#[test]
fn a_config_error_is_printed_once() {
    let dir = tempfile::tempdir().expect("dir");
    let config = write(
        dir.path(),
        "typo.toml",
        &demo_config().replace("name = \"anomaly_classifier\"", "nmae = \"x\""),
    );
    let out = batch(dir.path(), &config, &events_file(dir.path()), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("unknown field `nmae`").count(),
        1,
        "{stderr}"
    );
}

/// Trap 5: An unknown feature type names the valid types and the key, with its dot.
#[test]
fn an_unknown_feature_type_lists_the_valid_ones() {
    let dir = tempfile::tempdir().expect("dir");
    let config = write(
        dir.path(),
        "float.toml",
        &demo_config().replacen("type = \"f32\"", "type = \"float\"", 1),
    );
    let out = validate(dir.path(), &config);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains("unknown feature type `float`: the types are f32, f64, i64, bool, category"),
        "{all}"
    );
    assert!(all.contains("schema.features[0].type"), "{all}");
}

/// A config for the float64 diabetes regression (tests/fixtures/converters) with `kind` features.
fn diabetes_config(kind: &str) -> String {
    let names = [
        "age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6",
    ];
    let features: Vec<String> = names
        .iter()
        .map(|n| format!("{{ name = \"{n}\", type = \"{kind}\" }}"))
        .collect();
    format!(
        "[schema]\nid_field = \"id\"\ntimestamp_field = \"ts\"\nfeatures = [{}]\n[model]\npath = \"{}\"\nname = \"diabetes\"\n",
        features.join(", "),
        repo_root()
            .join("tests/fixtures/converters/float64_linear_diabetes.onnx")
            .display()
    )
}

/// Trap 6: f32 features feeding a float64 input are warned about; declared f64 they are not.
#[test]
fn f32_features_for_a_float64_model_are_warned_about() {
    let dir = tempfile::tempdir().expect("dir");
    let config = write(dir.path(), "f32.toml", &diabetes_config("f32"));
    let out = validate(dir.path(), &config);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("warning: model input `input` is float64 but features age, sex"),
        "{}",
        text(&out)
    );
    let config = write(dir.path(), "f64.toml", &diabetes_config("f64"));
    let out = validate(dir.path(), &config);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!text(&out).contains("warning"), "{}", text(&out));
}

/// Trap 7: A category feature beside numeric ones: the count mismatch says categories are not fed.
#[test]
fn a_category_feature_is_said_not_to_feed_numeric_inputs() {
    let dir = tempfile::tempdir().expect("dir");
    let with_site = demo_config().replace(
        "  { name = \"battery_v\", type = \"f32\" },",
        "  { name = \"battery_v\", type = \"f32\" },\n  { name = \"site\", type = \"category\" },\n  { name = \"extra\", type = \"f32\" },",
    );
    let config = write(dir.path(), "site.toml", &with_site);
    let out = validate(dir.path(), &config);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("takes 16 features but 17 are configured")
            && text(&out).contains("category features (site) are not fed to numeric inputs"),
        "{}",
        text(&out)
    );
}

/// Trap 8: A model without an ONNX `model_version` gets an empty version, not i64::MAX.
#[test]
fn a_model_without_a_version_is_not_called_i64_max() {
    let dir = tempfile::tempdir().expect("dir");
    let config = format!(
        "[schema]\nid_field = \"id\"\ntimestamp_field = \"ts\"\nfeatures = [{{ name = \"x1\", type = \"f32\" }}, {{ name = \"x2\", type = \"f32\" }}, {{ name = \"x3\", type = \"f64\" }}]\n[model]\npath = \"{}\"\nname = \"two\"\ninputs = [{{ input = \"a\", features = [\"x1\", \"x2\"] }}, {{ input = \"b\", features = [\"x3\"] }}]\n",
        repo_root().join("tests/fixtures/two_inputs.onnx").display()
    );
    let config = write(dir.path(), "two.toml", &config);
    let input = write(
        dir.path(),
        "two.jsonl",
        "{\"id\":\"a\",\"ts\":1,\"x1\":1,\"x2\":1,\"x3\":0.25}\n",
    );
    let out = batch(dir.path(), &config, &input, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let prediction: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(dir.path().join("scored.jsonl"))
            .expect("predictions")
            .trim(),
    )
    .expect("json");
    assert_eq!(prediction["model_version"], "", "{prediction}");
    // A configured version is used as it is.
    let versioned = std::fs::read_to_string(&config).expect("config") + "version = \"7\"\n";
    let config = write(dir.path(), "two-v7.toml", &versioned);
    let out = batch(dir.path(), &config, &input, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let line = std::fs::read_to_string(dir.path().join("scored.jsonl")).expect("predictions");
    assert!(line.contains("\"model_version\":\"7\""), "{line}");
}

/// Trap 9: `validate` runs the smoke inference that `run` and `batch` run.
#[test]
fn validate_runs_the_smoke_inference() {
    let dir = tempfile::tempdir().expect("dir");
    let model = repo_root().join("models/anomaly_classifier.onnx");
    let failing = repo_root().join("tests/fixtures/fails_at_run.onnx");
    let config = write(
        dir.path(),
        "fails.toml",
        &demo_config().replace(&model.display().to_string(), &failing.display().to_string()),
    );
    let batch_out = batch(dir.path(), &config, &events_file(dir.path()), &[]);
    assert_eq!(batch_out.status.code(), Some(1), "{}", text(&batch_out));
    let out = validate(dir.path(), &config);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("smoke inference") && text(&out).contains("cannot be reshaped"),
        "{}",
        text(&out)
    );
}

/// Trap 10: Progress on a stderr that is not a terminal: one final line, not a bar per tenth.
#[test]
fn batch_progress_is_one_line_when_stderr_is_not_a_terminal() {
    let dir = tempfile::tempdir().expect("dir");
    let config = write(dir.path(), "demo.toml", &demo_config());
    let out = batch(dir.path(), &config, &events_file(dir.path()), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let bars: Vec<&str> = stderr.lines().filter(|l| l.contains("% ")).collect();
    let n = fixture().len();
    assert_eq!(bars.len(), 1, "{stderr}");
    assert!(
        bars[0].contains(&format!("100% {n}/{n} events")),
        "{stderr}"
    );
}

/// Trap 11: Without an ONNX Runtime library every command says how to give one.
#[test]
fn every_command_gives_the_onnx_runtime_hint() {
    let dir = tempfile::tempdir().expect("dir");
    let config = write(dir.path(), "demo.toml", &demo_config());
    let input = events_file(dir.path());
    let env = [("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")];
    let c = config.to_str().expect("utf-8");
    let i = input.to_str().expect("utf-8");
    let o = dir.path().join("o.jsonl");
    let o = o.to_str().expect("utf-8");
    let p = dir.path().join("p.json");
    let p = p.to_str().expect("utf-8");
    for args in [
        vec!["validate", "--config", c],
        vec!["batch", "--config", c, "--input", i, "--output", o],
        vec!["profile", "--config", c, "--input", i, "--out", p],
    ] {
        let out = driftline(dir.path(), &args, &env);
        assert_ne!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains("ORT_DYLIB_PATH") && text(&out).contains("onnxruntime==1.31.1"),
            "{args:?}: {}",
            text(&out)
        );
    }
}

/// Trap 12: `make run-tansu`'s script starts tansu as the tests do (with the header index), runs the
/// demo against it, accounts for every event and stops tansu by its PID.
#[test]
fn the_demo_against_tansu_runs_from_one_command() {
    let tansu = driftline_tests::Tansu::binary();
    assert!(tansu.is_file(), "tansu missing at {}", tansu.display());
    let out = Command::new("bash")
        .current_dir(repo_root())
        .arg("scripts/run-tansu.sh")
        .arg(driftline_bin())
        .args([
            "--events",
            "4000",
            "--rate",
            "2000",
            "--drift-after",
            "3000",
        ])
        .env("TANSU_BIN", &tansu)
        .output()
        .expect("run-tansu.sh");
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("header index added"), "{all}");
    assert!(
        all.contains("accounted for       4000 of 4000 (nothing lost)"),
        "{all}"
    );
    // The script's tansu is gone: its port no longer answers.
    let port = all
        .split("tansu 0.6 at 127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the script names the port");
    assert!(
        std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_err(),
        "tansu still listens on {port}"
    );
}
