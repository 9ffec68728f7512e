//! Bar charts with plotters: peak memory and speed per rule.

use std::path::Path;

use anyhow::{Context, Result, bail};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::bench::BenchReport;

/// Where TrueType fonts usually are; `AUGLOCAL_PLOT_FONT` names another.
const FONTS: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/Library/Fonts/Arial.ttf",
];

fn register() -> Result<()> {
    let path = std::env::var("AUGLOCAL_PLOT_FONT")
        .ok()
        .or_else(|| {
            FONTS
                .iter()
                .find(|p| Path::new(p).is_file())
                .map(|p| p.to_string())
        })
        .context(
            "no TrueType font found for the chart's text; install fonts-dejavu-core or set \
             AUGLOCAL_PLOT_FONT to a .ttf file",
        )?;
    let bytes = std::fs::read(&path).with_context(|| format!("reading {path}"))?;
    // plotters keeps registered fonts for the life of the process.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    if register_font("sans-serif", FontStyle::Normal, bytes).is_err() {
        bail!("{path} is not a usable TrueType font");
    }
    Ok(())
}

/// Two panels side by side: peak memory (heap and RSS, MiB) and images/s, one group per rule.
pub fn bench_chart(report: &BenchReport, path: &Path) -> Result<()> {
    register()?;
    let root = BitMapBackend::new(path, (1100, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = format!(
        "{} batch {} on {}: peak training memory and speed",
        report.arch, report.batch, report.device
    );
    let root = root.titled(&title, ("sans-serif", 22))?;
    let (left, right) = root.split_horizontally(620);
    let rules: Vec<String> = report.results.iter().map(|r| r.rule.to_string()).collect();
    // Group i is centred on x = i, so the axis ticks fall on the groups.
    let xs = -0.5..rules.len() as f64 - 0.5;
    let mib = |b: Option<u64>| b.map_or(0.0, |b| b as f64 / 1_048_576.0);

    let top = report
        .results
        .iter()
        .map(|r| mib(r.peak_heap_bytes).max(mib(r.peak_rss_bytes)))
        .fold(1.0, f64::max)
        * 1.15;
    let mut memory = panel(&left, "peak memory (MiB)", xs.clone(), top, &rules)?;
    for (series, color, offset) in [("heap", BLUE, -0.35), ("RSS", RED, 0.02)] {
        memory
            .draw_series(report.results.iter().enumerate().map(|(i, r)| {
                let v = if series == "heap" {
                    mib(r.peak_heap_bytes)
                } else {
                    mib(r.peak_rss_bytes)
                };
                let x = i as f64 + offset;
                Rectangle::new([(x, 0.0), (x + 0.33, v)], color.mix(0.7).filled())
            }))?
            .label(series)
            .legend(move |(x, y)| {
                Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.mix(0.7).filled())
            });
    }
    memory
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()?;

    let fastest = report
        .results
        .iter()
        .map(|r| r.images_per_second)
        .fold(1.0, f64::max)
        * 1.15;
    let mut speed = panel(&right, "training images / s", xs, fastest, &rules)?;
    speed.draw_series(report.results.iter().enumerate().map(|(i, r)| {
        let x = i as f64;
        Rectangle::new(
            [(x - 0.3, 0.0), (x + 0.3, r.images_per_second)],
            GREEN.mix(0.7).filled(),
        )
    }))?;
    root.present().context("writing the PNG")?;
    Ok(())
}

type Panel<'a> = ChartContext<'a, BitMapBackend<'a>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A captioned panel with the rules along x and values from 0 to `top` along y.
fn panel<'a>(
    area: &DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>,
    caption: &str,
    xs: std::ops::Range<f64>,
    top: f64,
    rules: &[String],
) -> Result<Panel<'a>> {
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(xs, 0.0..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(rules.len())
        .x_label_formatter(&|x| label(rules, *x))
        .draw()?;
    Ok(chart)
}

/// The rule at tick `x` (ticks between groups stay blank).
fn label(rules: &[String], x: f64) -> String {
    let i = x.round();
    if (x - i).abs() > 1e-6 || i < 0.0 {
        return String::new();
    }
    rules.get(i as usize).cloned().unwrap_or_default()
}
