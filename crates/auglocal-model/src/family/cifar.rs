//! The CIFAR ResNets (He et al. 2016, section 4.2): a conv3x3 stem, then three stages of `n`
//! BasicBlocks of widths 16, 32 and 64, the second and third starting with a stride-2 block;
//! GAP + Linear head.

use super::Layout;
use crate::spec::{
    AuxHeadStyle, HeadSpec, LocalStyle, STAGE_WIDTHS, UnitKind, UnitSpec, scale_width,
};
use crate::{Arch, NetworkConfig};

/// BasicBlocks per stage (`n`).
fn blocks_per_stage(arch: Arch) -> usize {
    match arch {
        Arch::ResNet20 => 3,
        Arch::ResNet32 => 5,
        Arch::ResNet44 => 7,
        Arch::ResNet56 => 9,
        Arch::ResNet110 => 18,
        other => unreachable!("{other} is not a CIFAR ResNet"),
    }
}

pub(super) fn num_units(arch: Arch) -> usize {
    1 + 3 * blocks_per_stage(arch)
}

pub(super) fn layout(config: &NetworkConfig) -> Layout {
    let widths = STAGE_WIDTHS.map(|w| scale_width(w, config.width_multiplier));
    let stem = UnitKind::Stem {
        kernel: 3,
        max_pool: false,
    };
    let mut units = vec![UnitSpec::new(
        stem,
        config.in_channels,
        widths[0],
        1,
        config.image_size,
    )];
    for (stage, &width) in widths.iter().enumerate() {
        for block in 0..blocks_per_stage(config.arch) {
            let last = units[units.len() - 1];
            let stride = if stage > 0 && block == 0 { 2 } else { 1 };
            units.push(UnitSpec::new(
                UnitKind::BasicBlock,
                last.out_width,
                width,
                stride,
                last.out_size,
            ));
        }
    }
    Layout {
        head: HeadSpec::Linear {
            width: widths[2],
            num_classes: config.num_classes,
        },
        units,
        local: LocalStyle {
            subtract_depth: true,
            aux_head: AuxHeadStyle::Linear {
                batch_norm_when_shallow: true,
            },
        },
    }
}
