//! AugLocal's uniform selection of the units that form an aux net (method doc, section 3).

use auglocal_model::cost;
use auglocal_model::nn::BasicBlockConfig;

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

/// The freshly initialised BasicBlocks of an aux net: one per selected unit, with that unit's
/// output width, starting from the isolation point's output `input_width x input_size`;
/// `selected` holds each selected unit's `(out_width, out_size)`.
///
/// Strides come from resolution: a block has stride 2 while the aux net's resolution is above
/// the selected unit's output size (a block halves it at most once; what is left over carries
/// to the next block, and at the end is dropped), else 1. The reference counts halvings from
/// widths instead (`pending += log2(out / in)` per block, stride 2 while `pending >= 1`); on
/// its networks every doubling of width comes with a halving of resolution, so the two agree
/// there, but width ratios under a width multiplier are not powers of two (at width 0.3 the
/// stages are 5, 10 and 19 wide, and `19 / 10` is 1) and would miss halvings.
pub fn aux_blocks(
    input_width: usize,
    input_size: usize,
    selected: &[(usize, usize)],
) -> Vec<BasicBlockConfig> {
    let (mut in_width, mut size) = (input_width, input_size);
    selected
        .iter()
        .map(|&(out_width, out_size)| {
            let stride = if size > out_size { 2 } else { 1 };
            let block = BasicBlockConfig::new(in_width, out_width).with_stride(stride);
            (in_width, size) = (out_width, cost::conv_out_size(size, stride));
            block
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn triples(blocks: &[BasicBlockConfig]) -> Vec<(usize, usize, usize)> {
        blocks
            .iter()
            .map(|b| (b.in_width, b.out_width, b.stride))
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
            triples(&aux_blocks(16, 32, &[(32, 16), (64, 8)])),
            vec![(16, 32, 2), (32, 64, 2)]
        );
        // Two halvings to make up: the second carries to the next block.
        assert_eq!(
            triples(&aux_blocks(16, 32, &[(16, 32), (64, 8), (64, 8)])),
            vec![(16, 16, 1), (16, 64, 2), (64, 64, 2)]
        );
        // Odd sizes halve by ceil: 7 -> 4 is one halving.
        assert_eq!(
            triples(&aux_blocks(8, 7, &[(8, 4), (8, 4)])),
            vec![(8, 8, 2), (8, 8, 1)]
        );
    }

    #[test]
    fn strides_do_not_depend_on_width_ratios() {
        // Width 0.3: stages 5, 10 and 19 wide. Counting halvings from `19 / 10 = 1` would give
        // the last block stride 1 and leave the aux net at 16x16.
        assert_eq!(
            triples(&aux_blocks(5, 32, &[(10, 16), (19, 8)])),
            vec![(5, 10, 2), (10, 19, 2)]
        );
        // 5 -> 19 in one step (ratio 3, ilog2 1) needs two halvings, as 16 -> 64 does.
        assert_eq!(
            triples(&aux_blocks(5, 32, &[(19, 8), (19, 8)])),
            vec![(5, 19, 2), (19, 19, 2)]
        );
    }
}
