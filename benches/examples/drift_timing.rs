//! Times `compare_numeric` with evidently's binning in process, on two files of one value per
//! line, the way `benches/drift_vs_python.py` times scipy: best of `repeats` wall-clock runs.
//! Parsing is timed on its own, so the comparison with the CLI shows what file reading and
//! process start cost.
//!
//! ```sh
//! cargo run --release -p driftline-benches --example drift_timing -- REF CUR [REPEATS]
//! ```
//! prints one JSON object: `parse_s`, `compute_best_s`, `compute_all_s`, `ks_best_s` (the KS
//! part alone), and the comparison.
use std::time::Instant;

use driftline_operators::drift::{compare_numeric, ks_2samp, BinningChoice, CompareParams, KsMode};

fn read(path: &str) -> Result<Vec<f64>, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.parse::<f64>()
                .map_err(|e| format!("{path}: `{l}`: {e}").into())
        })
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [reference, current, rest @ ..] = args.as_slice() else {
        return Err("usage: drift_timing REFERENCE CURRENT [REPEATS]".into());
    };
    let repeats: usize = rest.first().map_or(Ok(5), |r| r.parse())?;
    let start = Instant::now();
    let (r, c) = (read(reference)?, read(current)?);
    let parse_s = start.elapsed().as_secs_f64();
    let params = CompareParams {
        binning: BinningChoice::Evidently,
        ..CompareParams::default()
    };
    let mut times = Vec::with_capacity(repeats);
    let mut result = None;
    for _ in 0..repeats.max(1) {
        let start = Instant::now();
        let out = compare_numeric(&r, &c, &params)?;
        times.push(start.elapsed().as_secs_f64());
        result = Some(out);
    }
    let best = times.iter().copied().fold(f64::INFINITY, f64::min);
    // The KS part alone (sort, D, p-value), to show where the comparison spends its time.
    let mut ks_best_s = f64::INFINITY;
    for _ in 0..repeats.max(1) {
        let start = Instant::now();
        ks_2samp(&r, &c, KsMode::Auto)?;
        ks_best_s = ks_best_s.min(start.elapsed().as_secs_f64());
    }
    let report = serde_json::json!({
        "parse_s": parse_s,
        "compute_best_s": best,
        "compute_all_s": times,
        "ks_best_s": ks_best_s,
        "comparison": result,
    });
    println!("{report}");
    Ok(())
}
