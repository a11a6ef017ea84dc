//! Field name → target lookup for the decoder, on the hot path once per key of every event.
//!
//! Events from one producer list their fields in the same order, so the entry after the last
//! match is tried first: one string comparison. Otherwise (another order, unknown keys) a hash
//! lookup with FNV-1a: the keys are a fixed, small set from the schema, so SipHash's protection
//! against collision attacks buys nothing here, and it was ~18% of decode time (perf, 2026-11-25).
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::Target;

/// FNV-1a, 64 bits.
#[derive(Default)]
pub(super) struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

pub(super) struct FieldIndex {
    entries: Vec<(Box<str>, Target)>,
    by_name: HashMap<Box<[u8]>, usize, BuildHasherDefault<Fnv>>,
    /// Where the next key is expected: just after the last one matched. Atomic only so that the
    /// decoder stays `Sync` (relaxed loads and stores are plain moves on x86 and ARM).
    next: AtomicUsize,
}

impl FieldIndex {
    pub(super) fn new(entries: Vec<(Box<str>, Target)>) -> Self {
        let by_name = entries
            .iter()
            .enumerate()
            .map(|(i, (name, _))| (Box::from(name.as_bytes()), i))
            .collect();
        FieldIndex {
            entries,
            by_name,
            next: AtomicUsize::new(0),
        }
    }

    /// Call at the start of each event.
    pub(super) fn rewind(&self) {
        self.next.store(0, Ordering::Relaxed);
    }

    /// The target of a key, given as bytes: the fast path's keys are ASCII it has not turned
    /// into `str`.
    pub(super) fn get(&self, key: &[u8]) -> Option<Target> {
        let guess = self.next.load(Ordering::Relaxed);
        let i = match self.entries.get(guess) {
            Some((name, _)) if name.as_bytes() == key => guess,
            _ => *self.by_name.get(key)?,
        };
        self.next.store(i + 1, Ordering::Relaxed);
        Some(self.entries[i].1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::FeatureType;

    #[test]
    fn finds_keys_in_any_order_and_nothing_else() {
        let index = FieldIndex::new(vec![
            ("id".into(), Target::Id),
            ("ts".into(), Target::Timestamp),
            ("a".into(), Target::Feature(0, FeatureType::F32)),
            ("b".into(), Target::Feature(1, FeatureType::F32)),
        ]);
        for order in [
            ["id", "ts", "a", "b"],
            ["b", "a", "ts", "id"],
            ["a", "id", "b", "ts"],
        ] {
            index.rewind();
            let found: Vec<_> = order.iter().map(|k| index.get(k.as_bytes())).collect();
            let expected: Vec<_> = order
                .iter()
                .map(|k| match *k {
                    "id" => Some(Target::Id),
                    "ts" => Some(Target::Timestamp),
                    "a" => Some(Target::Feature(0, FeatureType::F32)),
                    _ => Some(Target::Feature(1, FeatureType::F32)),
                })
                .collect();
            assert_eq!(found, expected, "{order:?}");
        }
        index.rewind();
        assert_eq!(index.get(b"c"), None);
        assert_eq!(index.get(b""), None);
        assert_eq!(index.get(b"id"), Some(Target::Id));
        assert_eq!(index.get(b"i"), None);
    }
}
