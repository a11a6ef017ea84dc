//! Putting work back in order after it ran on several threads.
//!
//! The source numbers each chunk of events it hands to the decode threads. Decode threads finish
//! them in any order and pass them on in chunk order (so inference sessions take batches in
//! order, and a model reload swaps at one point of the stream); sessions finish them in any
//! order again, and the sink takes them back in chunk order. So each partition's events stay in
//! order through the pipeline and the drift stage sees batches as one thread would have made
//! them.
//! A chunk whose events were all dead-lettered still travels, empty, to keep its place.
//!
//! [`ChunkWindow`] bounds how far the source may run ahead of the stage that restores the
//! order: without it a slow chunk would let every later one pile up behind it.
use std::collections::BTreeMap;

/// A piece of work and its place in the source's order; `item` is `None` when nothing of the
/// chunk is left to pass on (every event dead-lettered).
pub struct Sequenced<T> {
    pub seq: u64,
    pub item: Option<T>,
}

/// Holds what arrives early until everything before it has arrived. It holds at most what is in
/// flight between the source and this stage, which the bounded channels bound.
pub struct Reorder<T> {
    next: u64,
    waiting: BTreeMap<u64, Option<T>>,
}

impl<T> Default for Reorder<T> {
    fn default() -> Self {
        Reorder {
            next: 0,
            waiting: BTreeMap::new(),
        }
    }
}

impl<T> Reorder<T> {
    /// Takes one piece, in any order.
    pub fn push(&mut self, piece: Sequenced<T>) {
        debug_assert!(piece.seq >= self.next, "sequence {} seen twice", piece.seq);
        self.waiting.insert(piece.seq, piece.item);
    }

    /// The next piece in order, if it has arrived.
    pub fn pop(&mut self) -> Option<Sequenced<T>> {
        let entry = self
            .waiting
            .first_entry()
            .filter(|e| *e.key() == self.next)?;
        self.next += 1;
        let (seq, item) = entry.remove_entry();
        Some(Sequenced { seq, item })
    }

    /// How many pieces wait for an earlier one.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }
}

/// The chunks between the source and the stage that restores the order: the source enters one
/// before handing a chunk over, and that stage leaves one for each chunk it has taken in order.
pub struct ChunkWindow {
    free: tokio::sync::Semaphore,
}

impl ChunkWindow {
    /// What the stages between can hold: each channel's capacity, each thread's chunk, and the
    /// one being written.
    pub fn new(channel_capacity: usize, decode_threads: usize, sessions: usize) -> ChunkWindow {
        ChunkWindow {
            free: tokio::sync::Semaphore::new(3 * channel_capacity + decode_threads + sessions + 1),
        }
    }

    /// Waits for room for one more chunk.
    pub async fn enter(&self) {
        self.free
            .acquire()
            .await
            .expect("the window is never closed")
            .forget();
    }

    /// One chunk has been taken in order.
    pub fn leave(&self) {
        self.free.add_permits(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_come_out_in_sequence_whatever_order_they_came_in() {
        let mut reorder = Reorder::default();
        let mut out = Vec::new();
        for seq in [2u64, 0, 3, 1, 5, 4] {
            let item = (seq != 3).then_some(seq * 10);
            reorder.push(Sequenced { seq, item });
            while let Some(piece) = reorder.pop() {
                out.push(piece.item);
            }
        }
        assert_eq!(
            out,
            vec![Some(0), Some(10), Some(20), None, Some(40), Some(50)]
        );
        assert_eq!(reorder.waiting(), 0);
    }

    #[test]
    fn nothing_comes_out_while_the_next_piece_is_missing() {
        let mut reorder = Reorder::default();
        reorder.push(Sequenced {
            seq: 1,
            item: Some("b"),
        });
        assert!(reorder.pop().is_none());
        assert_eq!(reorder.waiting(), 1);
        reorder.push(Sequenced {
            seq: 0,
            item: Some("a"),
        });
        assert_eq!(reorder.pop().map(|p| (p.seq, p.item)), Some((0, Some("a"))));
        assert_eq!(reorder.pop().map(|p| (p.seq, p.item)), Some((1, Some("b"))));
        assert!(reorder.pop().is_none());
    }
}
