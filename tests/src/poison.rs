//! The poison corpus (`tests/poison/`): malformed and adversarial payloads with what driftline
//! must do with each under configs/demo.toml's schema. The files and `expected.tsv` are written
//! by `tests/poison/make_corpus.py`; payloads too big for git are built here.
use crate::repo_root;

/// One payload and its documented outcome.
#[derive(Debug, Clone)]
pub struct PoisonCase {
    pub name: String,
    pub payload: Vec<u8>,
    /// `None`: accepted (a prediction); `Some(reason)`: dead-lettered with that reason.
    pub reason: Option<String>,
    pub field: Option<String>,
}

/// Every case of `tests/poison/expected.tsv`, with `max_event_bytes` as configured.
pub fn corpus(max_event_bytes: usize) -> Vec<PoisonCase> {
    let dir = repo_root().join("tests/poison");
    let manifest = std::fs::read_to_string(dir.join("expected.tsv")).expect("expected.tsv");
    manifest
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            assert_eq!(cols.len(), 3, "expected.tsv line {line:?}");
            let payload = match cols[0].strip_prefix("generated:") {
                Some(name) => generated(name, max_event_bytes),
                None => std::fs::read(dir.join(cols[0])).expect("corpus file"),
            };
            PoisonCase {
                name: cols[0].to_string(),
                payload,
                reason: (cols[1] != "accept").then(|| cols[1].to_string()),
                field: (!cols[2].is_empty()).then(|| cols[2].to_string()),
            }
        })
        .collect()
}

/// A valid demo event with `extra` raw JSON members appended, and `id` as its device_id.
fn event_with(id: &str, extra: &str) -> Vec<u8> {
    let mut text = format!(r#"{{"device_id":"{id}","ts":1700000000000"#);
    for (i, name) in feature_names().iter().enumerate() {
        text.push_str(&format!(r#","{name}":{}"#, 20.5 + i as f64));
    }
    text.push_str(extra);
    text.push('}');
    text.into_bytes()
}

/// The demo schema's features: the simulated sensors (models/sensors.json).
fn feature_names() -> Vec<String> {
    let generator =
        driftline::cli::gen::EventGenerator::new(driftline::cli::gen::GenOptions::default(), 0)
            .expect("the demo sensors");
    generator.sensors().iter().map(|s| s.name.clone()).collect()
}

/// A valid event padded with an unknown string member to exactly `size` bytes.
fn padded_event(size: usize) -> Vec<u8> {
    let bare = event_with("padded", r#","pad":"""#).len();
    let pad = "p".repeat(size - bare);
    let event = event_with("padded", &format!(r#","pad":"{pad}""#));
    assert_eq!(event.len(), size);
    event
}

fn generated(name: &str, max_event_bytes: usize) -> Vec<u8> {
    // Far past serde_json's recursion limit (128), and small enough for a 64 KiB event limit.
    const DEEP: usize = 10_000;
    match name {
        "over-max-event-bytes" => padded_event(max_event_bytes + 1),
        "multi-megabyte" => padded_event(2 * 1024 * 1024),
        "just-under-max-event-bytes" => padded_event(max_event_bytes),
        "deep-nesting-in-unknown-field" => event_with(
            "deep",
            &format!(r#","deep":{}{}"#, "[".repeat(DEEP), "]".repeat(DEEP)),
        ),
        "deep-nesting-top-level" => {
            format!("{}{}", "[".repeat(DEEP), "]".repeat(DEEP)).into_bytes()
        }
        "deep-nesting-unclosed" => event_with(
            "deep",
            &format!(r#","deep":{}"#, "{\"a\":[".repeat(DEEP / 2)),
        ),
        "two-thousand-unknown-keys" => {
            let extra: String = (0..2_000).map(|i| format!(r#","k{i}":{i}"#)).collect();
            event_with("many-keys", &extra)
        }
        "id-longer-than-1024-bytes" => event_with(&"i".repeat(1025), ""),
        other => panic!("no generator for {other}"),
    }
}
