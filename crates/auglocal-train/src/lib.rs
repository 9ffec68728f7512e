#![doc = include_str!("../README.md")]
//!
//! ## In this crate
//!
//! - [`Trainer`]: the step ([`Trainer::step`]) and the epoch, with one SGD optimiser per
//!   module ([`sgd_config`]: Nesterov momentum, coupled weight decay, as the reference).
//! - [`Run`]: a run directory ([`rundir`]) with `config.json`, `plan.json`, `metrics.jsonl`
//!   and verified, atomic [`checkpoint`]s, held by one process at a time; [`Run::resume`]
//!   continues from the last complete epoch or refuses, and [`evaluate_run`] only reads.
//! - [`execution`]: how the steps run, one [`Execution`] in the run's configuration:
//!   sequentially, as a [`pipeline`] of stages on threads and devices, or as
//!   [`data_parallel`] replicas ([`Trainer::train_batches`]), in one process or in several
//!   joined as [`nodes`] (MPI with the `mpi` feature); every strategy calls the one
//!   per-module step ([`step`]).
//! - [`export_run`]: a run's primary network at an epoch ([`EpochChoice`]), alone, as an
//!   [`auglocal_model::export`] file for inference.
//! - [`footprint`]: the memory a run needs at least, checked before anything is allocated.
//! - [`memory`]: peak heap (a counting allocator) and RSS high-water, per epoch.
//! - [`Schedule`]: the reference's cosine with warm-up, or constant.

pub mod bounded;
mod built;
pub mod checkpoint;
mod config;
pub mod data_parallel;
mod error;
pub mod execution;
mod export;
pub mod footprint;
pub mod local;
pub mod memory;
mod metrics;
#[cfg(feature = "mpi")]
pub mod mpi;
pub mod nodes;
pub mod pipeline;
pub mod pixels;
pub mod progress;
mod reopen;
mod run;
pub mod rundir;
mod schedule;
pub mod step;
mod trainer;

pub use config::{
    CONFIG_FORMAT, DataSettings, ExecutionSettings, Keep, LocalSettings, MAX_BATCH, MAX_EPOCHS,
    MAX_NODES, MAX_THREADS, MAX_WORKERS, NetworkSettings, SgdSettings, TrainConfig, best_epoch,
};
pub use error::{DivergedRun, TrainError};
pub use execution::{Execution, Strategy, Timing};
pub use export::{EpochChoice, RunExport, export_run};
pub use local::{LocalModule, LocalNetwork, Output};
pub use metrics::EpochMetrics;
pub use reopen::{RunEvaluation, evaluate_run};
pub use run::Run;
pub use rundir::{read_config, read_metrics, read_plan};
pub use schedule::{Schedule, WARMUP_EPOCHS, scaled_warmup};
pub use step::{ModuleOptimizer, ModuleStats, OptimizerRecord, StepStats, TrainUnit};
pub use trainer::{EpochTraining, Evaluation, Trainer, evaluate, sgd_config};
