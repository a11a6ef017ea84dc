//! Window checks: incremental add/subtract equals recounting from scratch.

use super::*;
use proptest::prelude::*;

fn recount(bins: &[Option<usize>], n_bins: usize) -> BinnedHistogram {
    let mut h = BinnedHistogram::new(n_bins);
    for &b in bins {
        h.record(b).unwrap();
    }
    h
}

#[test]
fn count_tumbling_emits_every_pane() {
    let mut w = RollingWindow::new(WindowConfig::by_count(3, 1, 1), 2).unwrap();
    let mut emitted = Vec::new();
    for i in 0..7 {
        if let Some(s) = w.record(Some(i % 2), Some(i as f64)).unwrap() {
            emitted.push(s);
        }
    }
    assert_eq!(emitted.len(), 2);
    assert_eq!(emitted[1].histogram.counts(), &[1, 2]);
    assert_eq!(emitted[1].values, Some(vec![3.0, 4.0, 5.0]));
    assert!(w.record_at(0, None, None).is_err());
}

#[test]
fn too_many_values_fall_back_to_binned_ks() {
    let mut config = WindowConfig::by_count(8, 2, 2);
    config.retain_values = 10;
    let mut w = RollingWindow::new(config, 2).unwrap();
    let mut last = None;
    for i in 0..16 {
        last = w.record(Some(i % 2), Some(i as f64)).unwrap().or(last);
    }
    let snap = last.unwrap();
    assert_eq!(snap.values, None);
    let ks = snap.ks_against(&[0.0, 1.0], &[1, 1], KsMode::Auto).unwrap();
    assert!(matches!(ks, WindowKs::Binned(_)));
}

#[test]
fn time_windows_close_on_watermark_and_drop_late_events() {
    let mut w = RollingWindow::new(WindowConfig::by_time(1000, 2, 1, 500), 3).unwrap();
    assert_eq!(
        w.record_at(100, Some(0), Some(1.0)).unwrap(),
        Admission::Accepted
    );
    assert_eq!(
        w.record_at(1500, Some(1), Some(2.0)).unwrap(),
        Admission::Accepted
    );
    // Pane 0 ends at 1000 and closes at watermark 1500.
    let out = w.advance_watermark(1499);
    assert!(out.is_empty());
    let out = w.advance_watermark(1500);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].start_ms, out[0].end_ms), (Some(0), Some(1000)));
    assert_eq!(w.record_at(999, Some(2), None).unwrap(), Admission::Late);
    assert_eq!(w.late_events(), 1);
    let out = w.advance_watermark(2500);
    assert_eq!(out[0].histogram.counts(), &[1, 1, 0]);
    assert_eq!(out[0].values, Some(vec![1.0, 2.0]));
    // A far jump must not walk every empty pane.
    assert!(w.advance_watermark(u64::MAX / 2).len() <= 2);
    assert_eq!(w.window_histogram().total(), 0);
}

proptest! {
    #[test]
    fn count_windows_equal_recounting(
        bins in prop::collection::vec(prop::option::of(0usize..5), 0..400),
        pane in 1u64..7,
        panes in 1usize..5,
        sliding in any::<bool>(),
    ) {
        let slide = if sliding { 1 } else { panes };
        let mut w = RollingWindow::new(WindowConfig::by_count(pane, panes, slide), 5).unwrap();
        let span = pane as usize * panes;
        for (i, &b) in bins.iter().enumerate() {
            if let Some(s) = w.record(b, Some(i as f64)).unwrap() {
                let window = &bins[i + 1 - span..=i];
                prop_assert_eq!(&s.histogram, &recount(window, 5));
                let want: Vec<f64> = (i + 1 - span..=i)
                    .filter(|&j| bins[j].is_some())
                    .map(|j| j as f64)
                    .collect();
                prop_assert_eq!(s.values, Some(want));
            }
        }
    }

    #[test]
    fn time_windows_equal_recounting(
        events in prop::collection::vec((0u64..20_000, prop::option::of(0usize..4)), 0..300),
        panes in 1usize..4,
        sliding in any::<bool>(),
        lateness in 0u64..3000,
    ) {
        let slide = if sliding { 1 } else { panes };
        let mut w = RollingWindow::new(WindowConfig::by_time(1000, panes, slide, lateness), 4).unwrap();
        let mut accepted: Vec<(u64, Option<usize>)> = Vec::new();
        // Watermark trails the largest timestamp seen by 2 s, every 10 events.
        let mut max_ts = 0;
        for (i, &(ts, b)) in events.iter().enumerate() {
            if w.record_at(ts, b, None).unwrap() == Admission::Accepted {
                accepted.push((ts, b));
            }
            max_ts = max_ts.max(ts);
            if i % 10 == 9 {
                for s in w.advance_watermark(max_ts.saturating_sub(2000)) {
                    let (start, end) = (s.start_ms.unwrap(), s.end_ms.unwrap());
                    let inside: Vec<Option<usize>> = accepted
                        .iter()
                        .filter(|(t, _)| (start..end).contains(t))
                        .map(|&(_, b)| b)
                        .collect();
                    prop_assert_eq!(&s.histogram, &recount(&inside, 4));
                    prop_assert_eq!((s.last_pane + 1) % slide as u64, 0);
                }
            }
        }
    }
}
