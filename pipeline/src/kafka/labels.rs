//! The labels topic: label events (`{"id": …, "label": …}`) decoded for the drift stage's
//! label join ([`decode_label`]), and the co-partitioning it needs.
//!
//! Co-partitioning, as a Kafka Streams join requires: the labels topic is keyed by the event id
//! like the input topics and has as many partitions, so the label of an event arrives on the
//! partition number its event came from, and each instance reads the labels partitions whose
//! numbers it owns of the input topics (`stages::labels`). [`check_co_partitioning`] checks the
//! partition counts at startup; a label keyed otherwise is counted `misrouted` when it meets its
//! prediction.
use std::time::Duration;

use anyhow::{bail, Context};
use rdkafka::producer::Producer;

use crate::config::{LabelSettings, Settings};
use crate::kafka::producer::SinkProducer;

/// Why a label event was rejected: the dead letter's reason, field and detail.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelRejection {
    pub reason: &'static str,
    pub field: Option<String>,
    pub detail: String,
}

fn reject(reason: &'static str, field: &str, detail: impl Into<String>) -> LabelRejection {
    LabelRejection {
        reason,
        field: Some(field.to_string()),
        detail: detail.into(),
    }
}

/// A label event's id, label and optional time.
pub fn decode_label(
    payload: &[u8],
    fields: &LabelSettings,
) -> Result<(String, f64, Option<i64>), LabelRejection> {
    let value: serde_json::Value = serde_json::from_slice(payload).map_err(|e| LabelRejection {
        reason: "invalid_json",
        field: None,
        detail: e.to_string(),
    })?;
    let object = value.as_object().ok_or_else(|| LabelRejection {
        reason: "not_an_object",
        field: None,
        detail: "a label event is a JSON object".into(),
    })?;
    let get = |field: &str| match object.get(field) {
        None => Err(reject("missing_field", field, "absent")),
        Some(serde_json::Value::Null) => Err(reject("null_field", field, "null")),
        Some(v) => Ok(v),
    };
    let id = match get(&fields.id_field)? {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        _ => {
            return Err(reject(
                "wrong_type",
                &fields.id_field,
                "the id is a string or an integer",
            ))
        }
    };
    let label = match get(&fields.label_field)? {
        serde_json::Value::Bool(b) => f64::from(u8::from(*b)),
        serde_json::Value::Number(n) => n
            .as_f64()
            .filter(|v| v.is_finite())
            .ok_or_else(|| reject("out_of_range", &fields.label_field, "not a finite number"))?,
        _ => {
            return Err(reject(
                "wrong_type",
                &fields.label_field,
                "the label is a number or a boolean",
            ))
        }
    };
    let at_ms = match fields.timestamp_field.as_str() {
        "" => None,
        field => Some(get(field)?.as_i64().ok_or_else(|| {
            reject(
                "wrong_type",
                field,
                "the timestamp is integer epoch milliseconds",
            )
        })?),
    };
    Ok((id, label, at_ms))
}

/// The labels topic must exist and have as many partitions as each input topic.
pub fn check_co_partitioning(settings: &Settings, producer: &SinkProducer) -> anyhow::Result<()> {
    let k = &settings.kafka;
    if k.labels_topic.is_empty() {
        return Ok(());
    }
    let partitions = |topic: &str| -> anyhow::Result<usize> {
        let metadata = (producer.client())
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .with_context(|| format!("fetching metadata for topic `{topic}`"))?;
        let found = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
            .map_or(0, |t| t.partitions().len());
        Ok(found)
    };
    let labels = partitions(&k.labels_topic)?;
    if labels == 0 {
        bail!(
            "labels topic `{}` does not exist on {}: create it first, keyed by the event id and with as many partitions as the input topic",
            k.labels_topic,
            k.bootstrap_servers
        );
    }
    for input in &k.input_topics {
        let n = partitions(input)?;
        if n != labels {
            bail!(
                "kafka.labels_topic `{}` has {labels} partitions but input topic `{input}` has {n}: labels must be co-partitioned with the input (keyed by the event id, with the same partition count) so that each instance receives the labels of the partitions it owns",
                k.labels_topic
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(timestamp: &str) -> LabelSettings {
        LabelSettings {
            id_field: "id".into(),
            label_field: "label".into(),
            timestamp_field: timestamp.into(),
            max_delay_ms: 1,
            max_pending: 1,
        }
    }

    #[test]
    fn label_events_decode_or_say_why_not() {
        let f = fields("");
        assert_eq!(
            decode_label(br#"{"id":"a","label":1}"#, &f),
            Ok(("a".into(), 1.0, None))
        );
        assert_eq!(
            decode_label(br#"{"id":17,"label":true}"#, &f),
            Ok(("17".into(), 1.0, None))
        );
        assert_eq!(
            decode_label(br#"{"id":"a","label":2.5,"ts":9}"#, &fields("ts")),
            Ok(("a".into(), 2.5, Some(9)))
        );
        let reason = |payload: &[u8], f: &LabelSettings| decode_label(payload, f).unwrap_err();
        assert_eq!(reason(b"not json", &f).reason, "invalid_json");
        assert_eq!(reason(b"[1]", &f).reason, "not_an_object");
        let missing = reason(br#"{"id":"a"}"#, &f);
        assert_eq!(
            (missing.reason, missing.field.as_deref()),
            ("missing_field", Some("label"))
        );
        assert_eq!(
            reason(br#"{"id":"a","label":"yes"}"#, &f).reason,
            "wrong_type"
        );
        assert_eq!(reason(br#"{"id":1.5,"label":1}"#, &f).reason, "wrong_type");
        assert_eq!(
            reason(br#"{"id":"a","label":null}"#, &f).reason,
            "null_field"
        );
        assert_eq!(
            reason(br#"{"id":"a","label":1}"#, &fields("ts")).reason,
            "missing_field"
        );
    }
}
