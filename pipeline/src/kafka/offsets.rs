//! At-least-once bookkeeping: which input offsets may be committed.
//!
//! Every consumed offset is registered, in order, for its partition. It is acknowledged when all
//! the outputs derived from it (its prediction or its dead letter) are acknowledged by the
//! broker. Only the contiguous low watermark of acknowledged offsets is handed to the
//! [`OffsetStore`], so an offset is never committed ahead of an unacknowledged one before it.
//! A partition's state exists only while it is assigned: acknowledgements arriving after a
//! revoke are dropped (the new owner reprocesses those events: duplicates, never losses).
//! An offset that is not above the last one registered (the consumer went back: a fetch from the
//! committed offset after an assignment, or a broker handing out an offset twice) replaces what
//! was registered from it on, so the in-flight offsets stay in order and every acknowledgement
//! finds its offset; left unordered, one offset would never be matched and its partition would
//! commit nothing more for as long as it stayed assigned (issue 22).
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use dashmap::DashMap;

/// Where committable offsets go (the Kafka consumer; a recorder in unit tests).
pub trait OffsetStore: Send + Sync {
    /// `offset` is the last processed offset; the committed position becomes `offset + 1`.
    fn store(&self, topic: &str, partition: i32, offset: i64);
}

type PartitionKey = (Arc<str>, i32);

/// Offsets in flight for one partition, oldest first (strictly increasing), with whether each
/// is done.
#[derive(Default)]
struct PartitionOffsets {
    in_flight: VecDeque<(i64, bool)>,
    /// Whether an offset was registered since the assignment (the first one is logged: it is
    /// where this instance resumed the partition).
    resumed: bool,
}

/// Tracks offsets of all assigned partitions; shared by the source and the producer callbacks.
#[derive(Default)]
pub struct OffsetTracker {
    partitions: DashMap<PartitionKey, PartitionOffsets>,
    store: OnceLock<Arc<dyn OffsetStore>>,
    failed: AtomicBool,
    /// Rows in the source's open batch: registered, and not acknowledgeable while the source
    /// waits in a rebalance callback (it closes the batch only after).
    open_rows: AtomicUsize,
}

impl OffsetTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Connects the store; until then acknowledged offsets are tracked but not stored.
    pub fn set_store(&self, store: Arc<dyn OffsetStore>) {
        let _ = self.store.set(store);
    }

    pub fn assign(&self, topic: &str, partition: i32) {
        let mut p = self
            .partitions
            .entry((Arc::from(topic), partition))
            .or_default();
        // Assigned again without a revoke: the consumer resumes from the committed offset,
        // which [`Self::register`] handles; the log says where.
        p.resumed = false;
    }

    /// Forgets a partition; returns how many of its offsets were still in flight.
    pub fn revoke(&self, topic: &str, partition: i32) -> usize {
        self.partitions
            .remove(&(Arc::from(topic), partition))
            .map_or(0, |(_, p)| p.in_flight.len())
    }

    /// Offsets of one partition registered and not yet acknowledged.
    pub fn in_flight_of(&self, topic: &str, partition: i32) -> usize {
        self.partitions
            .get(&(Arc::from(topic), partition))
            .map_or(0, |p| p.in_flight.len())
    }

    /// Registers a consumed offset; false when its partition is not assigned (not tracked).
    pub fn register(&self, topic: &Arc<str>, partition: i32, offset: i64) -> bool {
        let Some(mut p) = self.partitions.get_mut(&(Arc::clone(topic), partition)) else {
            return false;
        };
        if !p.resumed {
            p.resumed = true;
            tracing::info!(topic = %topic, partition, offset, "partition resumed");
        }
        if p.in_flight.back().is_some_and(|&(last, _)| offset <= last) {
            let kept = p.in_flight.partition_point(|&(o, _)| o < offset);
            let replaced = p.in_flight.len() - kept;
            p.in_flight.truncate(kept);
            tracing::info!(topic = %topic, partition, offset, replaced, "the consumer went back on a partition; in-flight offsets from there on are registered again");
        }
        p.in_flight.push_back((offset, false));
        true
    }

    /// Marks an offset's outputs acknowledged and stores the new low watermark, if it moved.
    pub fn acknowledge(&self, topic: &Arc<str>, partition: i32, offset: i64) {
        self.acknowledge_run(topic, partition, &[offset]);
    }

    /// Acknowledges rows given column by column (a batch's), looking each partition up once per
    /// run of consecutive rows from it (a batch holds long runs: the consumer hands over messages
    /// partition by partition).
    pub fn acknowledge_rows(&self, topics: &[Arc<str>], partitions: &[i32], offsets: &[i64]) {
        let mut start = 0;
        while start < offsets.len() {
            let (topic, partition) = (&topics[start], partitions[start]);
            let mut end = start + 1;
            while end < offsets.len()
                && partitions[end] == partition
                && Arc::ptr_eq(&topics[end], topic)
            {
                end += 1;
            }
            self.acknowledge_run(topic, partition, &offsets[start..end]);
            start = end;
        }
    }

    /// Marks offsets of one partition acknowledged and stores the new low watermark, if it moved.
    fn acknowledge_run(&self, topic: &Arc<str>, partition: i32, offsets: &[i64]) {
        let watermark = {
            let Some(mut p) = self.partitions.get_mut(&(Arc::clone(topic), partition)) else {
                return;
            };
            for &offset in offsets {
                if let Ok(i) = p.in_flight.binary_search_by_key(&offset, |(o, _)| *o) {
                    p.in_flight[i].1 = true;
                }
            }
            let mut watermark = None;
            while let Some(&(o, true)) = p.in_flight.front() {
                watermark = Some(o);
                p.in_flight.pop_front();
            }
            watermark
        };
        if let (Some(offset), Some(store)) = (watermark, self.store.get()) {
            store.store(topic, partition, offset);
        }
    }

    /// The source says how many rows its open batch holds (0 when it closes it).
    pub fn set_open_rows(&self, rows: usize) {
        self.open_rows.store(rows, Ordering::Relaxed);
    }

    pub fn open_rows(&self) -> usize {
        self.open_rows.load(Ordering::Relaxed)
    }

    /// An output could not be delivered: the pipeline must stop without committing past it.
    pub fn fail(&self) {
        self.failed.store(true, Ordering::SeqCst);
    }

    pub fn has_failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    /// Offsets registered and not yet acknowledged, over all partitions.
    pub fn in_flight(&self) -> usize {
        self.partitions.iter().map(|p| p.in_flight.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<(String, i32, i64)>>);
    impl OffsetStore for Recorder {
        fn store(&self, topic: &str, partition: i32, offset: i64) {
            self.0
                .lock()
                .expect("lock")
                .push((topic.to_string(), partition, offset));
        }
    }

    #[test]
    fn stores_only_the_contiguous_low_watermark() {
        let recorder = Arc::new(Recorder::default());
        let tracker = OffsetTracker::new();
        tracker.set_store(recorder.clone());
        let t: Arc<str> = Arc::from("in");
        tracker.assign("in", 0);
        for o in [10, 11, 13, 14] {
            assert!(tracker.register(&t, 0, o));
        }
        tracker.acknowledge(&t, 0, 11);
        tracker.acknowledge(&t, 0, 14);
        assert!(
            recorder.0.lock().expect("lock").is_empty(),
            "10 is still in flight"
        );
        tracker.acknowledge(&t, 0, 10);
        tracker.acknowledge(&t, 0, 13);
        assert_eq!(
            *recorder.0.lock().expect("lock"),
            vec![("in".into(), 0, 11), ("in".into(), 0, 14)]
        );
        assert_eq!(tracker.in_flight(), 0);
    }

    #[test]
    fn partitions_are_independent_and_revoked_ones_forgotten() {
        let recorder = Arc::new(Recorder::default());
        let tracker = OffsetTracker::new();
        tracker.set_store(recorder.clone());
        let t: Arc<str> = Arc::from("in");
        tracker.assign("in", 0);
        tracker.assign("in", 1);
        assert!(
            !tracker.register(&t, 2, 0),
            "unassigned partitions are not tracked"
        );
        tracker.register(&t, 0, 5);
        tracker.register(&t, 1, 7);
        tracker.register(&t, 1, 8);
        assert_eq!(tracker.revoke("in", 1), 2);
        tracker.acknowledge(&t, 1, 7);
        tracker.acknowledge(&t, 0, 5);
        assert_eq!(*recorder.0.lock().expect("lock"), vec![("in".into(), 0, 5)]);
    }

    #[test]
    fn acknowledgements_in_any_order_store_the_last_offset_once_all_are_done() {
        // Shuffled with a fixed LCG: no dependency needed for a deterministic permutation.
        let recorder = Arc::new(Recorder::default());
        let tracker = OffsetTracker::new();
        tracker.set_store(recorder.clone());
        let t: Arc<str> = Arc::from("in");
        tracker.assign("in", 3);
        let mut offsets: Vec<i64> = (0..500).map(|i| i * 2).collect();
        offsets.iter().for_each(|&o| {
            tracker.register(&t, 3, o);
        });
        let mut seed = 42u64;
        for i in (1..offsets.len()).rev() {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            offsets.swap(i, (seed >> 33) as usize % (i + 1));
        }
        for &o in &offsets {
            tracker.acknowledge(&t, 3, o);
        }
        let stored = recorder.0.lock().expect("lock");
        assert_eq!(stored.last().map(|s| s.2), Some(998));
        assert!(
            stored.windows(2).all(|w| w[0].2 < w[1].2),
            "watermark only moves forward"
        );
    }

    #[test]
    fn an_offset_registered_again_does_not_hold_its_partition_back() {
        // The consumer goes back (a broker handing out offset 2 twice, then a fetch from the
        // committed offset 1): every acknowledgement still finds its offset, and the watermark
        // reaches the last offset once all are acknowledged.
        let recorder = Arc::new(Recorder::default());
        let tracker = OffsetTracker::new();
        tracker.set_store(recorder.clone());
        let t: Arc<str> = Arc::from("in");
        tracker.assign("in", 0);
        for o in [0, 1, 2, 2, 3, 4, 1, 2, 3, 4, 5] {
            assert!(tracker.register(&t, 0, o));
        }
        assert_eq!(tracker.in_flight_of("in", 0), 6, "0, then 1-5 once each");
        for o in [5, 4, 3, 2, 1, 0] {
            tracker.acknowledge(&t, 0, o);
        }
        assert_eq!(
            recorder.0.lock().expect("lock").last().map(|s| s.2),
            Some(5)
        );
        assert_eq!(tracker.in_flight(), 0);
    }

    #[test]
    fn rows_of_a_batch_are_acknowledged_by_partition_runs() {
        let recorder = Arc::new(Recorder::default());
        let tracker = OffsetTracker::new();
        tracker.set_store(recorder.clone());
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("a"), Arc::from("b"));
        for (t, p) in [("a", 0), ("a", 1), ("b", 0)] {
            tracker.assign(t, p);
        }
        for o in 0..4 {
            tracker.register(&a, 0, o);
            tracker.register(&a, 1, o);
            tracker.register(&b, 0, o);
        }
        // A batch: a/0 offsets 0-1, a/1 offset 0, b/0 offset 1 (b/0's 0 still in flight), a/0 2.
        let topics = [&a, &a, &a, &b, &a].map(Arc::clone);
        tracker.acknowledge_rows(&topics, &[0, 0, 1, 0, 0], &[0, 1, 0, 1, 2]);
        let stored = recorder.0.lock().expect("lock").clone();
        assert_eq!(
            stored,
            vec![("a".into(), 0, 1), ("a".into(), 1, 0), ("a".into(), 0, 2)]
        );
        assert_eq!(tracker.in_flight_of("b", 0), 4, "b/0 waits for offset 0");
    }
}
