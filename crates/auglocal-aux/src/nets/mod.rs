//! Burn aux nets built from an [`AuxPlan`](crate::AuxPlan).

mod dgl;
mod mlp;

use auglocal_kernels::FastOps;
use auglocal_model::nn::{ClassifierHead, Unit, materialize};
use burn::module::Module;
use burn::tensor::{Tensor, backend::Backend};

pub use dgl::{ConvBn, DGL_CONV_LAYERS, DGL_MLP_LAYERS, DglHead, DglHeadConfig, LinearBn};
pub use mlp::{MlpHead, MlpHeadConfig};

use crate::{AuxHeadPlan, AuxPlan, Plan};

/// The head of an aux net.
#[derive(Module, Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "one head per aux net, a few dozen at most; boxing would not pay"
)]
pub enum AuxHead<B: Backend> {
    /// GAP -> (BatchNorm1d) -> Linear.
    Linear(ClassifierHead<B>),
    /// DGL's convolutional + MLP head.
    Dgl(DglHead<B>),
    /// The reference's VGG aux head: pooled flat vector, MLP.
    Mlp(MlpHead<B>),
}

/// An auxiliary network: freshly initialised units (AugLocal's blocks of the network's own
/// type; none for greedy and DGL), then a head.
#[derive(Module, Debug)]
pub struct AuxNet<B: Backend> {
    /// The blocks, in order.
    pub blocks: Vec<Unit<B>>,
    /// The classifier head.
    pub head: AuxHead<B>,
}

impl AuxPlan {
    /// Builds this aux net with fresh weights (the reference's initialisation), drawn now.
    pub fn init<B: Backend>(&self, device: &B::Device) -> AuxNet<B> {
        materialize(AuxNet {
            blocks: self.blocks.iter().map(|b| Unit::init(b, device)).collect(),
            head: match &self.head {
                AuxHeadPlan::Linear(c) => AuxHead::Linear(c.init(device)),
                AuxHeadPlan::Dgl(c) => AuxHead::Dgl(c.init(device)),
                AuxHeadPlan::Mlp(c) => AuxHead::Mlp(c.init(device)),
            },
        })
    }
}

impl Plan {
    /// Builds every aux net of the plan, one per isolation point, in order: `aux_nets[m]`
    /// trains module `m` (every module but the last has one).
    pub fn init_aux_nets<B: Backend>(&self, device: &B::Device) -> Vec<AuxNet<B>> {
        self.aux_plans().map(|a| a.init(device)).collect()
    }
}

impl<B: FastOps> AuxNet<B> {
    /// # Shapes
    /// - input: the output of the isolation point, `[batch, input_width, input_size, input_size]`
    /// - output: `[batch, num_classes]` (logits)
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let x = self.blocks.iter().fold(x, |x, b| b.forward(x));
        match &self.head {
            AuxHead::Linear(h) => h.forward(x),
            AuxHead::Dgl(h) => h.forward(x),
            AuxHead::Mlp(h) => h.forward(x),
        }
    }
}

#[cfg(test)]
mod tests {
    use auglocal_model::nn::num_trainable_params;
    use auglocal_model::{Arch, NetworkConfig};
    use burn::backend::{Autodiff, Flex};
    use burn::tensor::{Distribution, Tensor};

    use crate::{LocalConfig, Plan, Rule};

    type B = Autodiff<Flex>;

    fn check(arch: Arch, width: f64, config: LocalConfig) {
        let network = NetworkConfig::new(arch)
            .with_width_multiplier(width)
            .spec()
            .expect("valid network");
        let plan = Plan::new(&network, &config).expect("valid plan");
        let device = Default::default();
        let aux_nets = plan.init_aux_nets::<B>(&device);
        assert_eq!(aux_nets.len(), plan.num_modules() - 1);
        for (aux, net) in plan.aux_plans().zip(&aux_nets) {
            let point = aux.isolation_point;
            assert_eq!(
                num_trainable_params(net) as u64,
                aux.cost.params,
                "{} aux net at unit {point}",
                config.rule
            );
            let unit = network.units[point];
            let h = Tensor::<B, 4>::random(
                [2, unit.out_width, unit.out_size, unit.out_size],
                Distribution::Default,
                &device,
            );
            assert_eq!(
                net.forward(h).dims(),
                [2, network.num_classes],
                "aux net at unit {point}"
            );
        }
    }

    #[test]
    fn auglocal_aux_nets_match_their_plan() {
        check(Arch::ResNet32, 1.0, LocalConfig::new(Rule::AugLocal, 16));
        check(
            Arch::ResNet20,
            0.25,
            LocalConfig::new(Rule::AugLocal, 10)
                .with_depth(1)
                .with_pyramid(None),
        );
    }

    #[test]
    fn resnet110_auglocal_parameter_counts_match_their_plan() {
        let network = NetworkConfig::new(Arch::ResNet110).spec().expect("valid");
        let plan = Plan::new(
            &network,
            &LocalConfig::new(Rule::AugLocal, 55).with_depth(3),
        )
        .expect("valid plan");
        let nets = plan.init_aux_nets::<B>(&Default::default());
        let counted: u64 = nets.iter().map(|n| num_trainable_params(n) as u64).sum();
        assert_eq!(counted, plan.totals.aux.params);
    }

    #[test]
    fn greedy_and_dgl_aux_nets_match_their_plan() {
        check(Arch::ResNet32, 1.0, LocalConfig::new(Rule::Greedy, 16));
        check(Arch::ResNet32, 1.0, LocalConfig::new(Rule::Dgl, 16));
    }

    #[test]
    fn aux_nets_are_fresh_not_copies_of_the_primary_net() {
        let network = NetworkConfig::new(Arch::ResNet20).spec().expect("valid");
        let plan = Plan::new(&network, &LocalConfig::new(Rule::AugLocal, 10)).expect("plan");
        let device = Default::default();
        let a = plan.init_aux_nets::<B>(&device);
        let b = plan.init_aux_nets::<B>(&device);
        let w = |n: &crate::AuxNet<B>| match &n.blocks[0] {
            auglocal_model::nn::Unit::Block(b) => b.conv1.weight.val().into_data(),
            _ => panic!("CIFAR aux nets are made of BasicBlocks"),
        };
        assert_ne!(w(&a[0]), w(&b[0]), "two inits draw different weights");
    }
}
