//! Tumbling and sliding windows over a stream of binned values, by event
//! count or by event time, built from panes.
//!
//! Guarantees:
//! - A window is `panes_per_window` consecutive panes; it is emitted every
//!   `slide_panes` panes (`slide == panes`: tumbling; `1`: sliding).
//! - The window histogram is kept by adding each closing pane and
//!   subtracting the pane that leaves, so memory is constant in stream length
//!   and recording a value is O(1) with no allocation once panes are recycled.
//! - Count windows: a pane closes after `pane_events` events; windows are
//!   emitted only once full. Time windows: pane `p` covers
//!   `[p·pane_ms, (p+1)·pane_ms)` and closes when the watermark reaches its
//!   end plus the allowed lateness; events for a closed pane are dropped and
//!   counted as late; windows with no events are not emitted.
//! - Optionally up to `retain_values` raw values per window are kept, so a
//!   window can report an exact KS test; beyond that it reports binned KS
//!   with its error bound.
//! - [`RollingWindow::flush`] ends the stream: the window that would have been
//!   emitted next (the one ending at the next slide boundary) is emitted with
//!   what it has, marked incomplete for count windows; time windows close
//!   their panes up to that boundary (the monitor judges their coverage).

use std::collections::VecDeque;

use super::error::DriftError;
use super::histogram::BinnedHistogram;
use super::ks::{binned_ks, ks_2samp_sorted_reference, BinnedKs, KsMode, KsResult};
pub use super::window_config::{PaneClock, WindowConfig};

/// What happened to a time-stamped event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Counted in its pane.
    Accepted,
    /// Its pane had already closed; dropped.
    Late,
    /// Too many panes already open; dropped.
    TooEarly,
}

/// KS of a window against the reference, and where it came from.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum WindowKs {
    /// From every raw value of the window.
    Retained(KsResult),
    /// From histograms: a lower bound on `D` with its error bound.
    Binned(BinnedKs),
}

/// One emitted window.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WindowSnapshot {
    /// First pane of the window.
    pub first_pane: u64,
    /// Last pane of the window.
    pub last_pane: u64,
    /// Start of the window's event time (time windows).
    pub start_ms: Option<u64>,
    /// End (exclusive) of the window's event time (time windows).
    pub end_ms: Option<u64>,
    /// Counts over the window.
    pub histogram: BinnedHistogram,
    /// Every raw value of the window, when all were retained.
    pub values: Option<Vec<f64>>,
    /// A count window that filled, or any time window (the monitor judges those).
    pub complete: bool,
}

impl WindowSnapshot {
    /// Exact KS from retained values when there are any, else binned KS
    /// against the reference histogram (same bins); `None` if empty.
    /// `reference` is best sorted ascending (a profile's sample is): then only the window's
    /// values are sorted.
    pub fn ks_against(
        &self,
        reference: &[f64],
        reference_counts: &[u64],
        mode: KsMode,
    ) -> Option<WindowKs> {
        match &self.values {
            Some(v) if !v.is_empty() => ks_2samp_sorted_reference(reference, v, mode)
                .ok()
                .map(WindowKs::Retained),
            _ => binned_ks(reference_counts, self.histogram.counts()).map(WindowKs::Binned),
        }
    }
}

#[derive(Debug, Clone)]
struct Pane {
    index: u64,
    histogram: BinnedHistogram,
    values: Vec<f64>,
    overflowed: bool,
}

/// Panes in, windows out; see the module docs.
#[derive(Debug, Clone)]
pub struct RollingWindow {
    config: WindowConfig,
    n_bins: usize,
    open: VecDeque<Pane>,
    closed: VecDeque<Pane>,
    spare: Vec<Pane>,
    window: BinnedHistogram,
    next_to_close: Option<u64>,
    late_events: u64,
    /// Last pane of the last emitted window.
    emitted_through: Option<u64>,
}

impl RollingWindow {
    /// A window over histograms of `n_bins` bins.
    pub fn new(config: WindowConfig, n_bins: usize) -> Result<Self, DriftError> {
        config.validate()?;
        Ok(Self {
            open: VecDeque::new(),
            closed: VecDeque::with_capacity(config.panes_per_window + 1),
            spare: Vec::new(),
            window: BinnedHistogram::new(n_bins),
            next_to_close: None,
            late_events: 0,
            emitted_through: None,
            n_bins,
            config,
        })
    }

    /// Histogram over the closed panes currently in the window.
    pub fn window_histogram(&self) -> &BinnedHistogram {
        &self.window
    }

    /// Time-stamped events dropped because their pane had closed.
    pub fn late_events(&self) -> u64 {
        self.late_events
    }

    /// Records an event of a count window; returns a window when one is due.
    pub fn record(
        &mut self,
        bin: Option<usize>,
        value: Option<f64>,
    ) -> Result<Option<WindowSnapshot>, DriftError> {
        let PaneClock::Count { pane_events } = self.config.clock else {
            return Err(wrong_clock("record needs a count window; use record_at"));
        };
        if self.open.is_empty() {
            let index = self.next_to_close.unwrap_or(0);
            let pane = self.fresh_pane(index);
            self.open.push_back(pane);
        }
        let limit = self.config.retain_values;
        let pane = self.open.front_mut().ok_or(wrong_clock("no open pane"))?;
        add_to_pane(pane, bin, value, limit)?;
        if pane.histogram.total() < pane_events {
            return Ok(None);
        }
        let full = self.open.pop_front().ok_or(wrong_clock("no open pane"))?;
        Ok(self
            .close_pane(full)
            .filter(|_| self.closed.len() == self.config.panes_per_window))
    }

    /// Records an event of a time window at event time `ts_ms`.
    pub fn record_at(
        &mut self,
        ts_ms: u64,
        bin: Option<usize>,
        value: Option<f64>,
    ) -> Result<Admission, DriftError> {
        let PaneClock::Time { pane_ms, .. } = self.config.clock else {
            return Err(wrong_clock("record_at needs a time window; use record"));
        };
        let index = ts_ms / pane_ms;
        if self.next_to_close.is_some_and(|next| index < next) {
            self.late_events += 1;
            return Ok(Admission::Late);
        }
        let pos = self.open.partition_point(|p| p.index < index);
        if self.open.get(pos).is_none_or(|p| p.index != index) {
            if self.open.len() >= self.config.max_open_panes {
                return Ok(Admission::TooEarly);
            }
            let pane = self.fresh_pane(index);
            self.open.insert(pos, pane);
        }
        let limit = self.config.retain_values;
        let pane = self.open.get_mut(pos).ok_or(wrong_clock("pane vanished"))?;
        add_to_pane(pane, bin, value, limit)?;
        Ok(Admission::Accepted)
    }

    /// Closes every time pane whose end plus lateness is at or before
    /// `watermark_ms`, returning the windows that became due, oldest first.
    pub fn advance_watermark(&mut self, watermark_ms: u64) -> Vec<WindowSnapshot> {
        let PaneClock::Time {
            pane_ms,
            allowed_lateness_ms,
        } = self.config.clock
        else {
            return Vec::new();
        };
        let closable_end = watermark_ms.saturating_sub(allowed_lateness_ms) / pane_ms;
        let mut next = match self.next_to_close {
            Some(next) => next,
            None => self
                .open
                .front()
                .map_or(closable_end, |p| p.index.min(closable_end)),
        };
        let mut out = Vec::new();
        while next < closable_end {
            let next_open = self.open.front().map(|p| p.index);
            if self.window.total() == 0 && next_open.is_none_or(|i| i > next) {
                // Nothing in the window and nothing until `target`: the panes
                // between are empty, so jump instead of closing each one.
                let target = next_open.unwrap_or(closable_end).min(closable_end);
                if target > next {
                    while let Some(p) = self.closed.pop_front() {
                        self.spare.push(p);
                    }
                    next = target;
                    continue;
                }
            }
            let pane = match self.open.front() {
                Some(p) if p.index == next => self.open.pop_front(),
                _ => None,
            };
            let pane = pane.unwrap_or_else(|| self.fresh_pane(next));
            self.next_to_close = Some(next);
            if let Some(snapshot) = self.close_pane(pane).filter(|s| s.histogram.total() > 0) {
                out.push(snapshot);
            }
            next += 1;
        }
        self.next_to_close = Some(next);
        out
    }

    /// Ends the stream; see the module docs. Returns the windows still due, oldest first.
    pub fn flush(&mut self) -> Vec<WindowSnapshot> {
        let slide = self.config.slide_panes as u64;
        // The last pane of the window that would have come next.
        let boundary = |last: u64| last.div_ceil(slide).max(1) * slide - 1;
        match self.config.clock {
            PaneClock::Time {
                pane_ms,
                allowed_lateness_ms,
            } => {
                let Some(last) = self.open.back().map(|p| p.index) else {
                    return Vec::new();
                };
                let end = boundary(last + 1) + 1;
                self.advance_watermark(end * pane_ms + allowed_lateness_ms)
            }
            PaneClock::Count { .. } => {
                let pending = self.open.pop_front().filter(|p| p.histogram.total() > 0);
                let last = match pending {
                    Some(pane) => {
                        let index = pane.index;
                        self.push_closed(pane);
                        self.next_to_close = Some(index + 1);
                        index
                    }
                    None => match self.next_to_close {
                        Some(next) if next > 0 => next - 1,
                        _ => return Vec::new(),
                    },
                };
                if self.emitted_through.is_some_and(|e| e >= last) {
                    return Vec::new();
                }
                let end = boundary(last + 1);
                let first = (end + 1).saturating_sub(self.config.panes_per_window as u64);
                let mut snapshot = self.snapshot_of(first, last);
                snapshot.complete = false;
                self.emitted_through = Some(last);
                vec![snapshot]
            }
        }
    }

    fn fresh_pane(&mut self, index: u64) -> Pane {
        match self.spare.pop() {
            Some(mut p) => {
                p.index = index;
                p.histogram.clear();
                p.values.clear();
                p.overflowed = false;
                p
            }
            None => Pane {
                index,
                histogram: BinnedHistogram::new(self.n_bins),
                values: Vec::new(),
                overflowed: false,
            },
        }
    }

    /// Moves a pane into the window, evicts the oldest, and returns the
    /// window if this pane ends an emission step.
    fn close_pane(&mut self, pane: Pane) -> Option<WindowSnapshot> {
        let index = pane.index;
        self.push_closed(pane);
        self.next_to_close = Some(index + 1);
        if !(index + 1).is_multiple_of(self.config.slide_panes as u64) {
            return None;
        }
        self.emitted_through = Some(index);
        Some(self.snapshot(index))
    }

    /// Moves a pane into the window and evicts the oldest past `panes_per_window`.
    fn push_closed(&mut self, pane: Pane) {
        // Same bin count by construction, so merge/subtract cannot fail.
        let _ = self.window.merge(&pane.histogram);
        self.closed.push_back(pane);
        if self.closed.len() > self.config.panes_per_window {
            if let Some(old) = self.closed.pop_front() {
                let _ = self.window.subtract(&old.histogram);
                self.spare.push(old);
            }
        }
    }

    fn snapshot(&self, last_pane: u64) -> WindowSnapshot {
        let first_pane = (last_pane + 1).saturating_sub(self.config.panes_per_window as u64);
        let panes: Vec<&Pane> = self.closed.iter().collect();
        self.snapshot_from(first_pane, last_pane, self.window.clone(), &panes)
    }

    /// The window `first..=last` from the closed panes in that range (a flushed count window
    /// that does not hold every closed pane).
    fn snapshot_of(&self, first_pane: u64, last_pane: u64) -> WindowSnapshot {
        let panes: Vec<&Pane> = self
            .closed
            .iter()
            .filter(|p| p.index >= first_pane && p.index <= last_pane)
            .collect();
        let mut histogram = BinnedHistogram::new(self.n_bins);
        for p in &panes {
            let _ = histogram.merge(&p.histogram);
        }
        self.snapshot_from(first_pane, last_pane, histogram, &panes)
    }

    fn snapshot_from(
        &self,
        first_pane: u64,
        last_pane: u64,
        histogram: BinnedHistogram,
        panes: &[&Pane],
    ) -> WindowSnapshot {
        let (start_ms, end_ms) = match self.config.clock {
            PaneClock::Time { pane_ms, .. } => {
                (Some(first_pane * pane_ms), Some((last_pane + 1) * pane_ms))
            }
            PaneClock::Count { .. } => (None, None),
        };
        let limit = self.config.retain_values;
        let retained: usize = panes.iter().map(|p| p.values.len()).sum();
        let all_kept = limit > 0 && retained <= limit && panes.iter().all(|p| !p.overflowed);
        let values = all_kept.then(|| {
            panes
                .iter()
                .flat_map(|p| p.values.iter().copied())
                .collect()
        });
        WindowSnapshot {
            first_pane,
            last_pane,
            start_ms,
            end_ms,
            histogram,
            values,
            complete: true,
        }
    }
}

fn wrong_clock(reason: &str) -> DriftError {
    DriftError::InvalidParameter {
        name: "window clock",
        reason: reason.to_string(),
    }
}

fn add_to_pane(
    pane: &mut Pane,
    bin: Option<usize>,
    value: Option<f64>,
    limit: usize,
) -> Result<(), DriftError> {
    pane.histogram.record(bin)?;
    match (bin, value) {
        (Some(_), Some(v)) if !pane.overflowed && pane.values.len() < limit => pane.values.push(v),
        // Over the bound in this pane alone, or a binned event without its
        // value: no window holding this pane can be exact, so stop keeping.
        (Some(_), _) => {
            pane.overflowed = true;
            pane.values.clear();
        }
        (None, _) => {}
    }
    Ok(())
}

#[cfg(test)]
#[path = "window_tests.rs"]
mod tests;
