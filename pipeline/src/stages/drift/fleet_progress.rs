//! How far the fleet has published each input partition's windows, as an instance reads it
//! from the partials topic when a partition comes to it. A reading reads the topic from its
//! end ([`read_progress`]), and can still take seconds on a loaded broker; partitions move in
//! groups, so one reading serves every partition that a rebalance brings for
//! [`PROGRESS_READ_AGAIN`].
use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use driftline_operators::drift::partial::{FleetRecord, PartitionProgress};
use rdkafka::Message;

use crate::kafka::reader::PartitionReader;

/// How long one reading of the fleet's progress serves partitions newly seen.
pub const PROGRESS_READ_AGAIN: Duration = Duration::from_secs(5);

/// How many of the partials topic's newest records a reading reads first.
pub const PROGRESS_TAIL_RECORDS: i64 = 1024;

/// The latest progress record of each input partition, and when the reading began.
pub struct ProgressReading {
    began: Instant,
    through: HashMap<i32, u64>,
}

impl ProgressReading {
    pub fn new(began: Instant, latest: &HashMap<i32, PartitionProgress>) -> ProgressReading {
        let through = (latest.iter())
            .map(|(&partition, p)| (partition, p.through_pane))
            .collect();
        ProgressReading { began, through }
    }

    /// The last pane through which `partition`'s windows were published, or `None` when the
    /// reading has no record of it.
    pub fn through(&self, partition: i32) -> Option<u64> {
        self.through.get(&partition).copied()
    }
}

/// What the fleet has published of `partition`: from `cached` while it is younger than
/// [`PROGRESS_READ_AGAIN`] and knows the partition (another instance may have started
/// following a partition it does not know since), else from a fresh reading made by `read`,
/// which then becomes `cached`.
///
/// The fresh reading answers the look-up it was made for however long it took: on a loaded
/// broker a reading can take longer than [`PROGRESS_READ_AGAIN`], and a reading judged by its
/// age there would say "nobody published this partition", which starts it at the wrong window.
/// A reading ages from when it began: what was published while it ran may be missing from it,
/// and an older reading only makes a replay start earlier, which republishes the same partials.
pub fn published_through(
    cached: &mut Option<ProgressReading>,
    partition: i32,
    now: impl Fn() -> Instant,
    read: impl FnOnce() -> anyhow::Result<HashMap<i32, PartitionProgress>>,
) -> anyhow::Result<Option<u64>> {
    let young = |r: &&ProgressReading| now().duration_since(r.began) < PROGRESS_READ_AGAIN;
    if let Some(through) = cached
        .as_ref()
        .filter(young)
        .and_then(|r| r.through(partition))
    {
        return Ok(Some(through));
    }
    let began = now();
    let reading = ProgressReading::new(began, &read()?);
    let through = reading.through(partition);
    *cached = Some(reading);
    Ok(through)
}

/// The latest progress record of each input partition of `fleet`, read from the end of
/// `topic`'s `partition` backwards ([`PROGRESS_TAIL_RECORDS`], then twice as many before
/// those, and so on) until `wanted`'s is among them or the log's start is read. Returns them
/// and how many records were read.
///
/// A partition's progress is published after each window it closes, so the latest one of a
/// partition being consumed is near the end: a take-over costs the last windows' records, not
/// the fleet's whole history (the topic is compacted, but every window's partials have keys
/// of their own). Stopping at the newest stretch that has the partition can only miss a larger
/// `through` published before by an instance that lagged behind, which makes the replay start
/// earlier and republish the same partials.
pub fn read_progress(
    reader: &PartitionReader,
    topic: &str,
    partition: i32,
    fleet: &str,
    wanted: i32,
) -> anyhow::Result<(HashMap<i32, PartitionProgress>, i64)> {
    let (low, high) = reader.watermarks(topic, partition)?;
    let prefix = PartitionProgress::key_prefix(fleet);
    let mut latest: HashMap<i32, PartitionProgress> = HashMap::new();
    let started = Instant::now();
    let (mut to, mut span) = (high, PROGRESS_TAIL_RECORDS);
    while to > low && !latest.contains_key(&wanted) {
        let from = to.saturating_sub(span).max(low);
        reader
            .read(topic, partition, from, to, |m| {
                if !m.key().is_some_and(|k| k.starts_with(prefix.as_bytes())) {
                    return Ok(());
                }
                if let Some(FleetRecord::Progress(p)) =
                    m.payload().and_then(|b| serde_json::from_slice(b).ok())
                {
                    let newer = (latest.get(&p.partition))
                        .is_none_or(|old| p.through_pane >= old.through_pane);
                    if newer {
                        latest.insert(p.partition, p);
                    }
                }
                Ok(())
            })
            .context("reading the fleet's progress back")?;
        (to, span) = (from, span.saturating_mul(2));
    }
    tracing::info!(
        partition = wanted,
        records = high - to,
        of = high - low,
        partitions = latest.len(),
        ms = started.elapsed().as_millis() as u64,
        "fleet view: progress read back"
    );
    Ok((latest, high - to))
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn progress(partition: i32, through_pane: u64) -> PartitionProgress {
        PartitionProgress {
            schema_version: 1,
            fleet: "g/in".into(),
            reference_id: "ref".into(),
            partition,
            through_pane,
            through_ms: ((through_pane + 1) * 2000) as i64,
            next_offset: 0,
            instance: "a".into(),
        }
    }

    fn reading(progress: &[PartitionProgress]) -> HashMap<i32, PartitionProgress> {
        (progress.iter())
            .map(|p| (p.partition, p.clone()))
            .collect()
    }

    #[test]
    fn a_slow_reading_answers_the_look_up_it_was_made_for() {
        let clock = Cell::new(Instant::now());
        let mut cached = None;
        let through = published_through(
            &mut cached,
            1,
            || clock.get(),
            || {
                // The broker is loaded: the reading takes longer than a reading serves.
                clock.set(clock.get() + PROGRESS_READ_AGAIN + Duration::from_secs(1));
                Ok(reading(&[progress(0, 176), progress(1, 176)]))
            },
        )
        .expect("look-up");
        assert_eq!(through, Some(176));
        // For the next look-up it is too old: that one reads again.
        let reads = Cell::new(0);
        let through = published_through(
            &mut cached,
            0,
            || clock.get(),
            || {
                reads.set(reads.get() + 1);
                Ok(reading(&[progress(0, 178)]))
            },
        )
        .expect("look-up");
        assert_eq!((through, reads.get()), (Some(178), 1));
    }

    #[test]
    fn a_young_reading_serves_the_partitions_it_knows_and_reads_again_for_others() {
        let clock = Cell::new(Instant::now());
        let mut cached = None;
        let reads = Cell::new(0);
        let mut look_up = |partition: i32, latest: Vec<PartitionProgress>| {
            published_through(
                &mut cached,
                partition,
                || clock.get(),
                || {
                    reads.set(reads.get() + 1);
                    Ok(reading(&latest))
                },
            )
            .expect("look-up")
        };
        assert_eq!(look_up(0, vec![progress(0, 10)]), Some(10));
        clock.set(clock.get() + Duration::from_secs(1));
        // Known and young: served without a read (the fresher record is not seen).
        assert_eq!(look_up(0, vec![progress(0, 12)]), Some(10));
        assert_eq!(reads.get(), 1);
        // Unknown to the reading: another instance may have started it since.
        assert_eq!(look_up(3, vec![progress(0, 12), progress(3, 11)]), Some(11));
        assert_eq!(reads.get(), 2);
        // Nobody published it: a fresh reading says so.
        assert_eq!(look_up(5, vec![progress(0, 12)]), None);
        assert_eq!(reads.get(), 3);
    }
}
