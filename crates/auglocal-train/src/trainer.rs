//! The training step: each module forwards, takes its local loss, backpropagates, steps its
//! own optimiser, and passes a detached output on, so its graph is freed before the next
//! module runs.

use std::time::Instant;

use auglocal_aux::Plan;
use auglocal_data::Loader;
use auglocal_kernels::{FastOps, FastOpsAutodiff};
use auglocal_model::LocalUnit;
use auglocal_model::nn::Unit;
use burn::module::{AutodiffModule, ModuleDisplay};
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, Optimizer, Sgd, SgdConfig};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor};

use crate::TrainError;
use crate::local::{LocalModule, LocalNetwork};
use crate::pipeline::Pipeline;
use crate::progress::Progress;

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

/// SGD as the reference: Nesterov momentum without dampening, coupled L2 weight decay on every
/// parameter.
pub fn sgd_config(momentum: f64, weight_decay: f64) -> SgdConfig {
    SgdConfig::new()
        .with_momentum((momentum > 0.0).then_some(MomentumConfig {
            momentum,
            // Burn's default is 0.1; PyTorch's, and the reference's, is 0.
            dampening: 0.0,
            nesterov: true,
        }))
        .with_weight_decay(
            (weight_decay > 0.0).then(|| WeightDecayConfig::new(weight_decay as f32)),
        )
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
    /// The stats of modules whose (loss, correct) pairs were read back in order.
    pub(crate) fn from_values(batch: usize, values: &[f32]) -> Self {
        Self {
            batch,
            losses: values.iter().step_by(2).copied().collect(),
            correct: values
                .iter()
                .skip(1)
                .step_by(2)
                .map(|&c| c as usize)
                .collect(),
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

/// A network cut into modules, with one optimiser per module. `U` is the type of the primary
/// network's units: auglocal's own, or a library user's ([`Trainer::from_units`]).
pub struct Trainer<
    B: AutodiffBackend,
    U: AutodiffModule<B, InnerModule: ModuleDisplay> + ModuleDisplay = Unit<B>,
> {
    pub(crate) network: LocalNetwork<B, U>,
    pub(crate) optimizers: Vec<ModuleOptimizer<B, U>>,
    loss: CrossEntropyLoss<B>,
    input_shape: Option<[usize; 3]>,
}

impl<B: FastOpsAutodiff> Trainer<B> {
    /// Builds the network and aux nets of `plan` with fresh weights, seeded.
    pub fn init(plan: &Plan, sgd: &SgdConfig, seed: u64, device: &B::Device) -> Self {
        B::seed(device, seed);
        Self::new(LocalNetwork::init(plan, device), sgd, device)
            .with_input_shape(plan.network.input_shape())
    }
}

impl<B: FastOpsAutodiff, U: TrainUnit<B>> Trainer<B, U> {
    /// Trains a library user's own units as `plan` cuts them (see
    /// [`LocalNetwork::from_units`]): the units keep their weights; the primary head and the
    /// aux nets are drawn now, after seeding the backend with `seed`.
    pub fn from_units(
        units: Vec<U>,
        plan: &Plan,
        sgd: &SgdConfig,
        seed: u64,
        device: &B::Device,
    ) -> Result<Self, TrainError> {
        B::seed(device, seed);
        Ok(
            Self::new(LocalNetwork::from_units(units, plan, device)?, sgd, device)
                .with_input_shape(plan.network.input_shape()),
        )
    }

    /// A trainer for `network`, with a fresh optimiser per module.
    pub fn new(network: LocalNetwork<B, U>, sgd: &SgdConfig, device: &B::Device) -> Self {
        let optimizers = network.modules.iter().map(|_| sgd.init()).collect();
        Self {
            network,
            optimizers,
            loss: CrossEntropyLossConfig::new().init(device),
            input_shape: None,
        }
    }

    /// Refuses batches whose images are not `[channels, size, size]` (a trainer built from a
    /// plan refuses what its network was not built for).
    pub fn with_input_shape(self, shape: [usize; 3]) -> Self {
        Self {
            input_shape: Some(shape),
            ..self
        }
    }

    /// The network.
    pub fn network(&self) -> &LocalNetwork<B, U> {
        &self.network
    }

    /// The trained network (its units back as their own type with
    /// [`LocalNetwork::into_parts`]).
    pub fn into_network(self) -> LocalNetwork<B, U> {
        self.network
    }

    /// The loss every module trains on (cross-entropy).
    pub fn loss(&self) -> &CrossEntropyLoss<B> {
        &self.loss
    }

    /// The optimisers' states, one per module.
    pub fn optimizer_records(&self) -> Vec<OptimizerRecord<B, U>> {
        self.optimizers.iter().map(Optimizer::to_record).collect()
    }

    /// Replaces the network and the optimisers' states (from a checkpoint); refuses a network
    /// or a list of states whose module count is not this trainer's.
    pub fn restore(
        &mut self,
        network: LocalNetwork<B, U>,
        records: Vec<OptimizerRecord<B, U>>,
    ) -> Result<(), TrainError> {
        let modules = self.optimizers.len();
        if network.modules.len() != modules || records.len() != modules {
            return Err(TrainError::Config(format!(
                "a checkpoint of {} modules and {} optimiser states cannot be restored into a \
                 trainer of {modules} modules",
                network.modules.len(),
                records.len()
            )));
        }
        self.network = network;
        self.optimizers = std::mem::take(&mut self.optimizers)
            .into_iter()
            .zip(records)
            .map(|(o, r)| o.load_record(r))
            .collect();
        Ok(())
    }

    /// One training step on a batch at learning rate `lr`.
    ///
    /// For each module in order: forward its units, take its local cross-entropy (through its
    /// aux net, or the primary head for the last module), backpropagate, step its optimiser
    /// with exactly its own gradients, and hand a detached output to the next module. With one
    /// module (`bp`) this is plain end-to-end backprop.
    ///
    /// # Shapes
    /// - images: `[batch, channels, size, size]`
    /// - targets: `[batch]`
    pub fn step(
        &mut self,
        images: Tensor<B, 4>,
        targets: Tensor<B, 1, Int>,
        lr: f64,
    ) -> Result<StepStats, TrainError> {
        let [batch, c, h, w] = images.dims();
        if let Some(expected) = self.input_shape
            && expected != [c, h, w]
        {
            let show = |[c, h, w]: [usize; 3]| format!("{c}x{h}x{w}");
            return Err(TrainError::InputShape {
                expected: show(expected),
                got: show([c, h, w]),
            });
        }
        assert_eq!(
            self.network.modules.len(),
            self.optimizers.len(),
            "one optimiser per module (Trainer::new and restore keep them paired)"
        );
        let (_, measured) = step_modules(
            &mut self.network.modules,
            &mut self.optimizers,
            &self.loss,
            images,
            targets,
            lr,
        );
        // One read of every module's loss and count per step.
        let values = read_back(
            Tensor::cat(measured, 0),
            2 * self.optimizers.len(),
            "losses",
        )?;
        Ok(StepStats::from_values(batch, &values))
    }

    /// Trains one epoch (`epoch` from 1) of `loader`'s batches at learning rate `lr`.
    pub fn train_epoch(
        &mut self,
        loader: &Loader<B>,
        epoch: usize,
        lr: f64,
        progress: &mut dyn Progress,
    ) -> Result<EpochTraining, TrainError> {
        self.train_epoch_with(loader, epoch, lr, None, progress)
    }

    /// [`Trainer::train_epoch`], pipelined when `pipeline` is given (see
    /// [`Trainer::train_pipelined`]): the same weights and metrics, and each stage's busy
    /// fraction.
    pub fn train_epoch_with(
        &mut self,
        loader: &Loader<B>,
        epoch: usize,
        lr: f64,
        pipeline: Option<&Pipeline<B>>,
        progress: &mut dyn Progress,
    ) -> Result<EpochTraining, TrainError> {
        let start = Instant::now();
        let n = self.network.modules.len();
        let (mut loss_sums, mut correct) = (vec![0f64; n], vec![0usize; n]);
        let mut images = 0;
        progress.epoch_start(epoch, lr, loader.num_batches());
        let batches = loader.epoch(epoch).map(|batch| {
            batch
                .map(|b| (b.images, b.targets))
                .map_err(|source| TrainError::Batch {
                    stage: format!("epoch {epoch}"),
                    source,
                })
        });
        let mut on_step = |step: usize, stats: &StepStats| {
            if let Some((module, loss)) = stats.divergence() {
                return Err(TrainError::Diverged {
                    module,
                    epoch,
                    step: step + 1,
                    loss,
                    lr,
                    hint: "lower the learning rate".into(),
                });
            }
            for k in 0..n {
                loss_sums[k] += stats.losses[k] as f64 * stats.batch as f64;
                correct[k] += stats.correct[k];
            }
            images += stats.batch;
            let mean_last = loss_sums[n - 1] / images as f64;
            progress.step(step + 1, images, mean_last, start.elapsed().as_secs_f64());
            Ok(())
        };
        let stage_busy = match pipeline {
            None => {
                for (step, batch) in batches.enumerate() {
                    let (x, targets) = batch?;
                    let stats = self.step(x, targets, lr)?;
                    on_step(step, &stats)?;
                }
                Vec::new()
            }
            Some(pipeline) => self
                .train_pipelined(batches, lr, pipeline, &mut on_step)?
                .busy_fractions(),
        };
        let images_f = images.max(1) as f64;
        Ok(EpochTraining {
            losses: loss_sums.iter().map(|s| s / images_f).collect(),
            accuracy: correct[n - 1] as f64 / images_f,
            aux_accuracy: correct[..n - 1]
                .iter()
                .map(|&c| c as f64 / images_f)
                .collect(),
            images,
            seconds: start.elapsed().as_secs_f64(),
            stage_busy,
        })
    }
}

/// Steps `modules` in order on one batch, each with its own optimiser (`optimizers[k]` for
/// `modules[k]`): forward its units, take its local cross-entropy (through its aux net, or the
/// primary head), backpropagate, step, and hand a detached output to the next. Returns the
/// last module's detached output and, per module, its loss and correct predictions (two
/// one-element tensors, not yet read back).
///
/// The sequential trainer runs every module through it; a pipeline stage runs its own.
pub(crate) fn step_modules<B: FastOpsAutodiff, U: TrainUnit<B>>(
    modules: &mut Vec<LocalModule<B, U>>,
    optimizers: &mut [ModuleOptimizer<B, U>],
    loss: &CrossEntropyLoss<B>,
    images: Tensor<B, 4>,
    targets: Tensor<B, 1, Int>,
    lr: f64,
) -> (Tensor<B, 4>, Vec<Tensor<B::InnerBackend, 1>>) {
    let inner_targets = targets.clone().inner();
    let mut stepped = Vec::with_capacity(modules.len());
    let mut measured = Vec::with_capacity(2 * modules.len());
    let mut x = images;
    for (module, optimizer) in std::mem::take(modules).into_iter().zip(optimizers) {
        let (h, logits, loss) = module.forward_loss(x, targets.clone(), loss);
        measured.push(loss.clone().inner());
        measured.push(correct(logits.inner(), inner_targets.clone()));
        let grads = GradientsParams::from_grads(loss.backward(), &module);
        stepped.push(optimizer.step(lr, module, grads));
        // The isolation point: no gradient crosses it, and the module's graph is gone.
        x = h.detach();
    }
    *modules = stepped;
    (x, measured)
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
fn correct<B: Backend>(logits: Tensor<B, 2>, targets: Tensor<B, 1, Int>) -> Tensor<B, 1> {
    let batch = targets.dims()[0];
    logits
        .argmax(1)
        .reshape([batch])
        .equal(targets)
        .int()
        .sum()
        .float()
}

/// What one epoch of training measured.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochTraining {
    /// Mean local loss of each module.
    pub losses: Vec<f64>,
    /// Training accuracy of the primary head (BatchNorm in training mode, weights changing).
    pub accuracy: f64,
    /// Training accuracy of each aux head, modules `0 .. K - 1`.
    pub aux_accuracy: Vec<f64>,
    /// Images seen.
    pub images: usize,
    /// Wall time.
    pub seconds: f64,
    /// Pipelined: each stage's time computing over the wall time (empty when sequential).
    pub stage_busy: Vec<f64>,
}

/// Accuracy of the primary network (and optionally of every aux head) with BatchNorm in
/// inference mode, over `batches` (made on the inner, non-autodiff backend).
pub fn evaluate<B: FastOps, U: LocalUnit<B>>(
    network: &LocalNetwork<B, U>,
    batches: impl Iterator<Item = Result<auglocal_data::ImageBatch<B>, auglocal_data::DataError>>,
    aux: bool,
) -> Result<Evaluation, TrainError> {
    let n = network.modules.len();
    let mut counts = vec![0usize; n];
    let mut images = 0;
    for batch in batches {
        let batch = batch.map_err(|source| TrainError::Batch {
            stage: "the test set".into(),
            source,
        })?;
        let mut measured = Vec::with_capacity(n);
        let mut x = batch.images;
        for module in &network.modules {
            x = module.forward_units(x);
            if aux || module.is_last() {
                measured.push(correct(
                    module.forward_output(x.clone()),
                    batch.targets.clone(),
                ));
            }
        }
        let expected = measured.len();
        let values = read_back(Tensor::cat(measured, 0), expected, "correct predictions")?;
        let offset = n - values.len();
        for (k, v) in values.iter().enumerate() {
            counts[k + offset] += *v as usize;
        }
        images += batch.targets.dims()[0];
    }
    let images_f = images.max(1) as f64;
    Ok(Evaluation {
        accuracy: counts[n - 1] as f64 / images_f,
        aux_accuracy: if aux {
            counts[..n - 1]
                .iter()
                .map(|&c| c as f64 / images_f)
                .collect()
        } else {
            Vec::new()
        },
        images,
    })
}

/// Test accuracy.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// Accuracy of the primary network.
    pub accuracy: f64,
    /// Accuracy of each aux head (empty unless asked for).
    pub aux_accuracy: Vec<f64>,
    /// Images evaluated.
    pub images: usize,
}
