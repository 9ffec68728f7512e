//! Pipelined training (update unlocking): the modules cut into stages
//! ([`auglocal_plan::StagePlan`]), each stage on an OS thread of its own, with its own device,
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

use auglocal_data::Normalize;
use auglocal_kernels::FastOpsAutodiff;
use auglocal_plan::StagePlan;
use burn::module::Module;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor};

use crate::TrainError;
use crate::execution::{Batch, Timing, thread_pool};
use crate::local::LocalModule;
use crate::pixels::restore;
use crate::step::{Measured, ModuleOptimizer, ModuleStats, StepStats, TrainUnit, step_modules};

/// Batches a boundary's channel holds besides the one being handed over.
pub const CAPACITY: usize = 0;

/// How to pipeline a trainer: its stages, each stage's device and the threads of each stage's
/// pool.
#[derive(Clone, Debug)]
pub struct Pipeline<B: Backend> {
    stages: StagePlan,
    devices: Vec<B::Device>,
    threads: usize,
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

    /// The stages.
    pub fn stages(&self) -> &StagePlan {
        &self.stages
    }

    /// The threads of each stage's pool.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Each stage's device.
    pub fn devices(&self) -> &[B::Device] {
        &self.devices
    }

    /// The modules of each stage.
    pub(crate) fn ranges(&self) -> Vec<Range<usize>> {
        self.stages.stages.iter().map(|s| s.modules()).collect()
    }
}

/// A batch in flight between stages: inner-backend tensors, never autodiff ones.
struct Carry<B: AutodiffBackend> {
    step: usize,
    x: Tensor<B::InnerBackend, 4>,
    targets: Tensor<B::InnerBackend, 1, Int>,
    /// The batch's images in [0, 1], when a module's objective needs them.
    pixels: Option<Tensor<B::InnerBackend, 4>>,
}

/// What a stage reports to the coordinating thread.
enum Report {
    /// The stats of the stage's modules for one step.
    Step {
        stage: usize,
        step: usize,
        batch: usize,
        modules: Vec<ModuleStats>,
    },
    /// The stage stopped on an error.
    Failed(TrainError),
}

/// One stage's share of the trainer: its modules and their optimisers, borrowed.
struct StagePart<'a, B: AutodiffBackend, U: TrainUnit<B>> {
    modules: &'a mut [LocalModule<B, U>],
    optimizers: &'a mut [ModuleOptimizer<B, U>],
}

/// Where and how a stage runs.
struct StagePlace<B: Backend> {
    stage: usize,
    device: B::Device,
    /// The trainer's device, when the stage's differs: its modules move there and back.
    home: Option<B::Device>,
    threads: usize,
}

/// Moves `modules` to `device` as trainable modules (Burn's `fork`), in place.
pub(crate) fn place<B: AutodiffBackend, U: TrainUnit<B>>(
    modules: &mut [LocalModule<B, U>],
    device: &B::Device,
) {
    for module in modules {
        replace_with::replace_with_or_abort(module, |m| m.fork(device));
    }
}

/// Steps `part` on every batch `input` yields, on its device, in a pool of its threads;
/// reports each step and hands the detached output to `output`. Returns the busy time.
fn run_stage<B: FastOpsAutodiff, U: TrainUnit<B>>(
    place_: StagePlace<B>,
    part: StagePart<'_, B, U>,
    lr: f64,
    input: Receiver<Carry<B>>,
    output: Option<SyncSender<Carry<B>>>,
    reports: mpsc::Sender<Report>,
) -> Duration {
    let mut busy = Duration::ZERO;
    let StagePlace {
        stage,
        device,
        home,
        threads,
    } = place_;
    let pool = match thread_pool(threads, format!("auglocal-stage{stage}")) {
        Ok(pool) => pool,
        Err(e) => {
            let _ = reports.send(Report::Failed(TrainError::Config(format!(
                "pipeline stage {stage}: {e}"
            ))));
            return busy;
        }
    };
    let StagePart {
        modules,
        optimizers,
    } = part;
    // The stage runs on a thread of its own pool, so that its kernels split their work over
    // this pool and not another stage's.
    pool.install(move || {
        if home.is_some() {
            place(modules, &device);
        }
        for carry in input.iter() {
            let start = Instant::now();
            let batch = carry.targets.dims()[0];
            // A fresh leaf on this stage's device: no autodiff node is shared between threads.
            let x = Tensor::<B, 4>::from_inner(carry.x.to_device(&device));
            let targets = Tensor::<B, 1, Int>::from_inner(carry.targets.to_device(&device));
            let pixels = carry
                .pixels
                .as_ref()
                .map(|p| Tensor::<B, 4>::from_inner(p.clone().to_device(&device)));
            let (h, measured) = step_modules(modules, optimizers, x, pixels, targets.clone(), lr);
            let stats = Measured::read(measured);
            busy += start.elapsed();
            let stats = match stats {
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
                modules: stats,
            };
            if reports.send(report).is_err() {
                break;
            }
            if let Some(out) = &output {
                let next = Carry {
                    step: carry.step,
                    x: h.inner(),
                    targets: targets.inner(),
                    pixels: carry.pixels,
                };
                if out.send(next).is_err() {
                    break;
                }
            }
        }
        if let Some(home) = &home {
            place(modules, home);
        }
        busy
    })
}

/// One step's batch size and, per stage, the stats it reported (if it did yet).
type Pending = (usize, Vec<Option<Vec<ModuleStats>>>);

/// Steps in order as stages report them: a step is complete once every stage reported it.
struct Collector {
    stages: usize,
    pending: BTreeMap<usize, Pending>,
    next: usize,
}

impl Collector {
    fn add(&mut self, stage: usize, step: usize, batch: usize, modules: Vec<ModuleStats>) {
        let entry = self
            .pending
            .entry(step)
            .or_insert_with(|| (batch, vec![None; self.stages]));
        entry.1[stage] = Some(modules);
    }

    /// The next step, if every stage reported it.
    fn pop(&mut self) -> Option<StepStats> {
        let (_, parts) = self.pending.get(&self.next)?;
        if parts.iter().any(Option::is_none) {
            return None;
        }
        let (batch, parts) = self.pending.remove(&self.next)?;
        self.next += 1;
        Some(StepStats::from_modules(
            batch,
            parts.into_iter().flatten().flatten(),
        ))
    }
}

/// Trains `modules` on `batches` at learning rate `lr`, pipelined: stage `s` holds the modules
/// `ranges[s]` on `devices[s]`, on a pool of `threads` threads. `on_step` sees every step's
/// stats in order; an error from it (a diverging loss, say) stops the pipeline: the stages
/// finish what they hold and stop. The modules stay borrowed from the trainer throughout and
/// end on `devices[0]`; the weights are those of sequential steps on the same batches.
#[allow(
    clippy::too_many_arguments,
    reason = "the trainer's parts and the run's context"
)]
pub(crate) fn run<B: FastOpsAutodiff, U: TrainUnit<B>>(
    ranges: &[Range<usize>],
    devices: &[B::Device],
    threads: usize,
    modules: &mut [LocalModule<B, U>],
    optimizers: &mut [ModuleOptimizer<B, U>],
    batches: impl Iterator<Item = Result<Batch<B>, TrainError>>,
    pixels: Option<Normalize>,
    lr: f64,
    on_step: &mut dyn FnMut(usize, &StepStats) -> Result<(), TrainError>,
) -> Result<Timing, TrainError> {
    let count = modules.len();
    let contiguous = ranges.first().map(|r| r.start) == Some(0)
        && ranges.last().map(|r| r.end) == Some(count)
        && ranges.windows(2).all(|w| w[0].end == w[1].start);
    if !contiguous || optimizers.len() != count {
        return Err(TrainError::Config(format!(
            "a pipeline of stages {ranges:?} does not cover the trainer's {count} modules"
        )));
    }
    if devices.len() != ranges.len() {
        return Err(TrainError::Config(format!(
            "{} devices for a pipeline of {} stages: give one device per stage",
            devices.len(),
            ranges.len()
        )));
    }
    let home = devices[0].clone();
    // Split the trainer's modules and optimisers into one borrowed share per stage.
    let mut parts = Vec::with_capacity(ranges.len());
    let (mut rest_modules, mut rest_optimizers) = (modules, optimizers);
    for range in ranges {
        let (m, rm) = rest_modules.split_at_mut(range.len());
        let (o, ro) = rest_optimizers.split_at_mut(range.len());
        parts.push(StagePart {
            modules: m,
            optimizers: o,
        });
        (rest_modules, rest_optimizers) = (rm, ro);
    }

    let start = Instant::now();
    let (busy, steps_done, outcome) = std::thread::scope(|scope| {
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
            let device = devices[stage].clone();
            let place = StagePlace {
                stage,
                home: (device != home).then(|| home.clone()),
                device,
                threads,
            };
            let reports = reports_tx.clone();
            handles
                .push(scope.spawn(move || run_stage(place, part, lr, this_input, output, reports)));
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
                    modules,
                } => {
                    collector.add(stage, step, batch, modules);
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
                    let x = images.inner();
                    let carry = Carry {
                        step,
                        pixels: pixels.as_ref().map(|n| restore(x.clone(), n)),
                        x,
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
        let busy: Vec<f64> = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p))
                    .as_secs_f64()
            })
            .collect();
        (busy, collector.next, failure)
    });
    let wall = start.elapsed();
    match outcome {
        Some(e) => Err(e),
        None => Ok(Timing {
            steps: steps_done,
            wall_seconds: wall.as_secs_f64(),
            busy_seconds: busy,
            reduce_seconds: Vec::new(),
        }),
    }
}
