//! Every architecture of every family trains: a few steps of each rule on CPU, at a small
//! width, with every module's loss finite and every trainable tensor moved. Images are 32x32
//! (the smallest VGG takes), so the ImageNet families run at CIFAR size as they may.

mod common;

use auglocal_model::{Arch, NetworkConfig};
use auglocal_plan::{LocalConfig, Plan, Rule};
use auglocal_train::{LocalNetwork, TrainError, Trainer, sgd_config};
use burn::tensor::Tensor;
use common::{B, assert_counts_match_plan, batches, seeded, tensors};

fn plan(arch: Arch, rule: Rule) -> Plan {
    let network = NetworkConfig::new(arch)
        .with_width_multiplier(0.0625)
        .with_image_size(32)
        .spec()
        .expect("valid network");
    // A handful of modules keeps the aux nets (and the test) small; d = 2 where it fits.
    let k = network.num_units().min(5);
    let config = LocalConfig::new(rule, k).with_depth(2).with_pyramid(None);
    Plan::new(&network, &config).expect("valid plan")
}

fn trains(arch: Arch, rule: Rule) {
    let plan = plan(arch, rule);
    let device = Default::default();
    let mut trainer = Trainer::<B>::init(&plan, &sgd_config(0.9, 1e-4), 3, &device);
    assert_counts_match_plan(trainer.network(), &plan, &format!("{arch} {rule}"));
    let before = tensors(trainer.network());
    for (images, targets) in batches(2, 8) {
        let stats = trainer.step(images, targets, 0.05).expect("a step");
        assert_eq!(stats.losses.len(), plan.num_modules());
        assert!(
            stats.divergence().is_none(),
            "{arch} {rule}: {:?}",
            stats.losses
        );
    }
    let after = tensors(trainer.network());
    let moved = before.iter().zip(&after).filter(|(a, b)| a != b).count();
    // Every parameter moves (weight decay alone would move it); running statistics too.
    assert_eq!(moved, before.len(), "{arch} {rule}: tensors that moved");
    let logits = trainer
        .network()
        .forward(Tensor::zeros([2, 3, 32, 32], &device));
    assert_eq!(logits.dims(), [2, 10]);
}

#[test]
fn every_architecture_trains_with_auglocal() {
    let _seeded = seeded();
    for arch in Arch::ALL {
        trains(arch, Rule::AugLocal);
    }
}

#[test]
fn dgl_greedy_and_bp_train_the_imagenet_families() {
    let _seeded = seeded();
    for arch in [Arch::ResNet18, Arch::ResNet50, Arch::Vgg11] {
        for rule in [Rule::Dgl, Rule::Greedy, Rule::Bp] {
            trains(arch, rule);
        }
    }
}

#[test]
fn a_batch_of_another_shape_is_an_error_naming_both() {
    let _seeded = seeded();
    let plan = plan(Arch::Vgg11, Rule::AugLocal);
    let device = Default::default();
    let mut trainer = Trainer::<B>::new(LocalNetwork::init(&plan, &device), &sgd_config(0.9, 0.0))
        .with_input_shape(plan.network.input_shape());
    let (images, targets) = batches(1, 4).remove(0);
    let small = images.slice([0..4, 0..3, 0..28, 0..28]);
    let err = trainer
        .step(small, targets, 0.05)
        .expect_err("28x28 into a 32x32 network");
    assert!(matches!(err, TrainError::InputShape { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("3x32x32") && msg.contains("3x28x28"), "{msg}");
}
