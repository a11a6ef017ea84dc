//! An instance's side of the fleet view: counts every followed partition's rows into the time
//! windows they belong to, and publishes a partition's window (one [`ColumnPartial`] per
//! column) once that partition's own watermark has passed the window's end plus the allowed
//! lateness, followed by the partition's [`PartitionProgress`].
//!
//! Guarantees:
//! - Only the partition's own records decide its partials: its watermark is the largest event
//!   time among its rows, so any instance that reads the same records publishes the same
//!   counts, whichever other partitions it holds.
//! - A partition is followed from an offset and a window start ([`PartialsBuilder::follow`]):
//!   windows that start earlier are never published by this builder (no partial from half a
//!   window); the caller replays the partition from that start ([`super::partial`]'s records
//!   tell it where) before the rows it consumes.
//! - A row at an offset below the partition's next offset was counted already (a redelivery)
//!   and is skipped; rows of a window that was published already (late rows) are dropped.
//! - The bins are the monitor's: the profile's q10 cuts, its categories, and unseen
//!   categories by name (the first [`MAX_UNSEEN_CATEGORIES`] of a window, then
//!   [`OTHER_CATEGORY`]); KS counts go to the column's [`KsGrid`] cells.
use std::collections::BTreeMap;

use arrow_array::ArrayRef;

use super::binning::{CategoricalBinning, QuantileBinning};
use super::error::DriftError;
use super::ks_grid::KsGrid;
use super::monitor::{RowOrigins, MAX_UNSEEN_CATEGORIES, OTHER_CATEGORY};
use super::partial::{
    sparse, ColumnPartial, FleetRecord, PartitionProgress, PARTIAL_SCHEMA_VERSION,
};
use super::profile::{flatten_columns, ColumnRole, ColumnStats, FlatValues, ReferenceProfile};

/// What every instance of a fleet must agree on.
#[derive(Debug, Clone)]
pub struct PartialSettings {
    /// The consumer group and input topic.
    pub fleet: String,
    /// This instance's name, written on what it publishes.
    pub instance: String,
    pub pane_ms: u64,
    pub panes: usize,
    pub slide: usize,
    pub lateness_ms: u64,
    /// At most this many KS grid points per numeric column.
    pub ks_grid_points: usize,
}

#[derive(Debug)]
enum Binner {
    Numeric { bins: QuantileBinning, grid: KsGrid },
    Categorical { known: CategoricalBinning },
}

#[derive(Debug)]
struct PartialColumn {
    name: String,
    role: ColumnRole,
    binner: Binner,
    n_bins: usize,
}

/// One value of a row, binned as the monitor bins it.
enum RowValue<'a> {
    Missing,
    /// A profile bin, and for a numeric value its KS grid cell.
    Bin(usize, Option<u32>),
    /// A category the reference does not have.
    Unseen(&'a str),
}

impl PartialColumn {
    fn value_of<'a>(
        &self,
        values: Option<&'a FlatValues<'a>>,
        row: usize,
        buf: &'a mut itoa::Buffer,
    ) -> RowValue<'a> {
        match (&self.binner, values) {
            (_, None) => RowValue::Missing,
            (Binner::Numeric { bins, grid }, Some(v)) => {
                match v.number(row).and_then(|x| Some((x, bins.bin_of(x)?))) {
                    Some((x, bin)) => RowValue::Bin(bin, Some(grid.cell_of(x) as u32)),
                    None => RowValue::Missing,
                }
            }
            (Binner::Categorical { known }, Some(v)) => match v.category(row, buf) {
                None => RowValue::Missing,
                Some(cat) => match known.bin_of(cat) {
                    Some(bin) => RowValue::Bin(bin, None),
                    None => RowValue::Unseen(cat),
                },
            },
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Counts {
    bins: Vec<u64>,
    missing: u64,
    unseen: BTreeMap<String, u64>,
    /// KS grid cell of each binned value (sorted and counted when published).
    cells: Vec<u32>,
}

impl Counts {
    fn add(&mut self, value: &RowValue<'_>) {
        match *value {
            RowValue::Missing => self.missing += 1,
            RowValue::Bin(bin, cell) => {
                self.bins[bin] += 1;
                self.cells.extend(cell);
            }
            RowValue::Unseen(name) => {
                let name = match self.unseen.len() < MAX_UNSEEN_CATEGORIES {
                    true => name,
                    false if self.unseen.contains_key(name) => name,
                    false => OTHER_CATEGORY,
                };
                // Allocated once per category and window, not per row.
                match self.unseen.get_mut(name) {
                    Some(n) => *n += 1,
                    None => {
                        self.unseen.insert(name.to_string(), 1);
                    }
                }
            }
        }
    }
}

#[derive(Debug)]
struct OpenWindow {
    columns: Vec<Counts>,
    events: u64,
    first_offset: i64,
    last_offset: i64,
    min_event_ms: i64,
    max_event_ms: i64,
}

#[derive(Debug)]
struct Followed {
    /// The first window (by its last pane) this builder may publish.
    first_window: u64,
    next_offset: i64,
    /// Largest event time among the partition's rows.
    watermark_ms: Option<u64>,
    /// Last pane of the latest window published.
    published_through: Option<u64>,
    /// By last pane.
    open: BTreeMap<u64, OpenWindow>,
}

/// Per-partition windows of every profiled column; see the module docs.
#[derive(Debug)]
pub struct PartialsBuilder {
    settings: PartialSettings,
    reference_id: String,
    columns: Vec<PartialColumn>,
    partitions: BTreeMap<i32, Followed>,
}

impl PartialsBuilder {
    pub fn new(
        profile: &ReferenceProfile,
        settings: PartialSettings,
    ) -> Result<PartialsBuilder, DriftError> {
        if settings.pane_ms == 0 || settings.panes == 0 || settings.slide == 0 {
            return Err(DriftError::InvalidParameter {
                name: "fleet windows",
                reason: "pane_ms, panes and slide must be positive".into(),
            });
        }
        let mut columns = Vec::with_capacity(profile.columns.len());
        for c in &profile.columns {
            let (binner, n_bins) = match &c.stats {
                ColumnStats::Numeric { cuts, sample, .. } => {
                    let bins = QuantileBinning::from_cuts(cuts.clone())?;
                    let n = bins.n_bins();
                    let grid = KsGrid::from_sorted_sample(sample, settings.ks_grid_points)?;
                    (Binner::Numeric { bins, grid }, n)
                }
                ColumnStats::Categorical { categories, .. } => {
                    let known = CategoricalBinning::from_categories(categories.clone());
                    let n = known.n_bins();
                    (Binner::Categorical { known }, n)
                }
            };
            columns.push(PartialColumn {
                name: c.name.clone(),
                role: c.role,
                binner,
                n_bins,
            });
        }
        Ok(PartialsBuilder {
            settings,
            reference_id: profile.id.clone(),
            columns,
            partitions: BTreeMap::new(),
        })
    }

    /// The next offset of `partition` to count; `None` when it is not followed.
    pub fn next_offset(&self, partition: i32) -> Option<i64> {
        self.partitions.get(&partition).map(|f| f.next_offset)
    }

    /// The last pane of the first window that holds the pane of `event_ms`.
    fn first_window_of_pane(&self, pane: u64) -> u64 {
        let slide = self.settings.slide as u64;
        (pane + 1).div_ceil(slide) * slide - 1
    }

    fn window_start_ms(&self, last_pane: u64) -> i64 {
        let first = (last_pane + 1).saturating_sub(self.settings.panes as u64);
        (first * self.settings.pane_ms) as i64
    }

    /// The start of the first window that holds `event_ms`: where a partition first seen at
    /// that time is read from.
    pub fn window_start_of(&self, event_ms: i64) -> i64 {
        let pane = u64::try_from(event_ms).unwrap_or(0) / self.settings.pane_ms;
        self.window_start_ms(self.first_window_of_pane(pane))
    }

    /// The start of the window after the one that ends at `through_pane`: where a partition
    /// whose windows were published through it is read from.
    pub fn window_start_after(&self, through_pane: u64) -> i64 {
        self.window_start_ms(through_pane + self.settings.slide as u64)
    }

    /// Follows `partition` from `offset`: the windows it publishes are those that start at or
    /// after `windows_from_ms` (the rows before them are the caller's to replay). Returns the
    /// progress to publish now, which says that the windows before are not this follower's:
    /// an instance that takes the partition over later starts where this one started, not
    /// at its own first row (between the two, only this one would have published).
    pub fn follow(
        &mut self,
        partition: i32,
        offset: i64,
        windows_from_ms: i64,
    ) -> Option<FleetRecord> {
        let from = u64::try_from(windows_from_ms).unwrap_or(0);
        let pane = from.div_ceil(self.settings.pane_ms);
        // The first window whose first pane is at or after `pane`: its last pane L is the
        // smallest with (L + 1) a multiple of the slide and L + 1 - panes >= pane.
        let (panes, slide) = (self.settings.panes as u64, self.settings.slide as u64);
        let first_window = (pane + panes).div_ceil(slide) * slide - 1;
        self.partitions.insert(
            partition,
            Followed {
                first_window,
                next_offset: offset,
                watermark_ms: None,
                published_through: None,
                open: BTreeMap::new(),
            },
        );
        let before = first_window.checked_sub(slide)?;
        Some(self.progress(partition, before, offset))
    }

    fn progress(&self, partition: i32, through: u64, next_offset: i64) -> FleetRecord {
        let s = &self.settings;
        FleetRecord::Progress(PartitionProgress {
            schema_version: PARTIAL_SCHEMA_VERSION,
            fleet: s.fleet.clone(),
            reference_id: self.reference_id.clone(),
            partition,
            through_pane: through,
            through_ms: ((through + 1) * s.pane_ms) as i64,
            next_offset,
            instance: s.instance.clone(),
        })
    }

    /// Stops following `partition`; its open windows are dropped unpublished.
    pub fn forget(&mut self, partition: i32) {
        self.partitions.remove(&partition);
    }

    /// Counts one batch; every row's partition must be followed. Returns what became due:
    /// each closed window's partials, then the partition's progress.
    pub fn observe(
        &mut self,
        columns: &[(&str, ColumnRole, &ArrayRef)],
        origins: &RowOrigins<'_>,
    ) -> Result<Vec<FleetRecord>, DriftError> {
        let (rows, flat) = flatten_columns(columns)?;
        if origins.partitions.len() != rows
            || origins.positions.len() != rows
            || origins.event_times_ms.len() != rows
        {
            return Err(DriftError::InvalidParameter {
                name: "fleet rows",
                reason: "every row needs its partition, offset and event time".into(),
            });
        }
        let slots: Vec<Option<usize>> = (self.columns.iter())
            .map(|c| flat.iter().position(|f| f.name == c.name))
            .collect();
        let mut touched: Vec<i32> = Vec::new();
        let mut windows: Vec<u64> = Vec::new();
        let mut buf = itoa::Buffer::new();
        let (pane_ms, panes, slide) = (
            self.settings.pane_ms,
            self.settings.panes as u64,
            self.settings.slide as u64,
        );
        for row in 0..rows {
            let partition = origins.partitions[row];
            let offset = origins.positions[row];
            let event_ms = origins.event_times_ms[row];
            let first_of_pane = {
                let pane = u64::try_from(event_ms).unwrap_or(0) / pane_ms;
                (pane, self.first_window_of_pane(pane))
            };
            let Some(followed) = self.partitions.get_mut(&partition) else {
                return Err(DriftError::InvalidParameter {
                    name: "fleet rows",
                    reason: format!("partition {partition} is not followed"),
                });
            };
            if offset < followed.next_offset {
                continue;
            }
            followed.next_offset = offset + 1;
            let ts = u64::try_from(event_ms).unwrap_or(0);
            followed.watermark_ms = followed.watermark_ms.max(Some(ts));
            if !touched.contains(&partition) {
                touched.push(partition);
            }
            // The windows this row counts in: those holding its pane that this builder may
            // publish and has not published yet (one, unless windows slide).
            let (pane, first) = first_of_pane;
            windows.clear();
            windows.extend((first..pane + panes).step_by(slide as usize).filter(|&w| {
                w >= followed.first_window && followed.published_through.is_none_or(|p| w > p)
            }));
            for &window in &windows {
                let open = followed.open.entry(window).or_insert_with(|| OpenWindow {
                    columns: (self.columns.iter())
                        .map(|c| Counts {
                            bins: vec![0; c.n_bins],
                            ..Counts::default()
                        })
                        .collect(),
                    events: 0,
                    first_offset: offset,
                    last_offset: offset,
                    min_event_ms: event_ms,
                    max_event_ms: event_ms,
                });
                open.events += 1;
                open.first_offset = open.first_offset.min(offset);
                open.last_offset = open.last_offset.max(offset);
                open.min_event_ms = open.min_event_ms.min(event_ms);
                open.max_event_ms = open.max_event_ms.max(event_ms);
            }
            if windows.is_empty() {
                continue;
            }
            // Each value is binned once, then counted in each of the row's windows.
            for (ci, c) in self.columns.iter().enumerate() {
                let values = slots[ci].and_then(|i| flat.get(i)).map(|f| &f.values);
                let value = c.value_of(values, row, &mut buf);
                for window in &windows {
                    if let Some(open) = followed.open.get_mut(window) {
                        open.columns[ci].add(&value);
                    }
                }
            }
        }
        let mut out = Vec::new();
        for partition in touched {
            self.close_windows(partition, &mut out);
        }
        Ok(out)
    }

    /// Publishes `partition`'s windows that its watermark has closed, and its progress.
    fn close_windows(&mut self, partition: i32, out: &mut Vec<FleetRecord>) {
        let s = &self.settings;
        let Some(followed) = self.partitions.get_mut(&partition) else {
            return;
        };
        let Some(watermark) = followed.watermark_ms else {
            return;
        };
        // Panes below this have closed (as the monitor closes them).
        let closable_end = watermark.saturating_sub(s.lateness_ms) / s.pane_ms;
        if closable_end == 0 {
            return;
        }
        // The last window that ends before `closable_end`.
        let slide = s.slide as u64;
        let through = (closable_end / slide * slide).checked_sub(1);
        let Some(through) = through.filter(|&t| t >= followed.first_window) else {
            return;
        };
        if followed.published_through.is_some_and(|p| p >= through) {
            return;
        }
        let due: Vec<u64> = followed.open.range(..=through).map(|(&w, _)| w).collect();
        for window in due {
            let Some(open) = followed.open.remove(&window) else {
                continue;
            };
            let first_pane = (window + 1).saturating_sub(s.panes as u64);
            for (c, counts) in self.columns.iter().zip(open.columns) {
                let mut cells = counts.cells;
                cells.sort_unstable();
                let mut ks_cells: Vec<(u32, u64)> = Vec::new();
                for cell in cells {
                    match ks_cells.last_mut() {
                        Some((last, n)) if *last == cell => *n += 1,
                        _ => ks_cells.push((cell, 1)),
                    }
                }
                let ks_grid_points = match &c.binner {
                    Binner::Numeric { grid, .. } => grid.points().len(),
                    Binner::Categorical { .. } => 0,
                };
                out.push(FleetRecord::Partial(ColumnPartial {
                    schema_version: PARTIAL_SCHEMA_VERSION,
                    fleet: s.fleet.clone(),
                    reference_id: self.reference_id.clone(),
                    column: c.name.clone(),
                    role: c.role,
                    partition,
                    first_pane,
                    last_pane: window,
                    start_ms: (first_pane * s.pane_ms) as i64,
                    end_ms: ((window + 1) * s.pane_ms) as i64,
                    events: open.events,
                    missing: counts.missing,
                    bins: sparse(&counts.bins),
                    unseen: counts.unseen,
                    ks_cells,
                    ks_grid_points,
                    first_offset: open.first_offset,
                    last_offset: open.last_offset,
                    min_event_ms: Some(open.min_event_ms),
                    max_event_ms: Some(open.max_event_ms),
                    instance: s.instance.clone(),
                }));
            }
        }
        followed.published_through = Some(through);
        let next_offset = followed.next_offset;
        out.push(self.progress(partition, through, next_offset));
    }
}

#[cfg(test)]
#[path = "partial_tests.rs"]
mod tests;
