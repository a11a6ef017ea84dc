//! The aggregator's windows in waiting: partials collected per window (one per key: a partial
//! published twice counts once), each partition's progress, and the rule that says when a
//! window is judged.
//!
//! Guarantees:
//! - Windows are judged in order of their start, each once: a window waits behind an earlier
//!   one, and partials of a window already judged (or read back as judged after a restart) are
//!   ignored.
//! - A window is complete when every partition of the input topic has published its progress
//!   through the window's last pane (a partition without a partial there had no events in it);
//!   it is judged incomplete, naming the partitions that had not, `max_wait_ms` after its
//!   first partial arrived.
//! - [`FleetWindows::commit_offset`] never passes the first partial of a window not yet judged,
//!   so an aggregator that restarts reads every partial it still needs again.
use std::collections::{BTreeMap, HashMap};

use driftline_operators::drift::partial::{ColumnPartial, FleetRecord, FleetWindow};

struct Pending {
    partials: HashMap<String, ColumnPartial>,
    last_pane: u64,
    first_seen_ms: i64,
    /// The partials topic's offset of the window's first partial.
    first_offset: i64,
}

/// What became of one record of the partials topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    Partial,
    Progress,
    /// Another fleet's, or a partial of a window judged already.
    Ignored,
}

pub struct FleetWindows {
    fleet: String,
    reference_id: String,
    partitions: i32,
    max_wait_ms: i64,
    /// Per input partition, the last pane its published windows reach.
    progress: BTreeMap<i32, u64>,
    pending: BTreeMap<i64, Pending>,
    /// Start of the latest window judged.
    judged_through: Option<i64>,
}

impl FleetWindows {
    pub fn new(fleet: &str, reference_id: &str, partitions: i32, max_wait_ms: u64) -> Self {
        FleetWindows {
            fleet: fleet.to_string(),
            reference_id: reference_id.to_string(),
            partitions,
            max_wait_ms: max_wait_ms as i64,
            progress: BTreeMap::new(),
            pending: BTreeMap::new(),
            judged_through: None,
        }
    }

    /// Windows up to and including the one starting at `start_ms` were judged before (read
    /// back from the reports topic).
    pub fn judged_before(&mut self, start_ms: i64) {
        self.judged_through = self.judged_through.max(Some(start_ms));
        self.pending.retain(|&s, _| s > start_ms);
    }

    /// Takes one record read at `offset` of the partials topic.
    pub fn take(&mut self, record: FleetRecord, offset: i64, now_ms: i64) -> Taken {
        match record {
            FleetRecord::Progress(p) => {
                if p.fleet != self.fleet || p.reference_id != self.reference_id {
                    return Taken::Ignored;
                }
                let through = self.progress.entry(p.partition).or_insert(p.through_pane);
                *through = (*through).max(p.through_pane);
                Taken::Progress
            }
            FleetRecord::Partial(p) => {
                let judged = self.judged_through.is_some_and(|j| p.start_ms <= j);
                if p.fleet != self.fleet || p.reference_id != self.reference_id || judged {
                    return Taken::Ignored;
                }
                let pending = self.pending.entry(p.start_ms).or_insert_with(|| Pending {
                    partials: HashMap::new(),
                    last_pane: p.last_pane,
                    first_seen_ms: now_ms,
                    first_offset: offset,
                });
                pending.first_offset = pending.first_offset.min(offset);
                pending.partials.insert(p.key(), p);
                Taken::Partial
            }
        }
    }

    /// The windows due now, oldest first, merged; see the module docs. A window whose
    /// partials do not merge (instances configured apart: other windows or KS grids) is
    /// logged and skipped, so that one bad publisher does not stop the fleet's view.
    pub fn due(&mut self, now_ms: i64) -> Vec<FleetWindow> {
        let mut out = Vec::new();
        while let Some((&start, pending)) = self.pending.first_key_value() {
            let missing: Vec<i32> = (0..self.partitions)
                .filter(|p| self.progress.get(p).is_none_or(|&t| t < pending.last_pane))
                .collect();
            let waited = now_ms - pending.first_seen_ms >= self.max_wait_ms;
            if !missing.is_empty() && !waited {
                break;
            }
            let Some(pending) = self.pending.remove(&start) else {
                break;
            };
            self.judged_through = Some(start);
            match FleetWindow::merge(pending.partials.values(), missing) {
                Ok(Some(window)) => out.push(window),
                Ok(None) => {}
                Err(why) => {
                    tracing::error!(start_ms = start, %why, "fleet window skipped: its partials do not merge")
                }
            }
        }
        out
    }

    /// Where the partials topic's partition may be committed to: the first partial of the
    /// oldest window not judged yet, or `next` (the offset after the last record read).
    pub fn commit_offset(&self, next: i64) -> i64 {
        self.pending
            .values()
            .map(|p| p.first_offset)
            .min()
            .unwrap_or(next)
            .min(next)
    }

    /// Windows waiting.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use driftline_operators::drift::partial::{PartitionProgress, PARTIAL_SCHEMA_VERSION};
    use driftline_operators::drift::profile::ColumnRole;

    use super::*;

    fn partial(partition: i32, start_ms: i64, events: u64) -> FleetRecord {
        FleetRecord::Partial(ColumnPartial {
            schema_version: PARTIAL_SCHEMA_VERSION,
            fleet: "f".into(),
            reference_id: "ref-1".into(),
            column: "x".into(),
            role: ColumnRole::Feature,
            partition,
            first_pane: start_ms as u64 / 1000,
            last_pane: start_ms as u64 / 1000,
            start_ms,
            end_ms: start_ms + 1000,
            events,
            missing: 0,
            bins: vec![(0, events)],
            unseen: Default::default(),
            ks_cells: vec![],
            ks_grid_points: 0,
            first_offset: 0,
            last_offset: events as i64 - 1,
            min_event_ms: Some(start_ms),
            max_event_ms: Some(start_ms),
            instance: "i".into(),
        })
    }

    fn progress(partition: i32, through_pane: u64) -> FleetRecord {
        FleetRecord::Progress(PartitionProgress {
            schema_version: PARTIAL_SCHEMA_VERSION,
            fleet: "f".into(),
            reference_id: "ref-1".into(),
            partition,
            through_pane,
            through_ms: 0,
            next_offset: 0,
            instance: "i".into(),
        })
    }

    #[test]
    fn a_window_waits_for_every_partition_then_counts_each_partial_once() {
        let mut w = FleetWindows::new("f", "ref-1", 3, 60_000);
        w.take(partial(0, 5000, 10), 0, 0);
        w.take(partial(1, 5000, 20), 1, 0);
        w.take(partial(1, 5000, 20), 2, 0); // published twice (a replay): one key
        w.take(progress(0, 5), 3, 0);
        w.take(progress(1, 5), 4, 0);
        assert!(w.due(1).is_empty(), "partition 2 has not reported");
        assert_eq!(w.commit_offset(5), 0);
        w.take(progress(2, 7), 5, 0);
        let due = w.due(2);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].columns["x"].events, 30);
        assert!(due[0].missing_partitions.is_empty());
        assert_eq!(w.commit_offset(6), 6);
        // A partial of the judged window, read again: ignored.
        assert_eq!(w.take(partial(2, 5000, 5), 6, 3), Taken::Ignored);
    }

    #[test]
    fn partials_that_do_not_merge_skip_their_window_not_the_fleet() {
        let mut w = FleetWindows::new("f", "ref-1", 2, 1000);
        let FleetRecord::Partial(mut other_grid) = partial(1, 1000, 4) else {
            unreachable!()
        };
        other_grid.ks_grid_points = 5;
        w.take(partial(0, 1000, 4), 0, 0);
        w.take(FleetRecord::Partial(other_grid), 1, 0);
        w.take(partial(0, 2000, 4), 2, 0);
        w.take(progress(0, 2), 3, 0);
        w.take(progress(1, 2), 4, 0);
        let due = w.due(1);
        assert_eq!(due.len(), 1, "the window that merges is judged");
        assert_eq!(due[0].start_ms, 2000);
    }

    #[test]
    fn a_window_is_judged_incomplete_after_max_wait_and_in_order() {
        let mut w = FleetWindows::new("f", "ref-1", 2, 1000);
        w.take(partial(0, 1000, 4), 10, 0);
        w.take(partial(0, 2000, 4), 11, 0);
        w.take(progress(0, 2), 12, 0);
        w.take(progress(1, 2), 13, 500);
        // Both complete now.
        let due = w.due(600);
        assert_eq!(due.len(), 2);
        assert!(due[0].start_ms < due[1].start_ms);
        w.take(partial(1, 3000, 4), 14, 700);
        assert!(w.due(1600).is_empty());
        let due = w.due(1700);
        assert_eq!(due[0].missing_partitions, vec![0, 1]);
        assert_eq!(w.take(partial(0, 1000, 1), 15, 0), Taken::Ignored);
        let mut other = FleetWindows::new("g", "ref-1", 2, 1000);
        assert_eq!(other.take(partial(0, 1000, 1), 0, 0), Taken::Ignored);
    }
}
