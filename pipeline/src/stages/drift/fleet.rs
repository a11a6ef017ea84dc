//! The instance's part of the fleet view, on the drift thread: every scored batch is counted
//! into per-partition time windows ([`PartialsBuilder`]) whose partials and progress go to
//! `fleet.partials_topic`, all of one fleet to one partition of it (so that the aggregator
//! reads a fleet's windows in order).
//!
//! Recovery replays, it does not guess. When a partition shows up that this instance does not
//! follow (at startup, after a rebalance or another instance's crash) it is followed from the
//! window after the last one the fleet published for it (its latest progress record on the
//! partials topic), or, for a partition nobody published yet, from the start of the window of
//! its first row. The partition is then read back from that window's start
//! (`offsets_for_times`) up to the row, decoded and scored again for drift only (no
//! prediction is produced), before the row is counted. A gap in a followed partition's offsets
//! (records that did not come through this instance) is read back the same way; records that
//! fail to decode there were dead letters and count for nothing, as they did live.
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use driftline_operators::batch::{BatchBuilder, SourcePosition};
use driftline_operators::decode::EventDecoder;
use driftline_operators::drift::monitor::RowOrigins;
use driftline_operators::drift::partial::FleetRecord;
use driftline_operators::drift::partial_builder::{PartialSettings, PartialsBuilder};
use driftline_operators::infer::InferenceModel;
use rdkafka::Message;

use crate::config::Settings;
use crate::kafka::reader::PartitionReader;
use crate::models::canary::fnv1a64;
use crate::models::load::load_checked;
use crate::stages::drift::fleet_progress::{published_through, read_progress, ProgressReading};
use crate::stages::drift::tracker::{drift_columns, instance_name, load_profile};
use crate::stages::drift::variants;
use crate::stages::messages::DriftInput;

/// A gap longer than this is not read back: the partition is followed afresh instead (from
/// the fleet's progress), which reads at most the open windows again.
const MAX_GAP_RECORDS: i64 = 200_000;

/// The fleet's partition of the partials topic.
pub fn partials_partition(fleet: &str, partitions: i32) -> i32 {
    (fnv1a64(fleet.as_bytes()) % partitions.max(1) as u64) as i32
}

pub struct FleetPartials {
    settings: Settings,
    builder: PartialsBuilder,
    reader: PartitionReader,
    input_topic: String,
    fleet: String,
    /// This fleet's partition of the partials topic.
    pub partials_partition: i32,
    /// The serving model, loaded on the first replay that needs it.
    model: Option<InferenceModel>,
    /// Records read back, for the log and the metrics.
    pub replayed: u64,
    /// The latest reading of the fleet's progress.
    progress: Option<ProgressReading>,
}

impl FleetPartials {
    pub fn new(settings: &Settings) -> anyhow::Result<FleetPartials> {
        let profile = load_profile(Path::new(&settings.drift.profile))?;
        let d = &settings.drift;
        let fleet = settings.fleet_name();
        let builder = PartialsBuilder::new(
            &profile,
            PartialSettings {
                fleet: fleet.clone(),
                instance: instance_name(),
                pane_ms: d.pane_ms as u64,
                panes: d.panes,
                slide: d.slide,
                lateness_ms: d.lateness_ms as u64,
                ks_grid_points: settings.fleet.ks_grid_points,
            },
        )
        .context("fleet partials")?;
        let reader = PartitionReader::new(
            settings,
            Duration::from_millis(settings.fleet.replay_timeout_ms),
        )?;
        let partitions = reader.partitions(&settings.fleet.partials_topic)?;
        let partials_partition = partials_partition(&fleet, partitions);
        tracing::info!(
            fleet = %fleet,
            topic = %settings.fleet.partials_topic,
            partition = partials_partition,
            "fleet view: publishing partials"
        );
        Ok(FleetPartials {
            settings: settings.clone(),
            builder,
            reader,
            input_topic: settings.kafka.input_topics[0].clone(),
            fleet,
            partials_partition,
            model: None,
            replayed: 0,
            progress: None,
        })
    }

    /// Counts one scored batch, after reading back what its partitions need; returns the
    /// records to publish.
    pub fn observe(&mut self, input: &DriftInput) -> anyhow::Result<Vec<FleetRecord>> {
        let times = input.batch.column(1).as_primitive::<Int64Type>().values();
        let mut out = Vec::new();
        // Each partition's first row in the batch: where it must be complete up to.
        let mut firsts: Vec<(i32, i64, i64)> = Vec::new();
        for (row, &partition) in input.partitions.iter().enumerate() {
            if !firsts.iter().any(|f| f.0 == partition) {
                firsts.push((partition, input.offsets[row], times[row]));
            }
        }
        for (partition, offset, event_ms) in firsts {
            match self.builder.next_offset(partition) {
                Some(n) if n >= offset => continue,
                Some(n) if offset - n <= MAX_GAP_RECORDS => {
                    tracing::info!(
                        partition,
                        from = n,
                        to = offset,
                        "fleet view: a gap in a followed partition, reading it back"
                    );
                    self.replay(partition, n, offset, &mut out)?;
                    continue;
                }
                // Not followed, or a gap too long to read back: followed afresh.
                _ => {}
            }
            let through = self.published_progress(partition)?;
            let from_ms = match through {
                Some(through) => self.builder.window_start_after(through),
                None => self.builder.window_start_of(event_ms),
            };
            let topic = self.input_topic.clone();
            let from = match self.reader.offset_for_time(&topic, partition, from_ms)? {
                Some(from) => from.min(offset),
                None => {
                    // The broker cannot find the window's start: skip to the next window
                    // rather than publish this one from its middle.
                    let pane_ms = self.settings.drift.pane_ms;
                    let later = from_ms.max((event_ms.div_euclid(pane_ms) + 1) * pane_ms);
                    tracing::warn!(partition, from_ms, later, "fleet view: the broker has no offset for the window's start; this partition's partials start at the next window");
                    out.extend(self.builder.follow(partition, offset, later));
                    continue;
                }
            };
            tracing::info!(
                partition,
                through = ?through,
                from_ms,
                from,
                to = offset,
                "fleet view: following a partition, reading it back from the window's start"
            );
            out.extend(self.builder.follow(partition, from, from_ms));
            self.replay(partition, from, offset, &mut out)?;
        }
        let outputs = variants::watched_outputs(input)?;
        let columns = drift_columns(&input.batch, &outputs);
        let origins = RowOrigins {
            event_times_ms: times,
            partitions: &input.partitions,
            positions: &input.offsets,
        };
        out.extend(self.builder.observe(&columns, &origins)?);
        Ok(out)
    }

    /// The last pane through which `partition`'s windows were published (or declared not to
    /// be anyone's), from the latest progress on the partials topic ([`published_through`]).
    fn published_progress(&mut self, partition: i32) -> anyhow::Result<Option<u64>> {
        let mut cached = self.progress.take();
        let (reader, topic) = (&self.reader, &self.settings.fleet.partials_topic);
        let through = published_through(&mut cached, partition, Instant::now, || {
            read_progress(
                reader,
                topic,
                self.partials_partition,
                &self.fleet,
                partition,
            )
            .map(|(latest, _)| latest)
        });
        self.progress = cached;
        through
    }

    /// Reads `partition` back from `from` up to `to`, decodes and scores it, and counts it.
    fn replay(
        &mut self,
        partition: i32,
        from: i64,
        to: i64,
        out: &mut Vec<FleetRecord>,
    ) -> anyhow::Result<()> {
        if from >= to {
            return Ok(());
        }
        let s = &self.settings;
        let mut decoder = EventDecoder::new(&s.schema, s.pipeline.max_event_bytes);
        let rows = s.batch.max_rows.max(1);
        let mut builder = BatchBuilder::new(&s.schema, rows);
        let topic: Arc<str> = Arc::from(self.input_topic.as_str());
        let mut batches = Vec::new();
        let mut read = 0u64;
        self.reader
            .read(&self.input_topic, partition, from, to, |m| {
                read += 1;
                let Ok(row) =
                    decoder.decode(m.payload().unwrap_or_default(), m.timestamp().to_millis())
                else {
                    return Ok(()); // a dead letter live too
                };
                let position = SourcePosition {
                    topic: &topic,
                    partition,
                    offset: m.offset(),
                    key: None,
                    traceparent: None,
                    tracestate: None,
                    kafka_timestamp_ms: m.timestamp().to_millis().unwrap_or(0),
                };
                builder.push(row, position);
                if builder.len() >= rows {
                    batches.push(builder.finish()?);
                }
                Ok(())
            })?;
        if !builder.is_empty() {
            batches.push(builder.finish()?);
        }
        self.replayed += read;
        for batch in batches {
            let outputs = match (self.settings.has_model(), &mut self.model) {
                (false, _) => Vec::new(),
                (true, Some(model)) => model.run(&batch.batch).context("scoring a replay")?,
                (true, None) => {
                    let model = &mut self.model.insert(load_checked(&self.settings, None)?.model);
                    model.run(&batch.batch).context("scoring a replay")?
                }
            };
            let columns = drift_columns(&batch.batch, &outputs);
            let times = batch.batch.column(1).as_primitive::<Int64Type>().values();
            let origins = RowOrigins {
                event_times_ms: times,
                partitions: &batch.sources.partitions,
                positions: &batch.sources.offsets,
            };
            out.extend(self.builder.observe(&columns, &origins)?);
        }
        Ok(())
    }
}
