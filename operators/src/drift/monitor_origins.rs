//! Where a window's events came from, for its report: per pane, the partitions with the first
//! and last position seen in each, and the event-time range; read back per window.
use std::collections::BTreeMap;

use super::report::SourceSpan;

/// Where one row came from.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct RowOrigin {
    pub partition: Option<i32>,
    /// A Kafka offset, or a record number in an input file.
    pub position: Option<i64>,
    pub event_ms: Option<i64>,
}

/// What one pane saw besides values.
#[derive(Debug, Clone, Default)]
struct PaneOrigins {
    /// (partition, first, last), sorted by partition.
    spans: Vec<(Option<i32>, i64, i64)>,
    min_ts: Option<i64>,
    max_ts: Option<i64>,
}

/// The origins of a window: what its report states.
#[derive(Debug, Clone, Default)]
pub(super) struct WindowOrigins {
    pub partitions: Vec<i32>,
    pub sources: Vec<SourceSpan>,
    pub min_event_ms: Option<i64>,
    pub max_event_ms: Option<i64>,
}

/// The origins of the panes still open or still needed by a window.
#[derive(Debug, Default)]
pub(super) struct PaneOriginLog {
    panes: BTreeMap<u64, PaneOrigins>,
}

impl PaneOriginLog {
    /// Notes one row of `pane`.
    pub fn note(&mut self, pane: u64, row: RowOrigin) {
        let seen = self.panes.entry(pane).or_default();
        if let Some(ts) = row.event_ms {
            seen.min_ts = Some(seen.min_ts.map_or(ts, |m| m.min(ts)));
            seen.max_ts = Some(seen.max_ts.map_or(ts, |m| m.max(ts)));
        }
        // A partition without a position still names the partition (-1: no span).
        let Some(position) = row.position.or(row.partition.map(|_| -1)) else {
            return;
        };
        match seen.spans.binary_search_by_key(&row.partition, |s| s.0) {
            Ok(i) => {
                let span = &mut seen.spans[i];
                span.1 = span.1.min(position);
                span.2 = span.2.max(position);
            }
            Err(i) => seen.spans.insert(i, (row.partition, position, position)),
        }
    }

    /// The origins of panes `first..=last` together.
    pub fn window(&self, first: u64, last: u64) -> WindowOrigins {
        let mut spans: BTreeMap<Option<i32>, (i64, i64)> = BTreeMap::new();
        let (mut min_ts, mut max_ts) = (None::<i64>, None::<i64>);
        for (_, o) in self.panes.range(first..=last) {
            for &(p, a, b) in &o.spans {
                let e = spans.entry(p).or_insert((a, b));
                *e = (e.0.min(a), e.1.max(b));
            }
            min_ts = match (min_ts, o.min_ts) {
                (Some(x), Some(y)) => Some(x.min(y)),
                (x, y) => x.or(y),
            };
            max_ts = match (max_ts, o.max_ts) {
                (Some(x), Some(y)) => Some(x.max(y)),
                (x, y) => x.or(y),
            };
        }
        WindowOrigins {
            partitions: spans.keys().filter_map(|p| *p).collect(),
            sources: spans
                .into_iter()
                .filter(|(_, (a, _))| *a >= 0)
                .map(|(partition, (first, last))| SourceSpan {
                    partition,
                    first,
                    last,
                })
                .collect(),
            min_event_ms: min_ts,
            max_event_ms: max_ts,
        }
    }

    /// Drops the panes before `pane`: no window will need them again.
    pub fn forget_before(&mut self, pane: u64) {
        self.panes = self.panes.split_off(&pane);
    }
}
