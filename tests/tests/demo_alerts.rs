//! `driftline demo` as a new user runs it, at a reduced size, over three seeds: no alert opens
//! before the temperature drift starts, and the temperature alert opens in the first window
//! after it. (Before the per-column verdicts, `make run` opened a chi-square alert on the label
//! before the drift: a one-sample test, uncorrected for the other columns.)
use std::process::Command;

use driftline_tests::*;

/// Events 0-19 999 are the reference, then panes of 2 000 events, windows of 5 panes; the
/// drift starts at event 40 000, the first event of pane 10.
const EVENTS: &str = "60000";
const DRIFT_AFTER: &str = "40000";
const FIRST_DRIFTING_PANE: u64 = 10;

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
    }
}
