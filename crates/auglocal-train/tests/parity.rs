//! The trainer against simpler programs that must give the same weights.

mod common;

use auglocal_plan::Rule;
use auglocal_train::{LocalNetwork, Trainer, sgd_config};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::Tensor;
use common::{B, batches, max_diff, plan, tensors};

const LR: f64 = 0.05;
const STEPS: usize = 3;

#[test]
fn bp_through_the_trainer_equals_a_hand_written_backprop_loop() {
    let _guard = common::seeded();
    let device = Default::default();
    let plan = plan(Rule::Bp, 1);
    let data = batches(STEPS, 8);
    let sgd = sgd_config(0.9, 1e-4);
    let resnet = plan.network.init::<B>(&device);

    // The hand-written loop: forward, cross-entropy, backward, one SGD step.
    let loss = CrossEntropyLossConfig::new().init(&device);
    let mut optim = sgd.init();
    let mut plain = resnet.clone();
    for (images, targets) in &data {
        let l = loss.forward(plain.forward(images.clone()), targets.clone());
        let grads = GradientsParams::from_grads(l.backward(), &plain);
        plain = optim.step(LR, plain, grads);
    }

    // The trainer, on the same network and batches.
    let mut trainer = Trainer::new(LocalNetwork::new(resnet, &plan, vec![]), &sgd);
    for (images, targets) in &data {
        trainer
            .step(images.clone(), targets.clone(), LR)
            .expect("steps");
    }
    assert_eq!(trainer.network().modules.len(), 1);
    let diff = max_diff(&tensors(&plain), &tensors(trainer.network()));
    assert!(diff < 1e-6, "weights differ by {diff}");
    assert!(
        max_diff(&tensors(&plan.network.init::<B>(&device)), &tensors(&plain)) > 1e-3,
        "the comparison is not vacuous: training moved the weights"
    );
}

#[test]
fn per_module_optimisers_equal_one_optimiser_over_summed_local_losses() {
    let _guard = common::seeded();
    let device = Default::default();
    let plan = plan(Rule::AugLocal, 8);
    let data = batches(STEPS, 8);
    let sgd = sgd_config(0.9, 1e-4);
    let network = LocalNetwork::<B>::init(&plan, &device);

    // The reference's form: every local loss on detached inputs, summed, one backward, one
    // optimiser over all parameters.
    let mut optim = sgd.init();
    let mut single = network.clone();
    for (images, targets) in &data {
        let losses = single.losses(images.clone(), targets.clone(), true);
        let total = Tensor::cat(losses, 0).sum();
        let grads = GradientsParams::from_grads(total.backward(), &single);
        single = optim.step(LR, single, grads);
    }

    let mut trainer = Trainer::new(network, &sgd);
    for (images, targets) in &data {
        trainer
            .step(images.clone(), targets.clone(), LR)
            .expect("steps");
    }
    let diff = max_diff(&tensors(&single), &tensors(trainer.network()));
    assert!(diff < 1e-6, "weights differ by {diff}");
}
