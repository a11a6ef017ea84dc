//! The streaming drift monitor, 16 numeric columns (the demo's sensors as f32):
//!
//! - `drift_update`: `DriftMonitor::observe` on batches of 1024 rows, throughput in
//!   column-values (rows × columns) per second. `histogram_only` uses a count window so large
//!   that none closes and keeps no raw values: the pure per-event, per-feature bin update.
//!   `default_window` uses `configs/default.toml`'s shape (panes of 1000 events, 5 panes,
//!   tumbling, 10 000 raw values kept for exact KS): every event also stores its value, and the
//!   window closes (KS, PSI, KL per column) every 5 batches, amortised into the figure.
//! - `drift_window_close`: the one `observe` call that closes a window: exact KS of the window's
//!   values against the profile's 10 000-value sample, plus PSI and KL over the q10 bins. A
//!   10 000-event window for 1 and 16 columns, and the default shape (5 × 1000 events) for 16.
//!   The events before the last are observed outside the timing. Throughput is columns per
//!   second; the time is per window.
use std::time::{Duration, Instant};

use arrow_array::ArrayRef;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use driftline_benches::{sensor_columns, sensors, Sensor};
use driftline_operators::drift::{
    ColumnRole, DriftMonitor, MonitorSettings, ProfileBuilder, ReferenceProfile, RowOrigins,
    WindowConfig,
};

const BATCH_ROWS: usize = 1024;
const WINDOW_EVENTS: usize = 10_000;
/// Current data is shifted by this many standard deviations, as in `drift_vs_python.py`.
const SHIFT_STD: f64 = 0.1;

fn named<'a>(
    sensors: &'a [Sensor],
    arrays: &'a [ArrayRef],
) -> Vec<(&'a str, ColumnRole, &'a ArrayRef)> {
    sensors
        .iter()
        .zip(arrays)
        .map(|(s, a)| (s.name.as_str(), ColumnRole::Feature, a))
        .collect()
}

/// A profile of 10 000 healthy events: q10 bins and the full 10 000 values as the KS sample.
fn profile(sensors: &[Sensor]) -> ReferenceProfile {
    let reference = sensor_columns(sensors, WINDOW_EVENTS, 0.0, 1);
    let mut builder = ProfileBuilder::new(ProfileBuilder::DEFAULT_SAMPLE_CAP, 10, 0);
    builder
        .add(&named(sensors, &reference))
        .expect("profile batch");
    builder.finish().expect("profile")
}

fn monitor(profile: &ReferenceProfile, window: WindowConfig) -> DriftMonitor {
    DriftMonitor::new(profile, MonitorSettings::new(window, "bench")).expect("monitor")
}

fn update(c: &mut Criterion) {
    let sensors = sensors();
    let profile = profile(&sensors);
    let batch = sensor_columns(&sensors, BATCH_ROWS, SHIFT_STD, 2);
    let columns = named(&sensors, &batch);
    let shapes = [
        (
            "histogram_only",
            WindowConfig {
                retain_values: 0,
                ..WindowConfig::by_count(u64::MAX, 1, 1)
            },
        ),
        ("default_window", WindowConfig::by_count(1000, 5, 5)),
    ];
    let mut group = c.benchmark_group("drift_update");
    group.throughput(Throughput::Elements((BATCH_ROWS * sensors.len()) as u64));
    for (name, window) in shapes {
        let mut m = monitor(&profile, window);
        group.bench_function(BenchmarkId::new(name, BATCH_ROWS), |b| {
            b.iter(|| {
                m.observe(&columns, &RowOrigins::default(), 0)
                    .expect("observe")
            });
        });
    }
    group.finish();
}

fn window_close(c: &mut Criterion) {
    let all = sensors();
    let current = sensor_columns(&all, WINDOW_EVENTS, SHIFT_STD, 3);
    // (label, window shape, events per window, columns)
    let cases = [
        ("10000", WindowConfig::by_count(10_000, 1, 1), 10_000, 1),
        ("10000", WindowConfig::by_count(10_000, 1, 1), 10_000, 16),
        (
            "default_5x1000",
            WindowConfig::by_count(1000, 5, 5),
            5_000,
            16,
        ),
    ];
    let mut group = c.benchmark_group("drift_window_close");
    group.sample_size(10);
    for (label, window, events, n_columns) in cases {
        let sensors = &all[..n_columns];
        // A column the profile knows but a batch lacks still gets a report: profile only these.
        let profile = profile(sensors);
        let (head, last): (Vec<ArrayRef>, Vec<ArrayRef>) = current[..n_columns]
            .iter()
            .map(|a| (a.slice(0, events - 1), a.slice(events - 1, 1)))
            .unzip();
        let (head, last) = (named(sensors, &head), named(sensors, &last));
        let mut m = monitor(&profile, window);
        group.throughput(Throughput::Elements(n_columns as u64));
        group.bench_function(BenchmarkId::new(label, n_columns), |b| {
            b.iter_custom(|iters| {
                let mut closing = Duration::ZERO;
                for _ in 0..iters {
                    let filled = m
                        .observe(&head, &RowOrigins::default(), 0)
                        .expect("observe");
                    assert!(filled.reports.is_empty(), "window closed early");
                    let start = Instant::now();
                    let closed = m
                        .observe(&last, &RowOrigins::default(), 0)
                        .expect("observe");
                    closing += start.elapsed();
                    assert_eq!(closed.reports.len(), n_columns, "one report per column");
                }
                closing
            });
        });
    }
    group.finish();
}

criterion_group!(benches, update, window_close);
criterion_main!(benches);
