//! The label join: labels that arrive after their predictions (or before them) matched by id,
//! in bounded memory.
//!
//! - A prediction waits for its label at most `max_delay_ms` (of the caller's clock), and at
//!   most `max_pending` predictions wait: past either the oldest is given up as unlabeled
//!   (counted: `expired`, `evicted`).
//! - A label that arrives before its prediction waits the same way (at most `max_pending`, at
//!   most `max_delay_ms`); one that never meets a prediction is counted `unknown`.
//! - A label for an id that was already labeled (recently: the ids joined within
//!   `max_delay_ms`, at most `max_pending` of them) counts once: the others are `duplicates`.
//!
//! So a labels outage holds at most `max_pending` predictions, and a flood of labels for
//! unknown ids at most `max_pending` labels.
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use serde::Serialize;

/// The join's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinBounds {
    pub max_delay_ms: i64,
    pub max_pending: usize,
}

/// What the join did, since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct JoinCounts {
    /// Predictions that met their label.
    pub labeled: u64,
    /// Predictions given up after `max_delay_ms` without a label.
    pub expired: u64,
    /// Predictions given up because `max_pending` were waiting.
    pub evicted: u64,
    /// Labels for an id already labeled.
    pub duplicates: u64,
    /// Labels that met no prediction within `max_delay_ms` (or were pushed out by newer ones).
    pub unknown: u64,
}

/// Entries waiting by id, oldest first.
struct Waiting<K, V> {
    by_id: HashMap<K, (V, i64)>,
    /// Arrival order; an id already gone from `by_id` (joined) is skipped when it surfaces.
    order: VecDeque<(i64, K)>,
}

impl<K: Hash + Eq + Clone, V> Waiting<K, V> {
    fn new() -> Self {
        Waiting {
            by_id: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    fn insert(&mut self, id: K, value: V, now_ms: i64) {
        self.by_id.insert(id.clone(), (value, now_ms));
        self.order.push_back((now_ms, id));
        // Joined ids leave stale entries behind; drop them before they outgrow the live ones.
        if self.order.len() > 2 * self.by_id.len() + 64 {
            let by_id = &self.by_id;
            self.order
                .retain(|(at, id)| by_id.get(id).is_some_and(|(_, t)| t == at));
        }
    }

    /// Removes and returns the oldest live entry when `pred(arrival)` holds for it.
    fn pop_oldest_if(&mut self, pred: impl Fn(i64) -> bool) -> Option<(K, V)> {
        while let Some((at, id)) = self.order.front() {
            let live = self.by_id.get(id).is_some_and(|(_, t)| t == at);
            if !live {
                self.order.pop_front();
                continue;
            }
            if !pred(*at) {
                return None;
            }
            let (_, id) = self.order.pop_front().expect("front");
            let (value, _) = self.by_id.remove(&id).expect("live");
            return Some((id, value));
        }
        None
    }

    fn len(&self) -> usize {
        self.by_id.len()
    }
}

/// Joins predictions (their slot `S`) with labels by id `K`.
pub struct LabelJoin<K, S> {
    bounds: JoinBounds,
    predictions: Waiting<K, S>,
    labels: Waiting<K, f64>,
    /// Ids joined recently, for duplicate labels.
    joined: Waiting<K, ()>,
    pub counts: JoinCounts,
}

impl<K: Hash + Eq + Clone, S> LabelJoin<K, S> {
    pub fn new(bounds: JoinBounds) -> Self {
        LabelJoin {
            bounds,
            predictions: Waiting::new(),
            labels: Waiting::new(),
            joined: Waiting::new(),
            counts: JoinCounts::default(),
        }
    }

    /// A prediction: its label if it was waiting, else it waits. Returns the pair joined now,
    /// and the predictions given up to keep within `max_pending`.
    pub fn prediction(&mut self, id: K, slot: S, now_ms: i64) -> (Option<(S, f64)>, Vec<S>) {
        if let Some((label, _)) = self.labels.by_id.remove(&id) {
            self.joined(id, now_ms);
            return (Some((slot, label)), Vec::new());
        }
        let mut evicted = Vec::new();
        while self.predictions.len() >= self.bounds.max_pending {
            match self.predictions.pop_oldest_if(|_| true) {
                Some((_, old)) => {
                    self.counts.evicted += 1;
                    evicted.push(old);
                }
                None => break,
            }
        }
        self.predictions.insert(id, slot, now_ms);
        (None, evicted)
    }

    /// A label: the prediction it completes, if that was waiting; else it waits for it.
    pub fn label(&mut self, id: K, label: f64, now_ms: i64) -> Option<(S, f64)> {
        if self.joined.by_id.contains_key(&id) || self.labels.by_id.contains_key(&id) {
            self.counts.duplicates += 1;
            return None;
        }
        if let Some((slot, _)) = self.predictions.by_id.remove(&id) {
            self.joined(id, now_ms);
            return Some((slot, label));
        }
        while self.labels.len() >= self.bounds.max_pending {
            if self.labels.pop_oldest_if(|_| true).is_none() {
                break;
            }
            self.counts.unknown += 1;
        }
        self.labels.insert(id, label, now_ms);
        None
    }

    /// Gives up what waited longer than `max_delay_ms`: returns the predictions now unlabeled.
    pub fn expire(&mut self, now_ms: i64) -> Vec<S> {
        let overdue = |at: i64| now_ms - at > self.bounds.max_delay_ms;
        let mut unlabeled = Vec::new();
        while let Some((_, slot)) = self.predictions.pop_oldest_if(overdue) {
            self.counts.expired += 1;
            unlabeled.push(slot);
        }
        while self.labels.pop_oldest_if(overdue).is_some() {
            self.counts.unknown += 1;
        }
        while self.joined.pop_oldest_if(overdue).is_some() {}
        unlabeled
    }

    /// Predictions and labels waiting now.
    pub fn pending(&self) -> (usize, usize) {
        (self.predictions.len(), self.labels.len())
    }

    fn joined(&mut self, id: K, now_ms: i64) {
        self.counts.labeled += 1;
        if self.joined.len() >= self.bounds.max_pending {
            self.joined.pop_oldest_if(|_| true);
        }
        self.joined.insert(id, (), now_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join() -> LabelJoin<String, u32> {
        LabelJoin::new(JoinBounds {
            max_delay_ms: 1_000,
            max_pending: 3,
        })
    }

    #[test]
    fn late_early_duplicate_and_missing_labels() {
        let mut j = join();
        assert_eq!(j.prediction("a".into(), 1, 0), (None, vec![]));
        assert_eq!(j.prediction("b".into(), 2, 10), (None, vec![]));
        // Late label for a, out of order.
        assert_eq!(j.label("a".into(), 1.0, 500), Some((1, 1.0)));
        // Twice: counted once.
        assert_eq!(j.label("a".into(), 0.0, 600), None);
        // Early label for c, before its prediction.
        assert_eq!(j.label("c".into(), 0.0, 700), None);
        assert_eq!(j.prediction("c".into(), 3, 800), (Some((3, 0.0)), vec![]));
        // b never gets its label; a label for an unknown id never meets a prediction.
        assert_eq!(j.label("zz".into(), 1.0, 900), None);
        assert_eq!(j.expire(1_500), vec![2]);
        assert_eq!(j.expire(2_000), Vec::<u32>::new());
        assert_eq!(
            j.counts,
            JoinCounts {
                labeled: 2,
                expired: 1,
                evicted: 0,
                duplicates: 1,
                unknown: 1,
            }
        );
        assert_eq!(j.pending(), (0, 0));
    }

    #[test]
    fn a_labels_outage_holds_at_most_max_pending_predictions() {
        let mut j = join();
        let mut given_up = Vec::new();
        for i in 0..10_000u32 {
            let (joined, evicted) = j.prediction(format!("id{i}"), i, i as i64 / 100);
            assert!(joined.is_none());
            given_up.extend(evicted);
            assert!(j.pending().0 <= 3);
            // The arrival order stays bounded too (stale entries are dropped).
            assert!(j.predictions.order.len() <= 2 * 3 + 64 + 1);
        }
        assert_eq!(given_up, (0..9_997).collect::<Vec<_>>(), "oldest first");
        assert_eq!(j.counts.evicted, 9_997);
        // When labels come back, the newest predictions still find theirs.
        assert_eq!(j.label("id9999".into(), 1.0, 100), Some((9_999, 1.0)));
    }

    #[test]
    fn labels_for_unknown_ids_are_bounded_too() {
        let mut j = join();
        for i in 0..100 {
            j.label(format!("x{i}"), 1.0, 0);
        }
        assert_eq!(j.pending().1, 3);
        assert_eq!(j.counts.unknown, 97);
        // Joined ids are remembered within the bound, then forgotten.
        for i in 0..10u32 {
            j.prediction(format!("p{i}"), i, 0);
            j.label(format!("p{i}"), 1.0, 0);
        }
        assert!(j.joined.order.len() <= 2 * 3 + 64 + 1);
    }
}
