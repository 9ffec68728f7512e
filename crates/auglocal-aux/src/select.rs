//! AugLocal's uniform selection of the units that form an aux net (method doc, section 3).

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
/// output width, starting from `input_width`.
///
/// Strides follow the reference's counter: `pending += log2(out / in)` per block; a block with
/// `pending >= 1` gets stride 2 and `pending -= 1` (one halving of resolution per doubling of
/// width; leftovers are dropped).
pub fn aux_blocks(input_width: usize, selected_widths: &[usize]) -> Vec<BasicBlockConfig> {
    let mut pending = 0u32;
    let mut in_width = input_width;
    selected_widths
        .iter()
        .map(|&out_width| {
            pending += (out_width / in_width).max(1).ilog2();
            let stride = if pending >= 1 {
                pending -= 1;
                2
            } else {
                1
            };
            let block = BasicBlockConfig::new(in_width, out_width).with_stride(stride);
            in_width = out_width;
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
    fn strides_halve_once_per_doubling() {
        assert_eq!(
            triples(&aux_blocks(16, &[32, 64])),
            vec![(16, 32, 2), (32, 64, 2)]
        );
        assert_eq!(
            triples(&aux_blocks(16, &[16, 64, 64])),
            vec![(16, 16, 1), (16, 64, 2), (64, 64, 2)]
        );
    }
}
