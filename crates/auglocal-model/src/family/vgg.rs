//! VGG with BatchNorm (Simonyan & Zisserman 2015; torchvision's `vgg*_bn`), as the reference
//! cuts it: every conv3x3 (with bias) + BN + ReLU is a unit; the 2x2 max-pools are not units
//! and run at the start of the unit after them (the last one in the head), so that an
//! isolation point after a conv comes before the pool; head: max-pool, adaptive average pool
//! to 7x7, then Linear(25,088, 4,096), ReLU, Dropout, Linear(4,096, 4,096), ReLU, Dropout,
//! Linear(4,096, classes).

use super::Layout;
use crate::spec::{AuxHeadStyle, HeadSpec, LocalStyle, UnitKind, UnitSpec, scale_width};
use crate::{Arch, NetworkConfig};

/// Five 2x2 max-pools halve (rounding down) 32 pixels to one.
pub(super) const MIN_IMAGE_SIZE: usize = 32;

/// Width of the head's hidden layers at width multiplier 1.
pub const HIDDEN: usize = 4096;

/// Width of the reference's VGG aux heads at width multiplier 1.
pub const AUX_FEATURES: usize = 512;

/// Conv widths of each stage; a max-pool ends every stage.
fn stages(arch: Arch) -> [&'static [usize]; 5] {
    match arch {
        Arch::Vgg11 => [&[64], &[128], &[256; 2], &[512; 2], &[512; 2]],
        Arch::Vgg13 => [&[64; 2], &[128; 2], &[256; 2], &[512; 2], &[512; 2]],
        Arch::Vgg16 => [&[64; 2], &[128; 2], &[256; 3], &[512; 3], &[512; 3]],
        Arch::Vgg19 => [&[64; 2], &[128; 2], &[256; 4], &[512; 4], &[512; 4]],
        other => unreachable!("{other} is not a VGG"),
    }
}

pub(super) fn num_units(arch: Arch) -> usize {
    stages(arch).iter().map(|s| s.len()).sum()
}

pub(super) fn layout(config: &NetworkConfig) -> Layout {
    let scale = |w| scale_width(w, config.width_multiplier);
    let mut units: Vec<UnitSpec> = Vec::with_capacity(num_units(config.arch));
    let (mut width, mut size) = (config.in_channels, config.image_size);
    for (stage, widths) in stages(config.arch).iter().enumerate() {
        for (i, &w) in widths.iter().enumerate() {
            let kind = UnitKind::VggConv {
                max_pool: stage > 0 && i == 0,
            };
            let unit = UnitSpec::new(kind, width, scale(w), 1, size);
            (width, size) = (unit.out_width, unit.out_size);
            units.push(unit);
        }
    }
    Layout {
        units,
        head: HeadSpec::Vgg {
            width,
            in_size: size,
            hidden: scale(HIDDEN),
            num_classes: config.num_classes,
        },
        local: LocalStyle {
            subtract_depth: false,
            aux_head: AuxHeadStyle::Mlp {
                features: scale(AUX_FEATURES),
            },
        },
    }
}
