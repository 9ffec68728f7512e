//! Pipelined training (update unlocking): the modules cut into stages
//! ([`auglocal_aux::StagePlan`]), each stage on an OS thread of its own, with its own device,
//! its own rayon pool, its modules and their optimisers. Stage `s` takes batch `t` from stage
//! `s - 1`, steps its modules exactly as the sequential trainer does, and hands its detached
//! output on, while stage `s - 1` already trains on batch `t + 1`.
//!
//! **Exactness.** No gradient crosses a module boundary, and each stage takes the batches in
//! order, so module `m` sees for batch `t` the output module `m - 1` computed with its weights
//! before its own step `t`, as in sequential training: the weights and losses are the same,
//! bit for bit on the CPU backend (`tests/pipeline.rs`).
//!
//! **What crosses threads.** Inner-backend tensors only (never autodiff tensors, whose graph
//! nodes would tie the stages' graphs together): a stage re-wraps its input as a fresh leaf on
//! its own device. Between two devices the tensor moves with Burn's `to_device`.
//!
//! **Memory.** Each boundary is a rendezvous channel ([`CAPACITY`] 0): a stage that finished
//! batch t waits until the next stage takes it, so a boundary holds at most one batch's
//! activation besides the batches its two stages train on. (Capacity 1 measured the same
//! speed and 11% more peak heap: `results/pipeline-cpu/`.)

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::time::{Duration, Instant};

use auglocal_aux::StagePlan;
use auglocal_kernels::FastOpsAutodiff;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor};

use crate::TrainError;
use crate::local::LocalModule;
use crate::trainer::{ModuleOptimizer, StepStats, TrainUnit, Trainer, read_back, step_modules};

/// Batches a boundary's channel holds besides the one being handed over.
pub const CAPACITY: usize = 0;

/// A fault to inject, for the tests that show the exactness test can fail.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fault {
    /// None.
    #[default]
    None,
    /// Stage `stage` hands on the output of its modules *after* their step (recomputed with
    /// the updated weights): what a wrong pipeline would do.
    FeedUpdated {
        /// The stage.
        stage: usize,
    },
    /// Stage `stage` sleeps after each batch: a slow device. Results must not change.
    Delay {
        /// The stage.
        stage: usize,
        /// Milliseconds per batch.
        millis: u64,
    },
}

/// How to pipeline a trainer: its stages, each stage's device and the threads of each stage's
/// pool.
#[derive(Clone, Debug)]
pub struct Pipeline<B: Backend> {
    stages: StagePlan,
    devices: Vec<B::Device>,
    threads: usize,
    fault: Fault,
}

/// The threads each of `stages` stages gets by default: the machine's cores divided among
/// them, at least one.
pub fn default_threads(stages: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / stages.max(1)).max(1)
}

impl<B: Backend> Pipeline<B> {
    /// `stages`, every stage on `device`, the cores divided among them.
    pub fn new(stages: StagePlan, device: &B::Device) -> Self {
        let n = stages.len();
        Self {
            stages,
            devices: vec![device.clone(); n],
            threads: default_threads(n),
            fault: Fault::None,
        }
    }

    /// Stage `s` on `devices[s]`; refuses a list that is not one device per stage.
    pub fn with_devices(self, devices: Vec<B::Device>) -> Result<Self, TrainError> {
        if devices.len() != self.stages.len() {
            return Err(TrainError::Config(format!(
                "{} devices for a pipeline of {} stages: give one device per stage",
                devices.len(),
                self.stages.len()
            )));
        }
        Ok(Self { devices, ..self })
    }

    /// Each stage's rayon pool gets `threads` threads (at least 1).
    pub fn with_threads(self, threads: usize) -> Self {
        Self {
            threads: threads.max(1),
            ..self
        }
    }

    #[doc(hidden)]
    pub fn with_fault(self, fault: Fault) -> Self {
        Self { fault, ..self }
    }

    /// The stages.
    pub fn stages(&self) -> &StagePlan {
        &self.stages
    }

    /// The threads of each stage's pool.
    pub fn threads(&self) -> usize {
        self.threads
    }

    fn ranges(&self) -> Vec<Range<usize>> {
        self.stages.stages.iter().map(|s| s.modules()).collect()
    }
}

/// How busy each stage was over a pipelined run of batches.
#[derive(Clone, Debug, PartialEq)]
pub struct PipelineTiming {
    /// Wall time from the first batch fed to the last step reported.
    pub wall_seconds: f64,
    /// Each stage's time computing (not waiting for input or for room downstream).
    pub busy_seconds: Vec<f64>,
}

impl PipelineTiming {
    /// Each stage's busy time over the wall time.
    pub fn busy_fractions(&self) -> Vec<f64> {
        self.busy_seconds
            .iter()
            .map(|b| b / self.wall_seconds.max(1e-9))
            .collect()
    }
}

/// A batch in flight between stages: inner-backend tensors, never autodiff ones.
struct Carry<B: AutodiffBackend> {
    step: usize,
    x: Tensor<B::InnerBackend, 4>,
    targets: Tensor<B::InnerBackend, 1, Int>,
}

/// What a stage reports to the coordinating thread.
enum Report {
    /// The (loss, correct) pairs of the stage's modules for one step.
    Step {
        stage: usize,
        step: usize,
        batch: usize,
        values: Vec<f32>,
    },
    /// The stage stopped on an error.
    Failed(TrainError),
}

/// One stage's part of the network, and where it runs.
struct StagePart<B: AutodiffBackend, U: TrainUnit<B>> {
    modules: Vec<LocalModule<B, U>>,
    optimizers: Vec<ModuleOptimizer<B, U>>,
}

/// Steps `part` on every batch `input` yields, on `device`, in a pool of `threads` threads;
/// reports each step and hands the detached output to `output`. Returns the part and its busy
/// time.
#[allow(clippy::too_many_arguments, reason = "one thread's whole context")]
fn run_stage<B: FastOpsAutodiff, U: TrainUnit<B>>(
    stage: usize,
    mut part: StagePart<B, U>,
    device: B::Device,
    threads: usize,
    lr: f64,
    fault: Fault,
    input: Receiver<Carry<B>>,
    output: Option<SyncSender<Carry<B>>>,
    reports: mpsc::Sender<Report>,
) -> (StagePart<B, U>, Duration) {
    let mut busy = Duration::ZERO;
    let pool = match rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(move |i| format!("auglocal-stage{stage}-{i}"))
        .build()
    {
        Ok(pool) => pool,
        Err(e) => {
            let _ = reports.send(Report::Failed(TrainError::Config(format!(
                "the thread pool of pipeline stage {stage} could not be built: {e}"
            ))));
            return (part, busy);
        }
    };
    let n = part.modules.len();
    // The stage runs on a thread of its own pool, so that its kernels split their work over
    // this pool and not another stage's.
    pool.install(move || {
        let loss = CrossEntropyLossConfig::new().init(&device);
        for carry in input.iter() {
            let start = Instant::now();
            let batch = carry.targets.dims()[0];
            // A fresh leaf on this stage's device: no autodiff node is shared between threads.
            let x = Tensor::<B, 4>::from_inner(carry.x.to_device(&device));
            let targets = Tensor::<B, 1, Int>::from_inner(carry.targets.to_device(&device));
            let kept =
                matches!(fault, Fault::FeedUpdated { stage: s } if s == stage).then(|| x.clone());
            let (mut h, measured) = step_modules(
                &mut part.modules,
                &mut part.optimizers,
                &loss,
                x,
                targets.clone(),
                lr,
            );
            if let Some(x) = kept {
                h = part
                    .modules
                    .iter()
                    .fold(x, |x, m| m.forward_units(x))
                    .detach();
            }
            let values = read_back(Tensor::cat(measured, 0), 2 * n, "losses");
            busy += start.elapsed();
            let values = match values {
                Ok(v) => v,
                Err(e) => {
                    let _ = reports.send(Report::Failed(e));
                    break;
                }
            };
            let report = Report::Step {
                stage,
                step: carry.step,
                batch,
                values,
            };
            if reports.send(report).is_err() {
                break;
            }
            if let Fault::Delay { stage: s, millis } = fault
                && s == stage
            {
                std::thread::sleep(Duration::from_millis(millis));
            }
            if let Some(out) = &output {
                let next = Carry {
                    step: carry.step,
                    x: h.inner(),
                    targets: targets.inner(),
                };
                if out.send(next).is_err() {
                    break;
                }
            }
        }
        (part, busy)
    })
}

/// One step's batch size and, per stage, the values it reported (if it did yet).
type Pending = (usize, Vec<Option<Vec<f32>>>);

/// Steps in order as stages report them: a step is complete once every stage reported it.
struct Collector {
    stages: usize,
    pending: BTreeMap<usize, Pending>,
    next: usize,
}

impl Collector {
    fn add(&mut self, stage: usize, step: usize, batch: usize, values: Vec<f32>) {
        let entry = self
            .pending
            .entry(step)
            .or_insert_with(|| (batch, vec![None; self.stages]));
        entry.1[stage] = Some(values);
    }

    /// The next step, if every stage reported it.
    fn pop(&mut self) -> Option<StepStats> {
        let (batch, parts) = self.pending.get(&self.next)?;
        if parts.iter().any(Option::is_none) {
            return None;
        }
        let values: Vec<f32> = parts.iter().flatten().flatten().copied().collect();
        let stats = StepStats::from_values(*batch, &values);
        self.pending.remove(&self.next);
        self.next += 1;
        Some(stats)
    }
}

/// Moves `modules` to `device` as trainable modules (Burn's `fork`), unless already there.
fn place<B: AutodiffBackend, M: Module<B>>(
    modules: Vec<M>,
    device: &B::Device,
    moved: bool,
) -> Vec<M> {
    if moved {
        modules.into_iter().map(|m| m.fork(device)).collect()
    } else {
        modules
    }
}

impl<B: FastOpsAutodiff, U: TrainUnit<B>> Trainer<B, U> {
    /// Trains on `batches` at learning rate `lr` with the modules pipelined as `pipeline` cuts
    /// them; `on_step` sees every step's stats in order (an error from it, a diverging loss
    /// say, stops the pipeline: the stages finish what they hold and stop). The weights after
    /// it are those of [`Trainer::step`] on the same batches.
    pub fn train_pipelined(
        &mut self,
        batches: impl Iterator<Item = Result<(Tensor<B, 4>, Tensor<B, 1, Int>), TrainError>>,
        lr: f64,
        pipeline: &Pipeline<B>,
        on_step: &mut dyn FnMut(usize, &StepStats) -> Result<(), TrainError>,
    ) -> Result<PipelineTiming, TrainError> {
        let ranges = pipeline.ranges();
        let modules = self.network.modules.len();
        if ranges.last().map(|r| r.end) != Some(modules) || ranges[0].start != 0 {
            return Err(TrainError::Config(format!(
                "a pipeline of stages {ranges:?} does not cover the trainer's {modules} modules"
            )));
        }
        let home = pipeline.devices[0].clone();
        let moved = pipeline.devices.iter().any(|d| *d != home);
        let mut all_modules = std::mem::take(&mut self.network.modules);
        let mut all_optimizers = std::mem::take(&mut self.optimizers);
        let mut parts = Vec::with_capacity(ranges.len());
        for (range, device) in ranges.iter().zip(&pipeline.devices).rev() {
            let modules = place(all_modules.split_off(range.start), device, moved);
            let optimizers = all_optimizers.split_off(range.start);
            parts.push(StagePart {
                modules,
                optimizers,
            });
        }
        parts.reverse();

        let start = Instant::now();
        let (returned, outcome) = std::thread::scope(|scope| {
            let (feed, first_input) = mpsc::sync_channel::<Carry<B>>(CAPACITY);
            let (reports_tx, reports) = mpsc::channel::<Report>();
            let last = parts.len() - 1;
            let mut input = Some(first_input);
            let mut handles = Vec::with_capacity(parts.len());
            for (stage, part) in parts.into_iter().enumerate() {
                let this_input = input.take().expect("each stage's input is made once");
                let output = (stage < last).then(|| {
                    let (tx, rx) = mpsc::sync_channel(CAPACITY);
                    input = Some(rx);
                    tx
                });
                let device = pipeline.devices[stage].clone();
                let reports = reports_tx.clone();
                let (threads, fault) = (pipeline.threads, pipeline.fault);
                handles.push(scope.spawn(move || {
                    run_stage(
                        stage, part, device, threads, lr, fault, this_input, output, reports,
                    )
                }));
            }
            drop(reports_tx);
            let mut collector = Collector {
                stages: last + 1,
                pending: BTreeMap::new(),
                next: 0,
            };
            let mut failure: Option<TrainError> = None;
            let mut handle = |report: Report, failure: &mut Option<TrainError>| {
                if failure.is_some() {
                    return;
                }
                match report {
                    Report::Step {
                        stage,
                        step,
                        batch,
                        values,
                    } => {
                        collector.add(stage, step, batch, values);
                        while let Some(stats) = collector.pop() {
                            if let Err(e) = on_step(collector.next - 1, &stats) {
                                *failure = Some(e);
                                return;
                            }
                        }
                    }
                    Report::Failed(e) => *failure = Some(e),
                }
            };
            let mut feed = Some(feed);
            for (step, batch) in batches.enumerate() {
                match batch {
                    Ok((images, targets)) => {
                        let carry = Carry {
                            step,
                            x: images.inner(),
                            targets: targets.inner(),
                        };
                        let sent = feed.as_ref().is_some_and(|f| f.send(carry).is_ok());
                        if !sent {
                            break;
                        }
                    }
                    Err(e) => failure = failure.or(Some(e)),
                }
                while let Ok(report) = reports.try_recv() {
                    handle(report, &mut failure);
                }
                if failure.is_some() {
                    break;
                }
            }
            // No more batches: the stages drain what they hold and stop.
            drop(feed.take());
            for report in reports.iter() {
                handle(report, &mut failure);
            }
            let returned: Vec<(StagePart<B, U>, Duration)> = handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect();
            (returned, failure)
        });
        let wall = start.elapsed();
        let mut busy = Vec::with_capacity(returned.len());
        for (part, stage_busy) in returned {
            self.network
                .modules
                .extend(place(part.modules, &home, moved));
            self.optimizers.extend(part.optimizers);
            busy.push(stage_busy.as_secs_f64());
        }
        match outcome {
            Some(e) => Err(e),
            None => Ok(PipelineTiming {
                wall_seconds: wall.as_secs_f64(),
                busy_seconds: busy,
            }),
        }
    }
}
