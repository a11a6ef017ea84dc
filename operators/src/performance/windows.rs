//! Performance windows: tumbling windows of predictions, by count or by the predictions' event
//! time, each holding its predictions and the labels joined to them. A closed window becomes a
//! [`PerformanceReport`]: the realized metrics of its labeled predictions ([`realized`]) and,
//! with a fitted [`Cbpe`], the estimated ones of all its predictions, labeled or not.
//!
//! Labels may come with the prediction (a file whose events carry them) or later, through a
//! [`Slot`] (the stream's label join). The caller decides when a window may close: at the end
//! of a file, or once its end has passed ([`PerformanceWindows::close`]). Windows that
//! [`PerformanceWindows::await_labels`] also wait until each of their predictions has its label
//! or was given up ([`PerformanceWindows::give_up`]).
//! Memory: a window keeps one class (or value), K scores and a label per prediction, and at
//! most `max_open` windows wait for their labels (the oldest is closed early, marked
//! incomplete, when a newer one would pass the bound).
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::cbpe::{Cbpe, Estimate, Outputs};
use super::outputs::Predictions;
use super::realized::{classifier_metrics, regressor_metrics, MetricValue};

/// The windows' shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowShape {
    /// `events` predictions each, in arrival order.
    Count { events: u64 },
    /// `ms` of prediction event time each, aligned on multiples of `ms`.
    Time { ms: i64 },
}

/// Where a prediction sits, for a label that arrives later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Slot {
    window: i64,
    row: usize,
}

/// One closed window's performance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerformanceReport {
    /// Always `performance` (the drift topic's record kinds).
    pub kind: String,
    /// `count` or `time`.
    pub window: String,
    /// Time windows: the window's span of event time, `[start, end)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_start_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_end_ms: Option<i64>,
    /// Count windows: the window's first prediction, counted from 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_prediction: Option<u64>,
    pub first_event_ms: i64,
    pub last_event_ms: i64,
    /// False for a count window that did not fill, or a time window closed early.
    pub complete: bool,
    pub predictions: u64,
    pub labeled: u64,
    /// Predictions whose label did not arrive in time (given up by the label join).
    #[serde(default)]
    pub unlabeled: u64,
    pub labeled_fraction: f64,
    /// The mean time from a prediction's event to its label, over the labels that carried a
    /// timestamp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_delay_ms: Option<f64>,
    pub realized: Vec<MetricValue>,
    /// Empty without a fitted CBPE (a profile fitted with labels) or for a regressor.
    pub estimated: Vec<Estimate>,
}

#[derive(Default)]
struct Window {
    first_event_ms: i64,
    last_event_ms: i64,
    classes: Vec<i64>,
    values: Vec<f64>,
    /// One column per class (empty without scores).
    scores: Vec<Vec<f64>>,
    labels: Vec<Option<f64>>,
    /// Per prediction: labeled or given up (always, unless the windows await labels).
    resolved: Vec<bool>,
    /// Predictions still waiting for their label.
    pending: usize,
    /// Predictions given up without a label.
    given_up: u64,
    /// Sum and count of the label delays known.
    delay_sum_ms: f64,
    delays: u64,
}

impl Window {
    fn len(&self) -> usize {
        self.labels.len()
    }

    /// Marks a prediction labeled or given up; false if it already was.
    fn resolve(&mut self, row: usize) -> bool {
        let was = std::mem::replace(&mut self.resolved[row], true);
        self.pending -= usize::from(!was);
        !was
    }
}

/// The open windows of one model.
pub struct PerformanceWindows {
    shape: WindowShape,
    /// The classifier's classes, ascending; empty: 0..K-1 from the score columns, or the
    /// classes present in a window when there are no scores.
    classes: Vec<i64>,
    cbpe: Option<Cbpe>,
    open: BTreeMap<i64, Window>,
    max_open: usize,
    /// Predictions seen (count windows number them).
    seen: u64,
    /// Windows below this key have closed: a prediction for one is late.
    closed_below: i64,
    /// Predictions for a time window already closed: not counted in any.
    pub late: u64,
    /// Labels that are not a whole number for a classifier: not counted.
    pub invalid_labels: u64,
    /// A prediction pushed without its label waits for it (the stream's label join).
    awaits_labels: bool,
}

impl PerformanceWindows {
    pub fn new(shape: WindowShape, cbpe: Option<Cbpe>, max_open: usize) -> PerformanceWindows {
        PerformanceWindows {
            shape,
            classes: cbpe.as_ref().map(|c| c.classes.clone()).unwrap_or_default(),
            cbpe,
            open: BTreeMap::new(),
            max_open: max_open.max(1),
            seen: 0,
            closed_below: i64::MIN,
            late: 0,
            invalid_labels: 0,
            awaits_labels: false,
        }
    }

    /// A window closes only once each of its predictions is labeled or given up.
    pub fn await_labels(mut self) -> Self {
        self.awaits_labels = true;
        self
    }

    /// Adds one batch's predictions with their event times and the labels known now (None:
    /// none yet). Returns each row's slot (None for a late row), and any window closed early.
    pub fn push(
        &mut self,
        predictions: &Predictions,
        event_times_ms: &[i64],
        labels: &[Option<f64>],
    ) -> (Vec<Option<Slot>>, Vec<PerformanceReport>) {
        let mut slots = Vec::with_capacity(predictions.len());
        let mut early = Vec::new();
        for row in 0..predictions.len() {
            let at = event_times_ms[row];
            let key = match self.shape {
                WindowShape::Count { events } => (self.seen / events) as i64,
                WindowShape::Time { ms } => at.div_euclid(ms),
            };
            self.seen += 1;
            if key < self.closed_below {
                self.late += 1;
                slots.push(None);
                continue;
            }
            if !self.open.contains_key(&key) && self.open.len() >= self.max_open {
                // Full: a window older than every open one would push out a newer one.
                if self.open.keys().next().is_some_and(|&oldest| key < oldest) {
                    self.late += 1;
                    slots.push(None);
                    continue;
                }
                let (oldest, window) = self.open.pop_first().expect("open");
                self.closed_below = self.closed_below.max(oldest + 1);
                early.push(self.report(oldest, window, false));
            }
            let window = self.open.entry(key).or_insert_with(|| Window {
                first_event_ms: at,
                last_event_ms: at,
                ..Window::default()
            });
            window.first_event_ms = window.first_event_ms.min(at);
            window.last_event_ms = window.last_event_ms.max(at);
            match predictions {
                Predictions::Classifier { predicted, scores } => {
                    window.classes.push(predicted[row]);
                    window.scores.resize_with(scores.len(), Vec::new);
                    for (column, source) in window.scores.iter_mut().zip(scores) {
                        column.push(source[row]);
                    }
                }
                Predictions::Regressor { predicted } => window.values.push(predicted[row]),
            }
            window.labels.push(None);
            let waits = self.awaits_labels && labels.get(row).copied().flatten().is_none();
            window.resolved.push(!waits);
            window.pending += usize::from(waits);
            let slot = Slot {
                window: key,
                row: window.len() - 1,
            };
            if let Some(label) = labels.get(row).copied().flatten() {
                self.label(slot, label);
            }
            slots.push(Some(slot));
        }
        (slots, early)
    }

    /// Joins a label to its prediction; false when the window has closed (counted unlabeled)
    /// or the label is not a class of a classifier.
    pub fn label(&mut self, slot: Slot, label: f64) -> bool {
        self.label_after(slot, label, None)
    }

    /// [`PerformanceWindows::label`] with the time from the prediction's event to the label.
    pub fn label_after(&mut self, slot: Slot, label: f64, delay_ms: Option<i64>) -> bool {
        let Some(window) = self.open.get_mut(&slot.window) else {
            return false;
        };
        window.resolve(slot.row);
        let classifier = window.values.is_empty() && !window.classes.is_empty();
        if classifier && (label.fract() != 0.0 || !label.is_finite()) {
            self.invalid_labels += 1;
            return false;
        }
        window.labels[slot.row] = Some(label);
        if let Some(delay) = delay_ms {
            window.delay_sum_ms += delay as f64;
            window.delays += 1;
        }
        true
    }

    /// A prediction's label will not come (the join gave up on it): it counts as unlabeled.
    pub fn give_up(&mut self, slot: Slot) {
        if let Some(window) = self.open.get_mut(&slot.window) {
            if window.resolve(slot.row) {
                window.given_up += 1;
            }
        }
    }

    /// Whether reports carry CBPE's estimates.
    pub fn estimates(&self) -> bool {
        self.cbpe.is_some()
    }

    /// Predictions in open windows still waiting for their label.
    pub fn pending(&self) -> usize {
        self.open.values().map(|w| w.pending).sum()
    }

    /// Closes the windows that end at or before `up_to_ms` (a full count window whose last
    /// prediction is that old) and wait for no label.
    pub fn close(&mut self, up_to_ms: i64) -> Vec<PerformanceReport> {
        let keys: Vec<i64> = (self.open.iter())
            .filter(|(_, w)| w.pending == 0)
            .filter(|(&key, w)| match self.shape {
                WindowShape::Count { events } => {
                    w.len() as u64 >= events && w.last_event_ms <= up_to_ms
                }
                WindowShape::Time { ms } => (key + 1) * ms <= up_to_ms,
            })
            .map(|(&key, _)| key)
            .collect();
        keys.into_iter()
            .map(|key| {
                let window = self.open.remove(&key).expect("open");
                self.closed_below = self.closed_below.max(key + 1);
                self.report(key, window, true)
            })
            .collect()
    }

    /// Closes every window (the end of a file): a count window that did not fill is
    /// incomplete.
    pub fn finish(&mut self) -> Vec<PerformanceReport> {
        let open = std::mem::take(&mut self.open);
        open.into_iter()
            .map(|(key, window)| {
                let complete = match self.shape {
                    WindowShape::Count { events } => window.len() as u64 >= events,
                    WindowShape::Time { .. } => true,
                };
                self.report(key, window, complete)
            })
            .collect()
    }

    fn report(&self, key: i64, window: Window, complete: bool) -> PerformanceReport {
        let labeled_rows: Vec<usize> = (0..window.len())
            .filter(|&r| window.labels[r].is_some())
            .collect();
        let label_of = |r: usize| window.labels[r].expect("labeled");
        let (realized, estimated) = if window.values.is_empty() {
            let classes = self.classes_of(&window);
            let labels: Vec<i64> = labeled_rows.iter().map(|&r| label_of(r) as i64).collect();
            let predicted: Vec<i64> = labeled_rows.iter().map(|&r| window.classes[r]).collect();
            let scores: Vec<Vec<f64>> = (window.scores.iter())
                .map(|column| labeled_rows.iter().map(|&r| column[r]).collect())
                .collect();
            let score_refs: Vec<&[f64]> = scores.iter().map(Vec::as_slice).collect();
            let realized = classifier_metrics(&classes, &labels, &predicted, &score_refs);
            (realized, self.estimate(&window))
        } else {
            let labels: Vec<f64> = labeled_rows.iter().map(|&r| label_of(r)).collect();
            let predicted: Vec<f64> = labeled_rows.iter().map(|&r| window.values[r]).collect();
            (regressor_metrics(&labels, &predicted), Vec::new())
        };
        let (window_name, start, end, first) = match self.shape {
            WindowShape::Count { events } => ("count", None, None, Some(key as u64 * events)),
            WindowShape::Time { ms } => ("time", Some(key * ms), Some((key + 1) * ms), None),
        };
        let predictions = window.len() as u64;
        PerformanceReport {
            kind: "performance".to_string(),
            window: window_name.to_string(),
            window_start_ms: start,
            window_end_ms: end,
            first_prediction: first,
            first_event_ms: window.first_event_ms,
            last_event_ms: window.last_event_ms,
            complete,
            predictions,
            labeled: labeled_rows.len() as u64,
            unlabeled: window.given_up,
            labeled_fraction: labeled_rows.len() as f64 / predictions.max(1) as f64,
            label_delay_ms: (window.delays > 0).then(|| window.delay_sum_ms / window.delays as f64),
            realized,
            estimated,
        }
    }

    /// The classes a window is measured over: the configured or fitted ones, else one per score
    /// column, else those present.
    fn classes_of(&self, window: &Window) -> Vec<i64> {
        if !self.classes.is_empty() {
            return self.classes.clone();
        }
        if window.scores.len() >= 2 {
            return (0..window.scores.len() as i64).collect();
        }
        let mut present: Vec<i64> = (window.classes.iter().copied())
            .chain(window.labels.iter().flatten().map(|&l| l as i64))
            .collect();
        present.sort_unstable();
        present.dedup();
        present
    }

    /// CBPE's estimates over every prediction of the window, labeled or not.
    fn estimate(&self, window: &Window) -> Vec<Estimate> {
        let Some(cbpe) = &self.cbpe else {
            return Vec::new();
        };
        let scores: Vec<&[f64]> = match cbpe.classes.len() {
            2 if window.scores.len() == 2 => vec![&window.scores[1]],
            k if k > 2 && window.scores.len() == k => {
                window.scores.iter().map(Vec::as_slice).collect()
            }
            _ => return Vec::new(),
        };
        cbpe.estimate(&Outputs {
            predicted: &window.classes,
            scores,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classifier(predicted: Vec<i64>, score1: Vec<f64>) -> Predictions {
        let score0 = score1.iter().map(|s| 1.0 - s).collect();
        Predictions::Classifier {
            predicted,
            scores: vec![score0, score1],
        }
    }

    fn metric(report: &PerformanceReport, name: &str) -> Option<f64> {
        (report.realized.iter())
            .find(|m| m.metric == name)
            .and_then(|m| m.value)
    }

    #[test]
    fn count_windows_measure_their_labeled_predictions() {
        let mut windows = PerformanceWindows::new(WindowShape::Count { events: 4 }, None, 2);
        let predictions = classifier(vec![1, 0, 1, 1, 0, 0], vec![0.9, 0.2, 0.7, 0.6, 0.1, 0.3]);
        let labels = [Some(1.0), Some(0.0), None, Some(0.0), Some(0.0), None];
        let (slots, early) = windows.push(&predictions, &[10, 11, 12, 13, 14, 15], &labels);
        assert!(early.is_empty());
        // A late label for row 2, joined through its slot.
        assert!(windows.label(slots[2].expect("slot"), 1.0));
        let closed = windows.close(i64::MAX);
        assert_eq!(closed.len(), 1, "the full window only");
        let first = &closed[0];
        assert_eq!((first.predictions, first.labeled), (4, 4));
        // Labels 1,0,1,0 against predictions 1,0,1,1: accuracy 3/4.
        assert_eq!(metric(first, "accuracy"), Some(0.75));
        assert!(first.complete);
        let rest = windows.finish();
        assert_eq!((rest[0].predictions, rest[0].labeled), (2, 1));
        assert_eq!(rest[0].labeled_fraction, 0.5);
        assert!(!rest[0].complete);
        assert!(!windows.label(slots[0].expect("slot"), 1.0), "closed");
    }

    #[test]
    fn time_windows_close_at_their_end_and_count_late_predictions() {
        let mut windows = PerformanceWindows::new(WindowShape::Time { ms: 100 }, None, 4);
        let regressor = |v: Vec<f64>| Predictions::Regressor { predicted: v };
        let labels = [Some(1.0), Some(3.0), Some(2.0)];
        windows.push(&regressor(vec![1.0, 2.0, 2.0]), &[5, 150, 99], &labels);
        assert!(windows.close(99).is_empty());
        let closed = windows.close(100);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].window_start_ms, Some(0));
        assert_eq!(closed[0].predictions, 2);
        assert_eq!(metric(&closed[0], "mae"), Some(0.0));
        windows.push(&regressor(vec![0.0]), &[50], &[None]);
        assert_eq!(windows.late, 1, "its window has closed");
        assert_eq!(metric(&windows.finish()[0], "mae"), Some(1.0));
    }

    #[test]
    fn windows_that_await_labels_close_once_every_prediction_is_labeled_or_given_up() {
        let shape = WindowShape::Time { ms: 100 };
        let mut windows = PerformanceWindows::new(shape, None, 4).await_labels();
        let predictions = classifier(vec![1, 0, 1], vec![0.9, 0.2, 0.8]);
        let (slots, _) = windows.push(&predictions, &[10, 20, 30], &[None, Some(0.0), None]);
        assert_eq!(windows.pending(), 2);
        assert!(windows.close(1_000).is_empty(), "two labels are awaited");
        assert!(windows.label_after(slots[0].expect("slot"), 1.0, Some(500)));
        assert!(windows.close(1_000).is_empty(), "one label is awaited");
        windows.give_up(slots[2].expect("slot"));
        windows.give_up(slots[2].expect("slot"));
        let closed = windows.close(1_000);
        assert_eq!(closed.len(), 1);
        assert_eq!((closed[0].labeled, closed[0].unlabeled), (2, 1));
        assert_eq!(
            closed[0].label_delay_ms,
            Some(500.0),
            "only the late label had one"
        );
        assert_eq!(windows.pending(), 0);
    }

    #[test]
    fn a_fractional_label_of_a_classifier_is_not_counted() {
        let mut windows = PerformanceWindows::new(WindowShape::Count { events: 2 }, None, 1);
        windows.push(
            &classifier(vec![1, 0], vec![0.9, 0.1]),
            &[0, 1],
            &[Some(0.5), Some(0.0)],
        );
        assert_eq!(windows.invalid_labels, 1);
        assert_eq!(windows.finish()[0].labeled, 1);
    }
}
