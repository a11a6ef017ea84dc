//! `make bench-report`: the drift report at 100 columns × 500 windows, its size and the time a
//! browser (headless Chromium, as the tests use it) takes to open and draw it, side by side with
//! the same browser opening a blank page (its start-up), runs alternated. Figures in
//! BENCHMARKS.md, "Drift report".
use std::time::{Duration, Instant};

use driftline::report::page::{render, PageInfo};
use driftline_benches::report_data::synthetic_history;
use driftline_tests::browser;

const RUNS: usize = 5;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    let history = synthetic_history(100, 500);
    let html = render(
        &history,
        &PageInfo {
            title: "bench",
            source: "synthetic: 100 columns × 500 windows",
            refresh_s: None,
        },
    );
    let rendered_in = started.elapsed();
    let page = dir.path().join("report.html");
    std::fs::write(&page, &html)?;
    let blank = dir.path().join("blank.html");
    std::fs::write(&blank, "<!doctype html><title>blank</title>")?;
    let (page_url, blank_url) = (
        format!("file://{}", page.display()),
        format!("file://{}", blank.display()),
    );
    let png = dir.path().join("shot.png");
    let (mut dom, mut dom_blank, mut shot, mut shot_blank) = (vec![], vec![], vec![], vec![]);
    for _ in 0..RUNS {
        for (url, times) in [(&blank_url, &mut dom_blank), (&page_url, &mut dom)] {
            let t = Instant::now();
            let shown = browser::render(url);
            times.push(t.elapsed());
            assert!(
                shown.console_errors().is_empty(),
                "{:?}",
                shown.console_errors()
            );
        }
        for (url, times) in [(&blank_url, &mut shot_blank), (&page_url, &mut shot)] {
            let t = Instant::now();
            browser::screenshot_unchecked(url, &png, 1280, 2000);
            times.push(t.elapsed());
        }
    }
    let (dom, dom_blank) = (median(dom), median(dom_blank));
    let (shot, shot_blank) = (median(shot), median(shot_blank));
    println!("report page, 100 columns x 500 windows: {} bytes ({:.2} MB), built (history + HTML) in {:.0} ms", html.len(), html.len() as f64 / 1e6, rendered_in.as_secs_f64() * 1e3);
    println!("chromium --dump-dom, median of {RUNS}: page {:.0} ms, blank {:.0} ms, page - blank {:.0} ms", dom.as_secs_f64() * 1e3, dom_blank.as_secs_f64() * 1e3, dom.saturating_sub(dom_blank).as_secs_f64() * 1e3);
    println!("chromium --screenshot 1280x2000, median of {RUNS}: page {:.0} ms, blank {:.0} ms, page - blank {:.0} ms", shot.as_secs_f64() * 1e3, shot_blank.as_secs_f64() * 1e3, shot.saturating_sub(shot_blank).as_secs_f64() * 1e3);
    Ok(())
}
