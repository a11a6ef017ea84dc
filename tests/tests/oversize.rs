//! Records that are legal for Kafka but larger than what driftline may copy into an output: a
//! 1 000 000-byte key (with a valid and with an invalid value), 120 KB of headers with an 880 KB
//! invalid payload, and a 1 000 000-byte `tracestate` on a valid event. Each sits between valid
//! neighbours, at driftline's default limits. None may stop the pipeline (a refused output would
//! stop it at the same offset on every restart): each is accounted for by exactly one output,
//! every neighbour is scored, the offsets are committed, and a restart resumes past them.
use std::collections::HashMap;
use std::time::Duration;

use driftline_tests::in_process::{demo_settings, embedded_broker, RunningPipeline};
use driftline_tests::*;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::ClientConfig;

const MB: usize = 1_000_000;

/// One big record: its key, payload and headers, and the output it must get.
struct Big {
    name: &'static str,
    key: Vec<u8>,
    payload: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
    /// `Some((reason, field))`: a dead letter; `None`: a prediction.
    dead_letter: Option<(&'static str, &'static str)>,
}

fn big_records(valid: &[u8]) -> Vec<Big> {
    let many_headers: Vec<(String, Vec<u8>)> = (0..120)
        .map(|i| (format!("h{i:03}"), vec![b'x'; 1000]))
        .collect();
    vec![
        Big {
            name: "big key, valid value",
            key: vec![b'k'; MB],
            payload: valid.to_vec(),
            headers: vec![],
            dead_letter: Some(("too_large", "key")),
        },
        Big {
            name: "big key, invalid value",
            key: vec![b'k'; MB],
            payload: b"not json".to_vec(),
            headers: vec![],
            dead_letter: Some(("too_large", "key")),
        },
        Big {
            name: "120 KB of headers, 880 KB invalid payload",
            key: b"headers".to_vec(),
            payload: vec![b'{'; 880_000],
            headers: many_headers,
            dead_letter: Some(("invalid_json", "")),
        },
        Big {
            name: "1 MB tracestate on a valid event",
            key: b"tracestate".to_vec(),
            payload: valid.to_vec(),
            headers: vec![("tracestate".into(), vec![b's'; MB])],
            dead_letter: None,
        },
    ]
}

fn producer(bootstrap: &str) -> ThreadedProducer<DefaultProducerContext> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("message.max.bytes", (8 << 20).to_string())
        .create()
        .expect("producer")
}

fn send(
    producer: &ThreadedProducer<DefaultProducerContext>,
    partition: i32,
    key: &[u8],
    payload: &[u8],
    headers: &[(String, Vec<u8>)],
) {
    let mut owned = OwnedHeaders::new();
    for (k, v) in headers {
        owned = owned.insert(Header {
            key: k.as_str(),
            value: Some(v.as_slice()),
        });
    }
    let record = BaseRecord::<[u8], [u8]>::to("in")
        .partition(partition)
        .key(key)
        .payload(payload)
        .headers(owned);
    producer.send(record).map_err(|(e, _)| e).expect("produce");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_keys_and_headers_never_stop_the_pipeline() {
    // One partition per big record (the embedded broker keeps 5 MiB per partition).
    let broker = embedded_broker(1, 4);
    let b = broker.bootstrap_servers().to_string();
    let fixture = fixture();
    let valid = |i: usize| serde_json::to_vec(&fixture[i % fixture.len()].0).expect("json");
    let bigs = big_records(&valid(0));
    let p = producer(&b);
    // Per partition: two neighbours, the big record, two neighbours.
    let mut expected: HashMap<(i32, i64), Option<&Big>> = HashMap::new();
    for (partition, big) in bigs.iter().enumerate() {
        let partition = partition as i32;
        for offset in 0..5i64 {
            if offset == 2 {
                send(&p, partition, &big.key, &big.payload, &big.headers);
                expected.insert((partition, offset), Some(big));
            } else {
                send(&p, partition, b"neighbour", &valid(offset as usize), &[]);
                expected.insert((partition, offset), None);
            }
        }
    }
    p.flush(Duration::from_secs(30)).expect("flush");
    let total = expected.len() as u64;

    let settings = demo_settings(&b, "oversize", &[]);
    let pipeline = RunningPipeline::start(settings.clone());
    let outputs = pipeline
        .wait_for_outputs(total, Duration::from_secs(60))
        .await;
    assert_eq!(
        outputs, total,
        "every record got an output; the pipeline runs on"
    );
    let dropped = pipeline
        .metrics
        .trace_headers_dropped
        .load(std::sync::atomic::Ordering::Relaxed);
    let summary = pipeline.stop().await.expect("the pipeline ends cleanly");
    assert_eq!(summary.delivery_failures, 0);
    assert_eq!(dropped, 1, "the 1 MB tracestate was dropped and counted");
    assert_eq!(
        committed_offsets(&b, "oversize", "in", 4),
        vec![5; 4],
        "every offset committed"
    );

    let read = |topic: &str| {
        read_topic(
            &b,
            topic,
            usize::MAX,
            Duration::from_secs(2),
            Duration::from_secs(60),
        )
    };
    let (predictions, dead) = (read("out"), read("dlq"));
    assert_eq!(
        predictions.len() + dead.len(),
        expected.len(),
        "one output per record"
    );
    let by_source = |outputs: &[Output]| -> HashMap<(i32, i64), Output> {
        outputs.iter().map(|o| (o.source(), o.clone())).collect()
    };
    let (predictions, dead) = (by_source(&predictions), by_source(&dead));
    let mut problems = Vec::new();
    for (source, big) in &expected {
        match big.and_then(|b| b.dead_letter.map(|d| (b, d))) {
            None => {
                let Some(prediction) = predictions.get(source) else {
                    problems.push(format!("{source:?}: no prediction"));
                    continue;
                };
                if prediction.headers.contains_key("tracestate") {
                    problems.push(format!("{source:?}: the 1 MB tracestate was copied"));
                }
                let size: usize = prediction.key.as_ref().map_or(0, Vec::len)
                    + prediction.payload.len()
                    + prediction
                        .headers
                        .iter()
                        .map(|(k, v)| k.len() + v.len())
                        .sum::<usize>();
                if size > 2_000 {
                    problems.push(format!("{source:?}: a prediction of {size} bytes"));
                }
            }
            Some((big, (reason, field))) => {
                let Some(d) = dead.get(source) else {
                    problems.push(format!("{}: no dead letter", big.name));
                    continue;
                };
                let header = |k: &str| d.headers.get(k).map(String::as_str);
                if header("driftline.error.reason") != Some(reason)
                    || header("driftline.error.field").unwrap_or("") != field
                {
                    problems.push(format!("{}: headers {:?}", big.name, d.headers.keys()));
                }
                let size = d.key.as_ref().map_or(0, Vec::len)
                    + d.payload.len()
                    + d.headers
                        .iter()
                        .map(|(k, v)| k.len() + v.len())
                        .sum::<usize>();
                if size > 990_000 {
                    problems.push(format!("{}: a dead letter of {size} bytes", big.name));
                }
                if big.key.len() == MB
                    && (d.key.as_ref().map(Vec::len) != Some(settings.pipeline.max_key_bytes)
                        || header("driftline.error.original_key_bytes") != Some("1000000"))
                {
                    problems.push(format!("{}: the key was not cut and named", big.name));
                }
                if !big.headers.is_empty() && header("driftline.error.dropped_headers").is_none() {
                    problems.push(format!("{}: dropped headers not counted", big.name));
                }
                if d.payload != big.payload[..d.payload.len()] {
                    problems.push(format!("{}: the payload's bytes changed", big.name));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // A restart resumes past the big records: one more event, and exactly its output.
    send(&p, 0, b"after", &valid(1), &[]);
    p.flush(Duration::from_secs(30)).expect("flush");
    let settings = demo_settings(&b, "oversize", &[]);
    let again = RunningPipeline::start(settings);
    assert_eq!(again.wait_for_outputs(1, Duration::from_secs(60)).await, 1);
    let summary = again
        .stop()
        .await
        .expect("the restarted pipeline ends cleanly");
    assert_eq!(summary.predictions_out + summary.dead_letters_out, 1);
    assert_eq!(committed_offsets(&b, "oversize", "in", 4), vec![6, 5, 5, 5]);
}
