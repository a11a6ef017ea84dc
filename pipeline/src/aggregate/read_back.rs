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

/// How many of each reports partition's newest records the read-back reads first.
pub const REPORTS_TAIL_RECORDS: i64 = 1024;

/// Reads the reports topic back from its end: windows of this fleet judged already, and
/// every column's verdicts in window order for the alert hysteresis.
///
/// A window some of whose columns were reported (an aggregator killed between two of its
/// reports) is returned with the columns already there: it is judged again, and only the
/// others are published.
///
/// The hysteresis is a function of each column's last `drift.resolve_after` verdicts: an
/// alert is open exactly when one of them said drift (it opens on a drift verdict and closes
/// after that many clean ones in a row), and replaying them from a closed alert ends in the
/// same state and clean streak. So each partition is read backwards, [`REPORTS_TAIL_RECORDS`]
/// then twice as many before those and so on, until every column has that many verdicts or
/// the log's start is read: a restart costs the last windows' reports, not the fleet's
/// history.
pub fn read_back(
    settings: &Settings,
    reader: &PartitionReader,
    monitor: &mut DriftMonitor,
    windows: &mut FleetWindows,
) -> anyhow::Result<Option<PartlyPublished>> {
    let topic = &settings.aggregate.reports_topic;
    let me = fleet_instance(settings);
    let verdicts_needed = settings.drift.resolve_after.max(1) as usize;
    let names: Vec<String> = (monitor.column_names().into_iter())
        .map(String::from)
        .collect();
    // Per partition: the log's start, and where the part not read yet ends.
    let mut unread: Vec<(i32, i64, i64)> = Vec::new();
    for partition in 0..reader.partitions(topic)? {
        let (low, high) = reader.watermarks(topic, partition)?;
        unread.push((partition, low, high));
    }
    let mut published: BTreeMap<i64, BTreeMap<String, Option<bool>>> = BTreeMap::new();
    let (mut span, mut records) = (REPORTS_TAIL_RECORDS, 0);
    while unread.iter().any(|&(_, low, to)| to > low) {
        for (partition, low, to) in unread.iter_mut() {
            let from = to.saturating_sub(span).max(*low);
            reader.read(topic, *partition, from, *to, |m| {
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
            records += *to - from;
            *to = from;
        }
        let verdicts = |name: &String| {
            (published.values())
                .filter(|w| w.get(name).is_some_and(|d| d.is_some()))
                .count()
        };
        if names.iter().all(|n| verdicts(n) >= verdicts_needed) {
            break;
        }
        span = span.saturating_mul(2);
    }
    tracing::info!(records, "aggregate: reports read back");
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
