//! The training step: each module forwards, takes its local loss, backpropagates, steps its
//! own optimiser, and passes a detached output on, so its graph is freed before the next
//! module runs.

use std::time::Instant;

use auglocal_data::{Loader, Normalize};
use auglocal_kernels::{FastOps, FastOpsAutodiff};
use auglocal_model::LocalUnit;
use auglocal_model::nn::{Unit, materialize};
use auglocal_plan::Plan;
use burn::module::{AutodiffModule, ModuleDisplay};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{Optimizer, SgdConfig};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Int, Tensor};

use crate::TrainError;
use crate::execution::{self, Batch, Strategy, Timing};
use crate::local::{LocalModule, LocalNetwork};
use crate::progress::Progress;
use crate::step::{
    LastThread, ModuleOptimizer, OptimizerRecord, StepStats, TrainUnit, correct, read_back,
    settle_running_stats,
};

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

/// A network cut into modules, with one optimiser per module. `U` is the type of the primary
/// network's units: auglocal's own, or a library user's ([`Trainer::from_units`]).
pub struct Trainer<
    B: AutodiffBackend,
    U: AutodiffModule<B, InnerModule: ModuleDisplay> + ModuleDisplay = Unit<B>,
> {
    pub(crate) network: LocalNetwork<B, U>,
    pub(crate) optimizers: Vec<ModuleOptimizer<B, U>>,
    input_shape: Option<[usize; 3]>,
    /// How the batches' images were normalised: InfoPro's decoders reconstruct their pixels.
    image_normalization: Normalize,
    /// Where the modules were last stepped: BatchNorm's running statistics keep each
    /// thread's last update aside until that thread's next one ([`settle_running_stats`]).
    last_thread: LastThread,
}

impl<B: FastOpsAutodiff> Trainer<B> {
    /// Builds the network and aux nets of `plan` with fresh weights, seeded.
    pub fn init(plan: &Plan, sgd: &SgdConfig, seed: u64, device: &B::Device) -> Self {
        B::seed(device, seed);
        Self::new(LocalNetwork::init(plan, device), sgd)
            .with_input_shape(plan.network.input_shape())
    }
}

impl<B: FastOpsAutodiff, U: TrainUnit<B>> Trainer<B, U> {
    /// Trains a library user's own units as `plan` cuts them (see
    /// [`LocalNetwork::from_units`]), seeded with `seed`:
    /// - weights the units have not drawn yet (Burn draws a parameter on its first use, and
    ///   [`CustomNetworkConfig::spec`](auglocal_model::CustomNetworkConfig::spec) leaves them
    ///   undrawn) are drawn now, unit by unit, after seeding the backend with `seed`; so the
    ///   seed repeats the run whether the units were built before or after seeding;
    /// - weights already drawn (a unit that ran a forward pass, or that drew its weights
    ///   eagerly) are kept: seed the backend before building such units;
    /// - the primary head and the aux nets are drawn after seeding the backend with `seed`
    ///   again.
    pub fn from_units(
        units: Vec<U>,
        plan: &Plan,
        sgd: &SgdConfig,
        seed: u64,
        device: &B::Device,
    ) -> Result<Self, TrainError> {
        B::seed(device, seed);
        let units: Vec<U> = units.into_iter().map(materialize).collect();
        B::seed(device, seed);
        Ok(
            Self::new(LocalNetwork::from_units(units, plan, device)?, sgd)
                .with_input_shape(plan.network.input_shape()),
        )
    }

    /// A trainer for `network`, with a fresh optimiser per module.
    pub fn new(network: LocalNetwork<B, U>, sgd: &SgdConfig) -> Self {
        let optimizers = network.modules.iter().map(|_| sgd.init()).collect();
        Self {
            network,
            optimizers,
            input_shape: None,
            image_normalization: Normalize::UNIT,
            last_thread: LastThread::Settled,
        }
    }

    /// How the batches' images were normalised ([`Normalize::UNIT`] unless set): an
    /// objective that reconstructs the images (InfoPro's) is given `images * std + mean`, the
    /// pixels in [0, 1]. [`Run`](crate::Run) sets the data pipeline's.
    pub fn with_image_normalization(self, normalize: Normalize) -> Self {
        Self {
            image_normalization: normalize,
            ..self
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
        self.last_thread = LastThread::Settled;
        self.optimizers = std::mem::take(&mut self.optimizers)
            .into_iter()
            .zip(records)
            .map(|(o, r)| o.load_record(r))
            .collect();
        Ok(())
    }

    /// One training step on a batch at learning rate `lr`, on the calling thread.
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
        let mut last = None;
        self.train_batches(
            std::iter::once(Ok((images, targets))),
            lr,
            &Strategy::default(),
            &mut |_, stats| {
                last = Some(stats.clone());
                Ok(())
            },
        )?;
        Ok(last.expect("one batch, one step"))
    }

    /// Trains on `batches` at learning rate `lr`, executed as `strategy` says; `on_step` sees
    /// every step's stats in order (`step` from 0), and an error from it (a diverging loss,
    /// say) stops the run. Sequential and pipelined strategies leave the weights of
    /// [`Trainer::step`] on the same batches (data-parallel replicas too, but for BatchNorm's
    /// per-replica statistics); batches whose images are not the network's shape are refused.
    pub fn train_batches(
        &mut self,
        batches: impl Iterator<Item = Result<Batch<B>, TrainError>>,
        lr: f64,
        strategy: &Strategy<B>,
        on_step: &mut dyn FnMut(usize, &StepStats) -> Result<(), TrainError>,
    ) -> Result<Timing, TrainError> {
        let here = std::thread::current().id();
        let calling = strategy.on_calling_thread();
        // Steps on other threads than the last ones must first see their pending BatchNorm
        // statistics applied (see `settle_running_stats`).
        let must_settle = if calling {
            self.last_thread.must_settle(here)
        } else {
            self.last_thread != LastThread::Settled
        };
        if must_settle {
            settle_running_stats(&self.network.modules);
        }
        self.last_thread = if calling {
            LastThread::One(here)
        } else {
            LastThread::Gone
        };
        let expected = self.input_shape;
        let batches = batches.map(|batch| {
            let (images, targets) = batch?;
            check_shape(expected, &images)?;
            Ok((images, targets))
        });
        let pixels = self
            .network
            .modules
            .iter()
            .any(LocalModule::needs_pixels)
            .then_some(self.image_normalization);
        execution::run(
            strategy,
            &mut self.network.modules,
            &mut self.optimizers,
            batches,
            pixels,
            lr,
            on_step,
        )
    }

    /// Trains one epoch (`epoch` from 1) of `loader`'s batches at learning rate `lr`, on the
    /// calling thread.
    pub fn train_epoch(
        &mut self,
        loader: &Loader<B>,
        epoch: usize,
        lr: f64,
        progress: &mut dyn Progress,
    ) -> Result<EpochTraining, TrainError> {
        self.train_epoch_with(loader, epoch, lr, &Strategy::default(), progress)
    }

    /// [`Trainer::train_epoch`], executed as `strategy` says (see [`Trainer::train_batches`]
    /// for what changes), and, pipelined, each stage's busy fraction.
    pub fn train_epoch_with(
        &mut self,
        loader: &Loader<B>,
        epoch: usize,
        lr: f64,
        strategy: &Strategy<B>,
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
                    run: None,
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
        let timing = self.train_batches(batches, lr, strategy, &mut on_step)?;
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
            stage_busy: timing.busy_fractions(),
        })
    }
}

/// Refuses images that are not `[channels, size, size]` = `expected` (when known).
fn check_shape<B: AutodiffBackend>(
    expected: Option<[usize; 3]>,
    images: &Tensor<B, 4>,
) -> Result<(), TrainError> {
    let [_, c, h, w] = images.dims();
    match expected {
        Some(expected) if expected != [c, h, w] => {
            let show = |[c, h, w]: [usize; 3]| format!("{c}x{h}x{w}");
            Err(TrainError::InputShape {
                expected: show(expected),
                got: show([c, h, w]),
            })
        }
        _ => Ok(()),
    }
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
