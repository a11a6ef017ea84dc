//! The drift report page (`driftline report`): rendering 100 columns × 500 windows of reports to
//! HTML with its SVG charts. Time per page; the page's size and a browser's time to draw it are
//! measured by `make bench-report` (BENCHMARKS.md, "Drift report").
use criterion::{criterion_group, criterion_main, Criterion};
use driftline::report::page::{render, PageInfo};
use driftline_benches::report_data::synthetic_history;

fn report(c: &mut Criterion) {
    let history = synthetic_history(100, 500);
    let info = PageInfo {
        title: "bench",
        source: "synthetic",
        refresh_s: None,
    };
    let mut group = c.benchmark_group("report_page");
    group.sample_size(10);
    group.bench_function("100_columns_500_windows", |b| {
        b.iter(|| render(&history, &info).len());
    });
    group.finish();
}

criterion_group!(benches, report);
criterion_main!(benches);
