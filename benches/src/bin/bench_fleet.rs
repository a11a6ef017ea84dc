//! The fleet view's partials: how large they are per window, and how far KS from a coarser
//! grid is from the exact D, against the grid's size (BENCHMARKS.md, "Fleet view").
//!
//! The demo's sensors (configs/demo.toml, features only), a profile of 20 000 generated events
//! (reference_sample 10 000, as by default), then windows of generated events spread over 12
//! partitions; each window's partials are built by [`PartialsBuilder`] as an instance builds
//! them, serialized as they are published, and merged. KS D from the merged grid cells is
//! compared with `ks_2samp` over the window's raw values against the same sample.
//!
//!   cargo run --release -p driftline-benches --bin bench_fleet -- [--windows N]
use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use driftline::cli::gen::{EventGenerator, GenOptions};
use driftline::config::Settings;
use driftline::stages::drift::tracker::drift_columns;
use driftline_operators::batch::{BatchBuilder, SourcePosition};
use driftline_operators::decode::EventDecoder;
use driftline_operators::drift::ks_grid::KsGrid;
use driftline_operators::drift::monitor::RowOrigins;
use driftline_operators::drift::partial::{FleetRecord, FleetWindow};
use driftline_operators::drift::partial_builder::{PartialSettings, PartialsBuilder};
use driftline_operators::drift::profile::ColumnStats;
use driftline_operators::drift::{ks_2samp, KsMode};

const PARTITIONS: i32 = 12;
const PANE_MS: i64 = 60_000;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let windows: u64 = match args.iter().position(|a| a == "--windows") {
        Some(i) => args.get(i + 1).map_or(Ok(5), |v| v.parse())?,
        None => 5,
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::env::set_current_dir(&root)?;
    let mut settings = Settings::load(Some(Path::new("configs/demo.toml")))?;
    settings.model.path = Default::default();
    let dir = tempfile::tempdir()?;
    let sample = dir.path().join("sample.jsonl");
    let mut reference = EventGenerator::new(GenOptions::default(), 1_700_000_000_000)?;
    let (mut text, mut buf) = (Vec::new(), Vec::new());
    for i in 0..20_000 {
        reference.event(i, &mut buf);
        text.extend_from_slice(&buf);
        text.push(b'\n');
    }
    std::fs::write(&sample, text)?;
    let profile = driftline::cli::profile::build_profile(&settings, &sample)?.profile;
    println!(
        "profile {}: {} columns, KS sample {} values per numeric column",
        profile.id,
        profile.columns.len(),
        profile
            .columns
            .iter()
            .find_map(|c| match &c.stats {
                ColumnStats::Numeric { sample, .. } => Some(sample.len()),
                ColumnStats::Categorical { .. } => None,
            })
            .unwrap_or(0)
    );
    println!(
        "| events per window | grid points | partials per window | bytes per window | bytes per partial (mean) | max D error | mean D error | largest stated bound | exact D outside the bound |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for events_per_window in [1_200u64, 12_000, 120_000] {
        for grid_points in [10_000usize, 1_000, 100, 16] {
            let row = measure(&settings, &profile, events_per_window, grid_points, windows)?;
            println!(
                "| {events_per_window} | {grid_points} | {} | {} | {} | {:.5} | {:.5} | {:.5} | {} of {} |",
                row.partials / windows,
                row.bytes / windows,
                row.bytes / row.partials.max(1),
                row.max_error,
                row.sum_error / row.ks_count.max(1) as f64,
                row.max_bound,
                row.outside,
                row.ks_count
            );
        }
    }
    Ok(())
}

#[derive(Default)]
struct Row {
    partials: u64,
    bytes: u64,
    max_error: f64,
    sum_error: f64,
    ks_count: u64,
    max_bound: f64,
    /// Comparisons where the exact D was outside [D, D + stated bound].
    outside: u64,
}

fn measure(
    settings: &Settings,
    profile: &driftline_operators::drift::profile::ReferenceProfile,
    events_per_window: u64,
    grid_points: usize,
    windows: u64,
) -> anyhow::Result<Row> {
    let mut builder = PartialsBuilder::new(
        profile,
        PartialSettings {
            fleet: "bench/events".into(),
            instance: "bench".into(),
            pane_ms: PANE_MS as u64,
            panes: 1,
            slide: 1,
            lateness_ms: 0,
            ks_grid_points: grid_points,
        },
    )?;
    let start_ms = 1_800_000_000_000i64 / PANE_MS * PANE_MS;
    let mut generator = EventGenerator::new(
        GenOptions {
            seed: 7,
            ..GenOptions::default()
        },
        start_ms,
    )?;
    let mut decoder = EventDecoder::new(&settings.schema, settings.pipeline.max_event_bytes);
    let topic: Arc<str> = Arc::from("events");
    let mut row = Row::default();
    let mut offsets = [0i64; PARTITIONS as usize];
    let mut by_window: std::collections::BTreeMap<i64, Vec<_>> = Default::default();
    let mut raw: std::collections::BTreeMap<(i64, String), Vec<f64>> = Default::default();
    let mut buf = Vec::new();
    // One more window than measured: its first events close the last measured one.
    let total = events_per_window * (windows + 1);
    let step = PANE_MS as f64 / events_per_window as f64;
    for p in 0..PARTITIONS {
        let _ = builder.follow(p, 0, start_ms);
    }
    let mut batch = BatchBuilder::new(&settings.schema, 4096);
    let flush = |batch: &mut BatchBuilder,
                 builder: &mut PartialsBuilder|
     -> anyhow::Result<Vec<FleetRecord>> {
        let scored = batch.finish()?;
        let columns = drift_columns(&scored.batch, &[]);
        let times = scored.batch.column(1).as_primitive::<Int64Type>().values();
        Ok(builder.observe(
            &columns,
            &RowOrigins {
                event_times_ms: times,
                partitions: &scored.sources.partitions,
                positions: &scored.sources.offsets,
            },
        )?)
    };
    let mut records = Vec::new();
    for i in 0..total {
        generator.event(i, &mut buf);
        let mut event: serde_json::Value = serde_json::from_slice(&buf)?;
        let ts = start_ms + (i as f64 * step) as i64;
        event["ts"] = ts.into();
        let bytes = serde_json::to_vec(&event)?;
        let p = (i % PARTITIONS as u64) as i32;
        let decoded = decoder
            .decode(&bytes, Some(ts))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if i < events_per_window * windows {
            let window = ts / PANE_MS * PANE_MS;
            for c in &profile.columns {
                if let Some(x) = event[&c.name].as_f64() {
                    raw.entry((window, c.name.clone()))
                        .or_default()
                        .push(f64::from(x as f32));
                }
            }
        }
        batch.push(
            decoded,
            SourcePosition {
                topic: &topic,
                partition: p,
                offset: offsets[p as usize],
                key: None,
                traceparent: None,
                tracestate: None,
                kafka_timestamp_ms: ts,
            },
        );
        offsets[p as usize] += 1;
        if batch.len() >= 4096 {
            records.extend(flush(&mut batch, &mut builder)?);
        }
    }
    if !batch.is_empty() {
        records.extend(flush(&mut batch, &mut builder)?);
    }
    for record in records {
        if let FleetRecord::Partial(p) = record {
            row.partials += 1;
            row.bytes += serde_json::to_vec(&FleetRecord::Partial(p.clone()))?.len() as u64;
            by_window.entry(p.start_ms).or_default().push(p);
        }
    }
    for (start, partials) in &by_window {
        let merged = FleetWindow::merge(partials, Vec::new()).map_err(anyhow::Error::msg)?;
        let Some(merged) = merged else { continue };
        for c in &profile.columns {
            let ColumnStats::Numeric { sample, .. } = &c.stats else {
                continue;
            };
            let Some(values) = raw.get(&(*start, c.name.clone())) else {
                continue;
            };
            let grid = KsGrid::from_sorted_sample(sample, grid_points)?;
            let cells = driftline_operators::drift::partial::dense(
                &merged.columns[&c.name].ks_cells,
                grid.n_cells(),
            )
            .map_err(anyhow::Error::msg)?;
            let Some(got) = grid.ks(sample, &cells, KsMode::Auto) else {
                continue;
            };
            let exact = ks_2samp(sample, values, KsMode::Auto)?.statistic;
            let error = (exact - got.result.statistic).abs();
            row.max_error = row.max_error.max(error);
            row.sum_error += error;
            row.ks_count += 1;
            row.max_bound = row.max_bound.max(got.error_bound);
            let d = got.result.statistic;
            if exact < d - 1e-12 || exact > d + got.error_bound + 1e-12 {
                row.outside += 1;
            }
        }
    }
    Ok(row)
}
