//! Burn aux nets built from an [`AuxPlan`](crate::AuxPlan).

mod dgl;
pub mod infopro;
mod mlp;
pub mod predsim;

use auglocal_kernels::FastOps;
use auglocal_model::nn::{ClassifierHead, Unit, materialize};
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Int, Tensor, backend::Backend};

pub use dgl::{ConvBn, DGL_CONV_LAYERS, DGL_MLP_LAYERS, DglHead, DglHeadConfig, LinearBn};
pub use infopro::{InfoProHead, InfoProHeadConfig};
pub use mlp::{MlpHead, MlpHeadConfig};
pub use predsim::{PredSimHead, PredSimHeadConfig};

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
    /// PredSim's prediction head and similarity branch.
    PredSim(PredSimHead<B>),
    /// InfoPro's classifier and decoder.
    InfoPro(InfoProHead<B>),
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
                AuxHeadPlan::PredSim(c) => AuxHead::PredSim(c.init(device)),
                AuxHeadPlan::InfoPro(c) => AuxHead::InfoPro(c.init(device)),
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
        self.head_forward(self.blocks_forward(x))
    }

    fn blocks_forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.blocks.iter().fold(x, |x, b| b.forward(x))
    }

    fn head_forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        match &self.head {
            AuxHead::Linear(h) => h.forward(x),
            AuxHead::Dgl(h) => h.forward(x),
            AuxHead::Mlp(h) => h.forward(x),
            AuxHead::PredSim(h) => h.forward(x),
            AuxHead::InfoPro(h) => h.forward(x),
        }
    }

    /// Whether its objective needs the batch's images ([`AuxNet::local_loss`]'s `pixels`):
    /// InfoPro's decoder reconstructs them.
    pub fn needs_pixels(&self) -> bool {
        matches!(self.head, AuxHead::InfoPro(_))
    }

    /// The local loss of the module this aux net trains, and the aux net's logits: the
    /// cross-entropy of the logits, PredSim's weighted similarity + prediction loss, or
    /// InfoPro's weighted reconstruction + classification loss.
    ///
    /// # Shapes
    /// - h: the output of the isolation point; targets: `[batch]`; pixels: the batch's input
    ///   images in [0, 1] (`[batch, C, H, W]`), which InfoPro reconstructs
    /// - returns logits `[batch, num_classes]` and the loss `[1]`
    ///
    /// # Panics
    /// If the objective needs the images ([`AuxNet::needs_pixels`]) and `pixels` is `None`.
    pub fn local_loss(
        &self,
        h: Tensor<B, 4>,
        targets: Tensor<B, 1, Int>,
        pixels: Option<Tensor<B, 4>>,
    ) -> (Tensor<B, 2>, Tensor<B, 1>) {
        let x = self.blocks_forward(h);
        match &self.head {
            AuxHead::PredSim(head) => head.local_loss(x, targets),
            AuxHead::InfoPro(head) => {
                let pixels = pixels.expect(
                    "InfoPro's objective reconstructs the batch's images: pass them as pixels",
                );
                head.local_loss(x, targets, pixels)
            }
            _ => {
                let logits = self.head_forward(x);
                (logits.clone(), cross_entropy(logits, targets))
            }
        }
    }
}

/// The mean cross-entropy of `logits` against the class indices `targets` (Burn's
/// `CrossEntropyLoss`, as every module's classification loss).
///
/// # Shapes
/// - logits: `[batch, num_classes]`; targets: `[batch]`
/// - output: `[1]`
pub fn cross_entropy<B: Backend>(logits: Tensor<B, 2>, targets: Tensor<B, 1, Int>) -> Tensor<B, 1> {
    CrossEntropyLossConfig::new()
        .init(&logits.device())
        .forward(logits, targets)
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
    fn auglocal_plan_nets_match_their_plan() {
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
    fn predsim_aux_nets_match_their_plan_and_the_reference_count() {
        check(Arch::ResNet32, 1.0, LocalConfig::new(Rule::PredSim, 16));
        check(Arch::ResNet20, 0.25, LocalConfig::new(Rule::PredSim, 5));
        // The reference's ResNet-32 with PredSim, K = 16: 751,216 parameters in all (backbone,
        // prediction heads and similarity convolutions).
        let network = NetworkConfig::new(Arch::ResNet32).spec().expect("valid");
        let plan = Plan::new(&network, &LocalConfig::new(Rule::PredSim, 16)).expect("plan");
        assert_eq!(plan.num_modules(), 16);
        let nets = plan.init_aux_nets::<B>(&Default::default());
        let counted: u64 = nets.iter().map(|n| num_trainable_params(n) as u64).sum();
        assert_eq!(counted + plan.totals.backbone.params, 751_216);
        assert_eq!(
            plan.totals.aux.params + plan.totals.backbone.params,
            751_216
        );
    }

    /// The aux net of the second isolation point of `rule` on a quarter-width ResNet-20 cut
    /// into 4 modules, and a random batch of `batch` maps of that point's output.
    fn second_aux_net(rule: Rule, batch: usize) -> (crate::AuxNet<B>, Tensor<B, 4>) {
        let network = NetworkConfig::new(Arch::ResNet20)
            .with_width_multiplier(0.25)
            .spec()
            .expect("valid");
        let plan = Plan::new(&network, &LocalConfig::new(rule, 4)).expect("plan");
        let device = Default::default();
        let net = plan.init_aux_nets::<B>(&device).swap_remove(1);
        let unit = network.units[1];
        let h = Tensor::<B, 4>::random(
            [batch, unit.out_width, unit.out_size, unit.out_size],
            Distribution::Default,
            &device,
        );
        (net, h)
    }

    #[test]
    fn a_predsim_loss_weighs_similarity_and_prediction() {
        use crate::nets::predsim::similarity_loss;
        use crate::nets::{AuxHead, cross_entropy};
        use burn::tensor::Int;

        let (net, h) = second_aux_net(Rule::PredSim, 6);
        let AuxHead::PredSim(head) = &net.head else {
            panic!("a PredSim head")
        };
        let device = h.device();
        let targets = Tensor::<B, 1, Int>::from_ints([0, 3, 3, 9, 1, 0], &device);
        let (logits, loss) = net.local_loss(h.clone(), targets.clone(), None);
        let sim = similarity_loss(head.similarity.forward(h.clone()), targets.clone(), 10);
        let pred = cross_entropy(net.forward(h), targets);
        let expected = 0.99 * sim.into_scalar() + 0.01 * pred.into_scalar();
        assert_eq!(logits.dims(), [6, 10]);
        assert!((loss.into_scalar() - expected).abs() < 1e-6);
    }

    #[test]
    fn infopro_aux_nets_match_their_plan_and_carry_the_interpolated_weights() {
        use crate::{AuxHeadPlan, LossWeights, Objective};

        check(Arch::ResNet32, 1.0, LocalConfig::new(Rule::InfoPro, 16));
        check(Arch::ResNet20, 0.25, LocalConfig::new(Rule::InfoPro, 5));
        let network = NetworkConfig::new(Arch::ResNet110).spec().expect("valid");
        let plan = Plan::new(&network, &LocalConfig::new(Rule::InfoPro, 55)).expect("plan");
        let objectives: Vec<Objective> = plan.aux_plans().map(|a| a.objective()).collect();
        assert_eq!(objectives.len(), 54);
        assert_eq!(
            objectives[0],
            Objective::InfoPro {
                reconstruction: 5.0,
                classification: 0.0
            }
        );
        assert_eq!(
            objectives[53],
            Objective::InfoPro {
                reconstruction: 0.5,
                classification: 1.0
            }
        );
        // Flags override the reference's weights; bad ones are refused.
        let weights = LossWeights {
            first: [1.0, 1.0],
            last: [0.0, 2.0],
        };
        let config = LocalConfig::new(Rule::InfoPro, 3).with_infopro_weights(Some(weights));
        let plan = Plan::new(&network, &config).expect("plan");
        let heads: Vec<[f64; 2]> = plan
            .aux_plans()
            .map(|a| match &a.head {
                AuxHeadPlan::InfoPro(h) => [h.reconstruction_weight, h.classification_weight],
                other => panic!("an InfoPro head, not {other:?}"),
            })
            .collect();
        assert_eq!(heads, vec![[1.0, 1.0], [0.0, 2.0]]);
        let bad = LossWeights {
            first: [-1.0, 1.0],
            last: [0.0, 2.0],
        };
        let config = LocalConfig::new(Rule::InfoPro, 3).with_infopro_weights(Some(bad));
        let err = Plan::new(&network, &config).expect_err("negative weight");
        assert!(err.to_string().contains("-1,1,0,2"), "{err}");
    }

    #[test]
    fn an_infopro_loss_weighs_reconstruction_and_classification() {
        use crate::nets::infopro::binary_cross_entropy;
        use crate::nets::{AuxHead, cross_entropy};
        use burn::tensor::Int;

        let (net, h) = second_aux_net(Rule::InfoPro, 4);
        let AuxHead::InfoPro(head) = &net.head else {
            panic!("an InfoPro head")
        };
        assert!(net.needs_pixels());
        let device = h.device();
        let pixels = Tensor::<B, 4>::random([4, 3, 32, 32], Distribution::Default, &device);
        let targets = Tensor::<B, 1, Int>::from_ints([0, 3, 3, 9], &device);
        let (logits, loss) = net.local_loss(h.clone(), targets.clone(), Some(pixels.clone()));
        let reconstruction = binary_cross_entropy(head.reconstruct(h.clone()), pixels);
        let classification = cross_entropy(net.forward(h), targets);
        // Module 1 of 3 isolation points: half way from (5, 0.05) to (0.2, 0.5).
        let (r, c) = (head.reconstruction_weight, head.classification_weight);
        assert!(
            (r - 2.6).abs() < 1e-12 && (c - 0.275).abs() < 1e-12,
            "{r} {c}"
        );
        let expected =
            r as f32 * reconstruction.into_scalar() + c as f32 * classification.into_scalar();
        assert_eq!(logits.dims(), [4, 10]);
        assert!((loss.into_scalar() - expected).abs() < 1e-4);
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
