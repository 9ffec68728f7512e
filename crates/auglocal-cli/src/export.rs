//! `auglocal export`: a run's primary network alone, for inference.

use std::path::PathBuf;

use anyhow::Result;
use auglocal_train::{EpochChoice, export_run};
use burn::backend::{Autodiff, Flex};
use clap::Args;

use crate::exit::usage;
use crate::format::thousands;
use crate::output::OutputFile;

/// Flags of `auglocal export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The run directory (only read).
    run_dir: PathBuf,
    /// Where to write the weights (safetensors); the manifest goes beside it with `.json`.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// The epoch to export [default: the last complete one]; the run must have kept its
    /// checkpoint (`train --keep-checkpoints best|all`).
    #[arg(long, value_name = "N", conflicts_with = "best")]
    epoch: Option<usize>,
    /// Export the epoch of the best test accuracy (the earliest of equals).
    #[arg(long)]
    best: bool,
    /// Replace FILE and its manifest if they exist.
    #[arg(long)]
    overwrite: bool,
}

/// Exports a run's primary network.
pub fn run(args: &ExportArgs) -> Result<()> {
    let manifest_path = auglocal_model::export::manifest_path(&args.out);
    if manifest_path == args.out {
        return Err(usage(format!(
            "--out {}: name the weights file (e.g. model.safetensors); its manifest goes \
             beside it as .json",
            args.out.display()
        )));
    }
    for path in [&args.out, &manifest_path] {
        OutputFile::check(path, args.overwrite)?;
    }
    let choice = match (args.epoch, args.best) {
        (Some(0), _) => return Err(usage("--epoch counts from 1")),
        (Some(n), _) => EpochChoice::Epoch(n),
        (None, true) => EpochChoice::Best,
        (None, false) => EpochChoice::Last,
    };
    // Reading a checkpoint and writing tensors needs no accelerator: the CPU backend.
    let exported =
        export_run::<Autodiff<Flex>>(&args.run_dir, choice, &args.out, &Default::default())?;
    let m = &exported.manifest;
    let trained = m.trained.as_ref();
    println!(
        "{}: epoch {} of {} ({}), test accuracy {}",
        args.run_dir.display(),
        exported.epoch,
        trained.map_or(0, |t| t.epochs),
        trained.map_or("", |t| t.rule.as_str()),
        trained
            .and_then(|t| t.test_accuracy)
            .map_or("n/a".into(), |a| format!("{:.2}%", 100.0 * a))
    );
    println!(
        "wrote {} ({} bytes, SHA-256 {}) and {}",
        args.out.display(),
        thousands(m.weights.bytes),
        m.weights.sha256,
        manifest_path.display()
    );
    println!(
        "  {} ({} units, {} classes{}), input {}x{}x{}",
        m.network.arch,
        m.summary.units,
        m.network.num_classes,
        if m.classes.is_some() { ", named" } else { "" },
        m.network.in_channels,
        m.network.image_size,
        m.network.image_size
    );
    Ok(())
}
