//! Charts with plotters: bars of peak memory and speed (`bench --plot`), lines of accuracy
//! (`compare --plot-*`). The charts take plain values; the commands decide what they show.

use std::path::Path;

use anyhow::{Context, Result, bail};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use auglocal_plan::Rule;

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

/// One group of bars of [`bench_chart`]: one measured configuration.
pub struct Bars {
    /// The label under the group.
    pub label: String,
    /// Peak heap, MiB (0 where not measured).
    pub heap_mib: f64,
    /// Peak RSS, MiB (0 where not measured).
    pub rss_mib: f64,
    /// Training images per second.
    pub images_per_second: f64,
}

/// Two panels side by side: peak memory (heap and RSS, MiB) and images/s, one group per
/// configuration.
pub fn bench_chart(title: &str, groups: &[Bars], path: &Path) -> Result<()> {
    register()?;
    let root = BitMapBackend::new(path, (1100, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 22))?;
    let (left, right) = root.split_horizontally(620);
    let rules: Vec<String> = groups.iter().map(|g| g.label.clone()).collect();
    // Group i is centred on x = i, so the axis ticks fall on the groups.
    let xs = -0.5..rules.len() as f64 - 0.5;

    let top = groups
        .iter()
        .map(|g| g.heap_mib.max(g.rss_mib))
        .fold(1.0, f64::max)
        * 1.15;
    let mut memory = panel(&left, "peak memory (MiB)", xs.clone(), top, &rules)?;
    for (series, color, offset) in [("heap", BLUE, -0.35), ("RSS", RED, 0.02)] {
        memory
            .draw_series(groups.iter().enumerate().map(|(i, g)| {
                let v = if series == "heap" {
                    g.heap_mib
                } else {
                    g.rss_mib
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

    let fastest = groups
        .iter()
        .map(|g| g.images_per_second)
        .fold(1.0, f64::max)
        * 1.15;
    let mut speed = panel(&right, "training images / s", xs, fastest, &rules)?;
    speed.draw_series(groups.iter().enumerate().map(|(i, g)| {
        let x = i as f64;
        Rectangle::new(
            [(x - 0.3, 0.0), (x + 0.3, g.images_per_second)],
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

/// Each rule's colour in the charts.
fn color(rule: Rule) -> RGBColor {
    match rule {
        Rule::Bp => RGBColor(0, 0, 0),
        Rule::Greedy => RGBColor(230, 120, 0),
        Rule::Dgl => RGBColor(30, 90, 200),
        Rule::InfoPro => RGBColor(200, 40, 40),
        Rule::PredSim => RGBColor(150, 60, 170),
        Rule::AugLocal => RGBColor(0, 150, 60),
    }
}

/// One line of an accuracy chart: a rule's points (x, test accuracy in %), drawn in the
/// rule's colour.
pub struct Line {
    /// Whose line (its colour).
    pub rule: Rule,
    /// The legend's text.
    pub label: String,
    /// The points, in the order they are joined.
    pub points: Vec<(f64, f64)>,
}

/// Test accuracy (%) against budget (training images processed), one line per rule.
pub fn accuracy_by_budget(lines: Vec<Line>, path: &Path) -> Result<()> {
    register()?;
    let root = BitMapBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let most = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .fold(1.0, f64::max)
        * 1.05;
    let mut chart = ChartBuilder::on(&root)
        .caption("test accuracy against training budget", ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(0.0..most, 0.0..100.0)?;
    chart
        .configure_mesh()
        .x_desc("training images processed (images x epochs)")
        .y_desc("test accuracy (%)")
        .x_label_formatter(&|x| crate::format::thousands(*x as u64))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    for l in lines {
        line(&mut chart, l)?;
    }
    finish(chart, &root)
}

/// Test accuracy (%) of a head on each unit's features against the unit (`units` of them), one
/// line per rule.
pub fn accuracy_by_module(lines: Vec<Line>, units: usize, path: &Path) -> Result<()> {
    register()?;
    let units = units.max(1) as f64;
    let root = BitMapBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "test accuracy of a head on each unit's features (aux heads, then the output)",
            ("sans-serif", 20),
        )
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(-0.5..units - 0.5, 0.0..100.0)?;
    chart
        .configure_mesh()
        .x_desc("unit whose output the head reads")
        .y_desc("test accuracy (%)")
        .x_labels(units as usize)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    for l in lines {
        line(&mut chart, l)?;
    }
    finish(chart, &root)
}

type LineChart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// One labelled line with a dot at each point.
fn line(chart: &mut LineChart, l: Line) -> Result<()> {
    let c = color(l.rule);
    chart
        .draw_series(LineSeries::new(l.points.clone(), c.stroke_width(2)))?
        .label(l.label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
    chart.draw_series(l.points.into_iter().map(|p| Circle::new(p, 4, c.filled())))?;
    Ok(())
}

/// Draws the legend (lower right) and writes the PNG.
fn finish<'a, 'b: 'a>(
    mut chart: LineChart<'a, 'b>,
    root: &DrawingArea<BitMapBackend<'b>, plotters::coord::Shift>,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()?;
    root.present().context("writing the PNG")?;
    Ok(())
}
