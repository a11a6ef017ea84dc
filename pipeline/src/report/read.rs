//! Drift reports and alerts read back: from the JSONL files `driftline batch` writes, and from
//! the drift and alerts topics between two times.
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use driftline_operators::drift::monitor::{AlertEvent, DriftReport};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::report::history::DriftHistory;

/// Which records a reader keeps: column reports and drift alerts (no `kind`, or a column's
/// `numeric`/`categorical`), or performance reports (`"kind": "performance"`). A shadow's
/// agreement is neither.
#[derive(Clone, Copy, PartialEq)]
enum Keep {
    Columns,
    Performance,
}

/// Reads `drift` (reports) and, if given, `alerts` and `performance` (`driftline batch`'s
/// `OUTPUT.performance.jsonl`): one JSON object per line. Records of other kinds are skipped.
pub fn from_files(
    drift: &Path,
    alerts: Option<&Path>,
    performance: Option<&Path>,
) -> anyhow::Result<DriftHistory> {
    let reports = read_jsonl::<DriftReport>(drift, Keep::Columns)?;
    let alerts = match alerts {
        Some(path) => read_jsonl::<AlertEvent>(path, Keep::Columns)?,
        None => Vec::new(),
    };
    let mut history = DriftHistory::of(reports, alerts);
    history.performance = read_jsonl(drift, Keep::Performance)?;
    if let Some(path) = performance {
        history
            .performance
            .extend(read_jsonl(path, Keep::Performance)?);
    }
    Ok(history)
}

fn read_jsonl<T: serde::de::DeserializeOwned>(path: &Path, keep: Keep) -> anyhow::Result<Vec<T>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if let Some(record) = parse_record(line.as_bytes(), keep)
            .with_context(|| format!("{} line {}", path.display(), i + 1))?
        {
            out.push(record);
        }
    }
    Ok(out)
}

/// One record; `None` for a blank line or a record that `keep` does not keep.
fn parse_record<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    keep: Keep,
) -> anyhow::Result<Option<T>> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: serde_json::Value = serde_json::from_slice(bytes)?;
    let kept = match value.get("kind").and_then(|k| k.as_str()) {
        Some("shadow_agreement") => false,
        Some("performance") => keep == Keep::Performance,
        _ => keep == Keep::Columns,
    };
    if !kept {
        return Ok(None);
    }
    Ok(Some(serde_json::from_value(value)?))
}

/// What to read from the topics.
pub struct TopicRange<'a> {
    pub bootstrap: &'a str,
    pub drift_topic: &'a str,
    pub alerts_topic: &'a str,
    /// Record timestamps (epoch ms), inclusive.
    pub from_ms: i64,
    pub to_ms: i64,
    /// librdkafka properties for the consumer (security settings).
    pub properties: Vec<(String, String)>,
}

/// The reports and alerts whose record timestamps fall in `[from_ms, to_ms]`.
pub fn from_topics(range: &TopicRange<'_>) -> anyhow::Result<DriftHistory> {
    let reports = read_topic::<DriftReport>(range, range.drift_topic, Keep::Columns)?;
    let alerts = read_topic::<AlertEvent>(range, range.alerts_topic, Keep::Columns)?;
    let mut history = DriftHistory::of(reports, alerts);
    history.performance = read_topic(range, range.drift_topic, Keep::Performance)?;
    Ok(history)
}

/// Reads `topic` from the first offset at `from_ms` up to the end as it is now (no group, no
/// commit), keeping the records stamped at most `to_ms`.
fn read_topic<T: serde::de::DeserializeOwned>(
    range: &TopicRange<'_>,
    topic: &str,
    keep: Keep,
) -> anyhow::Result<Vec<T>> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", range.bootstrap)
        .set("group.id", "driftline-report")
        .set("enable.auto.commit", "false");
    for (k, v) in &range.properties {
        config.set(k, v);
    }
    let consumer: BaseConsumer = config.create().context("creating the report's consumer")?;
    let timeout = Duration::from_secs(10);
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .with_context(|| format!("fetching metadata of `{topic}` from {}", range.bootstrap))?;
    let partitions: Vec<i32> = (metadata.topics().iter())
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        bail!("topic `{topic}` does not exist on {}", range.bootstrap);
    }
    let mut at_time = TopicPartitionList::new();
    for &p in &partitions {
        at_time.add_partition_offset(topic, p, Offset::Offset(range.from_ms))?;
    }
    let starts = consumer.offsets_for_times(at_time, timeout)?;
    let mut assignment = TopicPartitionList::new();
    let mut ends = Vec::new();
    for &p in &partitions {
        let (_, high) = consumer.fetch_watermarks(topic, p, timeout)?;
        let start = match starts.find_partition(topic, p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => o,
            _ => high, // nothing at or after from_ms
        };
        if start < high {
            assignment.add_partition_offset(topic, p, Offset::Offset(start))?;
            ends.push((p, high));
        }
    }
    let mut out = Vec::new();
    if ends.is_empty() {
        return Ok(out);
    }
    consumer.assign(&assignment)?;
    let mut remaining: std::collections::HashMap<i32, i64> = ends.into_iter().collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !remaining.is_empty() {
        if Instant::now() > deadline {
            bail!("reading `{topic}`: the end was not reached in 120 s");
        }
        let Some(message) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let message = message.with_context(|| format!("reading `{topic}`"))?;
        let (p, offset) = (message.partition(), message.offset());
        if remaining.get(&p).is_some_and(|&end| offset + 1 >= end) {
            remaining.remove(&p);
        }
        let stamped = message.timestamp().to_millis().unwrap_or(i64::MIN);
        if stamped > range.to_ms {
            continue;
        }
        if let Some(record) = parse_record(message.payload().unwrap_or_default(), keep)
            .with_context(|| format!("`{topic}` partition {p} offset {offset}"))?
        {
            out.push(record);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The drift and alerts topics also carry performance reports and alerts, and a shadow's
    /// agreement: the drift report reads past them.
    #[test]
    fn records_of_other_kinds_are_skipped_and_column_reports_are_not() {
        for other in [
            br#"{"kind":"performance","window":"count","predictions":3}"#.as_slice(),
            br#"{"kind":"shadow_agreement","events":3}"#.as_slice(),
        ] {
            let skipped = parse_record::<DriftReport>(other, Keep::Columns);
            assert!(skipped.expect("skipped").is_none());
        }
        let column = br#"{"kind":"numeric","column":"temperature"}"#;
        assert!(
            parse_record::<DriftReport>(column, Keep::Columns).is_err(),
            "a column report is parsed (and this one lacks fields)"
        );
        let performance = parse_record::<serde_json::Value>(column, Keep::Performance);
        assert!(performance.expect("skipped").is_none());
    }
}
