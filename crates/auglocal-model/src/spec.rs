//! A network as an ordered list of units: pure data, serialisable, no tensors.
//!
//! For the CIFAR ResNets a *unit* is the stem (conv3x3 + BN + ReLU) or one BasicBlock; stages
//! are not units. Local learning cuts the network between units.

use std::ops::Range;

use burn::config::Config;
use serde::{Deserialize, Serialize};

use crate::cost::{self, Cost};
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

/// What a unit is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitKind {
    /// conv3x3 (stride 1) + BN + ReLU.
    Stem,
    /// conv3x3 + BN + ReLU + conv3x3 + BN, plus shortcut, then ReLU.
    BasicBlock,
}

/// One unit of a network: its kind, widths, stride and feature-map sides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitSpec {
    /// Stem or BasicBlock.
    pub kind: UnitKind,
    /// Input channels.
    pub in_width: usize,
    /// Output channels.
    pub out_width: usize,
    /// Stride of the first convolution (1 or 2).
    pub stride: usize,
    /// Side of the square input feature map.
    pub in_size: usize,
    /// Side of the square output feature map.
    pub out_size: usize,
}

impl UnitSpec {
    /// Float elements this unit keeps for its backward pass, per image (a lower bound).
    pub fn activations(&self) -> u64 {
        match self.kind {
            UnitKind::Stem => cost::stem_activations(self.out_width, self.out_size),
            UnitKind::BasicBlock => cost::basic_block_activations(
                self.in_width,
                self.out_width,
                self.stride,
                self.in_size,
            ),
        }
    }

    /// Parameters and multiply-adds per image of this unit.
    pub fn cost(&self) -> Cost {
        match self.kind {
            UnitKind::Stem => cost::stem(self.in_width, self.out_width, self.in_size),
            UnitKind::BasicBlock => {
                cost::basic_block(self.in_width, self.out_width, self.stride, self.in_size)
            }
        }
    }
}

/// Configuration of a CIFAR ResNet; [`ResNetConfig::spec`] validates it into a [`NetworkSpec`],
/// whose [`NetworkSpec::init`] builds the Burn module.
#[derive(Config, Debug, PartialEq)]
pub struct ResNetConfig {
    /// Which ResNet.
    pub arch: Arch,
    /// Number of classes of the primary head (and of every aux net).
    #[config(default = 10)]
    pub num_classes: usize,
    /// Multiplies the stage widths 16/32/64 (rounded, at least 1); 0.25 gives quarter-width
    /// nets that make tests fast.
    #[config(default = 1.0)]
    pub width_multiplier: f64,
    /// Input channels (3 for RGB; grey images are repeated to 3 channels by the data pipeline).
    #[config(default = 3)]
    pub in_channels: usize,
    /// Side of the square input image (32 for CIFAR-size inputs).
    #[config(default = 32)]
    pub image_size: usize,
}

impl ResNetConfig {
    /// Checks the configuration and lays the network out as units.
    ///
    /// Every size is bounded ([`MAX_CLASSES`], [`MAX_WIDTH_MULTIPLIER`], [`MAX_CHANNELS`],
    /// [`MAX_IMAGE_SIZE`]), so that parameter and multiply-add counts cannot overflow.
    pub fn spec(&self) -> Result<NetworkSpec, ModelError> {
        if self.num_classes < 2 {
            return Err(ModelError::TooFewClasses(self.num_classes));
        }
        if self.num_classes > MAX_CLASSES {
            return Err(ModelError::TooManyClasses {
                got: self.num_classes,
            });
        }
        if !(self.width_multiplier.is_finite()
            && self.width_multiplier > 0.0
            && self.width_multiplier <= MAX_WIDTH_MULTIPLIER)
        {
            return Err(ModelError::InvalidWidthMultiplier(self.width_multiplier));
        }
        if !(1..=MAX_CHANNELS).contains(&self.in_channels)
            || !(1..=MAX_IMAGE_SIZE).contains(&self.image_size)
        {
            return Err(ModelError::InvalidInput {
                channels: self.in_channels,
                size: self.image_size,
            });
        }
        let widths = STAGE_WIDTHS.map(|w| scale_width(w, self.width_multiplier));
        let mut units = Vec::with_capacity(self.arch.num_units());
        let mut size = self.image_size;
        units.push(UnitSpec {
            kind: UnitKind::Stem,
            in_width: self.in_channels,
            out_width: widths[0],
            stride: 1,
            in_size: size,
            out_size: size,
        });
        let mut width = widths[0];
        for (stage, &stage_width) in widths.iter().enumerate() {
            for block in 0..self.arch.blocks_per_stage() {
                let stride = if stage > 0 && block == 0 { 2 } else { 1 };
                let out_size = cost::conv_out_size(size, stride);
                units.push(UnitSpec {
                    kind: UnitKind::BasicBlock,
                    in_width: width,
                    out_width: stage_width,
                    stride,
                    in_size: size,
                    out_size,
                });
                width = stage_width;
                size = out_size;
            }
        }
        Ok(NetworkSpec {
            arch: self.arch,
            num_classes: self.num_classes,
            width_multiplier: self.width_multiplier,
            image_size: self.image_size,
            units,
        })
    }
}

fn scale_width(width: usize, multiplier: f64) -> usize {
    ((width as f64) * multiplier).round().max(1.0) as usize
}

/// A validated network laid out as units, plus its classifier head (GAP + Linear).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetworkSpec {
    /// Which ResNet.
    pub arch: Arch,
    /// Classes of the primary head.
    pub num_classes: usize,
    /// Multiplier applied to the stage widths.
    pub width_multiplier: f64,
    /// Side of the square input image.
    pub image_size: usize,
    /// The units, in order.
    pub units: Vec<UnitSpec>,
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

    /// Cost of the primary head: GAP + Linear(feature width, classes).
    pub fn head_cost(&self) -> Cost {
        cost::classifier_head(self.feature_width(), self.num_classes, false)
    }

    /// Cost of a range of units.
    pub fn units_cost(&self, units: Range<usize>) -> Cost {
        self.units[units].iter().map(UnitSpec::cost).sum()
    }

    /// Cost of the whole network: every unit and the primary head.
    pub fn cost(&self) -> Cost {
        self.units_cost(0..self.num_units()) + self.head_cost()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(arch: Arch) -> NetworkSpec {
        ResNetConfig::new(arch).spec().expect("valid config")
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
        let s = ResNetConfig::new(Arch::ResNet20)
            .with_width_multiplier(0.25)
            .spec()
            .expect("valid");
        assert_eq!(s.units[0].out_width, 4);
        assert_eq!(s.feature_width(), 16);
    }

    #[test]
    fn invalid_configs_are_errors() {
        let base = ResNetConfig::new(Arch::ResNet20);
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
    }

    #[test]
    fn huge_sizes_are_refused_before_anything_is_counted() {
        let base = ResNetConfig::new(Arch::ResNet110);
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
        // At every bound at once the counts still fit in u64.
        let s = base
            .with_width_multiplier(MAX_WIDTH_MULTIPLIER)
            .with_num_classes(MAX_CLASSES)
            .with_image_size(MAX_IMAGE_SIZE)
            .spec()
            .expect("within bounds");
        let cost = s.cost();
        assert!(
            cost.macs > cost.params && cost.params > 1_000_000_000,
            "{cost:?}"
        );
    }

    #[test]
    fn spec_round_trips_through_json() {
        let s = spec(Arch::ResNet44);
        let json = serde_json::to_string(&s).expect("serialise");
        let back: NetworkSpec = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(back, s);
    }
}
