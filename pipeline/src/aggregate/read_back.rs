//! The aggregator's memory is its reports topic: what it published there says which windows
//! were judged, where a killed aggregator stopped in the middle of one, and each column's
//! verdicts for the alert hysteresis.
use std::collections::{BTreeMap, BTreeSet};

use driftline_operators::drift::monitor::{DriftMonitor, DriftReport};
use rdkafka::Message;

use crate::aggregate::fleet_instance;
use crate::aggregate::pending::FleetWindows;
use crate::config::Settings;
use crate::kafka::reader::PartitionReader;

/// Reads the reports topic back: windows of this fleet judged already, and every column's
/// verdicts in window order for the alert hysteresis.
///
/// A window some of whose columns were reported (an aggregator killed between two of its
/// reports) is returned with the columns already there: it is judged again, and only the
/// others are published.
pub fn read_back(
    settings: &Settings,
    reader: &PartitionReader,
    monitor: &mut DriftMonitor,
    windows: &mut FleetWindows,
) -> anyhow::Result<Option<PartlyPublished>> {
    let topic = &settings.aggregate.reports_topic;
    let me = fleet_instance(settings);
    let mut published: BTreeMap<i64, BTreeMap<String, Option<bool>>> = BTreeMap::new();
    for partition in 0..reader.partitions(topic)? {
        let (low, high) = reader.watermarks(topic, partition)?;
        reader.read(topic, partition, low, high, |m| {
            let report: Option<DriftReport> =
                m.payload().and_then(|b| serde_json::from_slice(b).ok());
            if let Some(r) = report.filter(|r| r.instance == me) {
                let start = r.window.start_ms.unwrap_or(0);
                published
                    .entry(start)
                    .or_default()
                    .insert(r.column, r.verdict.drift);
            }
            Ok(())
        })?;
    }
    let columns = monitor.column_names().len();
    let partly = match published.last_key_value() {
        Some((&start, reported)) if reported.len() < columns => Some(PartlyPublished {
            start_ms: start,
            columns: reported.keys().cloned().collect(),
        }),
        _ => None,
    };
    if let Some(p) = &partly {
        published.remove(&p.start_ms);
        tracing::warn!(start_ms = p.start_ms, reported = p.columns.len(), of = columns, "aggregate: a window was cut off while its reports were published; it is judged again and its other columns published");
    }
    if let Some((&last, _)) = published.last_key_value() {
        windows.judged_before(last);
        tracing::info!(
            through_ms = last,
            windows = published.len(),
            "aggregate: fleet reports read back; judged windows are skipped"
        );
    }
    for verdicts in published.into_values() {
        for (column, drift) in verdicts {
            if let Some(drift) = drift {
                monitor.restore_verdict(&column, drift);
            }
        }
    }
    Ok(partly)
}

/// A window whose reports were published for some columns only.
pub struct PartlyPublished {
    pub start_ms: i64,
    pub columns: BTreeSet<String>,
}
