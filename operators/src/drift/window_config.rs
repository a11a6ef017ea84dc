//! The shape of a rolling window: what closes a pane, how many panes make a
//! window, how often one is emitted, and how many raw values it may keep.
//!
//! Guarantees: [`WindowConfig::validate`] rejects every shape the window
//! could not run (zero-sized panes, a slide longer than the window), so a
//! built [`super::window::RollingWindow`] never has to check again.

use super::error::DriftError;

/// What closes a pane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "clock", rename_all = "snake_case")]
pub enum PaneClock {
    /// A pane holds this many events.
    Count {
        /// Events per pane.
        pane_events: u64,
    },
    /// A pane spans this much event time.
    Time {
        /// Pane width in milliseconds.
        pane_ms: u64,
        /// How long after its end a pane still accepts events.
        allowed_lateness_ms: u64,
    },
}

/// Shape of the windows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WindowConfig {
    /// What closes a pane.
    pub clock: PaneClock,
    /// Panes per window.
    pub panes_per_window: usize,
    /// Panes between emitted windows.
    pub slide_panes: usize,
    /// Raw values kept per window for exact KS; 0 keeps none.
    pub retain_values: usize,
    /// Time panes open at once before new ones are refused (memory bound).
    pub max_open_panes: usize,
}

impl WindowConfig {
    /// Default bound on retained raw values per window.
    pub const DEFAULT_RETAIN_VALUES: usize = 10_000;
    const DEFAULT_MAX_OPEN_PANES: usize = 1024;

    /// Panes of `pane_events` events, windows of `panes` panes every `slide` panes.
    pub fn by_count(pane_events: u64, panes: usize, slide: usize) -> Self {
        Self {
            clock: PaneClock::Count { pane_events },
            panes_per_window: panes,
            slide_panes: slide,
            retain_values: Self::DEFAULT_RETAIN_VALUES,
            max_open_panes: 1,
        }
    }

    /// Panes of `pane_ms`, windows of `panes` panes every `slide` panes.
    pub fn by_time(pane_ms: u64, panes: usize, slide: usize, allowed_lateness_ms: u64) -> Self {
        Self {
            clock: PaneClock::Time {
                pane_ms,
                allowed_lateness_ms,
            },
            panes_per_window: panes,
            slide_panes: slide,
            retain_values: Self::DEFAULT_RETAIN_VALUES,
            max_open_panes: Self::DEFAULT_MAX_OPEN_PANES,
        }
    }

    /// Checks the shape; [`super::window::RollingWindow::new`] calls it.
    pub fn validate(&self) -> Result<(), DriftError> {
        let bad = |name, reason: &str| {
            Err(DriftError::InvalidParameter {
                name,
                reason: reason.to_string(),
            })
        };
        match self.clock {
            PaneClock::Count { pane_events: 0 } => return bad("pane_events", "must be positive"),
            PaneClock::Time { pane_ms: 0, .. } => return bad("pane_ms", "must be positive"),
            _ => {}
        }
        if self.panes_per_window == 0 {
            return bad("panes_per_window", "must be positive");
        }
        if self.slide_panes == 0 || self.slide_panes > self.panes_per_window {
            return bad("slide_panes", "must be in 1..=panes_per_window");
        }
        if self.max_open_panes == 0 {
            return bad("max_open_panes", "must be positive");
        }
        Ok(())
    }
}
