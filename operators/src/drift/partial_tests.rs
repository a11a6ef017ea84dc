//! The fleet's partials against one monitor over the same rows: partitions split across
//! builders, merged and judged, give the single monitor's reports (counts, PSI, KL,
//! chi-square, KS, verdicts) and alerts.
use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, StringArray};

use super::*;
use crate::drift::monitor::{DriftMonitor, DriftReport, MonitorSettings};
use crate::drift::partial::FleetWindow;
use crate::drift::profile::{ProfileBuilder, SplitMix64};
use crate::drift::window::WindowConfig;

const PARTITIONS: i32 = 6;
const PANE_MS: u64 = 1000;

fn uniform(rng: &mut SplitMix64) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// Rows in event-time order: per row (partition, offset, event ms, x, site). From
/// `shift_from_ms` on, partitions 0 and 1 have `x` shifted by `shift`.
type Row = (i32, i64, i64, f64, String);

fn rows(n: usize, shift_from_ms: i64, shift: f64) -> Vec<Row> {
    let mut rng = SplitMix64::new(7);
    let mut offsets = [0i64; PARTITIONS as usize];
    (0..n)
        .map(|i| {
            let p = (rng.next_u64() % PARTITIONS as u64) as i32;
            let ts = 1_000_000 + i as i64 * 10;
            let mut x = (uniform(&mut rng) * 100.0).round() / 4.0;
            if ts >= shift_from_ms && p < 2 {
                x += shift;
            }
            let site = ["a", "b", "c", "zz-new"][(rng.next_u64() % 4) as usize].to_string();
            let offset = offsets[p as usize];
            offsets[p as usize] += 1;
            (p, offset, ts, x, site)
        })
        .collect()
}

fn arrays(rows: &[Row]) -> (ArrayRef, ArrayRef) {
    let x: ArrayRef = Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.3)));
    let site: ArrayRef = Arc::new(StringArray::from_iter_values(
        rows.iter().map(|r| r.4.as_str()),
    ));
    (x, site)
}

fn profile() -> ReferenceProfile {
    let reference = rows(3000, i64::MAX, 0.0);
    let reference: Vec<Row> = reference.into_iter().filter(|r| r.4 != "zz-new").collect();
    let (x, site) = arrays(&reference);
    let mut b = ProfileBuilder::new(ProfileBuilder::DEFAULT_SAMPLE_CAP, 10, 0);
    b.add(&[
        ("x", ColumnRole::Feature, &x),
        ("site", ColumnRole::Feature, &site),
    ])
    .unwrap();
    b.finish().unwrap()
}

/// Windows of `.0` panes that move by `.1` panes.
#[derive(Clone, Copy)]
struct Shape(usize, usize);
const TUMBLING: Shape = Shape(2, 2);

fn window_config(shape: Shape) -> WindowConfig {
    let mut w = WindowConfig::by_time(PANE_MS, shape.0, shape.1, 0);
    w.retain_values = 1_000_000;
    w
}

fn monitor(profile: &ReferenceProfile, name: &str, shape: Shape) -> DriftMonitor {
    DriftMonitor::new(profile, MonitorSettings::new(window_config(shape), name)).unwrap()
}

fn builder(profile: &ReferenceProfile, grid: usize, shape: Shape) -> PartialsBuilder {
    PartialsBuilder::new(
        profile,
        PartialSettings {
            fleet: "g/events".into(),
            instance: "i".into(),
            pane_ms: PANE_MS,
            panes: shape.0,
            slide: shape.1,
            lateness_ms: 0,
            ks_grid_points: grid,
        },
    )
    .unwrap()
}

fn feed(b: &mut PartialsBuilder, batch: &[Row]) -> Vec<FleetRecord> {
    for r in batch {
        if b.next_offset(r.0).is_none() {
            let from = b.window_start_of(r.2);
            let _ = b.follow(r.0, r.1, from);
        }
    }
    let rows = Rows::of(batch);
    b.observe(&rows.columns(), &rows.origins()).unwrap()
}

/// A batch of rows as the monitor and the builder take them.
struct Rows {
    x: ArrayRef,
    site: ArrayRef,
    partitions: Vec<i32>,
    offsets: Vec<i64>,
    times: Vec<i64>,
}

impl Rows {
    fn of(batch: &[Row]) -> Rows {
        let (x, site) = arrays(batch);
        Rows {
            x,
            site,
            partitions: batch.iter().map(|r| r.0).collect(),
            offsets: batch.iter().map(|r| r.1).collect(),
            times: batch.iter().map(|r| r.2).collect(),
        }
    }

    fn columns(&self) -> [(&str, ColumnRole, &ArrayRef); 2] {
        [
            ("x", ColumnRole::Feature, &self.x),
            ("site", ColumnRole::Feature, &self.site),
        ]
    }

    fn origins(&self) -> RowOrigins<'_> {
        RowOrigins {
            event_times_ms: &self.times,
            partitions: &self.partitions,
            positions: &self.offsets,
        }
    }
}

/// Reports of the single monitor, complete windows only, by (column, window start).
fn single(
    profile: &ReferenceProfile,
    all: &[Row],
    shape: Shape,
) -> (BTreeMap<(String, i64), DriftReport>, usize) {
    let mut m = monitor(profile, "single", shape);
    let (mut reports, mut alerts) = (BTreeMap::new(), 0);
    for batch in all.chunks(97) {
        let rows = Rows::of(batch);
        let out = m.observe(&rows.columns(), &rows.origins(), 0).unwrap();
        alerts += out.alerts.len();
        for r in out.reports.into_iter().filter(|r| r.window.complete) {
            reports.insert((r.column.clone(), r.window.start_ms.unwrap()), r);
        }
    }
    (reports, alerts)
}

/// The fleet: partitions split over two builders fed in different batch sizes, partials
/// merged per window, judged by a monitor of their own.
fn fleet(
    profile: &ReferenceProfile,
    all: &[Row],
    grid: usize,
    shape: Shape,
) -> (
    BTreeMap<(String, i64), DriftReport>,
    usize,
    Vec<ColumnPartial>,
) {
    let (mut a, mut b) = (builder(profile, grid, shape), builder(profile, grid, shape));
    let mut partials: BTreeMap<i64, Vec<ColumnPartial>> = BTreeMap::new();
    let mut all_partials = Vec::new();
    let even: Vec<Row> = all.iter().filter(|r| r.0 % 2 == 0).cloned().collect();
    let odd: Vec<Row> = all.iter().filter(|r| r.0 % 2 == 1).cloned().collect();
    let mut records = Vec::new();
    for batch in even.chunks(31) {
        records.extend(feed(&mut a, batch));
    }
    for batch in odd.chunks(53) {
        records.extend(feed(&mut b, batch));
    }
    for record in records {
        if let FleetRecord::Partial(p) = record {
            partials.entry(p.start_ms).or_default().push(p.clone());
            all_partials.push(p);
        }
    }
    let mut m = monitor(profile, "fleet", shape);
    let (mut reports, mut alerts) = (BTreeMap::new(), 0);
    for (_, window) in partials {
        let reported: std::collections::BTreeSet<i32> =
            window.iter().map(|p| p.partition).collect();
        if reported.len() < PARTITIONS as usize {
            continue; // the last window: not every partition's watermark passed it
        }
        let merged = FleetWindow::merge(&window, Vec::new()).unwrap().unwrap();
        let out = m.judge_fleet(&merged).unwrap();
        alerts += out.alerts.len();
        for r in out.reports {
            reports.insert((r.column.clone(), r.window.start_ms.unwrap()), r);
        }
    }
    (reports, alerts, all_partials)
}

#[test]
fn merged_partials_judge_like_one_monitor_over_every_partition() {
    let profile = profile();
    let all = rows(24_000, 1_120_000, 9.0);
    let (single, single_alerts) = single(&profile, &all, TUMBLING);
    let (fleet, fleet_alerts, _) = fleet(&profile, &all, 100_000, TUMBLING);
    // Windows of 2 s over 240 s: the first and the last are not whole in both.
    assert!(fleet.len() >= 2 * 100, "{} fleet reports", fleet.len());
    let mut compared = 0;
    for (key, f) in &fleet {
        let Some(s) = single.get(key) else {
            continue;
        };
        compared += 1;
        assert_eq!(f.bins, s.bins, "{key:?}");
        assert_eq!(f.window.events, s.window.events, "{key:?}");
        assert_eq!(f.window.sources, s.window.sources, "{key:?}");
        assert_eq!(f.psi, s.psi, "{key:?}");
        assert_eq!(f.kl, s.kl, "{key:?}");
        assert_eq!(f.chi_square, s.chi_square, "{key:?}");
        if let (Some(fk), Some(sk)) = (&f.ks, &s.ks) {
            assert_eq!(fk.error_bound, Some(0.0));
            assert_eq!(fk.statistic, sk.statistic, "{key:?}");
            assert_eq!(fk.pvalue, sk.pvalue, "{key:?}");
            assert_eq!(fk.drift, sk.drift, "{key:?}");
        } else {
            assert_eq!(f.ks.is_some(), s.ks.is_some(), "{key:?}");
        }
        assert_eq!(f.verdict, s.verdict, "{key:?}");
    }
    assert!(compared >= 2 * 100, "{compared} windows compared");
    // The shift in two partitions of six opens the alert of `x`, once, in both.
    assert_eq!(fleet_alerts, single_alerts);
    assert!(fleet_alerts >= 1);
}

#[test]
fn sliding_windows_merge_like_one_monitor_too() {
    // Windows of 3 panes moving by 1: each row counts in three windows.
    let shape = Shape(3, 1);
    let profile = profile();
    let all = rows(12_000, i64::MAX, 0.0);
    let (single, _) = single(&profile, &all, shape);
    let (fleet, _, _) = fleet(&profile, &all, 100_000, shape);
    let mut compared = 0;
    for (key, f) in &fleet {
        let Some(s) = single.get(key) else { continue };
        assert_eq!(
            (&f.bins, &f.window.events),
            (&s.bins, &s.window.events),
            "{key:?}"
        );
        assert_eq!(
            (&f.psi, &f.kl, &f.chi_square),
            (&s.psi, &s.kl, &s.chi_square)
        );
        assert_eq!(
            f.ks.as_ref().map(|k| k.statistic),
            s.ks.as_ref().map(|k| k.statistic)
        );
        assert_eq!(f.verdict, s.verdict, "{key:?}");
        compared += 1;
    }
    // 120 s of 1 s panes: about 117 windows of 3 panes per column, both columns.
    assert!(compared >= 2 * 110, "{compared} windows compared");
}

#[test]
fn a_coarse_grid_bounds_ks_and_keeps_the_rest_exact() {
    let profile = profile();
    let all = rows(12_000, i64::MAX, 0.0);
    let (single, _) = single(&profile, &all, TUMBLING);
    let (fleet, _, partials) = fleet(&profile, &all, 16, TUMBLING);
    let mut compared = 0;
    for (key, f) in &fleet {
        let Some(s) = single.get(key) else { continue };
        assert_eq!(f.bins, s.bins);
        assert_eq!(f.psi, s.psi);
        if let (Some(fk), Some(sk)) = (&f.ks, &s.ks) {
            let bound = fk.error_bound.unwrap();
            assert!(fk.statistic <= sk.statistic + 1e-12, "{key:?}");
            assert!(
                sk.statistic <= fk.statistic + bound + 1e-12,
                "{key:?}: {bound}"
            );
            compared += 1;
        }
    }
    assert!(compared > 50);
    // A 16-point grid keeps at most 33 cells per partial.
    assert!(partials.iter().all(|p| p.ks_cells.len() <= 33));
}

#[test]
fn a_partition_followed_mid_stream_publishes_no_half_window() {
    let profile = profile();
    let all: Vec<Row> = rows(6000, i64::MAX, 0.0)
        .into_iter()
        .filter(|r| r.0 == 3)
        .collect();
    let mut b = builder(&profile, 1000, TUMBLING);
    // Followed from an event at 1 030 000 (window [1 030 000, 1 032 000) starts there), so
    // windows before it are never published, even though its rows arrive.
    let start = all.iter().position(|r| r.2 >= 1_031_000).unwrap();
    let from = b.window_start_of(all[start].2);
    assert_eq!(from, 1_030_000);
    // The windows before are declared not this follower's: progress through the one before.
    match b.follow(3, all[0].1, from) {
        Some(FleetRecord::Progress(p)) => assert_eq!(p.through_ms, 1_030_000),
        other => panic!("{other:?}"),
    }
    let out = feed(&mut b, &all);
    let starts: Vec<i64> = (out.iter())
        .filter_map(|r| match r {
            FleetRecord::Partial(p) => Some(p.start_ms),
            FleetRecord::Progress(_) => None,
        })
        .collect();
    assert!(!starts.is_empty());
    assert!(starts.iter().all(|&s| s >= 1_030_000), "{starts:?}");
    // Counted twice (a redelivery) changes nothing.
    let again = feed(&mut b, &all);
    assert!(again.is_empty(), "{again:?}");
    assert_eq!(b.window_start_after(1031), 1_032_000);
}
