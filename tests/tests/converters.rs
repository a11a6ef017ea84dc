//! Models from real converters (skl2onnx, onnxmltools; made by
//! models/make_converter_fixtures.py): classifiers with ZipMap (sequence-of-maps) and tensor
//! probabilities, regressors, an IsolationForest, a scaler pipeline, LightGBM, a model with ten
//! named inputs and a float64 model. For every fixture, `driftline batch` and the Kafka path
//! give Python onnxruntime's outputs, and batch mode's drift reports cover every output column.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use driftline::Settings;
use driftline_tests::in_process::RunningPipeline;
use driftline_tests::*;
use serde_json::Value;

/// Absolute. driftline writes a float32 output as its shortest decimal that reads back as the
/// same float32 (`258.8636`), so such a number is compared as the float32 it names
/// (258.86358642578125), as Python's `float(np.float32(x))` in the expected file is.
const TOLERANCE: f64 = 1e-5;

struct Fixture {
    name: String,
    dir: PathBuf,
    spec: Value,
}

impl Fixture {
    fn all() -> Vec<Fixture> {
        let dir = repo_root().join("tests/fixtures/converters");
        let manifest: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("manifest.json")).expect("manifest"),
        )
        .expect("manifest JSON");
        manifest["fixtures"]
            .as_array()
            .expect("fixtures")
            .iter()
            .map(|spec| Fixture {
                name: spec["name"].as_str().expect("name").to_string(),
                dir: dir.clone(),
                spec: spec.clone(),
            })
            .collect()
    }

    fn file(&self, key: &str) -> PathBuf {
        self.dir.join(self.spec[key].as_str().expect("file name"))
    }

    fn lines(&self, key: &str) -> Vec<Value> {
        read_lines(&self.file(key))
    }

    /// A driftline config for this model: its features, its input bindings, the model file.
    fn config(&self, dir: &Path) -> PathBuf {
        let features: Vec<String> = self.spec["features"]
            .as_array()
            .expect("features")
            .iter()
            .map(|f| format!("{{ name = {}, type = {} }}", f["name"], f["type"]))
            .collect();
        let inputs: Vec<String> = self.spec["inputs"]
            .as_array()
            .expect("inputs")
            .iter()
            .map(|i| format!("{{ input = {}, features = {} }}", i["input"], i["features"]))
            .collect();
        let text = format!(
            r#"[schema]
id_field = "id"
timestamp_field = "ts"
features = [{features}]

[model]
path = {model:?}
name = "{name}"
version = "fixture"
inputs = [{inputs}]

[runtime]
onnxruntime_library = {ort:?}

# Small batches and windows so that the fixtures' hundred-odd rows learn a reference (the
# first 40 events) and then close some windows.
[batch]
max_rows = 10

[drift]
warmup_events = 40
reference_sample = 40
pane_events = 20
panes = 1
slide = 1
retain_values = 20

[drift.thresholds]
min_samples = 10
"#,
            features = features.join(", "),
            inputs = inputs.join(", "),
            model = self.file("model").display().to_string(),
            name = self.name,
            ort = onnxruntime_library().display().to_string(),
        );
        let path = dir.join(format!("{}.toml", self.name));
        std::fs::write(&path, text).expect("config");
        path
    }
}

fn read_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

/// `got` equals `want` (Python onnxruntime's): integers and strings exactly, floats within
/// [`TOLERANCE`], arrays element by element, objects (ZipMap) key by key.
fn assert_close(got: &Value, want: &Value, at: &str) {
    match (got, want) {
        (Value::Number(g), Value::Number(w)) if w.is_i64() => {
            assert_eq!(g.as_i64(), w.as_i64(), "{at}: {got} vs {want}")
        }
        (Value::Number(g), Value::Number(w)) => {
            let (g, w) = (g.as_f64().expect("f64"), w.as_f64().expect("f64"));
            let as_f32 = f64::from(g as f32);
            assert!(
                (g - w).abs().min((as_f32 - w).abs()) <= TOLERANCE,
                "{at}: {g} vs {w}"
            );
        }
        (Value::Array(g), Value::Array(w)) => {
            assert_eq!(g.len(), w.len(), "{at}: {got} vs {want}");
            for (k, (g, w)) in g.iter().zip(w).enumerate() {
                assert_close(g, w, &format!("{at}[{k}]"));
            }
        }
        (Value::Object(g), Value::Object(w)) => {
            let keys = |o: &serde_json::Map<String, Value>| o.keys().cloned().collect::<Vec<_>>();
            assert_eq!(keys(g), keys(w), "{at}: the same keys in the same order");
            for (k, w) in w {
                assert_close(&g[k], w, &format!("{at}.{k}"));
            }
        }
        _ => assert_eq!(got, want, "{at}"),
    }
}

/// Every prediction's outputs equal the fixture's expected outputs, matched by event id.
fn check_predictions(fixture: &Fixture, predictions: &[Value]) {
    let expected = fixture.lines("expected");
    assert_eq!(
        predictions.len(),
        expected.len(),
        "{}: one prediction per event",
        fixture.name
    );
    let by_id: std::collections::HashMap<&str, &Value> = predictions
        .iter()
        .map(|p| (p["id"].as_str().expect("id"), p))
        .collect();
    for want in &expected {
        let id = want["id"].as_str().expect("id");
        let got = by_id
            .get(id)
            .unwrap_or_else(|| panic!("{}: no prediction for {id}", fixture.name));
        assert_eq!(got["model"], fixture.name.as_str());
        let outputs = want["outputs"].as_object().expect("outputs");
        assert_eq!(
            got["outputs"].as_object().map(|o| o.len()),
            Some(outputs.len()),
            "{id}: every model output, no more"
        );
        for (name, value) in outputs {
            assert_close(&got["outputs"][name], value, &format!("{id} {name}"));
        }
    }
}

/// The drift columns one output value becomes: `name`, `name[k]` or `name[class]`.
fn drift_columns_of(name: &str, value: &Value) -> Vec<String> {
    match value {
        Value::Array(a) => (0..a.len()).map(|k| format!("{name}[{k}]")).collect(),
        Value::Object(o) => o.keys().map(|k| format!("{name}[{k}]")).collect(),
        _ => vec![name.to_string()],
    }
}

#[test]
fn batch_mode_gives_python_onnxruntimes_outputs_for_every_converter_fixture() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fixtures = Fixture::all();
    assert_eq!(
        fixtures.len(),
        8,
        "the manifest lists every converter fixture"
    );
    for fixture in &fixtures {
        let config = fixture.config(dir.path());
        let output = dir.path().join(format!("{}.scored.jsonl", fixture.name));
        let out = Command::new(driftline_bin())
            .args(["batch", "--config"])
            .arg(&config)
            .arg("--input")
            .arg(fixture.file("events"))
            .arg("--output")
            .arg(&output)
            .env("DRIFTLINE__DRIFT__ENABLED", "true")
            .output()
            .expect("driftline batch");
        assert!(
            out.status.success(),
            "{}: {}",
            fixture.name,
            String::from_utf8_lossy(&out.stderr)
        );
        check_predictions(fixture, &read_lines(&output));

        // Drift watched every output, flattened as the profile flattens it.
        let reports = read_lines(&PathBuf::from(format!("{}.drift.jsonl", output.display())));
        let reported: std::collections::BTreeSet<&str> = reports
            .iter()
            .filter_map(|r| r["column"].as_str())
            .collect();
        let first = &fixture.lines("expected")[0]["outputs"];
        for (name, value) in first.as_object().expect("outputs") {
            for column in drift_columns_of(name, value) {
                assert!(
                    reported.contains(column.as_str()),
                    "{}: no drift report for {column} in {reported:?}",
                    fixture.name
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kafka_path_gives_python_onnxruntimes_outputs_for_every_converter_fixture() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = driftline::kafka::embedded::EmbeddedBroker::start(1).expect("embedded broker");
    let bootstrap = broker.bootstrap_servers().to_string();
    for fixture in Fixture::all() {
        let (input, output, dlq) = (
            format!("in-{}", fixture.name),
            format!("out-{}", fixture.name),
            format!("dlq-{}", fixture.name),
        );
        for (topic, partitions) in [(&input, 2), (&output, 2), (&dlq, 1)] {
            broker.create_topic(topic, partitions).expect("topic");
        }
        let env = pipeline_env(&bootstrap, &input, &output, &dlq, &fixture.name);
        let env = env.into_iter().map(|(k, v)| (k.to_string(), v));
        let settings =
            Settings::load_with_env(Some(&fixture.config(dir.path())), env).expect("settings");
        let events: Vec<(String, Vec<u8>)> = fixture
            .lines("events")
            .iter()
            .map(|e| {
                let id = e["id"].as_str().expect("id").to_string();
                (id, serde_json::to_vec(e).expect("JSON"))
            })
            .collect();
        let pipeline = RunningPipeline::start(settings);
        produce_all(&bootstrap, &input, &events);
        let n = events.len() as u64;
        let done = pipeline.wait_for_outputs(n, Duration::from_secs(60)).await;
        let summary = pipeline.stop().await.expect("pipeline run");
        assert_eq!(done, n, "{}: every event scored", fixture.name);
        assert_eq!(summary.dead_letters_out, 0, "{}", fixture.name);
        let predictions: Vec<Value> = read_topic(
            &bootstrap,
            &output,
            events.len(),
            Duration::from_secs(5),
            Duration::from_secs(30),
        )
        .iter()
        .map(Output::json)
        .collect();
        check_predictions(&fixture, &predictions);
    }
}
