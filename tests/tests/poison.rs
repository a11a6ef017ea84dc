//! The poison corpus (`tests/poison/`, at least 30 malformed or adversarial payloads): each one
//! gets its documented outcome (README, "Events"), first from the decoder alone, then on a broker
//! between valid neighbours in the same batch, whose predictions must stay exactly Python
//! onnxruntime's. Dead letters keep the original bytes (cut only past
//! `pipeline.max_dead_letter_bytes`, saying so) and the reason; nothing crashes or stalls.
use std::collections::HashMap;
use std::time::Duration;

use driftline_operators::decode::EventDecoder;
use driftline_tests::in_process::{demo_settings, embedded_broker, RunningPipeline};
use driftline_tests::poison::{corpus, PoisonCase};
use driftline_tests::*;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::ClientConfig;

fn outcome(case: &PoisonCase) -> (Option<&str>, Option<&str>) {
    (case.reason.as_deref(), case.field.as_deref())
}

#[test]
fn every_poison_payload_gets_its_documented_outcome_from_the_decoder() {
    let settings = demo_settings("127.0.0.1:9", "unused", &[]);
    let cases = corpus(settings.pipeline.max_event_bytes);
    assert!(cases.len() >= 30, "the corpus has {} payloads", cases.len());
    let mut decoder = EventDecoder::new(&settings.schema, settings.pipeline.max_event_bytes);
    let mut wrong = Vec::new();
    for case in &cases {
        let got = match decoder.decode(&case.payload, Some(1_700_000_000_000)) {
            Ok(_) => (None, None),
            Err(e) => (Some(e.reason.as_str().to_string()), e.field.clone()),
        };
        if (got.0.as_deref(), got.1.as_deref()) != outcome(case) {
            wrong.push(format!(
                "{}: expected {:?}, got {got:?}",
                case.name,
                outcome(case)
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_between_valid_neighbours_on_the_broker() {
    let broker = embedded_broker(1, 1);
    let b = broker.bootstrap_servers().to_string();
    // The embedded broker keeps only 5 MiB per partition: smaller limits keep every payload of
    // the corpus in the topic (the 2 MiB one stays too large) and still cut dead letters.
    let settings = demo_settings(
        &b,
        "poison",
        &[
            ("DRIFTLINE__PIPELINE__MAX_EVENT_BYTES", "65536".to_string()),
            (
                "DRIFTLINE__PIPELINE__MAX_DEAD_LETTER_BYTES",
                "32768".to_string(),
            ),
        ],
    );
    let max_dead_letter = settings.pipeline.max_dead_letter_bytes;
    let cases = corpus(settings.pipeline.max_event_bytes);
    let fixture = fixture();

    // One partition: fixture, poison, fixture, poison, … so each payload shares its batch with
    // valid neighbours on both sides.
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &b)
        .set("message.max.bytes", (8 << 20).to_string())
        .create()
        .expect("producer");
    let mut expected_at: Vec<Option<&PoisonCase>> = Vec::new();
    let mut neighbour = fixture.iter().cycle();
    for case in &cases {
        for item in [None, Some(case)] {
            let (key, payload) = match item {
                Some(case) => (case.name.clone(), case.payload.clone()),
                None => {
                    let (event, _, _) = neighbour.next().expect("fixture");
                    (
                        event["device_id"].as_str().expect("id").to_string(),
                        serde_json::to_vec(event).expect("json"),
                    )
                }
            };
            let record = BaseRecord::<str, [u8]>::to("in")
                .key(&key)
                .payload(&payload);
            producer.send(record).map_err(|(e, _)| e).expect("produce");
            expected_at.push(item);
        }
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
    let total = expected_at.len() as u64;

    let pipeline = RunningPipeline::start(settings);
    let outputs = pipeline
        .wait_for_outputs(total, Duration::from_secs(60))
        .await;
    let summary = pipeline.stop().await.expect("the pipeline ends cleanly");
    assert_eq!(outputs, total, "every event got an output");
    assert_eq!(summary.delivery_failures, 0);

    let read = |topic: &str| {
        read_topic(
            &b,
            topic,
            usize::MAX,
            Duration::from_secs(2),
            Duration::from_secs(60),
        )
        .into_iter()
        .map(|o| (o.source().1, o))
        .collect::<HashMap<i64, Output>>()
    };
    let (predictions, dead) = (read("out"), read("dlq"));
    assert_eq!(
        predictions.len() + dead.len(),
        expected_at.len(),
        "one output per event"
    );
    let expected_by_id: HashMap<&str, (i64, &Vec<f64>)> = fixture
        .iter()
        .map(|(e, label, probs)| (e["device_id"].as_str().expect("id"), (*label, probs)))
        .collect();
    let mut problems = Vec::new();
    for (offset, item) in expected_at.iter().enumerate() {
        let offset = offset as i64;
        match item {
            None => {
                // A valid neighbour: its prediction is exactly Python onnxruntime's.
                let Some(p) = predictions.get(&offset) else {
                    problems.push(format!("neighbour at offset {offset} has no prediction"));
                    continue;
                };
                let v = p.json();
                let (label, probs) = expected_by_id[v["id"].as_str().expect("id")];
                let got: Vec<f64> = v["outputs"]["probabilities"]
                    .as_array()
                    .expect("probabilities")
                    .iter()
                    .map(|x| x.as_f64().expect("p"))
                    .collect();
                let close = got.iter().zip(probs).all(|(a, b)| (a - b).abs() <= 1e-5);
                if v["outputs"]["label"].as_i64() != Some(label) || !close {
                    problems.push(format!(
                        "neighbour at offset {offset} was scored differently: {v}"
                    ));
                }
            }
            Some(case) => match (&case.reason, dead.get(&offset)) {
                (None, _) if predictions.contains_key(&offset) => {}
                (None, _) => problems.push(format!(
                    "{}: accepted by rule, but no prediction",
                    case.name
                )),
                (Some(_), None) => problems.push(format!("{}: no dead letter", case.name)),
                (Some(reason), Some(d)) => {
                    let header = |k: &str| d.headers.get(k).map(String::as_str);
                    if header("driftline.error.reason") != Some(reason.as_str())
                        || header("driftline.error.field") != case.field.as_deref()
                        || header("driftline.error.detail").is_none_or(str::is_empty)
                    {
                        problems.push(format!(
                            "{}: dead letter headers {:?}",
                            case.name, d.headers
                        ));
                    }
                    if d.key.as_deref() != Some(case.name.as_bytes()) {
                        problems.push(format!("{}: the dead letter lost its key", case.name));
                    }
                    let kept = case.payload.len().min(max_dead_letter - case.name.len());
                    let cut = kept < case.payload.len();
                    let original_bytes = header("driftline.error.original_bytes");
                    if d.payload != case.payload[..kept]
                        || original_bytes != cut.then(|| case.payload.len().to_string()).as_deref()
                    {
                        problems.push(format!(
                            "{}: dead letter of {} bytes (original {}, header {original_bytes:?})",
                            case.name,
                            d.payload.len(),
                            case.payload.len()
                        ));
                    }
                }
            },
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
