//! Performance over the stream, in the drift thread: the serving model's predictions go into
//! performance windows ([`PerformanceWindows`]) by their event time (or count), label events
//! from the labels topic meet them by id in the bounded label join ([`LabelJoin`]), and a
//! window closes into a `kind: "performance"` report once its end has passed and each of its
//! predictions has its label or was given up. With a profile fitted on labeled events, each
//! report also holds CBPE's estimates; alerts follow the reports.
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use driftline_operators::drift::alert::AlertPolicy;
use driftline_operators::performance::alerts::{PerformanceAlert, PerformanceAlerting};
use driftline_operators::performance::cbpe::Cbpe;
use driftline_operators::performance::labels::{JoinBounds, JoinCounts, LabelJoin};
use driftline_operators::performance::outputs::Predictions;
use driftline_operators::performance::windows::{
    PerformanceReport, PerformanceWindows, Slot, WindowShape,
};

use crate::config::{Settings, WindowKind};
use crate::stages::messages::{DriftInput, LabelBatch, LabelProgress};

/// A prediction waiting for its label.
struct Waiting {
    slot: Slot,
    event_ms: i64,
    partition: i32,
}

/// What a call produced: reports of closed windows and alert transitions.
#[derive(Default)]
pub struct PerformanceOutcome {
    pub reports: Vec<PerformanceReport>,
    pub alerts: Vec<PerformanceAlert>,
}

/// The stream's performance windows and label join.
pub struct StreamPerformance {
    windows: PerformanceWindows,
    /// None without a labels topic: windows then hold estimates only.
    join: Option<LabelJoin<String, Waiting>>,
    alerting: PerformanceAlerting,
    /// Where the labels reader's commits come from.
    progress: Arc<LabelProgress>,
    /// Time windows close once the predictions' event time passed their end by this much.
    lateness_ms: i64,
    /// Count windows close when full, whatever their event time.
    count_windows: bool,
    /// The latest prediction event time seen.
    watermark_ms: i64,
    /// Labels that met a prediction of another partition: the labels topic is not keyed like
    /// the input.
    pub misrouted: u64,
}

impl StreamPerformance {
    /// None when there is nothing to measure: no labels topic and no estimator in the profile.
    pub fn new(
        settings: &Settings,
        estimator: Option<Cbpe>,
        progress: Arc<LabelProgress>,
    ) -> Option<StreamPerformance> {
        let joins_labels = !settings.kafka.labels_topic.is_empty();
        if !joins_labels && estimator.is_none() {
            return None;
        }
        let p = &settings.performance;
        let shape = match p.window {
            WindowKind::Count => WindowShape::Count {
                events: p.window_events,
            },
            WindowKind::Time => WindowShape::Time { ms: p.window_ms },
        };
        let mut windows = PerformanceWindows::new(shape, estimator, p.max_open_windows);
        if joins_labels {
            windows = windows.await_labels();
        }
        let join = joins_labels.then(|| {
            LabelJoin::new(JoinBounds {
                max_delay_ms: settings.labels.max_delay_ms,
                max_pending: settings.labels.max_pending,
            })
        });
        Some(StreamPerformance {
            windows,
            join,
            alerting: PerformanceAlerting::new(AlertPolicy {
                resolve_after: settings.drift.resolve_after,
            }),
            progress,
            lateness_ms: settings.drift.lateness_ms,
            count_windows: matches!(shape, WindowShape::Count { .. }),
            watermark_ms: i64::MIN,
            misrouted: 0,
        })
    }

    /// A scored batch: the serving model's rows join the windows (canary variants' rows are
    /// not the serving model's performance).
    pub fn scored(&mut self, input: &DriftInput, now_ms: i64) -> PerformanceOutcome {
        let Some(all) = Predictions::read(&input.outputs) else {
            return PerformanceOutcome::default();
        };
        let rows: Vec<usize> = match &input.variant_of_row {
            Some(variant) => (0..all.len()).filter(|&r| variant[r] == 0).collect(),
            None => (0..all.len()).collect(),
        };
        let predictions = match rows.len() == all.len() {
            true => all,
            false => all.select(&rows),
        };
        let ids = input.batch.column(0).as_string::<i32>();
        let times = input.batch.column(1).as_primitive::<Int64Type>().values();
        let times: Vec<i64> = rows.iter().map(|&r| times[r]).collect();
        let (slots, mut reports) = self.windows.push(&predictions, &times, &[]);
        if let Some(join) = &mut self.join {
            for (i, slot) in slots.iter().enumerate() {
                let Some(slot) = *slot else { continue };
                let row = rows[i];
                let waiting = Waiting {
                    slot,
                    event_ms: times[i],
                    partition: input.partitions.get(row).copied().unwrap_or(-1),
                };
                let (joined, evicted) =
                    join.prediction(ids.value(row).to_string(), waiting, now_ms);
                if let Some((waiting, label)) = joined {
                    // Its label came first: no delay to measure against a later arrival.
                    self.windows.label(waiting.slot, label);
                }
                for gone in evicted {
                    self.windows.give_up(gone.slot);
                }
            }
        }
        if let Some(&latest) = times.iter().max() {
            self.watermark_ms = self.watermark_ms.max(latest);
        }
        reports.extend(self.close());
        self.outcome(reports)
    }

    /// Label events: each completes its waiting prediction, or waits for it.
    pub fn labels(&mut self, batch: &LabelBatch, now_ms: i64) -> PerformanceOutcome {
        if let Some(join) = &mut self.join {
            for event in &batch.events {
                let Some((waiting, label)) = join.label(event.id.clone(), event.label, now_ms)
                else {
                    continue;
                };
                if waiting.partition >= 0 && waiting.partition != event.partition {
                    self.misrouted += 1;
                    if self.misrouted == 1 {
                        tracing::warn!(id = %event.id, label_partition = event.partition, prediction_partition = waiting.partition, "a label arrived on another partition than its event: the labels topic must be keyed by the event id, like the input topic, or labels meet predictions only by chance across instances");
                    }
                }
                let delay = event.at_ms.map(|at| at - waiting.event_ms);
                self.windows.label_after(waiting.slot, label, delay);
            }
        }
        // Taken: the labels reader may commit these offsets.
        if let Ok(mut progress) = self.progress.lock() {
            for &(partition, next) in &batch.read_up_to {
                let entry = progress.entry(partition).or_insert(next);
                *entry = (*entry).max(next);
            }
        }
        let reports = self.close();
        self.outcome(reports)
    }

    /// The clock: predictions that waited past `labels.max_delay_ms` are given up.
    pub fn tick(&mut self, now_ms: i64) -> PerformanceOutcome {
        if let Some(join) = &mut self.join {
            for gone in join.expire(now_ms) {
                self.windows.give_up(gone.slot);
            }
        }
        let reports = self.close();
        self.outcome(reports)
    }

    /// Shutdown: the open windows are reported, incomplete (no alert comes from them).
    pub fn finish(&mut self) -> PerformanceOutcome {
        let mut reports = self.windows.finish();
        for report in &mut reports {
            report.complete = false;
        }
        self.outcome(reports)
    }

    /// Whether the windows carry CBPE's estimates.
    pub fn estimates(&self) -> bool {
        self.windows.estimates()
    }

    /// The join's counts, and the predictions and labels waiting now.
    pub fn join_state(&self) -> Option<(JoinCounts, usize, usize)> {
        (self.join.as_ref()).map(|j| {
            let (predictions, labels) = j.pending();
            (j.counts, predictions, labels)
        })
    }

    fn close(&mut self) -> Vec<PerformanceReport> {
        let up_to = match self.count_windows {
            true => i64::MAX,
            false => self.watermark_ms.saturating_sub(self.lateness_ms),
        };
        self.windows.close(up_to)
    }

    fn outcome(&mut self, reports: Vec<PerformanceReport>) -> PerformanceOutcome {
        let alerts = reports
            .iter()
            .flat_map(|r| self.alerting.observe(r))
            .collect();
        PerformanceOutcome { reports, alerts }
    }
}
