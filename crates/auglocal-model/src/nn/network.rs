//! The primary network: units that can be run one at a time, then the classifier head.

use std::ops::Range;

use auglocal_kernels::FastOps;
use burn::module::Module;
use burn::tensor::{Tensor, backend::Backend};

use super::{
    BasicBlock, BasicBlockConfig, Bottleneck, BottleneckConfig, ClassifierHead,
    ClassifierHeadConfig, Stem, StemConfig, VggConv, VggHead,
};
use crate::{HeadSpec, NetworkSpec, UnitKind, UnitSpec};

/// One unit of a network (the primary network's, or an AugLocal aux net's block).
#[derive(Module, Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "units live in a Vec of at most a few dozen; boxing would not pay"
)]
pub enum Unit<B: Backend> {
    /// conv + BN + ReLU (+ max-pool).
    Stem(Stem<B>),
    /// A residual BasicBlock.
    Block(BasicBlock<B>),
    /// A residual Bottleneck.
    Bottleneck(Bottleneck<B>),
    /// (max-pool) + conv3x3 + BN + ReLU.
    Vgg(VggConv<B>),
}

impl<B: Backend> Unit<B> {
    /// Builds a freshly initialised unit from its description (the family's init: the
    /// reference's He fan-out convolutions, or PyTorch's defaults where the spec says so).
    ///
    /// # Panics
    /// On a [`UnitKind::Custom`] unit: its owner builds it (a custom network's aux nets hold
    /// BasicBlocks only, [`UnitSpec::aux_block`]).
    pub fn init(spec: &UnitSpec, device: &B::Device) -> Self {
        let (i, o, s) = (spec.in_width, spec.out_width, spec.stride);
        match spec.kind {
            UnitKind::Stem { kernel, max_pool } => Unit::Stem(
                StemConfig::new(i, o)
                    .with_kernel(kernel)
                    .with_stride(s)
                    .with_max_pool(max_pool)
                    .init(device),
            ),
            UnitKind::BasicBlock => {
                Unit::Block(BasicBlockConfig::new(i, o).with_stride(s).init(device))
            }
            UnitKind::Bottleneck { planes } => {
                Unit::Bottleneck(BottleneckConfig::new(i, planes).with_stride(s).init(device))
            }
            UnitKind::VggConv { max_pool } => {
                Unit::Vgg(VggConv::new(spec.init, i, o, max_pool, device))
            }
            UnitKind::Custom { .. } => {
                panic!("a custom unit is built by its owner, not from its description")
            }
        }
    }
}

impl<B: FastOps> Unit<B> {
    /// # Shapes
    /// - input: `[batch, in_width, in_size, in_size]`
    /// - output: `[batch, out_width, out_size, out_size]`
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        match self {
            Unit::Stem(stem) => stem.forward(x),
            Unit::Block(block) => block.forward(x),
            Unit::Bottleneck(block) => block.forward(x),
            Unit::Vgg(unit) => unit.forward(x),
        }
    }
}

impl<B: FastOps> crate::LocalUnit<B> for Unit<B> {
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        Unit::forward(self, x)
    }
}

/// The primary network's classifier head.
#[derive(Module, Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "one head per network; boxing would not pay"
)]
pub enum Head<B: Backend> {
    /// GAP -> Linear.
    Linear(ClassifierHead<B>),
    /// VGG's pools and three Linear layers.
    Vgg(VggHead<B>),
}

impl<B: Backend> Head<B> {
    /// Builds a freshly initialised head from its description.
    pub fn init(spec: &HeadSpec, device: &B::Device) -> Self {
        match *spec {
            HeadSpec::Linear { width, num_classes } => {
                Head::Linear(ClassifierHeadConfig::new(width, num_classes).init(device))
            }
            HeadSpec::Vgg {
                width,
                hidden,
                num_classes,
                ..
            } => Head::Vgg(VggHead::new(width, hidden, num_classes, device)),
        }
    }
}

impl<B: FastOps> Head<B> {
    /// # Shapes
    /// - input: `[batch, width, H, W]` (the last unit's output)
    /// - output: `[batch, num_classes]` (logits)
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        match self {
            Head::Linear(h) => h.forward(x),
            Head::Vgg(h) => h.forward(x),
        }
    }
}

/// A network as an ordered list of units plus its classifier head: auglocal's own units by
/// default, or a library user's ([`crate::LocalUnit`]).
///
/// The trainer runs it unit by unit ([`Network::forward_units`]) so that it can cut gradients
/// after any unit; [`Network::forward`] runs it end to end.
#[derive(Module, Debug)]
pub struct Network<B: Backend, U: Module<B> = Unit<B>> {
    /// The units, in order.
    pub units: Vec<U>,
    /// The primary classifier head.
    pub head: Head<B>,
}

impl NetworkSpec {
    /// Builds the network with freshly initialised weights (the reference's initialisation),
    /// drawn now (see [`materialize`](super::materialize)).
    ///
    /// # Panics
    /// On a custom network's description: its units are the user's to build.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Network<B> {
        super::materialize(Network {
            units: self.units.iter().map(|u| Unit::init(u, device)).collect(),
            head: Head::init(&self.head, device),
        })
    }
}

impl<B: Backend, U: Module<B>> Network<B, U> {
    /// Number of units.
    pub fn num_units(&self) -> usize {
        self.units.len()
    }
}

impl<B: FastOps, U: crate::LocalUnit<B>> Network<B, U> {
    /// Runs units `range.start .. range.end` on `x`.
    ///
    /// # Shapes
    /// - input: the input of unit `range.start`, `[batch, C, H, W]`
    /// - output: the output of unit `range.end - 1`
    ///
    /// # Panics
    /// If the range goes past the last unit.
    pub fn forward_units(&self, range: Range<usize>, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.units[range]
            .iter()
            .fold(x, |x, unit| crate::LocalUnit::forward(unit, x))
    }

    /// Applies the classifier head to the output of the last unit.
    ///
    /// # Shapes
    /// - input: `[batch, feature_width, H, W]`
    /// - output: `[batch, num_classes]`
    pub fn forward_head(&self, features: Tensor<B, 4>) -> Tensor<B, 2> {
        self.head.forward(features)
    }

    /// End-to-end forward pass.
    ///
    /// # Shapes
    /// - input: `[batch, in_channels, image_size, image_size]`
    /// - output: `[batch, num_classes]` (logits)
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        self.forward_head(self.forward_units(0..self.num_units(), x))
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::{Autodiff, Flex};
    use burn::module::AutodiffModule;
    use burn::tensor::{Distribution, Tensor};

    use super::*;
    use crate::nn::num_trainable_params;
    use crate::{Arch, NetworkConfig};

    type B = Autodiff<Flex>;

    fn net(config: NetworkConfig) -> (NetworkSpec, Network<B>) {
        let spec = config.spec().expect("valid config");
        let net = spec.init::<B>(&Default::default());
        (spec, net)
    }

    #[test]
    fn instantiated_parameter_counts_match_the_reference() {
        // PyTorch: sum(p.numel() for p in resnet32(class_num=10).parameters()) == 466906,
        // and 1730714 for resnet110 (BN running statistics are buffers, not parameters).
        for (arch, expected) in [(Arch::ResNet32, 466_906), (Arch::ResNet110, 1_730_714)] {
            let (spec, net) = net(NetworkConfig::new(arch));
            assert_eq!(num_trainable_params(&net), expected, "{arch}");
            assert_eq!(spec.cost().params, expected as u64, "{arch}");
        }
    }

    #[test]
    fn resnet32_forward_gives_logits_per_image() {
        let (_, net) = net(NetworkConfig::new(Arch::ResNet32));
        let x = Tensor::<B, 4>::random([2, 3, 32, 32], Distribution::Default, &Default::default());
        assert_eq!(net.forward(x).dims(), [2, 10]);
    }

    #[test]
    fn unit_by_unit_forward_equals_end_to_end() {
        let (spec, net) = net(NetworkConfig::new(Arch::ResNet20).with_width_multiplier(0.25));
        let valid = net.valid();
        let device = Default::default();
        let x = Tensor::random([3, 3, 32, 32], Distribution::Default, &device);
        let whole = valid.forward(x.clone());
        let cut = 4;
        let mid = valid.forward_units(0..cut, x);
        let u = spec.units[cut - 1];
        assert_eq!(mid.dims(), [3, u.out_width, u.out_size, u.out_size]);
        let split = valid.forward_head(valid.forward_units(cut..spec.num_units(), mid));
        split.into_data().assert_eq(&whole.into_data(), true);
    }

    #[test]
    fn odd_input_sizes_follow_the_spec() {
        let (spec, net) = net(NetworkConfig::new(Arch::ResNet20)
            .with_width_multiplier(0.25)
            .with_image_size(28)
            .with_num_classes(7));
        let x = Tensor::<B, 4>::zeros([1, 3, 28, 28], &Default::default());
        let features = net.forward_units(0..spec.num_units(), x);
        let last = spec.units[spec.num_units() - 1];
        assert_eq!(
            features.dims(),
            [1, last.out_width, last.out_size, last.out_size]
        );
        assert_eq!(last.out_size, 7);
        assert_eq!(net.forward_head(features).dims(), [1, 7]);
    }

    #[test]
    fn clones_of_a_new_network_are_equal() {
        let (_, net) = net(NetworkConfig::new(Arch::ResNet20).with_width_multiplier(0.25));
        let copy = net.clone();
        let w = |n: &Network<B>| match &n.head {
            Head::Linear(h) => h.linear.weight.val().into_data(),
            Head::Vgg(h) => h.fc3.weight.val().into_data(),
        };
        assert_eq!(w(&net), w(&copy));
        let Unit::Stem(a) = &net.units[0] else {
            panic!("stem")
        };
        let Unit::Stem(b) = &copy.units[0] else {
            panic!("stem")
        };
        assert_eq!(
            a.conv.weight.val().into_data(),
            b.conv.weight.val().into_data()
        );
    }

    #[test]
    fn initialisation_follows_the_reference() {
        let (_, net) = net(NetworkConfig::new(Arch::ResNet20));
        let Unit::Block(block) = &net.units[9] else {
            panic!("unit 9 is a block")
        };
        // 64 -> 64 conv3x3: std sqrt(2 / (3 * 3 * 64)) over 36,864 weights.
        let w: Vec<f32> = block.conv2.weight.val().into_data().to_vec().expect("f32");
        let n = w.len() as f64;
        let mean = w.iter().map(|&v| v as f64).sum::<f64>() / n;
        let std = (w.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
        let expected = (2.0f64 / 576.0).sqrt();
        assert!(mean.abs() < 0.002, "mean {mean}");
        assert!(
            (std / expected - 1.0).abs() < 0.03,
            "std {std} vs {expected}"
        );
        let gamma: Vec<f32> = block.bn1.gamma.val().into_data().to_vec().expect("f32");
        let beta: Vec<f32> = block.bn1.beta.val().into_data().to_vec().expect("f32");
        assert!(gamma.iter().all(|&g| g == 1.0) && beta.iter().all(|&b| b == 0.0));
        assert!(block.conv1.bias.is_none());
    }
}
