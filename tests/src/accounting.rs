//! The ledger of a run: every input offset against the outputs (predictions and dead letters)
//! that name it in their source headers. At-least-once means no input without an output;
//! duplicates are allowed and counted.
use std::collections::HashMap;
use std::time::Duration;

use crate::{partition_count, read_inputs, read_topic, topic_size, Output};

#[derive(Debug)]
pub struct Ledger {
    pub inputs: usize,
    pub outputs: usize,
    /// Input positions `(partition, offset)` without any output.
    pub lost: Vec<(i32, i64)>,
    /// Outputs beyond the first for the same input.
    pub duplicates: usize,
    /// When each of those was produced (its record's timestamp), ascending: which fault caused it.
    pub duplicate_times_ms: Vec<i64>,
    /// Outputs whose key differs from their input's key.
    pub wrong_keys: usize,
}

impl Ledger {
    pub fn summary(&self) -> String {
        format!(
            "{} inputs, {} outputs, {} lost, {} duplicates, {} with a wrong key",
            self.inputs,
            self.outputs,
            self.lost.len(),
            self.duplicates,
            self.wrong_keys
        )
    }
}

/// Reads `input` (expecting `expected` records) and every topic of `outputs` back, and balances
/// them.
pub fn balance(bootstrap: &str, input: &str, expected: usize, outputs: &[&str]) -> Ledger {
    let inputs = read_inputs(bootstrap, input, expected);
    // Each output topic is read to its end as it is now (the writers have stopped): a count to
    // reach, not "nothing new for a while", which under load once stopped after 103 of 31 000
    // records and called the rest lost.
    let outputs: Vec<Output> = outputs
        .iter()
        .flat_map(|topic| {
            let size = topic_size(bootstrap, topic, partition_count(bootstrap, topic));
            let limit = Duration::from_secs(600);
            let read = read_topic(bootstrap, topic, size as usize, limit, limit);
            assert_eq!(
                read.len() as i64,
                size,
                "read {} of the {size} records of `{topic}` in {limit:?}",
                read.len()
            );
            read
        })
        .collect();
    // Each input's outputs, by when they were produced: the first is the output, the rest are
    // duplicates.
    let mut seen: HashMap<(i32, i64), Vec<i64>> = HashMap::new();
    let mut wrong_keys = 0;
    for o in &outputs {
        let source = o.source();
        seen.entry(source).or_default().push(o.timestamp_ms);
        if inputs.get(&source).is_some_and(|(key, _)| key != &o.key) {
            wrong_keys += 1;
        }
    }
    let mut lost: Vec<(i32, i64)> = inputs
        .keys()
        .filter(|k| !seen.contains_key(k))
        .copied()
        .collect();
    lost.sort_unstable();
    let mut duplicate_times_ms: Vec<i64> = (seen.values_mut())
        .flat_map(|times| {
            times.sort_unstable();
            times.drain(1..)
        })
        .collect();
    duplicate_times_ms.sort_unstable();
    Ledger {
        inputs: inputs.len(),
        outputs: outputs.len(),
        lost,
        duplicates: duplicate_times_ms.len(),
        duplicate_times_ms,
        wrong_keys,
    }
}
