//! The report's charts, drawn by `plotters` into inline SVG: a statistic over the windows with
//! its threshold and the alert periods shaded, a sparkline of it for the overview, and the
//! reference and current distributions side by side. No fonts are loaded: SVG text is left to
//! the browser, so the page needs nothing but itself.
use plotters::prelude::*;

const REFERENCE: RGBColor = RGBColor(120, 144, 156);
const CURRENT: RGBColor = RGBColor(33, 102, 172);
const THRESHOLD: RGBColor = RGBColor(214, 39, 40);
const ALERT: RGBColor = RGBColor(253, 219, 199);
const FONT: (&str, u32) = ("sans-serif", 11);

/// A statistic over the windows: its values (`None` where it was not computed) and the line it
/// is judged against.
pub struct StatisticSeries<'a> {
    pub name: &'a str,
    pub values: &'a [Option<f64>],
    pub threshold: Option<f64>,
}

/// The highest of the values and the threshold, with headroom; 1 when all are 0.
fn y_max(series: &StatisticSeries<'_>) -> f64 {
    let top = (series.values.iter().flatten())
        .chain(series.threshold.iter())
        .fold(0.0f64, |m, &v| m.max(v));
    if top > 0.0 {
        top * 1.1
    } else {
        1.0
    }
}

/// Runs of consecutive values (a gap breaks the line), at most `points` points in all: past
/// that, each run of windows that would share a pixel is drawn as its highest value (a spike
/// stays visible; the page's tables have every value).
fn runs(values: &[Option<f64>], points: usize) -> Vec<Vec<(f64, f64)>> {
    let per_point = values.len().div_ceil(points.max(1)).max(1);
    let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for (b, bucket) in values.chunks(per_point).enumerate() {
        let highest = (bucket.iter().enumerate())
            .filter_map(|(i, v)| v.map(|v| (b * per_point + i, v)))
            .max_by(|x, y| x.1.total_cmp(&y.1));
        match highest {
            Some((i, v)) => runs.last_mut().expect("a run").push((i as f64, v)),
            None if runs.last().is_some_and(|r| !r.is_empty()) => runs.push(Vec::new()),
            None => {}
        }
    }
    runs.retain(|r| !r.is_empty());
    runs
}

/// The statistic over the windows (x: window number, oldest 0), its threshold in red, the
/// windows where the column's alert was open shaded.
pub fn history(series: &StatisticSeries<'_>, alert_open: &[bool]) -> String {
    let mut svg = String::new();
    let drawn = draw_history(&mut svg, series, alert_open);
    if let Err(e) = drawn {
        return format!(
            "<p>chart not drawn: {}</p>",
            super::format::escape(&e.to_string())
        );
    }
    svg
}

fn draw_history(
    svg: &mut String,
    series: &StatisticSeries<'_>,
    alert_open: &[bool],
) -> Result<(), Box<dyn std::error::Error>> {
    let n = series.values.len().max(1) as f64;
    let top = y_max(series);
    let root = SVGBackend::with_string(svg, (520, 150)).into_drawing_area();
    let mut chart = ChartBuilder::on(&root)
        .caption(series.name, FONT)
        .margin(4)
        .x_label_area_size(20)
        .y_label_area_size(44)
        .build_cartesian_2d(-0.5..n - 0.5, 0.0..top)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(6)
        .y_labels(4)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.3}"))
        .label_style(FONT)
        .draw()?;
    // Consecutive open windows share one rectangle.
    let mut start = None;
    for (i, open) in alert_open.iter().chain([&false]).enumerate() {
        match (open, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                let band = [(s as f64 - 0.5, 0.0), (i as f64 - 0.5, top)];
                chart.draw_series(std::iter::once(Rectangle::new(band, ALERT.filled())))?;
                start = None;
            }
            _ => {}
        }
    }
    if let Some(t) = series.threshold {
        let line = LineSeries::new([(-0.5, t), (n - 0.5, t)], THRESHOLD.stroke_width(1));
        chart.draw_series(line)?;
    }
    // Two windows per pixel of the 470-pixel plot at most.
    for run in runs(series.values, 235) {
        if run.len() == 1 {
            chart.draw_series(std::iter::once(Circle::new(run[0], 2, CURRENT.filled())))?;
        } else {
            chart.draw_series(LineSeries::new(run, CURRENT.stroke_width(1)))?;
        }
    }
    root.present()?;
    Ok(())
}

/// A small line of the statistic with its threshold, for the overview table.
pub fn sparkline(series: &StatisticSeries<'_>) -> String {
    let mut svg = String::new();
    let drawn = (|| -> Result<(), Box<dyn std::error::Error>> {
        let n = series.values.len().max(1) as f64;
        let top = y_max(series);
        let root = SVGBackend::with_string(&mut svg, (140, 28)).into_drawing_area();
        let mut chart = ChartBuilder::on(&root)
            .margin(2)
            .build_cartesian_2d(-0.5..n - 0.5, 0.0..top)?;
        if let Some(t) = series.threshold {
            let line = LineSeries::new([(-0.5, t), (n - 0.5, t)], THRESHOLD.stroke_width(1));
            chart.draw_series(line)?;
        }
        for run in runs(series.values, 68) {
            chart.draw_series(LineSeries::new(run, CURRENT.stroke_width(1)))?;
        }
        root.present()?;
        Ok(())
    })();
    match drawn {
        Ok(()) => svg,
        Err(_) => String::new(),
    }
}

/// Reference and current shares per bin, side by side; `labels` name the bins.
pub fn distribution(labels: &[String], reference: &[u64], current: &[u64]) -> String {
    let mut svg = String::new();
    let drawn = draw_distribution(&mut svg, labels, reference, current);
    if let Err(e) = drawn {
        return format!(
            "<p>chart not drawn: {}</p>",
            super::format::escape(&e.to_string())
        );
    }
    svg
}

fn draw_distribution(
    svg: &mut String,
    labels: &[String],
    reference: &[u64],
    current: &[u64],
) -> Result<(), Box<dyn std::error::Error>> {
    let shares = |counts: &[u64]| {
        let total = counts.iter().sum::<u64>().max(1) as f64;
        counts.iter().map(|&c| c as f64 / total).collect::<Vec<_>>()
    };
    let (reference, current) = (shares(reference), shares(current));
    let n = labels.len().max(1);
    let top = (reference.iter().chain(&current)).fold(0.0f64, |m, &v| m.max(v)) * 1.1;
    let top = if top > 0.0 { top } else { 1.0 };
    let root = SVGBackend::with_string(svg, (520, 170)).into_drawing_area();
    let mut chart = ChartBuilder::on(&root)
        .caption("share per bin: reference (grey), current (blue)", FONT)
        .margin(4)
        .x_label_area_size(20)
        .y_label_area_size(44)
        .build_cartesian_2d(-0.5..n as f64 - 0.5, 0.0..top)?;
    // Bin i is centred on x = i; only whole key points get a label.
    let label_of = |x: &f64| match labels.get(x.round() as usize) {
        Some(l) if (x - x.round()).abs() < 1e-9 && *x >= 0.0 => l.chars().take(9).collect(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(n.min(12))
        .x_label_formatter(&label_of)
        .y_labels(4)
        .y_label_formatter(&|y| format!("{y:.2}"))
        .label_style(FONT)
        .draw()?;
    let bars = |shares: Vec<f64>, offset: f64, color: RGBColor| {
        (shares.into_iter().enumerate()).map(move |(i, s)| {
            let x = i as f64 + offset;
            Rectangle::new([(x, 0.0), (x + 0.4, s)], color.filled())
        })
    };
    chart.draw_series(bars(reference, -0.4, REFERENCE))?;
    chart.draw_series(bars(current, 0.0, CURRENT))?;
    root.present()?;
    Ok(())
}
