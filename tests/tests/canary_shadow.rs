//! Canary and shadow models in a running pipeline (embedded broker, real ONNX Runtime):
//! - a 90/10 canary: every key always meets the variant the documented hash gives it, the split
//!   holds, a row routed to the canary carries the canary's outputs (and no other row does),
//!   predictions and per-variant metrics name the variant, and the canary's outputs get
//!   their own drift reports (the deliberately worse candidate drifts from the serving model's
//!   reference);
//! - a shadow: it scores every event into the shadow topic and never the output topic, and its
//!   agreement in metrics and in the drift topic equals what the two topics themselves show;
//! - promotion: a config change and `POST /admin/reload` move all traffic to the candidate.
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use driftline::cli::gen::GenOptions;
use driftline::config::{ShadowSettings, VariantSettings};
use driftline::models::canary::CanaryRouter;
use driftline::Settings;
use driftline_tests::in_process::{demo_settings, embedded_broker, RunningPipeline};
use driftline_tests::*;
use serde_json::Value;

const SERVING: &str = "anomaly_classifier";

fn candidate_model() -> PathBuf {
    repo_root().join("tests/fixtures/anomaly_classifier_undertrained.onnx")
}

fn drift_env() -> Vec<(&'static str, String)> {
    [
        ("DRIFTLINE__DRIFT__ENABLED", "true"),
        ("DRIFTLINE__KAFKA__DRIFT_TOPIC", "drift"),
        ("DRIFTLINE__KAFKA__ALERTS_TOPIC", "alerts"),
        ("DRIFTLINE__DRIFT__WARMUP_EVENTS", "2000"),
        ("DRIFTLINE__DRIFT__PANE_EVENTS", "2000"),
        ("DRIFTLINE__DRIFT__PANES", "1"),
        ("DRIFTLINE__DRIFT__SLIDE", "1"),
        ("DRIFTLINE__DRIFT__REFERENCE_SAMPLE", "2000"),
        ("DRIFTLINE__DRIFT__RETAIN_VALUES", "2000"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_string()))
    .collect()
}

/// An embedded broker with the drift, alerts and shadow topics, and the demo's settings on it
/// (drift on, group `group`) with the undertrained candidate as a shadow named `shadow_name`.
fn with_candidate_shadow(
    group: &str,
    shadow_name: &str,
) -> (driftline::kafka::embedded::EmbeddedBroker, Settings) {
    let broker = embedded_broker(1, 2);
    for (topic, partitions) in [("drift", 1), ("alerts", 1), ("shadow", 2)] {
        broker.create_topic(topic, partitions).expect("topic");
    }
    let mut env = drift_env();
    env.push(("DRIFTLINE__KAFKA__SHADOW_TOPIC", "shadow".into()));
    let mut settings = demo_settings(broker.bootstrap_servers(), group, &env);
    settings.model.shadow = ShadowSettings {
        path: candidate_model(),
        name: shadow_name.into(),
        version: "0.1.0".into(),
    };
    (broker, settings)
}

/// Feeds `count` generated events into `in` and waits (bounded) for their predictions.
async fn feed(pipeline: &RunningPipeline, bootstrap: &str, count: u64, devices: u32, seed: u64) {
    let before = pipeline.outputs();
    let options = GenOptions {
        count,
        devices,
        seed,
        ..GenOptions::default()
    };
    let report = spawn_feed(bootstrap, "in", options).join().expect("feed");
    assert_eq!(report.produced, count, "{report:?}");
    let done = pipeline
        .wait_for_outputs(before + count, Duration::from_secs(120))
        .await;
    assert_eq!(done, before + count, "every event scored");
}

fn read_all(bootstrap: &str, topic: &str, n: usize) -> Vec<Output> {
    read_topic(
        bootstrap,
        topic,
        n,
        Duration::from_secs(5),
        Duration::from_secs(60),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_takes_its_share_by_key_with_its_own_metrics_and_drift() {
    // The candidate's file also shadows every event: the rows routed to the canary must carry
    // exactly the shadow's outputs, the others the serving model's.
    let (broker, mut settings) = with_candidate_shadow("canary", "candidate-shadow");
    let bootstrap = broker.bootstrap_servers().to_string();
    settings.model.weight = 90;
    settings.model.variants.push(VariantSettings {
        name: "candidate".into(),
        path: candidate_model(),
        version: "0.1.0-canary".into(),
        weight: 10,
    });
    let pipeline = RunningPipeline::start(settings);
    let events = 20_000u64;
    feed(&pipeline, &bootstrap, events, 5_000, 7).await;
    let metrics = std::sync::Arc::clone(&pipeline.metrics);
    pipeline.stop().await.expect("pipeline run");

    let outputs = read_all(&bootstrap, "out", events as usize);
    assert_eq!(outputs.len(), events as usize);
    let shadowed: HashMap<(i32, i64), Value> = read_all(&bootstrap, "shadow", events as usize)
        .iter()
        .map(|o| (o.source(), o.json()))
        .collect();
    assert_eq!(shadowed.len(), events as usize);
    let mut same_as_candidate = [0usize; 2];
    let router = CanaryRouter::new(&[90, 10]);
    let mut variant_of_key: HashMap<Vec<u8>, String> = HashMap::new();
    let mut predictions_by: BTreeMap<String, u64> = BTreeMap::new();
    for o in &outputs {
        let p = o.json();
        let key = o.key.clone().expect("keyed like its event");
        let model = p["model"].as_str().expect("model").to_string();
        let expected = [SERVING, "candidate"][router.variant_of(&key)];
        assert_eq!(model, expected, "key {:?}", String::from_utf8_lossy(&key));
        let candidate_outputs = &shadowed[&o.source()]["outputs"];
        if model == "candidate" {
            assert_eq!(p["model_version"], "0.1.0-canary");
            assert_eq!(&p["outputs"], candidate_outputs, "scored by the candidate");
        }
        same_as_candidate[usize::from(model == "candidate")] +=
            usize::from(&p["outputs"] == candidate_outputs);
        let first = variant_of_key.entry(key).or_insert_with(|| model.clone());
        assert_eq!(*first, model, "a key always meets the same variant");
        *predictions_by.entry(model).or_default() += 1;
    }
    assert_eq!(
        same_as_candidate[0], 0,
        "no serving-model row carries the candidate's outputs"
    );
    let keys = variant_of_key.len() as f64;
    let canary_keys = variant_of_key
        .values()
        .filter(|m| *m == "candidate")
        .count() as f64;
    assert!(keys > 4_000.0, "{keys} keys");
    assert!(
        (canary_keys / keys - 0.10).abs() <= 0.02,
        "canary share of keys {}",
        canary_keys / keys
    );
    let counted = metrics.variant_predictions.lock().expect("counts").clone();
    assert_eq!(counted, predictions_by, "per-variant metrics");

    // The candidate's outputs have drift reports of their own, against the serving model's
    // reference: the undertrained candidate's probabilities drift; the serving model's do not.
    let reports: Vec<Value> = read_all(&bootstrap, "drift", 1_000)
        .iter()
        .map(Output::json)
        .collect();
    let of = |column: &str| -> Vec<&Value> {
        reports.iter().filter(|r| r["column"] == column).collect()
    };
    let canary = of("probabilities@candidate[1]");
    let serving = of("probabilities[1]");
    assert!(!canary.is_empty() && !serving.is_empty(), "{reports:?}");
    assert!(
        canary.iter().all(|r| r["verdict"]["drift"] == true),
        "{canary:?}"
    );
    // The serving model's windows stay far below the PSI and KL thresholds. Its exact KS is
    // not asserted: with ~1 800 values a window it flags shifts far too small to matter. A CI
    // run saw one window of eight at p = 0.0017 against a threshold of 0.0023 while its PSI
    // was 0.015; that run's serving p-values ran from 0.0017 to 0.37.
    assert!(
        serving
            .iter()
            .all(|r| r["psi"]["drift"] == false && r["kl"]["drift"] == false),
        "{serving:?}"
    );
    let psi = |r: &&Value| r["psi"]["value"].as_f64().expect("psi");
    let (serving_psi, canary_psi) = (
        serving.iter().map(psi).fold(0.0, f64::max),
        canary.iter().map(psi).fold(f64::INFINITY, f64::min),
    );
    assert!(
        canary_psi > 5.0 * serving_psi,
        "the canary's smallest PSI {canary_psi} is not well above the serving model's largest {serving_psi}"
    );
    // Each variant's window holds its own events: about a tenth of the canary's.
    let events_of = |r: &&Value| {
        r["window"]["events"].as_u64().expect("events")
            - r["bins"]["missing"].as_u64().expect("missing")
    };
    let canary_events: u64 = canary.iter().map(events_of).sum();
    let serving_events: u64 = serving.iter().map(events_of).sum();
    let share = canary_events as f64 / (canary_events + serving_events) as f64;
    assert!(
        (0.05..0.15).contains(&share),
        "canary share in drift {share}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shadow_scores_every_event_into_its_own_topic_and_reports_agreement() {
    let (broker, settings) = with_candidate_shadow("shadow", "challenger");
    let bootstrap = broker.bootstrap_servers().to_string();
    let pipeline = RunningPipeline::start(settings);
    let health = pipeline.health.expect("health server");
    let events = 6_000u64;
    feed(&pipeline, &bootstrap, events, 500, 11).await;
    let metrics_text = http::get(health, "/metrics").expect("metrics").1;
    let metrics = std::sync::Arc::clone(&pipeline.metrics);
    pipeline.stop().await.expect("pipeline run");

    let source = |o: &Output| o.source();
    let served: HashMap<(i32, i64), Value> = read_all(&bootstrap, "out", events as usize)
        .iter()
        .map(|o| (source(o), o.json()))
        .collect();
    let shadowed: HashMap<(i32, i64), Value> = read_all(&bootstrap, "shadow", events as usize)
        .iter()
        .map(|o| (source(o), o.json()))
        .collect();
    assert_eq!(served.len(), events as usize);
    assert_eq!(
        shadowed.len(),
        events as usize,
        "the shadow scored every event"
    );
    assert!(
        served.values().all(|p| p["model"] == SERVING),
        "never the shadow in the output topic"
    );
    assert!(shadowed
        .values()
        .all(|p| p["model"] == "challenger" && p["model_version"] == "0.1.0"));

    // Agreement from the topics themselves, against the metrics.
    let (mut agreed, mut abs_diff) = (0u64, 0f64);
    for (position, p) in &served {
        let s = &shadowed[position];
        agreed += u64::from(p["outputs"]["label"] == s["outputs"]["label"]);
        for k in 0..2 {
            let x = p["outputs"]["probabilities"][k].as_f64().expect("p");
            let y = s["outputs"]["probabilities"][k].as_f64().expect("p");
            abs_diff += (x as f32 as f64 - y as f32 as f64).abs();
        }
    }
    let a = *metrics.shadow.lock().expect("agreement");
    assert_eq!(a.events, events);
    assert_eq!((a.labels_compared, a.labels_agreed), (events, agreed));
    assert_eq!(a.scores_compared, 2 * events);
    assert!(
        (a.score_abs_diff_sum - abs_diff).abs() <= 1e-6 * abs_diff.max(1.0),
        "{} vs {abs_diff}",
        a.score_abs_diff_sum
    );
    assert!(
        agreed < events,
        "the undertrained shadow disagrees somewhere ({agreed} of {events})"
    );
    assert!(
        metrics_text.contains("driftline_shadow_comparisons"),
        "{metrics_text}"
    );
    assert!(metrics_text.contains("driftline_shadow_agreement"));

    // In the drift topic: agreement per window, and the shadow's outputs as their own columns.
    let reports: Vec<Value> = read_all(&bootstrap, "drift", 1_000)
        .iter()
        .map(Output::json)
        .collect();
    let agreements: Vec<&Value> = reports
        .iter()
        .filter(|r| r["kind"] == "shadow_agreement")
        .collect();
    assert!(!agreements.is_empty(), "{reports:?}");
    for r in &agreements {
        assert_eq!(r["serving_model"], SERVING);
        assert_eq!(r["shadow_model"], "challenger");
        let share = r["label_agreement"].as_f64().expect("label agreement");
        assert!((0.0..=1.0).contains(&share), "{r}");
        assert!(r["score_mean_abs_diff"].as_f64().expect("score") > 0.0);
    }
    let windowed: u64 = agreements
        .iter()
        .map(|r| r["events"].as_u64().expect("events"))
        .sum();
    assert!(windowed <= events && windowed >= 2_000, "{windowed}");
    assert!(reports
        .iter()
        .any(|r| r["column"] == "probabilities@challenger[1]"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotion_is_a_config_change_and_a_reload() {
    let broker = embedded_broker(1, 1);
    let bootstrap = broker.bootstrap_servers().to_string();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("driftline.toml");
    let demo = std::fs::read_to_string(repo_root().join("configs/demo.toml")).expect("demo");
    let serving_section =
        format!("[model]\npath = \"../models/anomaly_classifier.onnx\"\nname = \"{SERVING}\"\n");
    assert!(
        demo.contains(&serving_section),
        "configs/demo.toml's [model] section moved"
    );
    let with_model = |section: String| demo.replace(&serving_section, &section);
    let serving_path = repo_root().join("models/anomaly_classifier.onnx");
    std::fs::write(
        &config,
        with_model(format!(
            "[model]\npath = {:?}\nname = \"{SERVING}\"\nweight = 50\nvariants = [{{ name = \"candidate\", path = {:?}, version = \"0.1.0\", weight = 50 }}]\n",
            serving_path.display().to_string(),
            candidate_model().display().to_string()
        )),
    )
    .expect("config");
    let mut env = pipeline_env(&bootstrap, "in", "out", "dlq", "promotion");
    env.push(("DRIFTLINE__HEALTH__ADMIN", "true".into()));
    env.push((
        "DRIFTLINE__RUNTIME__ONNXRUNTIME_LIBRARY",
        onnxruntime_library().display().to_string(),
    ));
    let env = env.into_iter().map(|(k, v)| (k.to_string(), v));
    let settings = Settings::load_with_env(Some(&config), env).expect("settings");
    let pipeline = RunningPipeline::start(settings);
    let health = pipeline.health.expect("health server");
    feed(&pipeline, &bootstrap, 2_000, 500, 3).await;

    // Promote: the candidate becomes the [model] section's model; no variants left.
    std::fs::write(
        &config,
        with_model(format!(
            "[model]\npath = {:?}\nname = \"candidate\"\nversion = \"0.1.0\"\n",
            candidate_model().display().to_string()
        )),
    )
    .expect("config");
    let (status, body) = http::post(health, "/admin/reload");
    assert_eq!(status, 200, "{body}");
    let identity: Value = serde_json::from_str(&body).expect("identity JSON");
    assert_eq!(identity["name"], "candidate");
    feed(&pipeline, &bootstrap, 2_000, 500, 4).await;
    let metrics = std::sync::Arc::clone(&pipeline.metrics);
    pipeline.stop().await.expect("pipeline run");

    let outputs = read_all(&bootstrap, "out", 4_000);
    assert_eq!(outputs.len(), 4_000);
    let mut before: HashSet<String> = HashSet::new();
    for o in &outputs {
        let (_, offset) = o.source();
        let model = o.json()["model"].as_str().expect("model").to_string();
        if offset < 2_000 {
            before.insert(model);
        } else {
            assert_eq!(
                model, "candidate",
                "after promotion every event meets the candidate"
            );
        }
    }
    assert_eq!(
        before,
        HashSet::from([SERVING.to_string(), "candidate".to_string()])
    );
    let models = metrics.models.lock().expect("models").clone();
    assert_eq!(models.len(), 1);
    assert_eq!(models[0].identity.name, "candidate");
}
