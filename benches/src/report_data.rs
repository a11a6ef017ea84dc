//! A synthetic drift history for the report benchmarks: `columns` columns (one in ten
//! categorical) over `windows` tumbling windows, with values that move, a few drifting
//! windows and their alerts. Deterministic: a fixed generator, no clock.
use driftline::report::history::DriftHistory;
use driftline_operators::drift::monitor::{AlertEvent, DriftReport};

/// A small deterministic generator in [0, 1).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn report(column: usize, window: usize, rng: &mut Lcg, drifting: bool) -> DriftReport {
    let categorical = column % 10 == 9;
    let shift = if drifting { 0.3 } else { 0.0 };
    let psi = rng.next() * 0.05 + shift;
    let (statistic, pvalue) = (
        rng.next() * 0.04 + shift / 3.0,
        if drifting { 1e-9 } else { rng.next() },
    );
    let test = if categorical {
        serde_json::json!({"chi_square": {"statistic": statistic * 100.0, "dof": 4, "pvalue": pvalue,
            "cramers_v": statistic, "threshold": 0.0005, "min_cramers_v": 0.05, "drift": drifting, "votes": true}})
    } else {
        serde_json::json!({"ks": {"statistic": statistic, "pvalue": pvalue, "method": "exact",
            "error_bound": null, "threshold": 0.0005, "min_statistic": 0.05, "drift": drifting, "votes": true}})
    };
    let bins = if categorical {
        serde_json::json!({"edges_or_categories": {"categories": ["a", "b", "c", "d", "e"]},
            "reference": [400, 300, 150, 100, 50], "current": [380, 310, 160, 100, 50], "missing": 0})
    } else {
        let current: Vec<u64> = (0..10).map(|_| 90 + (rng.next() * 20.0) as u64).collect();
        serde_json::json!({"edges_or_categories": {"cuts": [-1.28, -0.84, -0.52, -0.25, 0.0, 0.25, 0.52, 0.84, 1.28]},
            "reference": vec![1000u64; 10], "current": current, "missing": 0})
    };
    let mut r = serde_json::json!({
        "schema_version": 2, "column": format!("sensor_{column:03}"), "role": if column >= 95 { "output" } else { "feature" },
        "kind": if categorical { "categorical" } else { "numeric" }, "reference_id": "ref-bench", "instance": "bench",
        "partitions": [0],
        "window": {"start_ms": null, "end_ms": null, "first_pane": 2 * window, "last_pane": 2 * window + 1,
            "events": 1000, "complete": true, "min_event_ms": 1_700_000_000_000i64 + window as i64 * 60_000,
            "max_event_ms": 1_700_000_059_000i64 + window as i64 * 60_000, "sources": [{"partition": 0, "first": window * 1000, "last": window * 1000 + 999}]},
        "missing_rate": 0.0,
        "psi": {"value": psi, "threshold": 0.2, "drift": psi >= 0.2, "votes": false},
        "kl": {"value": psi / 2.0, "threshold": 0.1, "drift": psi / 2.0 >= 0.1, "votes": false},
        "ks": null, "chi_square": null,
        "family": {"correction": "holm", "alpha": 0.05, "tests": 100},
        "bins": bins,
        "verdict": {"drift": drifting, "reason": null, "voters": [if categorical { "chi_square" } else { "ks" }],
            "votes_for": usize::from(drifting), "votes_needed": 1},
        "model": {"name": "anomaly_classifier", "version": "1.0.0", "sha256": "8d2d92c4fe01725b68f9e3551a14de3beefb4cafac6954648fcf0e179a8c05bc"}
    });
    let object = r.as_object_mut().expect("an object");
    for (k, v) in test.as_object().expect("an object") {
        object.insert(k.clone(), v.clone());
    }
    serde_json::from_value(r).expect("a report")
}

/// `columns` × `windows` reports; every seventh column drifts from window `windows * 3 / 4`.
pub fn synthetic_history(columns: usize, windows: usize) -> DriftHistory {
    let mut rng = Lcg(7);
    let mut reports = Vec::with_capacity(columns * windows);
    let mut alerts: Vec<AlertEvent> = Vec::new();
    let from = windows * 3 / 4;
    for w in 0..windows {
        for c in 0..columns {
            let drifting = c % 7 == 0 && w >= from;
            let r = report(c, w, &mut rng, drifting);
            if drifting && w == from {
                let alert = serde_json::json!({"schema_version": 2, "state": "open", "severity": "critical",
                    "column": r.column, "role": r.role, "statistics": {}, "verdict": r.verdict,
                    "window": r.window, "reference_id": "ref-bench", "instance": "bench"});
                alerts.push(serde_json::from_value(alert).expect("an alert"));
            }
            reports.push(r);
        }
    }
    DriftHistory::of(reports, alerts)
}
