//! Train your own Burn network with AugLocal: a small CNN written here (not one of auglocal's
//! families), cut into 4 gradient-isolated modules, on real Fashion-MNIST; the trained units
//! come back as this file's own type. Run `scripts/fetch-data.sh` once, then
//! `cargo run --release --example custom_network`.

use std::sync::Arc;

use auglocal::burn::backend::{Autodiff, Flex};
use auglocal::burn::module::{AutodiffModule, Module};
use auglocal::burn::nn::{PaddingConfig2d, conv::Conv2dConfig};
use auglocal::burn::tensor::{Tensor, activation::relu, backend::Backend};
use auglocal::data::{Data, DataConfig, DatasetName, Loader, LoaderConfig};
use auglocal::kernels::{Conv2d, FastOps};
use auglocal::model::nn::{BatchNorm, BatchNormConfig, num_trainable_params};
use auglocal::model::{CustomNetworkConfig, LocalUnit};
use auglocal::plan::{LocalConfig, Plan, Rule};
use auglocal::train::{Trainer, evaluate, progress::Console, sgd_config};

type B = Autodiff<Flex>;

/// conv3x3 (auglocal's Conv2d: Burn's fields, the fast CPU backward) + BatchNorm + ReLU.
#[derive(Module, Debug)]
struct ConvUnit<B: Backend> {
    conv: Conv2d<B>,
    norm: BatchNorm<B>,
}

impl<B: Backend> ConvUnit<B> {
    fn new([c_in, c_out, stride]: [usize; 3], device: &B::Device) -> Self {
        let conv = Conv2dConfig::new([c_in, c_out], [3, 3]).with_stride([stride, stride]);
        let conv = conv.with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1));
        let (conv, norm) = (
            Conv2d::new(&conv, device),
            BatchNormConfig::new(c_out).init(device),
        );
        Self { conv, norm }
    }
}

impl<B: FastOps> LocalUnit<B> for ConvUnit<B> {
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        relu(self.norm.forward(self.conv.forward(x)))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = Default::default();
    let data = Data::open(&DataConfig::new(DatasetName::FashionMnist, 32))?
        .limit(Some(6_000), Some(2_000));
    let shape = data.image_shape;
    let widths = [shape.channels, 16, 32, 32, 64, 64];
    let strides = [1, 2, 1, 2, 1];
    // Burn draws a parameter on its first use: `from_units` seeds the backend, then draws the
    // units' weights, the head and the aux nets, so the seed repeats the whole run.
    const SEED: u64 = 0;
    let units: Vec<ConvUnit<B>> = (widths.windows(2).zip(strides))
        .map(|(w, s)| ConvUnit::new([w[0], w[1], s], &device))
        .collect();
    // One dry forward pass tells the planner each unit's widths and sizes.
    let network = CustomNetworkConfig::new([shape.channels, shape.height, shape.width], 10)
        .spec(&units, &device)?;
    let plan = Plan::new(&network, &LocalConfig::new(Rule::AugLocal, 4).with_depth(2))?;
    let mut trainer = Trainer::from_units(units, &plan, &sgd_config(0.9, 5e-4), SEED, &device)?;
    let train = Loader::<B>::new(
        Arc::clone(&data.train),
        data.train_pipeline.clone(),
        LoaderConfig::train(64, 0),
        device,
    )?;
    let test = Loader::new(
        data.test,
        data.test_pipeline,
        LoaderConfig::eval(200),
        device,
    )?;
    for epoch in 1..=2 {
        trainer.train_epoch(&train, epoch, 0.05, &mut Console::default())?;
        let e = evaluate(&trainer.network().valid(), test.epoch(0), true)?;
        let pct = |a: &f64| format!("{:.1}%", 100.0 * a);
        let aux: Vec<_> = e.aux_accuracy.iter().map(pct).collect();
        println!(
            "epoch {epoch}: test accuracy {}, aux heads {aux:?}",
            pct(&e.accuracy)
        );
    }
    // The trained units, as this file's own type (the head is auglocal's GAP + Linear).
    let (units, _head): (Vec<ConvUnit<B>>, _) = trainer.into_network().into_parts();
    let params: usize = units.iter().map(num_trainable_params).sum();
    println!("trained {} ConvUnits ({params} parameters)", units.len());
    Ok(())
}
