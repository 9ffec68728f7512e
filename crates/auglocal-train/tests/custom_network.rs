//! A library user's own units train locally: units written here (one with Burn's own
//! `Conv2d`, one with auglocal's), described by a dry forward pass, planned by every local
//! rule, trained, isolated, and handed back as their own type.

mod common;

use auglocal_kernels::FastOps;
use auglocal_model::nn::{BatchNorm, BatchNormConfig};
use auglocal_model::{CustomNetworkConfig, LocalUnit, UnitKind};
use auglocal_plan::{LocalConfig, Plan, Rule};
use auglocal_train::{LocalNetwork, Trainer, sgd_config};
use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2dConfig;
use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use burn::tensor::backend::{AutodiffBackend, Backend};
use common::{B, assert_counts_match_plan, batches, seeded, tensors};

/// conv3x3 + BatchNorm + ReLU; `fast` picks auglocal's Conv2d, else Burn's.
#[derive(Module, Debug)]
enum Conv<B: Backend> {
    Burn(burn::nn::conv::Conv2d<B>),
    Fast(auglocal_kernels::Conv2d<B>),
}

#[derive(Module, Debug)]
struct MyUnit<B: Backend> {
    conv: Conv<B>,
    norm: BatchNorm<B>,
}

impl<B: FastOps> LocalUnit<B> for MyUnit<B> {
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let y = match &self.conv {
            Conv::Burn(c) => c.forward(x),
            Conv::Fast(c) => c.forward(x),
        };
        relu(self.norm.forward(y))
    }
}

fn my_units() -> Vec<MyUnit<B>> {
    let device = Default::default();
    [
        [3, 8, 1],
        [8, 8, 1],
        [8, 16, 2],
        [16, 16, 1],
        [16, 32, 2],
        [32, 32, 1],
    ]
    .iter()
    .enumerate()
    .map(|(i, &[c_in, c_out, stride])| {
        let config = Conv2dConfig::new([c_in, c_out], [3, 3])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1));
        MyUnit {
            conv: if i % 2 == 0 {
                Conv::Burn(config.init(&device))
            } else {
                Conv::Fast(auglocal_kernels::Conv2d::new(&config, &device))
            },
            norm: BatchNormConfig::new(c_out).init(&device),
        }
    })
    .collect()
}

fn plan(units: &[MyUnit<B>], rule: Rule) -> Plan {
    let network = CustomNetworkConfig::new([3, 32, 32], 10)
        .spec::<B, _>(units, &Default::default())
        .expect("plannable");
    Plan::new(&network, &LocalConfig::new(rule, 4).with_depth(2)).expect("valid plan")
}

#[test]
fn own_units_train_with_every_rule_and_come_back_as_their_type() {
    let _guard = seeded();
    let device = Default::default();
    for rule in [Rule::Bp, Rule::Greedy, Rule::Dgl, Rule::AugLocal] {
        let units = my_units();
        let plan = plan(&units, rule);
        assert!(
            plan.network
                .units
                .iter()
                .all(|u| matches!(u.kind, UnitKind::Custom { .. })),
            "{rule}"
        );
        let unit_params: usize = units.iter().map(Module::num_params).sum();
        let mut trainer =
            Trainer::from_units(units, &plan, &sgd_config(0.9, 1e-4), 5, &device).expect("trainer");
        assert_counts_match_plan(trainer.network(), &plan, &format!("{rule}"));
        if rule == Rule::AugLocal {
            // The aux nets stand BasicBlocks in for the selected units.
            for aux in plan.aux_plans() {
                assert!(!aux.blocks.is_empty());
                assert!(aux.blocks.iter().all(|b| b.kind == UnitKind::BasicBlock));
            }
        }
        let before = tensors(trainer.network());
        for (images, targets) in batches(2, 8) {
            let stats = trainer.step(images, targets, 0.05).expect("a step");
            assert_eq!(stats.losses.len(), plan.num_modules(), "{rule}");
            assert!(stats.divergence().is_none(), "{rule}: {:?}", stats.losses);
        }
        let after = tensors(trainer.network());
        let moved = before.iter().zip(&after).filter(|(a, b)| a != b).count();
        assert_eq!(moved, before.len(), "{rule}: every tensor moved");

        let (units, head): (Vec<MyUnit<B>>, _) = trainer.into_network().into_parts();
        assert_eq!(units.len(), 6);
        assert_eq!(
            units.iter().map(Module::num_params).sum::<usize>(),
            unit_params
        );
        let x = units
            .iter()
            .fold(Tensor::zeros([2, 3, 32, 32], &device), |x, u| u.forward(x));
        assert_eq!(head.forward(x).dims(), [2, 10]);
    }
}

/// Trains `units` two steps with AugLocal, seeded with 11, and returns every tensor.
fn trained_with_seed_11(units: Vec<MyUnit<B>>) -> Vec<Vec<f32>> {
    let device = Default::default();
    let plan = plan(&units, Rule::AugLocal);
    let mut trainer =
        Trainer::from_units(units, &plan, &sgd_config(0.9, 1e-4), 11, &device).expect("trainer");
    for (images, targets) in batches(2, 8) {
        trainer.step(images, targets, 0.05).expect("a step");
    }
    tensors(trainer.network())
}

#[test]
fn the_seed_repeats_a_run_whether_units_are_built_before_or_after_seeding() {
    let _guard = seeded();
    let device = Default::default();
    // Seeded first, as a careful user would.
    <B as Backend>::seed(&device, 11);
    let after = trained_with_seed_11(my_units());
    // Built while the backend's generator is wherever earlier draws left it.
    <B as Backend>::seed(&device, 99);
    let _ = Tensor::<B, 1>::random([37], burn::tensor::Distribution::Default, &device);
    let before = trained_with_seed_11(my_units());
    assert!(
        before == after,
        "the order of seeding and building changed the run"
    );
    // The negative control: units that drew their weights before training (here by a forward
    // pass) keep them, and the run differs.
    let drawn = my_units();
    let x = Tensor::zeros([1, 3, 32, 32], &device);
    let _ = drawn.iter().fold(x, |x, u| u.forward(x));
    assert!(
        trained_with_seed_11(drawn) != after,
        "the check sees the units' weights"
    );
}

/// Counts the parameters that received a gradient.
struct WithGrad<'a>(&'a <B as AutodiffBackend>::Gradients, usize);

impl ModuleVisitor<B> for WithGrad<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if param.val().grad(self.0).is_some() {
            self.1 += 1;
        }
    }
}

#[test]
fn own_units_are_gradient_isolated() {
    let _guard = seeded();
    let device = Default::default();
    let units = my_units();
    let plan = plan(&units, Rule::AugLocal);
    let network = LocalNetwork::from_units(units, &plan, &device).expect("network");
    let (images, targets) = batches(1, 4).remove(0);
    for isolate in [true, false] {
        let losses = network.losses(images.clone(), targets.clone(), isolate);
        let grads = losses[1].backward();
        let mut first = WithGrad(&grads, 0);
        network.modules[0].visit(&mut first);
        if isolate {
            assert_eq!(first.1, 0, "module 1's loss reached module 0");
        } else {
            // The negative control: without the cut, the gradient does reach it.
            assert!(first.1 > 0, "the check sees gradients");
        }
    }
    // A plan for another number of units is refused.
    let err = LocalNetwork::<B, MyUnit<B>>::from_units(my_units()[..5].to_vec(), &plan, &device)
        .expect_err("5 units for a plan of 6");
    assert!(err.to_string().contains("5 units"), "{err}");
}
