//! Data-parallel replicas inside one process: N copies of the whole network, each on an OS
//! thread of its own with its own device and rayon pool, each stepping every module on its
//! share of the batch. After a module's backward pass its gradients are averaged across the
//! replicas with Burn's `burn-collective` (all-reduce), weighted by the replicas' shares,
//! before its optimiser steps, so every replica applies the same update and the replicas'
//! weights stay identical (checked at the end of every run of steps).
//!
//! **What is averaged when.** Module by module, in order: module `m`'s gradients are reduced
//! as soon as its backward pass is done, before its optimiser steps and module `m + 1`
//! forwards. A module's gradients travel packed into one tensor ([`all_reduce_packed`]): one
//! all-reduce per module and step.
//!
//! **Shards.** A batch of `b` images is cut in order into `n` shards whose sizes differ by at
//! most one ([`shard_sizes`]); replica `r`'s gradients (of the mean loss over its shard) are
//! weighted by `b_r / b`, so the average is the gradient of the mean loss over the whole batch
//! (BatchNorm aside). When `n` divides `b` every weight is `1 / n`, applied as the
//! all-reduce's mean with nothing scaled. A batch of fewer than `n` images (a last, partial
//! batch) is not trained on.
//!
//! **BatchNorm** normalises with each replica's own shard statistics, as PyTorch's DDP
//! without SyncBN (the reference's default). Running statistics follow DDP's default
//! (`broadcast_buffers`, rank 0's): replica 0 trains the trainer's own modules, whose running
//! statistics see replica 0's shards; the other replicas' copies are dropped after the run.
//!
//! **Backends.** Exact on the CPU backend. On WGPU (lavapipe) two replicas on one device
//! ended runs of one to three steps with weights 3e-3 to 4e-2 apart, which the final check
//! turns into [`TrainError::ReplicasDiverged`]; the cause is not found. CUDA is untested.
//!
//! **Several processes.** With [`Nodes`] ([`DataParallel::with_nodes`]: the processes of an
//! MPI job, each running this code with `n` replicas), the `M x n` replicas form one group:
//! replica `r` of node `k` is global replica `k * n + r` and takes that shard of the batch of
//! `M x n` shards, which every node loads whole. A module's gradients are averaged inside the
//! node first (burn-collective), then over the nodes ([`Nodes::mean`]); a step's stats are
//! summed over the nodes, so every node sees the whole batch's. A run of steps ends by
//! checking that every node holds the same weights (a fingerprint).
//!
//! **Failure.** A replica that fails (an error or a panic) resets the collective, which
//! releases the replicas waiting in an all-reduce with an error: the run stops with the first
//! error, and the trainer keeps replica 0's modules. A module steps only once every replica
//! joined its all-reduce, so those are the modules of the last complete step, except that in
//! the failed step the modules before the failing one have stepped. A failing `on_step` stops
//! the run after a complete step.

use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use auglocal_data::Normalize;
use auglocal_kernels::FastOpsAutodiff;
use burn::collective::{
    CollectiveConfig, CollectiveError, PeerId, ReduceOperation, all_reduce, finish_collective,
    register, reset_collective,
};
use burn::module::{AutodiffModule, Module, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData, TensorPrimitive};

use crate::TrainError;
use crate::execution::{Batch, Timing, home_device, thread_pool};
use crate::local::LocalModule;
use crate::nodes::{Nodes, fingerprint};
use crate::pipeline::{default_threads, place};
use crate::pixels::restore;
use crate::step::{
    Measured, ModuleOptimizer, ModuleStats, StepStats, TrainUnit, read_back, step_modules_with,
};

/// The most replicas in one process.
pub const MAX_REPLICAS: usize = 64;

/// How to replicate a trainer: one device per replica and the threads of each replica's pool.
#[derive(Clone, Debug)]
pub struct DataParallel<B: Backend> {
    devices: Vec<B::Device>,
    threads: usize,
    /// The processes this one trains with, if several.
    nodes: Option<Arc<dyn Nodes>>,
}

impl<B: Backend> DataParallel<B> {
    /// `replicas` replicas, all on `device`, the machine's cores divided among them; refuses 0
    /// and more than [`MAX_REPLICAS`].
    pub fn new(replicas: usize, device: &B::Device) -> Result<Self, TrainError> {
        Self::with_devices(vec![device.clone(); replicas])
    }

    /// Replica `r` on `devices[r]` (one replica per device listed).
    pub fn with_devices(devices: Vec<B::Device>) -> Result<Self, TrainError> {
        let n = devices.len();
        if n == 0 || n > MAX_REPLICAS {
            return Err(TrainError::Config(format!(
                "{n} data-parallel replicas: give 1 to {MAX_REPLICAS}"
            )));
        }
        Ok(Self {
            devices,
            threads: default_threads(n),
            nodes: None,
        })
    }

    /// The replicas of this process join those of the other `nodes` (processes running the
    /// same code on the same batches) into one data-parallel group.
    pub fn with_nodes(self, nodes: Arc<dyn Nodes>) -> Self {
        Self {
            nodes: Some(nodes),
            ..self
        }
    }

    /// The processes this one trains with, if any.
    pub fn nodes(&self) -> Option<&Arc<dyn Nodes>> {
        self.nodes.as_ref()
    }

    /// The replicas of every node together.
    pub fn world(&self) -> usize {
        self.replicas() * self.nodes.as_ref().map_or(1, |n| n.size())
    }

    /// Each replica's rayon pool gets `threads` threads (at least 1).
    pub fn with_threads(self, threads: usize) -> Self {
        Self {
            threads: threads.max(1),
            ..self
        }
    }

    /// The number of replicas.
    pub fn replicas(&self) -> usize {
        self.devices.len()
    }

    /// Each replica's device.
    pub fn devices(&self) -> &[B::Device] {
        &self.devices
    }

    /// The threads of each replica's pool.
    pub fn threads(&self) -> usize {
        self.threads
    }
}

/// The images of each shard of a batch of `batch` images cut for `replicas` replicas, in
/// order, sizes differing by at most one (the first `batch % replicas` one larger); `None`
/// when the batch has fewer images than replicas.
pub fn shard_sizes(batch: usize, replicas: usize) -> Option<Vec<usize>> {
    if replicas == 0 || batch < replicas {
        return None;
    }
    let (base, extra) = (batch / replicas, batch % replicas);
    Some(
        (0..replicas)
            .map(|r| base + usize::from(r < extra))
            .collect(),
    )
}

/// One replica's share of a step.
struct Shard<B: AutodiffBackend> {
    x: Tensor<B::InnerBackend, 4>,
    targets: Tensor<B::InnerBackend, 1, Int>,
    /// What its gradients are scaled by before the all-reduce's mean: `b_r * n / b` (1 when
    /// the shards are equal).
    scale: Option<f32>,
}

/// What a replica reports for a step: its shard's size and stats, or its error.
type Report = Result<(usize, Vec<ModuleStats>), TrainError>;

/// One replica's modules and optimisers: replica 0 borrows the trainer's, the others own
/// copies.
struct ReplicaPart<'a, B: AutodiffBackend, U: TrainUnit<B>> {
    modules: &'a mut [LocalModule<B, U>],
    optimizers: &'a mut [ModuleOptimizer<B, U>],
}

/// A copy of `modules` on `device` with fresh autodiff leaves and BatchNorm running
/// statistics of its own (a clone of a Burn 0.21 module shares its `RunningState` behind an
/// `Arc`; a copy through the inner backend does not), with the same parameter ids.
fn copy_modules<B: AutodiffBackend, U: TrainUnit<B>>(
    modules: &[LocalModule<B, U>],
    device: &B::Device,
) -> Vec<LocalModule<B, U>> {
    modules
        .iter()
        .map(|m| LocalModule::<B, U>::from_inner(m.valid()).fork(device))
        .collect()
}

/// Trains `modules` on `batches` at learning rate `lr` with the replicas of `dp`: replica 0
/// trains the trainer's own modules, the others copies of them. `on_step` sees every step's
/// stats over the whole batch, in order. Ends by checking that every replica holds replica
/// 0's weights.
pub(crate) fn run<B: FastOpsAutodiff, U: TrainUnit<B>>(
    dp: &DataParallel<B>,
    modules: &mut [LocalModule<B, U>],
    optimizers: &mut [ModuleOptimizer<B, U>],
    batches: impl Iterator<Item = Result<Batch<B>, TrainError>>,
    pixels: Option<Normalize>,
    lr: f64,
    on_step: &mut dyn FnMut(usize, &StepStats) -> Result<(), TrainError>,
) -> Result<Timing, TrainError> {
    let start = Instant::now();
    let n = dp.replicas();
    let world = dp.world();
    // This process's replicas are global replicas `first..first + n`.
    let first = dp.nodes.as_ref().map_or(0, |nodes| nodes.rank() * n);
    let nodes = dp.nodes.as_deref();
    let home = home_device(modules);
    // Replicas 1.. train copies of the modules and of their optimisers' states.
    let mut copies: Vec<_> = dp.devices[1..]
        .iter()
        .map(|device| (copy_modules(modules, device), optimizers.to_vec()))
        .collect();
    let config = CollectiveConfig::default().with_num_devices(n);
    let (reduce, outcome) = std::thread::scope(|scope| {
        let mut parts = vec![ReplicaPart {
            modules: &mut *modules,
            optimizers: &mut *optimizers,
        }];
        parts.extend(copies.iter_mut().map(|(m, o)| ReplicaPart {
            modules: m,
            optimizers: o,
        }));
        let mut feeds = Vec::with_capacity(n);
        let (report, reports) = mpsc::channel::<Report>();
        let mut handles = Vec::with_capacity(n);
        for (rank, part) in parts.into_iter().enumerate() {
            let (feed, input) = mpsc::sync_channel::<Shard<B>>(1);
            let report = report.clone();
            feeds.push(feed);
            let replica = Replica {
                rank,
                device: dp.devices[rank].clone(),
                home: (rank == 0 && dp.devices[0] != home).then(|| home.clone()),
                threads: dp.threads,
                config: config.clone(),
                nodes: dp.nodes.clone(),
                local: n,
                pixels,
            };
            handles.push(scope.spawn(move || replica.run(part, lr, input, report)));
        }
        drop(report);

        let mut failure: Option<TrainError> = None;
        let mut trained = 0;
        for batch in batches {
            let (images, targets) = match batch {
                Ok(batch) => batch,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            };
            let b = targets.dims()[0];
            let Some(sizes) = shard_sizes(b, world) else {
                continue;
            };
            let equal = sizes.iter().all(|&s| s == sizes[0]);
            let (images, targets) = (images.inner(), targets.inner());
            let mut offset = sizes[..first].iter().sum();
            if let Some(nodes) = nodes {
                nodes.at_step(Some(trained));
            }
            for (feed, &size) in feeds.iter().zip(&sizes[first..first + n]) {
                let shard = Shard {
                    x: images.clone().narrow(0, offset, size),
                    targets: targets.clone().narrow(0, offset, size),
                    scale: (!equal).then(|| (size * world) as f32 / b as f32),
                };
                offset += size;
                // A replica that stopped reports why below.
                let _ = feed.send(shard);
            }
            match combine::<B::InnerBackend>(&reports, n, nodes) {
                Ok(stats) => {
                    if let Err(e) = on_step(trained, &stats) {
                        failure = Some(e);
                    }
                }
                Err(e) => failure = Some(e),
            }
            if failure.is_some() {
                break;
            }
            trained += 1;
        }
        drop(feeds);
        let reduce: Vec<Duration> = handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect();
        // A replica's error at its end (finish) counts too.
        while let Ok(report) = reports.try_recv() {
            if let (Err(e), None) = (report, &failure) {
                failure = Some(e);
            }
        }
        (reduce, failure.map_or(Ok(trained), Err))
    });
    if outcome.is_err() {
        reset_collective::<B::InnerBackend>();
    }
    let steps = outcome?;
    for (rank, (copy, _)) in copies.iter().enumerate() {
        check_identical(modules, copy, rank + 1)?;
    }
    if let Some(nodes) = nodes {
        nodes.at_step(None);
        if !nodes.agree(weights_fingerprint(modules)?)? {
            return Err(TrainError::Nodes {
                rank: nodes.rank(),
                message: format!(
                    "the {} nodes ended these steps with different weights; every node must \
                     apply the same averaged gradients",
                    nodes.size()
                ),
            });
        }
    }
    Ok(Timing {
        wall_seconds: start.elapsed().as_secs_f64(),
        busy_seconds: Vec::new(),
        reduce_seconds: reduce.iter().map(Duration::as_secs_f64).collect(),
        steps,
    })
}

/// Where and how one replica runs.
struct Replica<B: AutodiffBackend> {
    rank: usize,
    device: B::Device,
    /// The trainer's device, when replica 0's differs: its modules move there and back.
    home: Option<B::Device>,
    threads: usize,
    config: CollectiveConfig,
    /// The other processes, whose replicas' gradients are averaged with this one's.
    nodes: Option<Arc<dyn Nodes>>,
    /// This process's replicas.
    local: usize,
    /// How the images were normalised, when a module's objective needs their pixels.
    pixels: Option<Normalize>,
}

impl<B: FastOpsAutodiff> Replica<B> {
    /// Registers with the collective, then steps `part` on every shard `input` yields, on its
    /// device in a pool of its threads, averaging each module's gradients with the other
    /// replicas'; reports each shard's stats, or the error (a panic included) that stopped it.
    /// Returns its time in the all-reduce, waiting for the others included.
    fn run<U: TrainUnit<B>>(
        self,
        part: ReplicaPart<'_, B, U>,
        lr: f64,
        input: mpsc::Receiver<Shard<B>>,
        reports: mpsc::Sender<Report>,
    ) -> Duration {
        let Replica {
            rank,
            device,
            home,
            threads,
            config,
            nodes,
            local,
            pixels,
        } = self;
        let sender = reports.clone();
        let fail = |message: String| {
            let _ = sender.send(Err(TrainError::Replica {
                replica: rank,
                message,
            }));
        };
        let reducing = Duration::ZERO;
        let pool = match thread_pool(threads, format!("auglocal-replica{rank}")) {
            Ok(pool) => pool,
            Err(message) => {
                fail(message);
                return reducing;
            }
        };
        let peer = PeerId::from(rank as u32);
        if let Err(e) = register::<B::InnerBackend>(peer, device.clone(), config) {
            fail(collective_error("register", e));
            return reducing;
        }
        let ReplicaPart {
            modules,
            optimizers,
        } = part;
        // The replica runs on a thread of its own pool, so that its kernels split their work
        // over this pool and not another replica's.
        let outcome = pool.install(move || {
            let mut reducing = reducing;
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                if home.is_some() {
                    place(modules, &device);
                }
                for shard in input.iter() {
                    let batch = shard.targets.dims()[0];
                    let x = Tensor::<B, 4>::from_inner(shard.x.to_device(&device));
                    let targets = Tensor::<B, 1, Int>::from_inner(shard.targets.to_device(&device));
                    let shard_pixels = pixels.as_ref().map(|n| restore(x.clone(), n));
                    let mean = |module: &LocalModule<B, U>, grads| {
                        let start = Instant::now();
                        let reduced = all_reduce_packed(module, grads, |flat| {
                            let flat = match shard.scale {
                                Some(scale) => flat.mul_scalar(scale),
                                None => flat,
                            };
                            all_reduce::<B::InnerBackend>(
                                peer,
                                flat.into_primitive().tensor(),
                                ReduceOperation::Mean,
                            )
                            .map(|r| Tensor::from_primitive(TensorPrimitive::Float(r)))
                            .map_err(|e| TrainError::Replica {
                                replica: rank,
                                message: collective_error("all-reduce", e),
                            })
                            .and_then(|mean| match &nodes {
                                Some(nodes) => nodes_mean(nodes.as_ref(), local, mean),
                                None => Ok(mean),
                            })
                        });
                        reducing += start.elapsed();
                        reduced
                    };
                    let stats =
                        step_modules_with(modules, optimizers, x, shard_pixels, targets, lr, mean)
                            .and_then(|(_, measured)| Measured::read(measured));
                    let failed = stats.is_err();
                    if reports.send(stats.map(|s| (batch, s))).is_err() || failed {
                        break;
                    }
                }
                if let Some(home) = &home {
                    place(modules, home);
                }
            }))
            .map(|()| reducing)
        });
        let reducing = match outcome {
            Ok(reducing) => reducing,
            Err(panic) => {
                fail(panic_message(panic.as_ref()));
                reducing
            }
        };
        if let Err(e) = finish_collective::<B::InnerBackend>(peer) {
            fail(collective_error("finish", e));
        }
        reducing
    }
}

/// What a panic said.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into());
    format!("panicked: {what}")
}

/// The mean over the nodes of `values` (this node's in-process mean, the same on each of its
/// `local` replicas).
fn nodes_mean<B: Backend>(
    nodes: &dyn Nodes,
    local: usize,
    values: Tensor<B, 1>,
) -> Result<Tensor<B, 1>, TrainError> {
    let device = values.device();
    let n = values.dims()[0];
    let mean = nodes.mean(local, read_back(values, n, "gradients")?)?;
    if mean.len() != n {
        return Err(TrainError::Nodes {
            rank: nodes.rank(),
            message: format!(
                "the nodes' mean has {} values where {n} were sent",
                mean.len()
            ),
        });
    }
    Ok(Tensor::from_data(TensorData::new(mean, [n]), &device))
}

/// A fingerprint of every trainable parameter of `modules`, bit for bit.
fn weights_fingerprint<B: AutodiffBackend, U: TrainUnit<B>>(
    modules: &[LocalModule<B, U>],
) -> Result<u64, TrainError> {
    let mut flat = Flatten::<B>(Vec::new());
    for module in modules {
        module.visit(&mut flat);
    }
    if flat.0.is_empty() {
        return Ok(fingerprint(&[]));
    }
    let all = Tensor::cat(flat.0, 0);
    let n = all.dims()[0];
    let values = read_back(all, n, "the weights")?;
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    Ok(fingerprint(&bytes))
}

/// The stats of one step over the whole batch, from every replica's report for it (and, with
/// `nodes`, every node's): losses weighted by the shards' sizes, correct predictions summed.
/// On the first failure the collective is reset, which releases the replicas waiting in an
/// all-reduce for the one that stopped, and that failure is returned once every replica has
/// reported.
fn combine<B: Backend>(
    reports: &mpsc::Receiver<Report>,
    n: usize,
    nodes: Option<&dyn Nodes>,
) -> Result<StepStats, TrainError> {
    let mut batch = 0;
    let mut sums: Vec<(f64, usize)> = Vec::new();
    let mut failure = None;
    for _ in 0..n {
        let Ok(report) = reports.recv() else {
            // Every replica is gone (each sends before it stops, so a failure came first).
            break;
        };
        match report {
            Ok((b, modules)) => {
                sums.resize(modules.len(), (0.0, 0));
                batch += b;
                for (sum, m) in sums.iter_mut().zip(modules) {
                    sum.0 += m.loss as f64 * b as f64;
                    sum.1 += m.correct;
                }
            }
            Err(e) => {
                if failure.is_none() {
                    reset_collective::<B>();
                    failure = Some(e);
                }
            }
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    if let Some(nodes) = nodes {
        // [images, each module's loss sum, each module's correct predictions], summed over
        // the nodes (counts below 2^53 are exact in f64).
        let k = sums.len();
        let mut values = Vec::with_capacity(1 + 2 * k);
        values.push(batch as f64);
        values.extend(sums.iter().map(|s| s.0));
        values.extend(sums.iter().map(|s| s.1 as f64));
        let total = nodes.sum(values)?;
        if total.len() != 1 + 2 * k {
            return Err(TrainError::Nodes {
                rank: nodes.rank(),
                message: "the nodes trained different numbers of modules".into(),
            });
        }
        batch = total[0] as usize;
        for (i, sum) in sums.iter_mut().enumerate() {
            *sum = (total[1 + i], total[1 + k + i] as usize);
        }
    }
    Ok(StepStats::from_modules(
        batch,
        sums.into_iter().map(|(loss, correct)| ModuleStats {
            loss: (loss / batch.max(1) as f64) as f32,
            correct,
        }),
    ))
}

/// Checks that `copy` (replica `replica`'s modules) holds exactly the trainable parameters
/// of `modules` (replica 0's); BatchNorm running statistics are each replica's own.
fn check_identical<B: AutodiffBackend, U: TrainUnit<B>>(
    modules: &[LocalModule<B, U>],
    copy: &[LocalModule<B, U>],
    replica: usize,
) -> Result<(), TrainError> {
    let flat = |m: &[LocalModule<B, U>]| {
        let mut c = Flatten::<B>(Vec::new());
        for module in m {
            module.visit(&mut c);
        }
        c.0
    };
    let (a, b) = (flat(modules), flat(copy));
    if a.len() != b.len() {
        return Err(TrainError::ReplicasDiverged {
            replica,
            difference: f32::INFINITY,
        });
    }
    if a.is_empty() {
        return Ok(());
    }
    let diffs = a
        .into_iter()
        .zip(b)
        .map(|(x, y)| {
            let y = y.to_device(&x.device());
            (x - y).abs().max()
        })
        .collect();
    let difference = read_back(Tensor::cat(diffs, 0).max(), 1, "replica weights")?[0];
    if difference == 0.0 {
        Ok(())
    } else {
        Err(TrainError::ReplicasDiverged {
            replica,
            difference,
        })
    }
}

/// Every trainable parameter of a module, flattened, on the inner backend.
struct Flatten<B: AutodiffBackend>(Vec<Tensor<B::InnerBackend, 1>>);

impl<B: AutodiffBackend> ModuleVisitor<B> for Flatten<B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if param.is_require_grad() {
            let value = param.val().inner();
            let n = value.shape().num_elements();
            self.0.push(value.reshape([n]));
        }
    }
}

/// Reduces every gradient of `module` in one call of `reduce`: the gradients, in the order
/// the module visits its parameters (the same on every replica), flattened into one 1-D
/// tensor, reduced, and cut back into the parameters' shapes. Element for element the same
/// numbers as reducing each gradient on its own, in one all-reduce instead of one per
/// parameter.
pub fn all_reduce_packed<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    mut grads: GradientsParams,
    reduce: impl FnOnce(Tensor<B::InnerBackend, 1>) -> Result<Tensor<B::InnerBackend, 1>, TrainError>,
) -> Result<GradientsParams, TrainError> {
    let mut pack = Pack::<B> {
        grads: &mut grads,
        flat: Vec::new(),
        ids: Vec::new(),
    };
    module.visit(&mut pack);
    let Pack { flat, ids, .. } = pack;
    if flat.is_empty() {
        return Ok(grads);
    }
    let reduced = reduce(Tensor::cat(flat, 0))?;
    module.visit(&mut Unpack::<B> {
        grads: &mut grads,
        reduced,
        ids: &ids,
        next: 0,
        offset: 0,
    });
    Ok(grads)
}

/// Takes each parameter's gradient out of `grads`, flattened, in visiting order.
struct Pack<'a, B: AutodiffBackend> {
    grads: &'a mut GradientsParams,
    flat: Vec<Tensor<B::InnerBackend, 1>>,
    ids: Vec<ParamId>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Pack<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(grad) = self.grads.remove::<B::InnerBackend, D>(param.id) {
            let n = grad.shape().num_elements();
            self.flat.push(grad.reshape([n]));
            self.ids.push(param.id);
        }
    }
}

/// Puts the reduced gradients back into `grads`, in the same visiting order.
struct Unpack<'a, B: AutodiffBackend> {
    grads: &'a mut GradientsParams,
    reduced: Tensor<B::InnerBackend, 1>,
    ids: &'a [ParamId],
    next: usize,
    offset: usize,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Unpack<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if self.ids.get(self.next) != Some(&param.id) {
            return;
        }
        let dims: [usize; D] = param.lazy_shape().dims();
        let n: usize = dims.iter().product();
        let grad = self.reduced.clone().narrow(0, self.offset, n).reshape(dims);
        self.grads.register::<B::InnerBackend, D>(param.id, grad);
        self.next += 1;
        self.offset += n;
    }
}

fn collective_error(what: &str, e: CollectiveError) -> String {
    format!("the collective's {what} failed: {e:?}")
}

#[cfg(test)]
mod tests {
    use super::shard_sizes;

    #[test]
    fn shards_cover_the_batch_in_order() {
        assert_eq!(shard_sizes(8, 2), Some(vec![4, 4]));
        assert_eq!(shard_sizes(7, 2), Some(vec![4, 3]));
        assert_eq!(shard_sizes(5, 4), Some(vec![2, 1, 1, 1]));
        assert_eq!(shard_sizes(10, 4), Some(vec![3, 3, 2, 2]));
        assert_eq!(shard_sizes(3, 3), Some(vec![1, 1, 1]));
        assert_eq!(shard_sizes(2, 3), None);
        assert_eq!(shard_sizes(4, 0), None);
        for b in 1..40 {
            for n in 1..=b {
                let sizes = shard_sizes(b, n).expect("b >= n");
                assert_eq!(sizes.iter().sum::<usize>(), b);
                assert!(sizes.iter().all(|&s| s > 0));
            }
        }
    }
}
