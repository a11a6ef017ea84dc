//! Offline comparison, `compare_numeric` with evidently's binning (what `driftline drift
//! --binning evidently` computes after parsing): scipy's `ks_2samp` (exact p-value at 10 000 /
//! 10 000, asymptotic at 200 000 / 200 000) plus PSI and KL, on Normal(0, 1) against Normal(0.1,
//! 1). Time per comparison; throughput counts the values of both samples.
//! `benches/drift_vs_python.py` times the same computation against scipy/numpy.
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use driftline_benches::Normals;
use driftline_operators::drift::{compare_numeric, BinningChoice, CompareParams};

fn compare(c: &mut Criterion) {
    let params = CompareParams {
        binning: BinningChoice::Evidently,
        ..CompareParams::default()
    };
    let mut group = c.benchmark_group("compare_numeric_evidently");
    group.sample_size(10);
    for n in [10_000usize, 200_000] {
        let mut rng = Normals::new(n as u64);
        let reference = rng.sample(n, 0.0, 1.0);
        let current = rng.sample(n, 0.1, 1.0);
        group.throughput(Throughput::Elements(2 * n as u64));
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| compare_numeric(&reference, &current, &params).expect("comparison"));
        });
    }
    group.finish();
}

criterion_group!(benches, compare);
criterion_main!(benches);
