//! A network as an ordered list of units: pure data, serialisable, no tensors.
//!
//! A *unit* is what local learning may cut after: the stem or one residual block of a ResNet,
//! one conv + BN + ReLU of a VGG. Every family ([`crate::family`]) lays its network out as
//! [`UnitSpec`]s and a [`HeadSpec`]; what a unit kind computes, costs, keeps for its backward
//! pass and how it is initialised is written once, here and in [`crate::nn`], for every family.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::cost::{self, BOTTLENECK_EXPANSION, Cost};
use crate::{Arch, ModelError};

/// Stage widths of the CIFAR ResNets at width multiplier 1.
pub const STAGE_WIDTHS: [usize; 3] = [16, 32, 64];

/// Largest class count of a network (ImageNet-21k has 21,841).
pub const MAX_CLASSES: usize = 100_000;
/// Largest width multiplier (stage widths up to 1,024, 4,096 channels at most).
pub const MAX_WIDTH_MULTIPLIER: f64 = 64.0;
/// Most input channels.
pub const MAX_CHANNELS: usize = 64;
/// Largest side of an input image, in pixels.
pub const MAX_IMAGE_SIZE: usize = 4096;

fn three() -> usize {
    3
}

/// What a unit is. In JSON the kind is the `kind` field of its [`UnitSpec`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum UnitKind {
    /// conv `kernel x kernel` (the unit's stride, padding `kernel / 2`, no bias) + BN + ReLU,
    /// then, with `max_pool`, a 3x3 max-pool of stride 2 and padding 1 (torchvision's stem).
    Stem {
        /// Side of the convolution's kernel.
        #[serde(default = "three")]
        kernel: usize,
        /// Whether a 3x3/2 max-pool follows.
        #[serde(default)]
        max_pool: bool,
    },
    /// conv3x3(stride) + BN + ReLU + conv3x3 + BN, plus shortcut, then ReLU.
    BasicBlock,
    /// conv1x1 + BN + ReLU + conv3x3(stride) + BN + ReLU + conv1x1 (x4) + BN, plus shortcut,
    /// then ReLU; the output has `4 * planes` channels.
    Bottleneck {
        /// Channels of the inner 3x3 convolution.
        planes: usize,
    },
    /// With `max_pool`, a 2x2 max-pool of stride 2; then conv3x3 (padding 1, with bias) + BN +
    /// ReLU. VGG's units: the pools between stages run at the start of the next unit, so an
    /// isolation point after a conv comes before the pool.
    VggConv {
        /// Whether a 2x2/2 max-pool comes first.
        max_pool: bool,
    },
    /// A unit of a library user's own network ([`crate::CustomNetworkConfig`]): the planner
    /// knows its widths and sizes from a dry forward pass and its parameter count, nothing of
    /// what it computes (its multiply-adds count as 0). AugLocal's aux nets stand a BasicBlock
    /// in for it ([`UnitSpec::aux_block`]).
    Custom {
        /// Its parameters.
        params: u64,
    },
}

/// How a unit's weights are drawn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    /// The reference's: convolutions He-normal with fan-out, `N(0, sqrt(2 / (k * k * out)))`,
    /// conv biases 0, BatchNorm weight 1 and bias 0.
    #[default]
    HeFanOut,
    /// PyTorch's defaults, `U(-1/sqrt(fan_in), 1/sqrt(fan_in))` for conv weights and biases
    /// (the reference's VGG aux nets, built after it initialised the network).
    TorchDefault,
}

/// One unit of a network: its kind, widths, stride and feature-map sides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitSpec {
    /// What the unit computes.
    #[serde(flatten)]
    pub kind: UnitKind,
    /// Input channels.
    pub in_width: usize,
    /// Output channels.
    pub out_width: usize,
    /// Stride of the strided convolution (1 or 2; the stem's may be larger).
    pub stride: usize,
    /// Side of the square input feature map.
    pub in_size: usize,
    /// Side of the square output feature map.
    pub out_size: usize,
    /// How its weights are drawn.
    #[serde(default)]
    pub init: Init,
}

impl UnitKind {
    /// Side of the output of a unit of this kind with stride `stride` on an `in_size` input.
    pub fn out_size(self, in_size: usize, stride: usize) -> usize {
        match self {
            UnitKind::Stem { max_pool, .. } => {
                let conv = cost::conv_out_size(in_size, stride);
                if max_pool {
                    cost::conv_out_size(conv, 2)
                } else {
                    conv
                }
            }
            UnitKind::BasicBlock | UnitKind::Bottleneck { .. } | UnitKind::Custom { .. } => {
                cost::conv_out_size(in_size, stride)
            }
            UnitKind::VggConv { max_pool } => {
                if max_pool {
                    in_size / 2
                } else {
                    in_size
                }
            }
        }
    }

    /// Output channels of a unit of this kind whose main convolutions are `width` wide.
    pub fn out_width(self, width: usize) -> usize {
        match self {
            UnitKind::Bottleneck { planes } => planes * BOTTLENECK_EXPANSION,
            _ => width,
        }
    }
}

impl UnitSpec {
    /// A unit of `kind` reading `in_width x in_size` with stride `stride`, writing `out_width`
    /// channels (for a Bottleneck, `4 * planes`); its output size follows from the kind.
    pub fn new(
        kind: UnitKind,
        in_width: usize,
        out_width: usize,
        stride: usize,
        in_size: usize,
    ) -> Self {
        Self {
            kind,
            in_width,
            out_width: kind.out_width(out_width),
            stride,
            in_size,
            out_size: kind.out_size(in_size, stride),
            init: Init::HeFanOut,
        }
    }

    /// Float elements this unit keeps for its backward pass, per image (a lower bound).
    pub fn activations(&self) -> u64 {
        let (i, o, s, n) = (self.in_width, self.out_width, self.stride, self.in_size);
        match self.kind {
            UnitKind::Stem { max_pool, .. } => {
                let conv = cost::conv_out_size(n, s);
                let pooled = if max_pool {
                    (o * self.out_size * self.out_size) as u64
                } else {
                    0
                };
                cost::stem_activations(o, conv) + pooled
            }
            UnitKind::BasicBlock => cost::basic_block_activations(i, o, s, n),
            UnitKind::Bottleneck { planes } => cost::bottleneck_activations(i, planes, s, n),
            UnitKind::VggConv { max_pool } => cost::vgg_conv_activations(i, o, max_pool, n),
            // What it keeps is its own business; its output at least.
            UnitKind::Custom { .. } => (o * self.out_size * self.out_size) as u64,
        }
    }

    /// Parameters and multiply-adds per image of this unit.
    pub fn cost(&self) -> Cost {
        let (i, o, s, n) = (self.in_width, self.out_width, self.stride, self.in_size);
        match self.kind {
            UnitKind::Stem { kernel, .. } => {
                cost::conv2d(i, o, kernel, cost::conv_out_size(n, s)) + cost::batch_norm(o)
            }
            UnitKind::BasicBlock => cost::basic_block(i, o, s, n),
            UnitKind::Bottleneck { planes } => cost::bottleneck(i, planes, s, n),
            UnitKind::VggConv { .. } => {
                cost::conv2d_biased(i, o, 3, self.out_size) + cost::batch_norm(o)
            }
            UnitKind::Custom { params } => Cost { params, macs: 0 },
        }
    }

    /// A fresh unit of the same type as this one, for an AugLocal aux net: it reads what the
    /// aux net has so far (`in_width x in_size`) and writes this unit's width. A residual unit
    /// (or a stem) becomes a block of the network's own type (a BasicBlock for a stem), with
    /// stride 2 while the aux net's resolution is above this unit's (one halving per block at
    /// most). A VGG unit becomes a VGG unit that max-pools when the width changes, as the
    /// reference builds its VGG aux nets; its weights keep PyTorch's default init there. A
    /// custom unit becomes a BasicBlock, as a stem does.
    pub fn aux_block(&self, in_width: usize, in_size: usize) -> UnitSpec {
        let stride = if in_size > self.out_size { 2 } else { 1 };
        match self.kind {
            UnitKind::Stem { .. } | UnitKind::BasicBlock | UnitKind::Custom { .. } => {
                UnitSpec::new(
                    UnitKind::BasicBlock,
                    in_width,
                    self.out_width,
                    stride,
                    in_size,
                )
            }
            UnitKind::Bottleneck { planes } => {
                UnitSpec::new(self.kind, in_width, planes, stride, in_size)
            }
            UnitKind::VggConv { .. } => UnitSpec {
                init: Init::TorchDefault,
                ..UnitSpec::new(
                    UnitKind::VggConv {
                        max_pool: in_width != self.out_width,
                    },
                    in_width,
                    self.out_width,
                    1,
                    in_size,
                )
            },
        }
    }
}

/// The primary network's classifier head.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HeadSpec {
    /// Global average pool -> Linear(width, classes) (PyTorch's default Linear init).
    Linear {
        /// Channels of the last unit's output.
        width: usize,
        /// Classes.
        num_classes: usize,
    },
    /// VGG's: 2x2/2 max-pool, adaptive average pool to 7x7, Linear(49 * width, hidden), ReLU,
    /// Dropout(0.5), Linear(hidden, hidden), ReLU, Dropout(0.5), Linear(hidden, classes);
    /// Linear weights `N(0, 0.01)`, biases 0.
    Vgg {
        /// Channels of the last unit's output.
        width: usize,
        /// Side of the last unit's output (before the max-pool).
        in_size: usize,
        /// Width of the two hidden layers (4,096 at width multiplier 1).
        hidden: usize,
        /// Classes.
        num_classes: usize,
    },
}

/// Side of the map VGG's head pools adaptively to.
pub const VGG_POOL: usize = 7;

impl HeadSpec {
    /// Parameters and multiply-adds per image.
    pub fn cost(&self) -> Cost {
        match *self {
            HeadSpec::Linear { width, num_classes } => {
                cost::classifier_head(width, num_classes, false)
            }
            HeadSpec::Vgg {
                width,
                hidden,
                num_classes,
                ..
            } => {
                cost::linear(width * VGG_POOL * VGG_POOL, hidden, true)
                    + cost::linear(hidden, hidden, true)
                    + cost::linear(hidden, num_classes, true)
            }
        }
    }

    /// Classes.
    pub fn num_classes(&self) -> usize {
        match *self {
            HeadSpec::Linear { num_classes, .. } | HeadSpec::Vgg { num_classes, .. } => num_classes,
        }
    }
}

/// How the reference trains a family with local learning, as data the planner reads (it
/// never asks which family a network is).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalStyle {
    /// AugLocal's partition: `K - d` modules (the reference on CIFAR: a unit with at most `d`
    /// units after it would get an aux net that copies the rest) or `K` (its ImageNet runs).
    pub subtract_depth: bool,
    /// The head that ends an AugLocal aux net.
    pub aux_head: AuxHeadStyle,
}

/// The head that ends an AugLocal aux net.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AuxHeadStyle {
    /// GAP -> Linear; with `batch_norm_when_shallow`, a BatchNorm1d before the Linear when the
    /// aux depth is at most 1 (the CIFAR reference).
    Linear {
        /// BatchNorm1d before the Linear of depth-1 aux nets.
        batch_norm_when_shallow: bool,
    },
    /// The reference's VGG aux head: flatten, adaptive average pool of the `C * H * W` vector
    /// to `features`, then 2 x (Linear, BN1d, ReLU) of `features` and Linear -> classes.
    Mlp {
        /// Width of the pooled vector and of the hidden layers (512).
        features: usize,
    },
}

/// Configuration of a network of any family; [`NetworkConfig::spec`] validates it into a
/// [`NetworkSpec`], whose [`NetworkSpec::init`] builds the Burn module.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetworkConfig {
    /// Which network.
    pub arch: Arch,
    /// Number of classes of the primary head (and of every aux net).
    pub num_classes: usize,
    /// Multiplies every width (rounded, at least 1); 0.25 gives quarter-width nets that make
    /// tests fast.
    pub width_multiplier: f64,
    /// Input channels (3 for RGB; grey images are repeated to 3 channels by the data pipeline).
    pub in_channels: usize,
    /// Side of the square input image.
    pub image_size: usize,
}

impl NetworkConfig {
    /// `arch` for 10 classes of 3-channel images at the family's own size
    /// ([`Arch::default_image_size`]), width multiplier 1.
    pub fn new(arch: Arch) -> Self {
        Self {
            arch,
            num_classes: 10,
            width_multiplier: 1.0,
            in_channels: 3,
            image_size: arch.default_image_size(),
        }
    }

    /// With `num_classes` classes.
    pub fn with_num_classes(self, num_classes: usize) -> Self {
        Self {
            num_classes,
            ..self
        }
    }

    /// With every width multiplied by `width_multiplier`.
    pub fn with_width_multiplier(self, width_multiplier: f64) -> Self {
        Self {
            width_multiplier,
            ..self
        }
    }

    /// For `in_channels`-channel images.
    pub fn with_in_channels(self, in_channels: usize) -> Self {
        Self {
            in_channels,
            ..self
        }
    }

    /// For `image_size x image_size` images.
    pub fn with_image_size(self, image_size: usize) -> Self {
        Self { image_size, ..self }
    }
}

/// Refuses fewer than 2 or more than [`MAX_CLASSES`] classes.
pub(crate) fn check_classes(num_classes: usize) -> Result<(), ModelError> {
    if num_classes < 2 {
        return Err(ModelError::TooFewClasses(num_classes));
    }
    if num_classes > MAX_CLASSES {
        return Err(ModelError::TooManyClasses { got: num_classes });
    }
    Ok(())
}

/// A width times the multiplier, rounded, at least 1.
pub(crate) fn scale_width(width: usize, multiplier: f64) -> usize {
    ((width as f64) * multiplier).round().max(1.0) as usize
}

/// A validated network laid out as units, plus its classifier head.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetworkSpec {
    /// Which network.
    pub arch: Arch,
    /// Classes of the primary head.
    pub num_classes: usize,
    /// Multiplier applied to the widths.
    pub width_multiplier: f64,
    /// Channels of the input images.
    pub in_channels: usize,
    /// Side of the square input image.
    pub image_size: usize,
    /// The units, in order.
    pub units: Vec<UnitSpec>,
    /// The primary head.
    pub head: HeadSpec,
    /// How local learning treats this family.
    pub local: LocalStyle,
}

impl NetworkSpec {
    /// Number of units `N`.
    pub fn num_units(&self) -> usize {
        self.units.len()
    }

    /// Output width of every unit (the reference's `net_dim`).
    pub fn widths(&self) -> Vec<usize> {
        self.units.iter().map(|u| u.out_width).collect()
    }

    /// Width of the last unit, which the classifier head reads.
    pub fn feature_width(&self) -> usize {
        self.units.last().map_or(0, |u| u.out_width)
    }

    /// Cost of the primary head.
    pub fn head_cost(&self) -> Cost {
        self.head.cost()
    }

    /// Cost of a range of units.
    pub fn units_cost(&self, units: Range<usize>) -> Cost {
        self.units[units].iter().map(UnitSpec::cost).sum()
    }

    /// Cost of the whole network: every unit and the primary head.
    pub fn cost(&self) -> Cost {
        self.units_cost(0..self.num_units()) + self.head_cost()
    }

    /// The shape of one input image, `[channels, size, size]`.
    pub fn input_shape(&self) -> [usize; 3] {
        [self.in_channels, self.image_size, self.image_size]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(arch: Arch) -> NetworkSpec {
        NetworkConfig::new(arch).spec().expect("valid config")
    }

    #[test]
    fn resnet32_layout_matches_the_method_doc() {
        let s = spec(Arch::ResNet32);
        let mut expected = vec![16; 6];
        expected.extend([32; 5]);
        expected.extend([64; 5]);
        assert_eq!(s.widths(), expected);
        let downsampling: Vec<usize> = (0..s.num_units())
            .filter(|&i| s.units[i].stride == 2)
            .collect();
        assert_eq!(downsampling, vec![6, 11]);
        assert_eq!(s.units[15].out_size, 8);
    }

    #[test]
    fn parameter_counts_match_the_reference() {
        assert_eq!(spec(Arch::ResNet32).cost().params, 466_906);
        assert_eq!(spec(Arch::ResNet110).cost().params, 1_730_714);
    }

    #[test]
    fn width_multiplier_scales_every_stage() {
        let s = NetworkConfig::new(Arch::ResNet20)
            .with_width_multiplier(0.25)
            .spec()
            .expect("valid");
        assert_eq!(s.units[0].out_width, 4);
        assert_eq!(s.feature_width(), 16);
    }

    #[test]
    fn invalid_configs_are_errors() {
        let base = NetworkConfig::new(Arch::ResNet20);
        assert_eq!(
            base.clone().with_num_classes(1).spec(),
            Err(ModelError::TooFewClasses(1))
        );
        assert!(matches!(
            base.clone().with_width_multiplier(f64::NAN).spec(),
            Err(ModelError::InvalidWidthMultiplier(_))
        ));
        assert!(matches!(
            base.clone().with_image_size(0).spec(),
            Err(ModelError::InvalidInput { .. })
        ));
        let err = NetworkConfig::new(Arch::Vgg13)
            .with_image_size(16)
            .spec()
            .expect_err("five 2x2 pools need 32 pixels");
        assert_eq!(
            err,
            ModelError::ImageTooSmall {
                arch: Arch::Vgg13,
                size: 16,
                min: 32
            }
        );
        assert!(err.to_string().contains("32"), "{err}");
    }

    #[test]
    fn huge_sizes_are_refused_before_anything_is_counted() {
        let base = NetworkConfig::new(Arch::ResNet110);
        for bad in [1e300, f64::INFINITY, 64.5] {
            assert!(matches!(
                base.clone().with_width_multiplier(bad).spec(),
                Err(ModelError::InvalidWidthMultiplier(_))
            ));
        }
        assert!(matches!(
            base.clone().with_num_classes(usize::MAX).spec(),
            Err(ModelError::TooManyClasses { .. })
        ));
        for size in [usize::MAX, MAX_IMAGE_SIZE + 1] {
            assert!(matches!(
                base.clone().with_image_size(size).spec(),
                Err(ModelError::InvalidInput { .. })
            ));
        }
        // At every bound at once the counts still fit in u64, for every family.
        for arch in [Arch::ResNet110, Arch::ResNet152, Arch::Vgg19] {
            let s = NetworkConfig::new(arch)
                .with_width_multiplier(MAX_WIDTH_MULTIPLIER)
                .with_num_classes(MAX_CLASSES)
                .with_image_size(MAX_IMAGE_SIZE)
                .spec()
                .expect("within bounds");
            let cost = s.cost();
            assert!(
                cost.macs > cost.params && cost.params > 1_000_000_000,
                "{arch}: {cost:?}"
            );
        }
    }

    #[test]
    fn spec_round_trips_through_json() {
        for arch in [Arch::ResNet44, Arch::ResNet50, Arch::Vgg11] {
            let s = spec(arch);
            let json = serde_json::to_string(&s).expect("serialise");
            let back: NetworkSpec = serde_json::from_str(&json).expect("deserialise");
            assert_eq!(back, s);
        }
    }

    #[test]
    fn units_written_before_families_still_read() {
        // A unit of a plan.json written when stems were always conv3x3 without a pool.
        let old =
            r#"{"kind":"stem","in_width":3,"out_width":16,"stride":1,"in_size":32,"out_size":32}"#;
        let unit: UnitSpec = serde_json::from_str(old).expect("old unit");
        assert_eq!(
            unit.kind,
            UnitKind::Stem {
                kernel: 3,
                max_pool: false
            }
        );
        assert_eq!(unit, spec(Arch::ResNet32).units[0]);
    }
}
