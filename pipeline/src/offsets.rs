//! At-least-once bookkeeping: which input offsets may be committed.
//!
//! Every consumed offset is registered, in order, for its partition. It is acknowledged when all
//! the outputs derived from it (its prediction or its dead letter) are acknowledged by the
//! broker. Only the contiguous low watermark of acknowledged offsets is handed to the
//! [`OffsetStore`], so an offset is never committed ahead of an unacknowledged one before it.
//! A partition's state exists only while it is assigned: acknowledgements arriving after a
//! revoke are dropped (the new owner reprocesses those events: duplicates, never losses).
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use dashmap::DashMap;

/// Where committable offsets go (the Kafka consumer; a recorder in unit tests).
pub trait OffsetStore: Send + Sync {
    /// `offset` is the last processed offset; the committed position becomes `offset + 1`.
    fn store(&self, topic: &str, partition: i32, offset: i64);
}

type PartitionKey = (Arc<str>, i32);

/// Offsets in flight for one partition, oldest first, with whether each is done.
#[derive(Default)]
struct PartitionOffsets {
    in_flight: VecDeque<(i64, bool)>,
}

/// Tracks offsets of all assigned partitions; shared by the source and the producer callbacks.
#[derive(Default)]
pub struct OffsetTracker {
    partitions: DashMap<PartitionKey, PartitionOffsets>,
    store: OnceLock<Arc<dyn OffsetStore>>,
    failed: AtomicBool,
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
        self.partitions
            .entry((Arc::from(topic), partition))
            .or_default();
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
        match self.partitions.get_mut(&(Arc::clone(topic), partition)) {
            Some(mut p) => {
                p.in_flight.push_back((offset, false));
                true
            }
            None => false,
        }
    }

    /// Marks an offset's outputs acknowledged and stores the new low watermark, if it moved.
    pub fn acknowledge(&self, topic: &Arc<str>, partition: i32, offset: i64) {
        let watermark = {
            let Some(mut p) = self.partitions.get_mut(&(Arc::clone(topic), partition)) else {
                return;
            };
            let Ok(i) = p.in_flight.binary_search_by_key(&offset, |(o, _)| *o) else {
                return;
            };
            p.in_flight[i].1 = true;
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
}
