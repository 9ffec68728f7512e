//! How a trainer runs its steps. A run's configuration chooses one [`Execution`]; made
//! concrete for a plan, devices and threads it is a [`Strategy`], which
//! [`Trainer::train_batches`](crate::Trainer::train_batches) runs. Every strategy steps each
//! module with the same per-module step ([`crate::step`]); sequential and pipelined training
//! give the same weights, data-parallel replicas the same but for BatchNorm, which normalises
//! each replica's share of the batch apart.
//!
//! - [`Strategy::Sequential`]: every module in order on one batch, then the next batch: on the
//!   calling thread, or (with `threads`) on a thread of a pool of its own.
//! - [`Strategy::Pipelined`]: the modules cut into stages, each stage on a thread (and device)
//!   of its own, working on consecutive batches at once ([`crate::pipeline`]).
//! - [`Strategy::DataParallel`]: replicas of every module, each on a thread (and device) of
//!   its own and a share of every batch, their gradients averaged before each module's step
//!   ([`crate::data_parallel`]).

use std::time::Instant;

use auglocal_data::Normalize;
use auglocal_kernels::FastOpsAutodiff;
use auglocal_plan::{Plan, StagePlan};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::data_parallel::{self, DataParallel};
use crate::local::LocalModule;
use crate::pipeline::{self, Pipeline};
use crate::pixels::restore;
use crate::step::{Measured, ModuleOptimizer, StepStats, TrainUnit, step_modules};

/// How a run executes its steps, as its configuration records it (`config.json`); it may
/// change when a run resumes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", from = "ExecutionJson")]
pub enum Execution {
    /// Every module in order on one batch, then the next batch.
    #[default]
    Sequential,
    /// The modules cut into `stages` stages balanced by cost, one thread (and device) each
    /// ([`crate::pipeline`]).
    Pipelined {
        /// Stages, at least 1.
        stages: usize,
    },
    /// `replicas` replicas of the network, each on a thread (and device) of its own and a
    /// share of every batch, gradients averaged across them ([`crate::data_parallel`]).
    DataParallel {
        /// Replicas, at least 1.
        replicas: usize,
    },
}

/// What `config.json` may hold for [`Execution`]: the tagged form, or the number of pipeline
/// stages that runs recorded as `"pipeline": S` before there was a choice of strategies.
#[derive(Deserialize)]
#[serde(untagged)]
enum ExecutionJson {
    Stages(usize),
    Tagged(ExecutionTagged),
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum ExecutionTagged {
    Sequential,
    Pipelined { stages: usize },
    DataParallel { replicas: usize },
}

impl From<ExecutionJson> for Execution {
    fn from(json: ExecutionJson) -> Self {
        match json {
            ExecutionJson::Stages(stages)
            | ExecutionJson::Tagged(ExecutionTagged::Pipelined { stages }) => {
                Execution::Pipelined { stages }
            }
            ExecutionJson::Tagged(ExecutionTagged::Sequential) => Execution::Sequential,
            ExecutionJson::Tagged(ExecutionTagged::DataParallel { replicas }) => {
                Execution::DataParallel { replicas }
            }
        }
    }
}

impl Execution {
    /// Whether this is [`Execution::Sequential`] (what `config.json` leaves out).
    pub fn is_sequential(&self) -> bool {
        matches!(self, Execution::Sequential)
    }

    /// Pipeline stages, if pipelined.
    pub fn stages(&self) -> Option<usize> {
        match self {
            Execution::Pipelined { stages } => Some(*stages),
            _ => None,
        }
    }

    /// Data-parallel replicas, if data-parallel.
    pub fn replicas(&self) -> Option<usize> {
        match self {
            Execution::DataParallel { replicas } => Some(*replicas),
            _ => None,
        }
    }

    /// The devices it places work on: one per stage or replica (1 when sequential).
    pub fn devices(&self) -> usize {
        self.stages().or(self.replicas()).unwrap_or(1)
    }

    /// Checks what needs no plan.
    pub fn validate(&self) -> Result<(), TrainError> {
        match *self {
            Execution::Pipelined { stages: 0 } => Err(TrainError::Config(
                "a pipeline needs at least 1 stage, got 0".into(),
            )),
            Execution::DataParallel { replicas }
                if !(1..=data_parallel::MAX_REPLICAS).contains(&replicas) =>
            {
                Err(TrainError::Config(format!(
                    "{replicas} data-parallel replicas: give 1 to {}",
                    data_parallel::MAX_REPLICAS
                )))
            }
            _ => Ok(()),
        }
    }
}

/// An [`Execution`] made concrete: where and on how many threads the steps run.
#[derive(Clone, Debug)]
pub enum Strategy<B: Backend> {
    /// Every module in order, on the calling thread (`threads: None`, rayon's global pool for
    /// the kernels) or on a thread of a pool of `threads` threads of its own.
    Sequential {
        /// Threads of its own pool; `None`: the calling thread and rayon's global pool.
        threads: Option<usize>,
    },
    /// The modules pipelined in stages.
    Pipelined(Pipeline<B>),
    /// Replicas of every module, gradients averaged across them.
    DataParallel(DataParallel<B>),
}

impl<B: Backend> Default for Strategy<B> {
    /// Sequential, on the calling thread.
    fn default() -> Self {
        Strategy::Sequential { threads: None }
    }
}

impl<B: Backend> From<Pipeline<B>> for Strategy<B> {
    fn from(pipeline: Pipeline<B>) -> Self {
        Strategy::Pipelined(pipeline)
    }
}

impl<B: Backend> Strategy<B> {
    /// `execution` for `plan` on `device`, each pool (the one pool, or each stage's or
    /// replica's) of `threads` threads (`None`: sequential runs on the calling thread;
    /// pipeline stages and replicas divide the machine's cores).
    pub fn new(
        execution: Execution,
        threads: Option<usize>,
        plan: &Plan,
        device: &B::Device,
    ) -> Result<Self, TrainError> {
        execution.validate()?;
        Ok(match execution {
            Execution::Sequential => Strategy::Sequential { threads },
            Execution::Pipelined { stages } => {
                let pipeline = Pipeline::new(StagePlan::balance(plan, stages)?, device);
                Strategy::Pipelined(match threads {
                    Some(n) => pipeline.with_threads(n),
                    None => pipeline,
                })
            }
            Execution::DataParallel { replicas } => {
                let dp = DataParallel::new(replicas, device)?;
                Strategy::DataParallel(match threads {
                    Some(n) => dp.with_threads(n),
                    None => dp,
                })
            }
        })
    }

    /// Places stage or replica `s` on `devices[s]`; refuses a list that is not one device
    /// per stage or replica (one, sequential: the device the trainer is on, unchanged).
    pub fn with_devices(self, devices: Vec<B::Device>) -> Result<Self, TrainError> {
        Ok(match self {
            Strategy::Pipelined(p) => Strategy::Pipelined(p.with_devices(devices)?),
            Strategy::DataParallel(dp) => Strategy::DataParallel(
                DataParallel::with_devices(devices)?.with_threads(dp.threads()),
            ),
            Strategy::Sequential { .. } if devices.len() != 1 => {
                return Err(TrainError::Config(format!(
                    "{} devices for sequential training: give one, or pipeline or replicate \
                     the network",
                    devices.len()
                )));
            }
            sequential => sequential,
        })
    }

    /// Whether the steps run on the calling thread.
    pub(crate) fn on_calling_thread(&self) -> bool {
        matches!(self, Strategy::Sequential { threads: None })
    }
}

/// How long a run of steps took, and how busy each stage was.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Timing {
    /// Batches trained.
    pub steps: usize,
    /// Wall time from the first batch fed to the last step reported.
    pub wall_seconds: f64,
    /// Pipelined: each stage's time computing (not waiting for input or for room downstream);
    /// empty otherwise.
    pub busy_seconds: Vec<f64>,
    /// Data-parallel: each replica's time in the gradients' all-reduce, waiting for the other
    /// replicas included; empty otherwise.
    pub reduce_seconds: Vec<f64>,
}

impl Timing {
    /// The replicas' mean time in the all-reduce per step (0 unless data-parallel).
    pub fn reduce_seconds_per_step(&self) -> f64 {
        let n = self.reduce_seconds.len().max(1) as f64;
        self.reduce_seconds.iter().sum::<f64>() / n / self.steps.max(1) as f64
    }

    /// Each stage's busy time over the wall time (empty unless pipelined).
    pub fn busy_fractions(&self) -> Vec<f64> {
        self.busy_seconds
            .iter()
            .map(|b| b / self.wall_seconds.max(1e-9))
            .collect()
    }
}

/// Images and targets of one batch, on the trainer's device.
pub type Batch<B> = (Tensor<B, 4>, Tensor<B, 1, Int>);

/// Runs `batches` through `modules` as `strategy` says; `on_step` sees every step's stats in
/// order, and an error from it stops the run.
pub(crate) fn run<B: FastOpsAutodiff, U: TrainUnit<B>>(
    strategy: &Strategy<B>,
    modules: &mut [LocalModule<B, U>],
    optimizers: &mut [ModuleOptimizer<B, U>],
    batches: impl Iterator<Item = Result<Batch<B>, TrainError>>,
    pixels: Option<Normalize>,
    lr: f64,
    on_step: &mut dyn FnMut(usize, &StepStats) -> Result<(), TrainError>,
) -> Result<Timing, TrainError> {
    match strategy {
        Strategy::Sequential { threads: None } => {
            let start = Instant::now();
            let mut steps = 0;
            for (step, batch) in batches.enumerate() {
                let (images, targets) = batch?;
                let size = targets.dims()[0];
                let batch_pixels = pixels.as_ref().map(|n| restore(images.clone(), n));
                let (_, measured) =
                    step_modules(modules, optimizers, images, batch_pixels, targets, lr);
                // One read of every module's loss and count per step.
                let stats = StepStats::from_modules(size, Measured::read(measured)?);
                on_step(step, &stats)?;
                steps += 1;
            }
            Ok(Timing {
                steps,
                wall_seconds: start.elapsed().as_secs_f64(),
                ..Timing::default()
            })
        }
        Strategy::Sequential {
            threads: Some(threads),
        } => {
            // One stage holding every module: the steps run on a thread of a pool of its own.
            let device = home_device(modules);
            let whole = std::iter::once(0..modules.len()).collect::<Vec<_>>();
            let mut timing = pipeline::run(
                &whole,
                std::slice::from_ref(&device),
                *threads,
                modules,
                optimizers,
                batches,
                pixels,
                lr,
                on_step,
            )?;
            timing.busy_seconds.clear();
            Ok(timing)
        }
        Strategy::Pipelined(p) => pipeline::run(
            &p.ranges(),
            p.devices(),
            p.threads(),
            modules,
            optimizers,
            batches,
            pixels,
            lr,
            on_step,
        ),
        Strategy::DataParallel(dp) => {
            data_parallel::run(dp, modules, optimizers, batches, pixels, lr, on_step)
        }
    }
}

/// A rayon pool of `threads` threads named `{name}-{i}`, for a pipeline stage or a replica
/// (whose kernels then split their work over this pool and not another's); the error says
/// why it could not be built.
pub(crate) fn thread_pool(threads: usize, name: String) -> Result<rayon::ThreadPool, String> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(move |i| format!("{name}-{i}"))
        .build()
        .map_err(|e| format!("its thread pool could not be built: {e}"))
}

/// The device the modules are on (between runs, all on the trainer's).
pub(crate) fn home_device<B: FastOpsAutodiff, U: TrainUnit<B>>(
    modules: &[LocalModule<B, U>],
) -> B::Device {
    use burn::module::Module;
    modules
        .first()
        .and_then(|m| m.devices().into_iter().next())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TrainConfig;

    #[test]
    fn execution_round_trips_through_config_json_and_reads_the_old_pipeline_field() {
        let pipelined = TrainConfig {
            execution: crate::ExecutionSettings {
                strategy: Execution::Pipelined { stages: 3 },
                ..Default::default()
            },
            ..TrainConfig::default()
        };
        let json = serde_json::to_value(&pipelined).expect("serialises");
        assert_eq!(
            json["execution"],
            serde_json::json!({"strategy": {"pipelined": {"stages": 3}}})
        );
        let back: TrainConfig = serde_json::from_value(json).expect("parses");
        assert_eq!(back, pipelined);

        // Sequential is the default and is left out.
        let mut json = serde_json::to_value(TrainConfig::default()).expect("serialises");
        assert!(json.get("execution").is_none(), "{json}");
        // (Those runs' files have no `format`.)
        json.as_object_mut().expect("object").remove("format");
        // Runs written before the configuration had sections recorded the strategy itself as
        // `execution`, and before that `"pipeline": S`.
        let mut with = json.clone();
        with["execution"] = serde_json::json!("sequential");
        let back: TrainConfig = serde_json::from_value(with).expect("parses");
        assert_eq!(back.execution.strategy, Execution::Sequential);
        let mut old = json;
        old["pipeline"] = serde_json::json!(2);
        let back: TrainConfig = serde_json::from_value(old).expect("parses");
        assert_eq!(back.execution.strategy, Execution::Pipelined { stages: 2 });
    }

    #[test]
    fn unknown_executions_and_empty_pipelines_are_refused() {
        let parse = |v: serde_json::Value| serde_json::from_value::<Execution>(v);
        assert!(parse(serde_json::json!("sideways")).is_err());
        assert!(parse(serde_json::json!({"pipelined": {"stages": 2, "x": 1}})).is_err());
        assert!(parse(serde_json::json!(-1)).is_err());
        let empty = Execution::Pipelined { stages: 0 };
        assert!(empty.validate().is_err());
        let config = TrainConfig {
            execution: crate::ExecutionSettings {
                strategy: empty,
                ..Default::default()
            },
            ..TrainConfig::default()
        };
        let err = config.validate().expect_err("refused");
        assert!(err.to_string().contains("at least 1 stage"), "{err}");
    }
}
