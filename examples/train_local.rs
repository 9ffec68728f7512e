//! Train a quarter-width ResNet-20 with AugLocal on the synthetic data set through the library
//! API: plan, network, loader, trainer, evaluation; the modules pipelined in two stages, each
//! on a thread of its own (the same weights as training them one after the other). Run with
//! `cargo run --release --example train_local`.

use std::sync::Arc;

use auglocal::burn::backend::{Autodiff, Flex};
use auglocal::burn::module::AutodiffModule;
use auglocal::data::{Data, DataConfig, DatasetName, Loader, LoaderConfig};
use auglocal::model::{Arch, NetworkConfig};
use auglocal::plan::{LocalConfig, Plan, Rule, StagePlan};
use auglocal::train::pipeline::Pipeline;
use auglocal::train::{Strategy, Trainer, evaluate, progress::Console, sgd_config};

type B = Autodiff<Flex>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = Default::default();

    // Data: 2,000 generated training images, 500 test images, 32x32 RGB.
    let data =
        Data::open(&DataConfig::new(DatasetName::Synthetic, 32))?.limit(Some(2_000), Some(500));
    let train = Loader::<B>::new(
        Arc::clone(&data.train),
        data.train_pipeline.clone(),
        LoaderConfig::train(32, 0),
        device,
    )?;
    let test = Loader::new(
        data.test,
        data.test_pipeline,
        LoaderConfig::eval(100),
        device,
    )?;

    // The plan: K = 8 local modules, aux depth 2, pyramid 0.5 (6 gradient-isolated modules).
    let network = NetworkConfig::new(Arch::ResNet20)
        .with_width_multiplier(0.25)
        .spec()?;
    let plan = Plan::new(&network, &LocalConfig::new(Rule::AugLocal, 8))?;
    let mut trainer = Trainer::<B>::init(&plan, &sgd_config(0.9, 1e-4), 0, &device);
    // Two pipeline stages balanced by cost, one thread each: stage 1 trains batch t while
    // stage 0 already trains batch t + 1.
    let pipeline = Pipeline::new(StagePlan::balance(&plan, 2)?, &device).with_threads(1);
    let strategy = Strategy::Pipelined(pipeline);

    for epoch in 1..=2 {
        let t =
            trainer.train_epoch_with(&train, epoch, 0.05, &strategy, &mut Console::default())?;
        println!("epoch {epoch}: stages busy {:?}", t.stage_busy);
        let e = evaluate(&trainer.network().valid(), test.epoch(0), true)?;
        println!(
            "epoch {epoch}: local losses {:?}",
            t.losses
                .iter()
                .map(|l| format!("{l:.3}"))
                .collect::<Vec<_>>()
        );
        println!(
            "  test accuracy {:.1}%; aux heads by module: {:?}",
            100.0 * e.accuracy,
            e.aux_accuracy
                .iter()
                .map(|a| format!("{:.0}%", 100.0 * a))
                .collect::<Vec<_>>()
        );
    }
    Ok(())
}
