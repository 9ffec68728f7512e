//! The ImageNet ResNets in torchvision's layout, as the reference's `exp_imagenet/` uses
//! them: unit 0 is the stem (conv7x7/2, 3 -> 64, BN, ReLU, max-pool 3x3/2), then every residual
//! block is a unit; stages of 64/128/256/512 planes, the first block of stages 2-4 with stride
//! 2 (on a Bottleneck's 3x3 convolution); GAP + Linear head.

use super::Layout;
use crate::spec::{AuxHeadStyle, HeadSpec, LocalStyle, UnitKind, UnitSpec, scale_width};
use crate::{Arch, NetworkConfig};

/// Planes of the four stages at width multiplier 1.
pub const STAGE_PLANES: [usize; 4] = [64, 128, 256, 512];

/// Blocks per stage, and whether they are Bottlenecks.
fn blocks(arch: Arch) -> ([usize; 4], bool) {
    match arch {
        Arch::ResNet18 => ([2, 2, 2, 2], false),
        Arch::ResNet34 => ([3, 4, 6, 3], false),
        Arch::ResNet50 => ([3, 4, 6, 3], true),
        Arch::ResNet101 => ([3, 4, 23, 3], true),
        Arch::ResNet152 => ([3, 8, 36, 3], true),
        other => unreachable!("{other} is not an ImageNet ResNet"),
    }
}

pub(super) fn num_units(arch: Arch) -> usize {
    1 + blocks(arch).0.iter().sum::<usize>()
}

pub(super) fn layout(config: &NetworkConfig) -> Layout {
    let (counts, bottleneck) = blocks(config.arch);
    let planes = STAGE_PLANES.map(|p| scale_width(p, config.width_multiplier));
    let stem = UnitKind::Stem {
        kernel: 7,
        max_pool: true,
    };
    let mut units = vec![UnitSpec::new(
        stem,
        config.in_channels,
        planes[0],
        2,
        config.image_size,
    )];
    for (stage, (&count, &planes)) in counts.iter().zip(&planes).enumerate() {
        let kind = if bottleneck {
            UnitKind::Bottleneck { planes }
        } else {
            UnitKind::BasicBlock
        };
        for block in 0..count {
            let last = units[units.len() - 1];
            let stride = if stage > 0 && block == 0 { 2 } else { 1 };
            units.push(UnitSpec::new(
                kind,
                last.out_width,
                planes,
                stride,
                last.out_size,
            ));
        }
    }
    Layout {
        head: HeadSpec::Linear {
            width: units[units.len() - 1].out_width,
            num_classes: config.num_classes,
        },
        units,
        local: LocalStyle {
            subtract_depth: false,
            aux_head: AuxHeadStyle::Linear {
                batch_norm_when_shallow: false,
            },
        },
    }
}
