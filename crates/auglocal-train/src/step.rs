//! One step of gradient-isolated modules on one batch, and what it measures: the leaf every
//! execution strategy ([`crate::execution`]) calls. Each module forwards, takes its local
//! loss, backpropagates, steps its own optimiser and hands a detached output to the next
//! module, so its graph is freed before the next module runs.

use std::thread::ThreadId;

use auglocal_kernels::FastOpsAutodiff;
use auglocal_model::LocalUnit;
use auglocal_model::nn::Unit;
use burn::module::{AutodiffModule, ModuleDisplay};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{GradientsParams, Optimizer, Sgd};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor};

use crate::TrainError;
use crate::local::LocalModule;

/// The optimiser of one module: SGD over its units and its aux net (or head).
pub type ModuleOptimizer<B, U = Unit<B>> =
    OptimizerAdaptor<Sgd<<B as AutodiffBackend>::InnerBackend>, LocalModule<B, U>, B>;

/// The saved state of one module's optimiser.
pub type OptimizerRecord<B, U = Unit<B>> =
    <ModuleOptimizer<B, U> as Optimizer<LocalModule<B, U>, B>>::Record;

/// A unit type the trainer trains: a [`LocalUnit`] on the autodiff backend whose inference
/// copy (`AutodiffModule::valid`, what evaluation runs) is one on the inner backend. Every
/// `#[derive(Module)]` struct with a [`LocalUnit`] impl for all backends is one.
pub trait TrainUnit<B: AutodiffBackend>:
    LocalUnit<B>
    + ModuleDisplay
    + AutodiffModule<B, InnerModule: LocalUnit<B::InnerBackend> + ModuleDisplay>
{
}

impl<B, U> TrainUnit<B> for U
where
    B: AutodiffBackend,
    U: LocalUnit<B> + ModuleDisplay + AutodiffModule<B>,
    U::InnerModule: LocalUnit<B::InnerBackend> + ModuleDisplay,
{
}

/// What one module measured on one batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModuleStats {
    /// Its local loss (mean over the batch).
    pub loss: f32,
    /// Correct predictions of its aux head (of the primary head for the last module).
    pub correct: usize,
}

/// What one step measured, per module (in order).
#[derive(Clone, Debug, PartialEq)]
pub struct StepStats {
    /// Images in the batch.
    pub batch: usize,
    /// Each module's local loss.
    pub losses: Vec<f32>,
    /// Each module's correct predictions (its aux head's, or the primary head's for the last).
    pub correct: Vec<usize>,
}

impl StepStats {
    /// The stats of a batch of `batch` images from every module's, in module order.
    pub fn from_modules(batch: usize, modules: impl IntoIterator<Item = ModuleStats>) -> Self {
        let (losses, correct) = modules.into_iter().map(|m| (m.loss, m.correct)).unzip();
        Self {
            batch,
            losses,
            correct,
        }
    }

    /// The first module whose loss is NaN or infinite, with that loss.
    pub fn divergence(&self) -> Option<(usize, f32)> {
        self.losses
            .iter()
            .copied()
            .enumerate()
            .find(|(_, l)| !l.is_finite())
    }
}

/// A module's measurements still on the device: its loss and correct predictions, two
/// one-element tensors.
pub(crate) struct Measured<B: Backend> {
    loss: Tensor<B, 1>,
    correct: Tensor<B, 1>,
}

impl<B: Backend> Measured<B> {
    /// Reads back every module's measurements in one transfer, in order.
    pub(crate) fn read(measured: Vec<Self>) -> Result<Vec<ModuleStats>, TrainError> {
        let modules = measured.len();
        if modules == 0 {
            return Ok(Vec::new());
        }
        let flat = measured
            .into_iter()
            .flat_map(|m| [m.loss, m.correct])
            .collect();
        let values = read_back(Tensor::cat(flat, 0), 2 * modules, "losses")?;
        Ok(values
            .chunks_exact(2)
            .map(|pair| ModuleStats {
                loss: pair[0],
                correct: pair[1] as usize,
            })
            .collect())
    }
}

/// What a step of modules hands back: the last module's detached output, and each module's
/// measurements (not yet read back).
pub(crate) type Stepped<B> = (
    Tensor<B, 4>,
    Vec<Measured<<B as AutodiffBackend>::InnerBackend>>,
);

/// Steps `modules` in order on one batch, each with its own optimiser (`optimizers[k]` for
/// `modules[k]`): forward its units, take its local loss (its aux net's objective, or the
/// primary head's cross-entropy), backpropagate, step, and hand a detached output to the next. Returns the
/// last module's detached output and each module's measurements (not yet read back).
///
/// The modules are stepped in place: Burn's optimiser takes a module by value and returns it
/// stepped, so each is moved out of its slot for the step and back (a panic inside Burn's
/// optimiser step, which would leave the slot empty, aborts the process).
///
/// # Shapes
/// - images: the input of the first module, `[batch, C, H, W]`; targets: `[batch]`; pixels:
///   the batch's images in [0, 1] (`[batch, C, H, W]`), when a module's objective needs them
///   ([`LocalModule::needs_pixels`])
/// - returns the output of the last module's units
pub(crate) fn step_modules<B: FastOpsAutodiff, U: TrainUnit<B>>(
    modules: &mut [LocalModule<B, U>],
    optimizers: &mut [ModuleOptimizer<B, U>],
    images: Tensor<B, 4>,
    pixels: Option<Tensor<B, 4>>,
    targets: Tensor<B, 1, Int>,
    lr: f64,
) -> Stepped<B> {
    match step_modules_with(modules, optimizers, images, pixels, targets, lr, |_, g| {
        Ok::<_, std::convert::Infallible>(g)
    }) {
        Ok(stepped) => stepped,
        Err(never) => match never {},
    }
}

/// [`step_modules`], with each module's gradients passed through `reduce` between its
/// backward pass and its optimiser step (data-parallel replicas average them there). An
/// error from `reduce` stops the step before that module's optimiser steps.
pub(crate) fn step_modules_with<B, U, E>(
    modules: &mut [LocalModule<B, U>],
    optimizers: &mut [ModuleOptimizer<B, U>],
    images: Tensor<B, 4>,
    pixels: Option<Tensor<B, 4>>,
    targets: Tensor<B, 1, Int>,
    lr: f64,
    mut reduce: impl FnMut(&LocalModule<B, U>, GradientsParams) -> Result<GradientsParams, E>,
) -> Result<Stepped<B>, E>
where
    B: FastOpsAutodiff,
    U: TrainUnit<B>,
{
    assert_eq!(
        modules.len(),
        optimizers.len(),
        "one optimiser per module (Trainer::new and restore keep them paired)"
    );
    let inner_targets = targets.clone().inner();
    let mut measured = Vec::with_capacity(modules.len());
    let mut x = images;
    for (module, optimizer) in modules.iter_mut().zip(optimizers) {
        let (h, logits, loss) = module.forward_loss(x, targets.clone(), pixels.clone());
        measured.push(Measured {
            loss: loss.clone().inner(),
            correct: correct(logits.inner(), inner_targets.clone()),
        });
        let grads = reduce(
            module,
            GradientsParams::from_grads(loss.backward(), &*module),
        )?;
        replace_with::replace_with_or_abort(module, |m| optimizer.step(lr, m, grads));
        // The isolation point: no gradient crosses it, and the module's graph is gone.
        x = h.detach();
    }
    Ok((x, measured))
}

/// Applies the BatchNorm running statistics' pending updates of `modules`.
///
/// Burn's `RunningState` keeps each thread's last update aside, keyed by thread, and folds it
/// in (averaging over threads) at that thread's next update or at a sync. Modules trained on
/// other threads than the last ones (a new pipeline stage, a new epoch's threads) must be
/// synced first, or their first step reads a stale value and the next sync averages two
/// threads' updates.
pub(crate) fn settle_running_stats<B: AutodiffBackend, U: TrainUnit<B>>(
    modules: &[LocalModule<B, U>],
) {
    for module in modules {
        // `valid()` syncs every running state of the module (the inference copy is dropped).
        drop(module.valid());
    }
}

/// Which thread last stepped a trainer's modules, for [`settle_running_stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum LastThread {
    /// No step yet, or the updates were settled.
    #[default]
    Settled,
    /// Every module was last stepped on this thread.
    One(ThreadId),
    /// Modules were last stepped on threads that no longer run (pipeline stages).
    Gone,
}

impl LastThread {
    /// Whether modules stepped as `self` says must be settled before a step on `thread`.
    pub(crate) fn must_settle(self, thread: ThreadId) -> bool {
        match self {
            LastThread::Settled => false,
            LastThread::One(t) => t != thread,
            LastThread::Gone => true,
        }
    }
}

/// The values of a 1-D tensor on the host, exactly `expected` of them.
pub(crate) fn read_back<B: Backend>(
    values: Tensor<B, 1>,
    expected: usize,
    what: &'static str,
) -> Result<Vec<f32>, TrainError> {
    let values: Vec<f32> =
        values
            .into_data()
            .convert::<f32>()
            .to_vec()
            .map_err(|e| TrainError::ReadBack {
                what,
                message: format!("{e:?}"),
            })?;
    if values.len() != expected {
        return Err(TrainError::ReadBack {
            what,
            message: format!("{} values where {expected} were expected", values.len()),
        });
    }
    Ok(values)
}

/// Correct predictions, as a one-element float tensor.
pub(crate) fn correct<B: Backend>(
    logits: Tensor<B, 2>,
    targets: Tensor<B, 1, Int>,
) -> Tensor<B, 1> {
    let batch = targets.dims()[0];
    logits
        .argmax(1)
        .reshape([batch])
        .equal(targets)
        .int()
        .sum()
        .float()
}
