#![doc = include_str!("../README.md")]

mod advice;
mod args;
mod bench;
mod compare;
mod data;
mod device;
mod exit;
mod export;
mod format;
mod nodes;
mod output;
mod plan;
mod plot;
mod predict;
mod train;

use std::process::ExitCode;

use auglocal_train::memory::CountingAllocator;

/// Counts live heap bytes, for the peak training memory that `train` reports.
#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;
use clap::{Parser, Subcommand};

/// Supervised local learning for deep image classifiers (AugLocal, ICLR 2024), on Burn.
///
/// The primary network is cut into gradient-isolated modules, each trained by its own small
/// auxiliary network on a local loss; activations are detached between modules,
/// so a module's graph is freed as soon as its own backward pass is done.
#[derive(Parser, Debug)]
#[command(name = "auglocal", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "parsed once per process; boxing would not pay"
)]
enum Command {
    /// Print the local-learning plan of a network: its gradient-isolated modules, the
    /// auxiliary network of each, and their parameter and compute costs.
    Plan(plan::PlanArgs),
    /// Find a data set's files, read and check them, and show what the network will see:
    /// image counts, shapes, augmentation and normalisation.
    Data(data::DataArgs),
    /// Train a network with local learning (or backprop), writing a run directory:
    /// config.json, plan.json, metrics.jsonl and checkpoints. Without flags, a short demo.
    Train(train::TrainArgs),
    /// Evaluate the latest checkpoint of a run directory on its test set.
    Eval(train::EvalArgs),
    /// Write a run's trained primary network alone (no aux nets, no optimiser state) as
    /// safetensors, with a JSON manifest to rebuild and feed it.
    Export(export::ExportArgs),
    /// Classify PNG/JPEG images with an exported model: top classes and probabilities, and
    /// the accuracy on class folders.
    Predict(predict::PredictArgs),
    /// Measure training speed and peak memory of each rule on the same batches, with the
    /// ratios to backprop (each rule in a process of its own).
    Bench(bench::BenchArgs),
    /// Compare run directories: final test accuracy, aux-head accuracies, memory and speed,
    /// as a table, JSON and charts.
    Compare(compare::CompareArgs),
    /// Check the processes of an MPI job (`mpirun -np M auglocal nodes`): back-to-back
    /// all-reduces of varying sizes through the layer `train` averages gradients with, each
    /// result checked exactly; `--drill` rehearses a node's failure.
    Nodes(nodes::NodesArgs),
}

fn main() -> ExitCode {
    // Reuse freed memory instead of faulting it in again every step (glibc; a no-op elsewhere).
    auglocal_train::memory::keep_freed_memory();
    let cli = Cli::parse();
    // A misspelt AUGLOCAL_KERNELS (or AUGLOCAL_CONV_BACKWARD) is refused, never silently taken as the default.
    let checked = auglocal_kernels::Kernels::from_env().map_err(|e| exit::usage(e.to_string()));
    let result = checked.and_then(|_| match cli.command {
        Command::Plan(args) => plan::run(&args),
        Command::Data(args) => data::run(&args),
        Command::Train(args) => train::run(&args),
        Command::Eval(args) => train::eval(&args),
        Command::Export(args) => export::run(&args),
        Command::Predict(args) => predict::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Compare(args) => compare::run(&args),
        Command::Nodes(args) => nodes::run(&args),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", advice::message(&err));
            exit::code(&err)
        }
    }
}
