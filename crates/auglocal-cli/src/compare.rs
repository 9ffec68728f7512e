//! `auglocal compare RUN_DIR...`: the runs side by side, as a table, JSON and charts.
//!
//! A run's budget is the number of training images it processed (training images times
//! epochs). Each run is summarised by its last epoch; runs trained with `--aux-accuracy` also
//! give every aux head's test accuracy (a linear-probe view of each module's features).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use auglocal_plan::Rule;
use auglocal_train::{read_config, read_metrics, read_plan};
use clap::Args;
use serde::{Deserialize, Serialize};

use crate::format::{mib, thousands};
use crate::output::OutputFile;
use crate::plot;

/// Flags of `auglocal compare`.
#[derive(Args, Debug)]
pub struct CompareArgs {
    /// Run directories (written by `auglocal train`).
    #[arg(required = true)]
    runs: Vec<PathBuf>,
    /// Write the comparison as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Draw test accuracy against budget, one line per rule, into this PNG file.
    #[arg(long, value_name = "FILE.png")]
    plot_budget: Option<PathBuf>,
    /// Draw each rule's head accuracies against the unit they read (aux heads, then the
    /// output at the last unit; each rule at its largest budget) into this PNG file.
    #[arg(long, value_name = "FILE.png")]
    plot_heads: Option<PathBuf>,
    /// Replace output files that exist (refused otherwise).
    #[arg(long)]
    overwrite: bool,
}

/// One run, summarised by its last epoch.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunSummary {
    /// The run directory.
    pub run: PathBuf,
    /// The rule.
    pub rule: Rule,
    /// K as configured (`None`: the number of units).
    pub k: Option<usize>,
    /// Gradient-isolated modules.
    pub modules: usize,
    /// Training images per epoch.
    pub train_images: usize,
    /// Epochs completed.
    pub epochs: usize,
    /// Images processed in training: the budget.
    pub budget: usize,
    /// Test images.
    pub test_images: usize,
    /// Final test accuracy of the primary network.
    pub test_accuracy: f64,
    /// Final test accuracy of each aux head, module by module (if measured).
    pub aux_test_accuracy: Option<Vec<f64>>,
    /// The unit whose output each aux head reads (the isolation points).
    pub aux_units: Vec<usize>,
    /// Units of the network (the output head reads the last).
    pub units: usize,
    /// Largest peak heap bytes over the epochs.
    pub peak_heap_bytes: Option<u64>,
    /// Largest peak RSS bytes over the epochs.
    pub peak_rss_bytes: Option<u64>,
    /// Mean training images/s over the epochs.
    pub images_per_second: f64,
    /// Seconds of training and evaluation, all epochs.
    pub wall_seconds: f64,
    /// A command that repeats the run exactly.
    pub command: String,
}

/// Reads one run directory.
pub fn summarise(dir: &Path) -> Result<RunSummary> {
    let config = read_config(dir)?;
    let plan = read_plan(dir)?;
    let metrics = read_metrics(dir)?;
    let Some(last) = metrics.last() else {
        let found = auglocal_train::checkpoint::find(dir)?;
        return Err(crate::exit::usage(match found {
            Some(checkpoint) => format!(
                "{}: metrics.jsonl records no epoch, though {} holds a checkpoint; `auglocal \
                 train --resume {}` rewrites metrics.jsonl from it (and trains any epochs left)",
                dir.display(),
                checkpoint.display(),
                dir.display()
            ),
            None => format!("{} has no completed epoch yet", dir.display()),
        }));
    };
    let max =
        |f: fn(&auglocal_train::EpochMetrics) -> Option<u64>| metrics.iter().filter_map(f).max();
    Ok(RunSummary {
        run: dir.to_path_buf(),
        rule: config.local.rule,
        k: config.local.k,
        modules: plan.num_modules(),
        train_images: last.train_images,
        epochs: last.epoch,
        budget: metrics.iter().map(|m| m.train_images).sum(),
        test_images: last.test_images,
        test_accuracy: last.test_accuracy,
        aux_test_accuracy: last.aux_test_accuracy.clone(),
        aux_units: plan.isolation_points(),
        units: plan.network.num_units(),
        peak_heap_bytes: max(|m| m.peak_memory.heap_bytes),
        peak_rss_bytes: max(|m| m.peak_memory.rss_bytes),
        images_per_second: metrics.iter().map(|m| m.images_per_second).sum::<f64>()
            / metrics.len() as f64,
        wall_seconds: metrics
            .iter()
            .map(|m| m.train_seconds + m.eval_seconds)
            .sum(),
        command: format!(
            "auglocal train --config {} --out <new run directory>",
            dir.join("config.json").display()
        ),
    })
}

/// Prints the table and writes the files asked for.
pub fn run(args: &CompareArgs) -> Result<()> {
    // Every output is checked before any work: writable, a file, not inside a run directory.
    let check = |path: &Option<PathBuf>| {
        path.as_deref()
            .map(|p| OutputFile::check(p, args.overwrite))
            .transpose()
    };
    let (json, plot_budget, plot_heads) = (
        check(&args.json)?,
        check(&args.plot_budget)?,
        check(&args.plot_heads)?,
    );
    let mut runs = args
        .runs
        .iter()
        .map(|d| summarise(d))
        .collect::<Result<Vec<_>>>()?;
    runs.sort_by_key(|r| (r.budget, Rule::ALL.iter().position(|&x| x == r.rule)));
    print!("{}", markdown(&runs));
    if let Some(file) = json {
        file.write(serde_json::to_string_pretty(&runs)?.as_bytes())?;
    }
    if let Some(file) = plot_budget {
        plot::accuracy_by_budget(budget_lines(&runs), file.path())
            .with_context(|| format!("drawing {}", file.path().display()))?;
    }
    if let Some(file) = plot_heads {
        let (lines, units) = head_lines(&runs);
        plot::accuracy_by_module(lines, units, file.path())
            .with_context(|| format!("drawing {}", file.path().display()))?;
    }
    Ok(())
}

/// Test accuracy against budget: one line per rule, a point per run.
fn budget_lines(runs: &[RunSummary]) -> Vec<plot::Line> {
    Rule::ALL
        .into_iter()
        .filter_map(|rule| {
            let mut points: Vec<(f64, f64)> = runs
                .iter()
                .filter(|r| r.rule == rule)
                .map(|r| (r.budget as f64, 100.0 * r.test_accuracy))
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            (!points.is_empty()).then(|| plot::Line {
                rule,
                label: rule.to_string(),
                points,
            })
        })
        .collect()
}

/// Each rule's aux-head test accuracy against the unit the head reads, at the rule's largest
/// budget, ending with the primary network's accuracy at the last unit; and the most units of
/// those runs.
fn head_lines(runs: &[RunSummary]) -> (Vec<plot::Line>, usize) {
    let largest: Vec<&RunSummary> = Rule::ALL
        .iter()
        .filter_map(|rule| {
            runs.iter()
                .filter(|r| r.rule == *rule)
                .max_by_key(|r| r.budget)
        })
        .collect();
    let units = largest.iter().map(|r| r.units).max().unwrap_or(1);
    let lines = largest
        .into_iter()
        .map(|r| {
            let mut points: Vec<(f64, f64)> = r
                .aux_units
                .iter()
                .zip(r.aux_test_accuracy.iter().flatten())
                .map(|(&u, a)| (u as f64, 100.0 * a))
                .collect();
            points.push(((r.units - 1) as f64, 100.0 * r.test_accuracy));
            plot::Line {
                rule: r.rule,
                label: format!("{} ({} images)", r.rule, thousands(r.budget as u64)),
                points,
            }
        })
        .collect();
    (lines, units)
}

/// The runs as a Markdown table.
pub fn markdown(runs: &[RunSummary]) -> String {
    let mut out = String::from(
        "| rule | K | modules | training images x epochs | test accuracy | best aux head | peak heap MiB | peak RSS MiB | images/s | wall time |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in runs {
        let best = r
            .aux_test_accuracy
            .as_ref()
            .and_then(|a| a.iter().copied().reduce(f64::max))
            .map_or("-".into(), |a| format!("{:.2}%", 100.0 * a));
        out += &format!(
            "| {} | {} | {} | {} x {} | {:.2}% | {} | {} | {} | {:.1} | {:.0} min |\n",
            r.rule,
            if r.rule == Rule::Bp {
                "-".into()
            } else {
                r.k.map_or("N".into(), |k| k.to_string())
            },
            r.modules,
            thousands(r.train_images as u64),
            r.epochs,
            100.0 * r.test_accuracy,
            best,
            mib(r.peak_heap_bytes),
            mib(r.peak_rss_bytes),
            r.images_per_second,
            r.wall_seconds / 60.0,
        );
    }
    out
}
