//! Gradient isolation: a module's loss reaches its own units and aux net, and nothing else.

mod common;

use auglocal_plan::Rule;
use auglocal_train::{LocalNetwork, Trainer, sgd_config};
use burn::optim::{GradientsParams, Optimizer};
use common::{B, batches, plan, tensors};

/// Parameters of each module that receive a gradient from the loss of module `k`.
fn reached(
    network: &LocalNetwork<B>,
    k: usize,
    isolate: bool,
    batch: &common::Batch,
) -> Vec<usize> {
    let (images, targets) = batch.clone();
    let mut losses = network.losses(images, targets, isolate);
    let mut grads = losses.swap_remove(k).backward();
    network
        .modules
        .iter()
        .map(|m| GradientsParams::from_module(&mut grads, m).len())
        .collect()
}

/// Trains one step of `rule` with K = `k` (`modules` modules), then checks that each module's
/// local loss reaches every parameter of its own module and none of another's.
fn assert_isolated(rule: Rule, k: usize, modules: usize) {
    let device = Default::default();
    let plan = plan(rule, k);
    let data = batches(2, 8);
    // One real training step first, so the check runs on trained state.
    let mut trainer = Trainer::<B>::init(&plan, &sgd_config(0.9, 1e-4), 3, &device);
    trainer
        .step(data[0].0.clone(), data[0].1.clone(), 0.05)
        .expect("steps");
    let network = trainer.network().clone();
    let n = network.modules.len();
    assert_eq!(n, modules, "{rule}, ResNet-20, K = {k}");
    for m in 0..n {
        let counts = reached(&network, m, true, &data[1]);
        for (j, &c) in counts.iter().enumerate() {
            if j == m {
                let trainable = common::trainable_tensors(&network.modules[m]);
                assert_eq!(
                    c, trainable,
                    "{rule}: every parameter of module {m} gets a gradient"
                );
            } else {
                assert_eq!(
                    c, 0,
                    "{rule}: module {j} got gradients from the loss of module {m}"
                );
            }
        }
    }
}

#[test]
fn each_local_loss_reaches_only_its_own_module() {
    let _guard = common::seeded();
    // AugLocal with d = 2: K - d modules.
    assert_isolated(Rule::AugLocal, 8, 6);
    // PredSim's similarity branch and prediction head, InfoPro's decoder and classifier: K
    // modules.
    assert_isolated(Rule::PredSim, 6, 6);
    assert_isolated(Rule::InfoPro, 6, 6);
}

#[test]
fn without_the_detach_earlier_modules_would_receive_gradients() {
    let _guard = common::seeded();
    let data = batches(1, 8);
    for (rule, k, from) in [
        (Rule::AugLocal, 8, None),
        (Rule::PredSim, 6, Some(3)),
        (Rule::InfoPro, 6, Some(3)),
    ] {
        let plan = plan(rule, k);
        let network = LocalNetwork::<B>::init(&plan, &Default::default());
        // The last module's loss, or that of module `from` (with the modules before it).
        let m = from.unwrap_or(network.modules.len() - 1);
        let counts = reached(&network, m, false, &data[0]);
        assert!(
            counts[..=m].iter().all(|&c| c > 0) && counts[m + 1..].iter().all(|&c| c == 0),
            "{rule}: modules 0..={m} and only they are reached: {counts:?}"
        );
    }
}

#[test]
fn a_step_with_one_local_loss_changes_only_that_module() {
    let _guard = common::seeded();
    let plan = plan(Rule::Greedy, 5);
    let data = batches(1, 8);
    let network = LocalNetwork::<B>::init(&plan, &Default::default());
    let k = 2;
    let (images, targets) = data[0].clone();
    let mut losses = network.losses(images, targets, true);
    let grads = GradientsParams::from_grads(losses.swap_remove(k).backward(), &network);
    // One optimiser over the whole network, with weight decay: only parameters with a
    // gradient are stepped.
    let mut optim = sgd_config(0.9, 1e-4).init::<B, LocalNetwork<B>>();
    let before: Vec<_> = network.modules.iter().map(tensors).collect();
    let after = optim.step(0.1, network, grads);
    for (j, (old, new)) in before
        .iter()
        .zip(after.modules.iter().map(tensors))
        .enumerate()
    {
        let changed = common::max_diff(old, &new) > 0.0;
        assert_eq!(changed, j == k, "module {j} changed: {changed}");
    }
}
