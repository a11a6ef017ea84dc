//! Criterion benches live in benches/; see BENCHMARKS.md.
