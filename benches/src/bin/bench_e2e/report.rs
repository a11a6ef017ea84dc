//! Measured runs, their medians and spreads, the ratios against the targets, and the
//! table `make bench-e2e` prints (Markdown, pasted into BENCHMARKS.md).
use std::fmt::Write;

/// One run as measured: the child's own figures plus its rusage.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    pub events: u64,
    pub seconds: f64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub peak_rss_mib: f64,
    pub cpu_seconds: f64,
    pub rss_samples: Vec<u64>,
    /// CPU seconds per thread name, for the runs that report it.
    pub threads: String,
}

impl Measured {
    pub fn rate(&self) -> f64 {
        if self.seconds > 0.0 {
            self.events as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// Repeats of one named run.
pub struct Row {
    pub name: String,
    pub runs: Vec<Measured>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

impl Row {
    pub fn median_rate(&self) -> f64 {
        median(self.runs.iter().map(Measured::rate).collect())
    }

    fn spread(&self) -> (f64, f64) {
        let rates: Vec<f64> = self.runs.iter().map(Measured::rate).collect();
        (
            rates.iter().copied().fold(f64::INFINITY, f64::min),
            rates.iter().copied().fold(0.0, f64::max),
        )
    }

    fn median_of(&self, f: impl Fn(&Measured) -> Option<f64>) -> Option<f64> {
        let v: Vec<f64> = self.runs.iter().filter_map(f).collect();
        (!v.is_empty()).then(|| median(v))
    }
}

fn ms(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.1}"))
}

pub fn table(rows: &[Row], latency_note: &str) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| run | events/s median (min–max) | p50 / p95 / p99 ms | peak RSS MiB | CPU s | repeats |"
    );
    let _ = writeln!(t, "|---|---|---|---|---|---|");
    for r in rows.iter().filter(|r| !r.runs.is_empty()) {
        let (lo, hi) = r.spread();
        let _ = writeln!(
            t,
            "| {} | {:.0} ({:.0}–{:.0}) | {} / {} / {} | {:.0} | {:.2} | {} |",
            r.name,
            r.median_rate(),
            lo,
            hi,
            ms(r.median_of(|m| m.p50_ms)),
            ms(r.median_of(|m| m.p95_ms)),
            ms(r.median_of(|m| m.p99_ms)),
            r.median_of(|m| Some(m.peak_rss_mib)).unwrap_or(0.0),
            r.median_of(|m| Some(m.cpu_seconds)).unwrap_or(0.0),
            r.runs.len()
        );
    }
    let _ = writeln!(t, "\n{latency_note}");
    t
}

/// A ratio row: name, value, target (`≥ x`; NaN: none), and whether it is met.
pub fn ratio_table(ratios: &[(&str, f64, f64)]) -> String {
    let mut t = String::from("| ratio | measured | target | met |\n|---|---|---|---|\n");
    for (name, value, target) in ratios.iter().filter(|r| r.1.is_finite()) {
        let _ = match target.is_nan() {
            true => writeln!(t, "| {name} | {value:.2} | – | – |"),
            false => writeln!(
                t,
                "| {name} | {value:.2} | ≥ {target:.2} | {} |",
                if value >= target { "yes" } else { "no" }
            ),
        };
    }
    t
}

/// RSS growth after warm-up: the largest sample of the last 80% over the sample at 20%.
/// Single samples: with an allocator that returns memory and takes it again, this measures the
/// swing as much as any growth; [`level_growth`] is what the target is judged by.
pub fn rss_growth(samples: &[u64]) -> Option<(f64, f64, f64)> {
    if samples.len() < 5 {
        return None;
    }
    let warm = samples[samples.len() / 5] as f64;
    let peak = samples[samples.len() / 5..].iter().copied().max()? as f64;
    Some((warm / 1048576.0, peak / 1048576.0, peak / warm - 1.0))
}

/// RSS level (MiB) of each tenth of the run: the median of its samples.
pub fn rss_levels(samples: &[u64]) -> Option<Vec<f64>> {
    let n = samples.len();
    if n < 10 {
        return None;
    }
    let levels = (0..10)
        .map(|d| {
            let tenth = &samples[n * d / 10..n * (d + 1) / 10];
            median(tenth.iter().map(|&b| b as f64 / 1048576.0).collect())
        })
        .collect();
    Some(levels)
}

/// RSS growth after warm-up from the levels of [`rss_levels`]: the last tenth's level over the
/// third tenth's (the first after the 20% warm-up). A leak raises the level tenth by tenth; a
/// swing of single samples around a flat level does not.
pub fn level_growth(levels: &[f64]) -> (f64, f64, f64) {
    let (after_warm_up, last) = (levels[2], levels[9]);
    (after_warm_up, last, last / after_warm_up - 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_growth() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        let mib = 1048576;
        let (warm, peak, growth) =
            rss_growth(&[50 * mib, 100 * mib, 100 * mib, 105 * mib, 102 * mib]).unwrap();
        assert_eq!((warm, peak), (100.0, 105.0));
        assert!((growth - 0.05).abs() < 1e-12);
    }

    #[test]
    fn level_growth_sees_a_trend_and_not_a_swing() {
        let mib = 1048576;
        // Flat at 60 MiB with one swing to 80 after warm-up: the level does not move.
        let mut swing: Vec<u64> = (0..100).map(|i| (60 + i % 2) * mib).collect();
        swing[40] = 80 * mib;
        let (_, _, growth) = level_growth(&rss_levels(&swing).unwrap());
        assert!(growth.abs() < 0.02, "{growth}");
        assert!(rss_growth(&swing).unwrap().2 > 0.3);
        // A leak of 1 MiB every 10 samples: 62 -> 69 MiB from the third tenth to the last.
        let leak: Vec<u64> = (0..100).map(|i| (60 + i / 10) * mib).collect();
        let (third, last, growth) = level_growth(&rss_levels(&leak).unwrap());
        assert_eq!((third, last), (62.0, 69.0));
        assert!((growth - 7.0 / 62.0).abs() < 1e-12);
        assert_eq!(rss_levels(&leak[..9]), None);
    }
}
