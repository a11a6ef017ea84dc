//! `driftline demo` as a new user runs it, at a reduced size, over three seeds: no alert opens
//! before the temperature drift starts, and the temperature alert opens in the first window
//! after it. (Before the per-column verdicts, `make run` opened a chi-square alert on the label
//! before the drift: a one-sample test, uncorrected for the other columns.) Its labels arrive
//! late and one in twenty never: each performance window is 95 % labeled, and both the realized
//! accuracy and CBPE's estimate are lower in every window after the drift than in any before.
use std::process::Command;

use driftline_tests::*;

/// The reference is fitted before the feed (labeled readings of another seed); the feed is
/// panes of 2 000 events, windows of 5 panes; the drift starts at event 40 000, the first event
/// of pane 20 and of performance window 4 (10 000 predictions each).
const EVENTS: &str = "60000";
const DRIFT_AFTER: &str = "40000";
const FIRST_DRIFTING_PANE: u64 = 20;
const FIRST_DRIFTING_WINDOW: usize = 4;

/// The summary's performance rows: (labeled %, realized accuracy, estimated accuracy).
/// "      40000-49999      95.0 %     0.9477     0.9525 ± 0.005  ..."
fn performance_rows(stdout: &str) -> Vec<(f64, f64, f64)> {
    stdout
        .lines()
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let range = words.first()?;
            if words.get(2) != Some(&"%") || !range.contains('-') {
                return None;
            }
            let number = |i: usize| words.get(i).and_then(|w| w.parse::<f64>().ok());
            Some((number(1)?, number(3)?, number(4)?))
        })
        .collect()
}

#[test]
fn the_demo_pages_only_after_the_drift_starts() {
    for seed in ["1", "2", "3"] {
        let out = Command::new(driftline_bin())
            .current_dir(repo_root())
            .args(["demo", "--events", EVENTS, "--drift-after", DRIFT_AFTER])
            .args(["--malformed-every", "0", "--seed", seed])
            .output()
            .expect("driftline demo");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "seed {seed}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // "    open     warning  temperature        window panes 10-14: ks 1.2e-30 (p <= ...)"
        let opened: Vec<(String, u64)> = stdout
            .lines()
            .filter(|l| l.trim_start().starts_with("open "))
            .map(|l| {
                let column = l.split_whitespace().nth(2).expect("column").to_string();
                let panes = l.split("window panes ").nth(1).expect("panes");
                let last = panes.split([':', '-']).nth(1).expect("last pane");
                (column, last.trim().parse().expect("pane number"))
            })
            .collect();
        for (column, last) in &opened {
            assert!(
                *last >= FIRST_DRIFTING_PANE,
                "seed {seed}: {column} opened in a window ending at pane {last}, before the drift:\n{stdout}"
            );
        }
        assert!(
            opened
                .iter()
                .any(|(c, last)| c == "temperature" && *last < FIRST_DRIFTING_PANE + 5),
            "seed {seed}: no temperature alert in the first window after the drift:\n{stdout}"
        );
        // "    performance open estimated accuracy from prediction 40000: 0.9528 outside [...]"
        let performance_opened: Vec<u64> = stdout
            .lines()
            .filter_map(|l| {
                l.trim_start()
                    .strip_prefix("performance open estimated accuracy from prediction ")
            })
            .map(|rest| {
                rest.split(':')
                    .next()
                    .expect("first")
                    .parse()
                    .expect("a number")
            })
            .collect();
        assert!(
            !performance_opened.is_empty()
                && performance_opened.iter().all(|&first| first >= 40_000),
            "seed {seed}: CBPE's accuracy alert should open after the drift, and only then:\n{stdout}"
        );
        let rows = performance_rows(&stdout);
        assert_eq!(
            rows.len(),
            6,
            "seed {seed}: six performance windows:\n{stdout}"
        );
        for (labeled, _, _) in &rows {
            assert_eq!(
                *labeled, 95.0,
                "seed {seed}: one label in twenty never sent:\n{stdout}"
            );
        }
        let (before, after) = rows.split_at(FIRST_DRIFTING_WINDOW);
        let lowest = |rows: &[(f64, f64, f64)], pick: fn(&(f64, f64, f64)) -> f64| {
            rows.iter().map(pick).fold(f64::INFINITY, f64::min)
        };
        let highest = |rows: &[(f64, f64, f64)], pick: fn(&(f64, f64, f64)) -> f64| {
            rows.iter().map(pick).fold(f64::NEG_INFINITY, f64::max)
        };
        assert!(
            highest(after, |r| r.1) < lowest(before, |r| r.1),
            "seed {seed}: realized accuracy did not fall after the drift:\n{stdout}"
        );
        assert!(
            highest(after, |r| r.2) < lowest(before, |r| r.2),
            "seed {seed}: CBPE's estimate did not fall after the drift:\n{stdout}"
        );
    }
}
