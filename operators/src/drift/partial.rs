//! The fleet view's unit of exchange: one column's counts over one time window of one
//! partition (a [`ColumnPartial`]), and the merge of every partition's partials of a window
//! into what the monitor judges ([`FleetWindow`]).
//!
//! Guarantees:
//! - A partial holds counts only (bins, missing, unseen categories by name, KS grid cells), so
//!   the partials of a window add up to exactly the counts one instance that read every
//!   partition would have, whatever instance computed each of them.
//! - A partial is a function of the partition's records in the window: computed twice, it is
//!   the same record under the same [`ColumnPartial::key`], so a compacted topic keeps one and
//!   a merge that sees both counts it once (the last one wins).
//! - A partition's [`PartitionProgress`] says that every window ending at or before its pane
//!   has been published for that partition: a window with no partial from a partition whose
//!   progress has passed it had no events there.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::monitor::SourceSpan;
use super::profile::ColumnRole;

/// Version of the partial and progress records.
pub const PARTIAL_SCHEMA_VERSION: u32 = 1;

/// One column over one time window of one partition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnPartial {
    /// [`PARTIAL_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The consumer group and input topic whose partitions these are.
    pub fleet: String,
    /// The profile's id: partials of different references never merge.
    pub reference_id: String,
    pub column: String,
    pub role: ColumnRole,
    pub partition: i32,
    pub first_pane: u64,
    pub last_pane: u64,
    /// The window's event-time span, `[start_ms, end_ms)`.
    pub start_ms: i64,
    pub end_ms: i64,
    /// Events of the partition in the window, missing ones included.
    pub events: u64,
    pub missing: u64,
    /// Counts per profile bin (numeric: the q10 bins; categorical: the reference's
    /// categories), as `[bin, count]` pairs with a count, ascending.
    pub bins: Vec<(u32, u64)>,
    /// Categorical: categories the reference does not have, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unseen: BTreeMap<String, u64>,
    /// Numeric: counts per KS grid cell ([`super::ks_grid::KsGrid`]), as `[cell, count]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ks_cells: Vec<(u32, u64)>,
    /// Numeric: the grid's number of points, so that a merge of partials made with
    /// different grids is refused.
    #[serde(default)]
    pub ks_grid_points: usize,
    /// The partition's first and last offset in the window; event-time range.
    pub first_offset: i64,
    pub last_offset: i64,
    pub min_event_ms: Option<i64>,
    pub max_event_ms: Option<i64>,
    /// The instance that published it (informational: any instance publishes the same counts).
    pub instance: String,
}

impl ColumnPartial {
    /// The record key: one per (fleet, column, window, partition).
    pub fn key(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.fleet, self.column, self.start_ms, self.partition
        )
    }
}

/// A partition's published windows: every window whose last pane is at or before
/// `through_pane` has its partials on the topic (none where it had no events).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionProgress {
    pub schema_version: u32,
    pub fleet: String,
    pub reference_id: String,
    pub partition: i32,
    pub through_pane: u64,
    /// The window's end (exclusive) of `through_pane`, for people reading the topic.
    pub through_ms: i64,
    /// The next offset of the partition the publisher had not read.
    pub next_offset: i64,
    pub instance: String,
}

impl PartitionProgress {
    pub fn key(&self) -> String {
        format!("{}{}", Self::key_prefix(&self.fleet), self.partition)
    }

    /// What the keys of `fleet`'s progress records start with.
    pub fn key_prefix(fleet: &str) -> String {
        format!("{fleet}|progress|")
    }
}

/// A record of the partials topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FleetRecord {
    Partial(ColumnPartial),
    Progress(PartitionProgress),
}

impl FleetRecord {
    /// The record's key on the partials topic.
    pub fn key(&self) -> String {
        match self {
            FleetRecord::Partial(p) => p.key(),
            FleetRecord::Progress(p) => p.key(),
        }
    }
}

/// One column of a window, summed over the partitions that reported it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MergedColumn {
    pub bins: BTreeMap<u32, u64>,
    pub unseen: BTreeMap<String, u64>,
    pub ks_cells: BTreeMap<u32, u64>,
    pub ks_grid_points: usize,
    pub events: u64,
    pub missing: u64,
}

/// Every partition's partials of one window, merged: what the monitor judges for the fleet.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetWindow {
    pub first_pane: u64,
    pub last_pane: u64,
    pub start_ms: i64,
    pub end_ms: i64,
    /// By column name.
    pub columns: BTreeMap<String, MergedColumn>,
    /// Partitions that had events in the window.
    pub partitions: Vec<i32>,
    /// Partitions that had not reported when the window was judged (it is then incomplete).
    pub missing_partitions: Vec<i32>,
    pub sources: Vec<SourceSpan>,
    pub min_event_ms: Option<i64>,
    pub max_event_ms: Option<i64>,
}

impl FleetWindow {
    /// Merges `partials` (each counted once: pass one per key). Mixed windows or grids are
    /// an error.
    pub fn merge<'a>(
        partials: impl IntoIterator<Item = &'a ColumnPartial>,
        missing_partitions: Vec<i32>,
    ) -> Result<Option<FleetWindow>, String> {
        let mut window: Option<FleetWindow> = None;
        let mut spans: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
        for p in partials {
            let w = window.get_or_insert_with(|| FleetWindow {
                first_pane: p.first_pane,
                last_pane: p.last_pane,
                start_ms: p.start_ms,
                end_ms: p.end_ms,
                columns: BTreeMap::new(),
                partitions: Vec::new(),
                missing_partitions: missing_partitions.clone(),
                sources: Vec::new(),
                min_event_ms: None,
                max_event_ms: None,
            });
            if (p.first_pane, p.last_pane) != (w.first_pane, w.last_pane) {
                return Err(format!(
                    "partials of panes {}..={} and {}..={} in one window",
                    w.first_pane, w.last_pane, p.first_pane, p.last_pane
                ));
            }
            let c = w.columns.entry(p.column.clone()).or_default();
            if c.events > 0 && p.ks_grid_points != c.ks_grid_points {
                return Err(format!(
                    "column `{}`: partials with KS grids of {} and {} points",
                    p.column, c.ks_grid_points, p.ks_grid_points
                ));
            }
            c.ks_grid_points = p.ks_grid_points;
            c.events += p.events;
            c.missing += p.missing;
            for &(bin, n) in &p.bins {
                *c.bins.entry(bin).or_default() += n;
            }
            for (name, n) in &p.unseen {
                *c.unseen.entry(name.clone()).or_default() += n;
            }
            for &(cell, n) in &p.ks_cells {
                *c.ks_cells.entry(cell).or_default() += n;
            }
            if p.events > 0 {
                let span = spans
                    .entry(p.partition)
                    .or_insert((p.first_offset, p.last_offset));
                span.0 = span.0.min(p.first_offset);
                span.1 = span.1.max(p.last_offset);
                w.min_event_ms = match (w.min_event_ms, p.min_event_ms) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                w.max_event_ms = w.max_event_ms.max(p.max_event_ms);
            }
        }
        if let Some(w) = &mut window {
            w.partitions = spans.keys().copied().collect();
            w.sources = spans
                .iter()
                .map(|(&partition, &(first, last))| SourceSpan {
                    partition: Some(partition),
                    first,
                    last,
                })
                .collect();
        }
        Ok(window)
    }

    /// Events in the window (the largest column count: every column counts every event).
    pub fn events(&self) -> u64 {
        self.columns.values().map(|c| c.events).max().unwrap_or(0)
    }
}

/// Sparse `[index, count]` pairs of the non-zero counts, ascending.
pub fn sparse(counts: &[u64]) -> Vec<(u32, u64)> {
    counts
        .iter()
        .enumerate()
        .filter(|(_, &n)| n > 0)
        .map(|(i, &n)| (i as u32, n))
        .collect()
}

/// Dense counts of `n` slots from merged sparse ones; out-of-range indices are an error.
pub fn dense(counts: &BTreeMap<u32, u64>, n: usize) -> Result<Vec<u64>, String> {
    let mut out = vec![0; n];
    for (&i, &c) in counts {
        *out.get_mut(i as usize)
            .ok_or_else(|| format!("index {i} of {n} slots"))? += c;
    }
    Ok(out)
}
