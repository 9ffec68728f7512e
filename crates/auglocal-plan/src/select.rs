//! AugLocal's uniform selection of the units that form an aux net (method doc, section 3).

use auglocal_model::UnitSpec;

use crate::depth::round_half_even;

/// Units whose shapes form the aux net of isolation point `unit` at depth `depth`, in a network
/// of `num_units` units.
///
/// If `depth >= N - 1 - l` every remaining unit is used; otherwise units
/// `round_half_even(l + ((N - 1 - l) / d) * i)` for `i = 1..=d`, so the last unit is always
/// selected.
pub fn select_units(unit: usize, depth: usize, num_units: usize) -> Vec<usize> {
    let remaining = num_units - 1 - unit;
    if depth >= remaining {
        return (unit + 1..num_units).collect();
    }
    let step = remaining as f64 / depth as f64;
    (1..=depth)
        .map(|i| round_half_even(unit as f64 + step * i as f64) as usize)
        .collect()
}

/// The fresh units of an aux net: one per selected unit (`selected` holds their specs),
/// starting from the isolation point's output `input_width x input_size`, each built by
/// [`UnitSpec::aux_block`]: a block of the network's own type with the selected unit's width.
///
/// Strides come from resolution: a residual block has stride 2 while the aux net's resolution
/// is above the selected unit's output size (a block halves it at most once; what is left over
/// carries to the next block, and at the end is dropped), else 1. The reference counts
/// halvings from widths instead (`pending += log2(out / in)` per block, stride 2 while
/// `pending >= 1`); on its networks every doubling of width comes with a halving of resolution,
/// so the two agree there, but width ratios under a width multiplier are not powers of two (at
/// width 0.3 the stages are 5, 10 and 19 wide, and `19 / 10` is 1) and would miss halvings.
/// VGG units pool when the width changes, as the reference's VGG aux nets do.
pub fn aux_blocks(input_width: usize, input_size: usize, selected: &[UnitSpec]) -> Vec<UnitSpec> {
    let (mut width, mut size) = (input_width, input_size);
    selected
        .iter()
        .map(|unit| {
            let block = unit.aux_block(width, size);
            (width, size) = (block.out_width, block.out_size);
            block
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use auglocal_model::UnitKind;

    fn triples(blocks: &[UnitSpec]) -> Vec<(usize, usize, usize)> {
        blocks
            .iter()
            .map(|b| (b.in_width, b.out_width, b.stride))
            .collect()
    }

    /// BasicBlocks with the given `(out_width, out_size)`, as selected units.
    fn units(shapes: &[(usize, usize)]) -> Vec<UnitSpec> {
        shapes
            .iter()
            .map(|&(out_width, out_size)| UnitSpec {
                out_size,
                ..UnitSpec::new(UnitKind::BasicBlock, out_width, out_width, 1, out_size)
            })
            .collect()
    }

    #[test]
    fn exact_half_rounds_to_even() {
        // ResNet-32 (N = 16), unit 2, d = 2: 2 + 13 / 2 = 8.5 -> 8 (ordinary rounding gives 9).
        assert_eq!(select_units(2, 2, 16), vec![8, 15]);
        // unit 0: 7.5 -> 8.
        assert_eq!(select_units(0, 2, 16), vec![8, 15]);
    }

    #[test]
    fn uses_all_remaining_units_when_depth_reaches_them() {
        assert_eq!(select_units(12, 3, 16), vec![13, 14, 15]);
        assert_eq!(select_units(13, 5, 16), vec![14, 15]);
    }

    #[test]
    fn strides_halve_once_per_halving_of_resolution() {
        // CIFAR ResNet at width 1: 16 wide at 32x32, 32 at 16x16, 64 at 8x8.
        assert_eq!(
            triples(&aux_blocks(16, 32, &units(&[(32, 16), (64, 8)]))),
            vec![(16, 32, 2), (32, 64, 2)]
        );
        // Two halvings to make up: the second carries to the next block.
        assert_eq!(
            triples(&aux_blocks(16, 32, &units(&[(16, 32), (64, 8), (64, 8)]))),
            vec![(16, 16, 1), (16, 64, 2), (64, 64, 2)]
        );
        // Odd sizes halve by ceil: 7 -> 4 is one halving.
        assert_eq!(
            triples(&aux_blocks(8, 7, &units(&[(8, 4), (8, 4)]))),
            vec![(8, 8, 2), (8, 8, 1)]
        );
    }

    #[test]
    fn strides_do_not_depend_on_width_ratios() {
        // Width 0.3: stages 5, 10 and 19 wide. Counting halvings from `19 / 10 = 1` would give
        // the last block stride 1 and leave the aux net at 16x16.
        assert_eq!(
            triples(&aux_blocks(5, 32, &units(&[(10, 16), (19, 8)]))),
            vec![(5, 10, 2), (10, 19, 2)]
        );
        // 5 -> 19 in one step (ratio 3, ilog2 1) needs two halvings, as 16 -> 64 does.
        assert_eq!(
            triples(&aux_blocks(5, 32, &units(&[(19, 8), (19, 8)]))),
            vec![(5, 19, 2), (19, 19, 2)]
        );
    }
}
