//! A user's own crate: two units written here with `#[derive(Module)]`, described by a dry
//! forward pass, planned with AugLocal and trained a few steps on random images, twice from the
//! same seed. It checks what a user relies on: the derive works with only `auglocal` as a
//! dependency, a step trains every module, and the seed repeats the run.

// `#[derive(Module)]` expands to paths that start with `burn::`: auglocal's Burn is that burn.
use auglocal::burn;

use auglocal::burn::backend::{Autodiff, Flex};
use auglocal::burn::module::Module;
use auglocal::burn::nn::conv::{Conv2d, Conv2dConfig};
use auglocal::burn::nn::{PaddingConfig2d, Relu};
use auglocal::burn::tensor::backend::Backend;
use auglocal::burn::tensor::{Distribution, Int, Tensor, TensorData};
use auglocal::kernels::FastOps;
use auglocal::model::nn::{BatchNorm, BatchNormConfig};
use auglocal::model::{CustomNetworkConfig, LocalUnit};
use auglocal::plan::{LocalConfig, Plan, Rule};
use auglocal::train::{Trainer, sgd_config};

type B = Autodiff<Flex>;

/// conv3x3 + BatchNorm + ReLU, with Burn's own convolution.
#[derive(Module, Debug)]
struct Block<B: Backend> {
    conv: Conv2d<B>,
    norm: BatchNorm<B>,
    relu: Relu,
}

impl<B: Backend> Block<B> {
    fn new(c_in: usize, c_out: usize, stride: usize, device: &B::Device) -> Self {
        let conv = Conv2dConfig::new([c_in, c_out], [3, 3])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1));
        Self {
            conv: conv.init(device),
            norm: BatchNormConfig::new(c_out).init(device),
            relu: Relu::new(),
        }
    }
}

impl<B: FastOps> LocalUnit<B> for Block<B> {
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.relu.forward(self.norm.forward(self.conv.forward(x)))
    }
}

/// Builds the units, plans them (K = 3, d = 2), trains 3 steps of 8 random 16x16 images from
/// `seed`, and returns each step's module losses.
fn train(seed: u64) -> Result<Vec<Vec<f32>>, Box<dyn std::error::Error>> {
    let device = Default::default();
    // Built before any seeding: `from_units` draws their weights after seeding.
    let units: Vec<Block<B>> = [(3, 8, 1), (8, 8, 1), (8, 16, 2), (16, 16, 1)]
        .into_iter()
        .map(|(c_in, c_out, stride)| Block::new(c_in, c_out, stride, &device))
        .collect();
    let network = CustomNetworkConfig::new([3, 16, 16], 4).spec(&units, &device)?;
    let plan = Plan::new(&network, &LocalConfig::new(Rule::AugLocal, 3).with_depth(2))?;
    let mut trainer = Trainer::from_units(units, &plan, &sgd_config(0.9, 5e-4), seed, &device)?;
    let mut losses = Vec::new();
    for step in 0..3 {
        let images = Tensor::<B, 4>::random([8, 3, 16, 16], Distribution::Default, &device);
        let labels: Vec<i64> = (0..8).map(|i| (i + step) % 4).collect();
        let targets = Tensor::<B, 1, Int>::from_data(TensorData::new(labels, [8]), &device);
        let stats = trainer.step(images, targets, 0.05)?;
        if let Some((module, loss)) = stats.divergence() {
            return Err(format!("step {step}: module {module}'s loss is {loss}").into());
        }
        losses.push(stats.losses);
    }
    if losses[0].len() != plan.num_modules() {
        return Err(format!(
            "{} losses for {} modules",
            losses[0].len(),
            plan.num_modules()
        )
        .into());
    }
    Ok(losses)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let first = train(3)?;
    // Something else draws from the backend's generator in between.
    let _ = Tensor::<B, 1>::random([5], Distribution::Default, &Default::default());
    let again = train(3)?;
    if first != again {
        return Err(format!("the same seed gave {first:?} and then {again:?}").into());
    }
    println!(
        "trained 3 steps of {} gradient-isolated modules from a crate of its own; the seed \
         repeats the run (last losses {:?})",
        first[0].len(),
        first[2]
    );
    Ok(())
}
