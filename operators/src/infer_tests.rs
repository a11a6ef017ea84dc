//! Inference against the real ONNX Runtime library and the demo model; the expected outputs
//! come from Python onnxruntime (`models/make_demo_model.py` wrote the fixture).
use super::*;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Int64Type};

use crate::batch::{BatchBuilder, SourcePosition};
use crate::decode::EventDecoder;
use crate::schema::{FeatureSpec, FeatureType};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// The library `make` installs; `ORT_DYLIB_PATH` overrides it.
pub(crate) fn runtime() -> ort::environment::Environment {
    let lib = std::env::var_os("ORT_DYLIB_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo(".venv/libonnxruntime.so"));
    load_runtime(&lib)
        .unwrap_or_else(|e| panic!("{e}: run `make test`, which installs ONNX Runtime into .venv"))
}

fn demo_schema() -> EventSchema {
    let spec: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo("models/sensors.json")).expect("sensors.json"),
    )
    .expect("json");
    let features = spec["sensors"]
        .as_array()
        .expect("sensors")
        .iter()
        .map(|s| FeatureSpec {
            name: s["name"].as_str().expect("name").to_string(),
            kind: FeatureType::F32,
            required: true,
        })
        .collect();
    EventSchema {
        id_field: "device_id".into(),
        timestamp_field: "ts".into(),
        timestamp_required: true,
        features,
    }
}

fn options(provider: Provider) -> ModelOptions {
    ModelOptions {
        path: repo("models/anomaly_classifier.onnx"),
        provider,
        intra_threads: 1,
        inputs: vec![],
    }
}

#[test]
fn demo_model_matches_python_onnxruntime() {
    let schema = demo_schema();
    let mut model =
        InferenceModel::load(&runtime(), &options(Provider::Cpu), &schema).expect("model loads");
    assert_eq!(model.provider(), "cpu");
    assert_eq!(model.metadata_version().as_deref(), Some("1.0.0"));
    let text =
        std::fs::read_to_string(repo("tests/fixtures/demo_predictions.jsonl")).expect("fixture");
    let cases: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let mut decoder = EventDecoder::new(&schema, 1 << 16);
    let mut builder = BatchBuilder::new(&schema, cases.len());
    let topic: Arc<str> = Arc::from("t");
    for (i, case) in cases.iter().enumerate() {
        let bytes = serde_json::to_vec(&case["event"]).expect("encode");
        let row = decoder
            .decode(&bytes, None)
            .expect("fixture events are valid");
        builder.push(
            row,
            SourcePosition {
                topic: &topic,
                partition: 0,
                offset: i as i64,
                key: None,
                traceparent: None,
                tracestate: None,
                kafka_timestamp_ms: 0,
            },
        );
    }
    let batch = builder.finish().expect("batch");
    let outputs = model.run(&batch.batch).expect("inference");
    let names: Vec<_> = outputs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["label", "probabilities"]);
    let labels = outputs[0].1.as_primitive::<Int64Type>();
    let probs = outputs[1].1.as_fixed_size_list();
    let probs = probs.values().as_primitive::<Float32Type>();
    let mut worst = 0.0f64;
    for (i, case) in cases.iter().enumerate() {
        assert_eq!(
            labels.value(i),
            case["label"].as_i64().expect("label"),
            "label of row {i}"
        );
        for k in 0..2 {
            let expected = case["probabilities"][k].as_f64().expect("prob");
            worst = worst.max((probs.value(i * 2 + k) as f64 - expected).abs());
        }
    }
    assert!(
        worst <= 1e-5,
        "largest difference from Python onnxruntime: {worst}"
    );
}

#[test]
fn a_feature_list_that_does_not_fit_the_model_is_explained() {
    let mut schema = demo_schema();
    schema.features.pop();
    schema.features.push(FeatureSpec {
        name: "site".into(),
        kind: FeatureType::Category,
        required: true,
    });
    let mut opts = options(Provider::Cpu);
    opts.inputs = vec![InputBinding {
        input: "features".into(),
        features: schema.features.iter().map(|f| f.name.clone()).collect(),
    }];
    let Err(InferError::Signature(problems)) = InferenceModel::load(&runtime(), &opts, &schema)
    else {
        panic!("expected a signature error");
    };
    assert!(
        problems.iter().any(|p| p.contains("`site` is a category")),
        "{problems:?}"
    );
    opts.inputs = vec![InputBinding {
        input: "nope".into(),
        features: vec!["temperature".into()],
    }];
    let Err(InferError::Signature(problems)) = InferenceModel::load(&runtime(), &opts, &schema)
    else {
        panic!("expected a signature error");
    };
    assert!(
        problems.iter().any(|p| p.contains("`features` is not fed")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("`nope`, which the model does not have")),
        "{problems:?}"
    );
}

#[test]
fn a_missing_model_file_is_a_model_error() {
    let mut opts = options(Provider::Cpu);
    opts.path = repo("models/does-not-exist.onnx");
    assert!(matches!(
        InferenceModel::load(&runtime(), &opts, &demo_schema()),
        Err(InferError::Model { .. })
    ));
}

#[test]
fn cuda_without_a_gpu_fails_when_required_and_falls_back_otherwise() {
    // This machine's ONNX Runtime is the CPU wheel, so CUDA can never be had here.
    let schema = demo_schema();
    let required = InferenceModel::load(
        &runtime(),
        &options(Provider::Cuda {
            device_id: 0,
            require: true,
        }),
        &schema,
    );
    assert!(
        matches!(required, Err(InferError::CudaUnavailable(_))),
        "{:?}",
        required.err()
    );
    let fallback = InferenceModel::load(
        &runtime(),
        &options(Provider::Cuda {
            device_id: 0,
            require: false,
        }),
        &schema,
    )
    .expect("falls back");
    assert_eq!(fallback.provider(), "cpu");
}

#[test]
fn named_inputs_take_their_features_and_float64_tensors_work() {
    // tests/fixtures/two_inputs.onnx (models/make_test_models.py): a f32 [N,2], b f64 [N,1];
    // score = a0 + 2*a1 + b (f64 [N,1]); flag = score > 0 (i64 [N]).
    let feature = |name: &str, kind| FeatureSpec {
        name: name.into(),
        kind,
        required: true,
    };
    let schema = EventSchema {
        id_field: "id".into(),
        timestamp_field: "ts".into(),
        timestamp_required: true,
        features: vec![
            feature("site", FeatureType::Category),
            feature("z", FeatureType::F64),
            feature("x", FeatureType::F32),
            feature("y", FeatureType::I64),
        ],
    };
    let opts = ModelOptions {
        path: repo("tests/fixtures/two_inputs.onnx"),
        provider: Provider::Cpu,
        intra_threads: 1,
        inputs: vec![
            InputBinding {
                input: "a".into(),
                features: vec!["x".into(), "y".into()],
            },
            InputBinding {
                input: "b".into(),
                features: vec!["z".into()],
            },
        ],
    };
    let mut model =
        InferenceModel::load(&runtime(), &opts, &schema).expect("two-input model loads");
    let mut decoder = EventDecoder::new(&schema, 1 << 16);
    let mut builder = BatchBuilder::new(&schema, 2);
    let topic: Arc<str> = Arc::from("t");
    let events: [&[u8]; 2] = [
        br#"{"id":"1","ts":1,"site":"s","x":1,"y":1,"z":0.25}"#,
        br#"{"id":"2","ts":2,"site":"s","x":-3.5,"y":1,"z":1.0}"#,
    ];
    for (i, e) in events.iter().enumerate() {
        let row = decoder.decode(e, None).expect("valid");
        builder.push(
            row,
            SourcePosition {
                topic: &topic,
                partition: 0,
                offset: i as i64,
                key: None,
                traceparent: None,
                tracestate: None,
                kafka_timestamp_ms: 0,
            },
        );
    }
    let outputs = model
        .run(&builder.finish().expect("batch").batch)
        .expect("inference");
    let score = outputs
        .iter()
        .find(|(n, _)| n == "score")
        .expect("score")
        .1
        .as_primitive::<arrow_array::types::Float64Type>();
    let flag = outputs
        .iter()
        .find(|(n, _)| n == "flag")
        .expect("flag")
        .1
        .as_primitive::<Int64Type>();
    assert_eq!(
        score.values().to_vec(),
        vec![3.25, -0.5],
        "an [N,1] output becomes a scalar column"
    );
    assert_eq!(flag.values().to_vec(), vec![1, 0]);
}
