//! Parameter and multiply-add counts, computed from layer definitions (no tensors).
//!
//! Conventions: parameters are the trainable ones (convolution and linear weights and biases,
//! BatchNorm scale and shift; BatchNorm running statistics are state, not parameters).
//! Multiply-adds (MACs) are those of convolutions and linear layers, per image, in the forward
//! pass; BatchNorm, ReLU, pooling and residual additions are not counted.

use std::iter::Sum;
use std::ops::{Add, AddAssign};

use serde::{Deserialize, Serialize};

/// Trainable parameters and forward multiply-adds per image of a piece of network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cost {
    /// Trainable parameters.
    pub params: u64,
    /// Forward multiply-adds per image.
    pub macs: u64,
}

impl Add for Cost {
    type Output = Cost;
    fn add(self, rhs: Cost) -> Cost {
        Cost {
            params: self.params + rhs.params,
            macs: self.macs + rhs.macs,
        }
    }
}

impl AddAssign for Cost {
    fn add_assign(&mut self, rhs: Cost) {
        *self = *self + rhs;
    }
}

impl Sum for Cost {
    fn sum<I: Iterator<Item = Cost>>(iter: I) -> Cost {
        iter.fold(Cost::default(), Add::add)
    }
}

/// Side of the output of a convolution with padding `kernel / 2`: `ceil(size / stride)`.
pub fn conv_out_size(size: usize, stride: usize) -> usize {
    size.div_ceil(stride)
}

/// A bias-free `kernel x kernel` convolution whose output is `out_size x out_size`.
pub fn conv2d(in_ch: usize, out_ch: usize, kernel: usize, out_size: usize) -> Cost {
    let weights = (in_ch * out_ch * kernel * kernel) as u64;
    Cost {
        params: weights,
        macs: weights * (out_size * out_size) as u64,
    }
}

/// A BatchNorm over `channels` channels (scale and shift).
pub fn batch_norm(channels: usize) -> Cost {
    Cost {
        params: 2 * channels as u64,
        macs: 0,
    }
}

/// A linear layer `d_in -> d_out`, with or without bias.
pub fn linear(d_in: usize, d_out: usize, bias: bool) -> Cost {
    let weights = (d_in * d_out) as u64;
    Cost {
        params: weights + if bias { d_out as u64 } else { 0 },
        macs: weights,
    }
}

/// The stem: conv3x3 (stride 1) + BN (+ ReLU) at `size x size`.
pub fn stem(in_ch: usize, out_ch: usize, size: usize) -> Cost {
    conv2d(in_ch, out_ch, 3, size) + batch_norm(out_ch)
}

/// Whether a BasicBlock needs the 1x1 projection shortcut.
pub fn needs_projection(in_width: usize, out_width: usize, stride: usize) -> bool {
    stride != 1 || in_width != out_width
}

/// A BasicBlock whose input is `in_size x in_size`: conv3x3(stride) + BN + ReLU + conv3x3 + BN,
/// plus a 1x1 conv (stride) + BN projection shortcut when the stride or the width changes.
pub fn basic_block(in_width: usize, out_width: usize, stride: usize, in_size: usize) -> Cost {
    let out_size = conv_out_size(in_size, stride);
    let mut cost = conv2d(in_width, out_width, 3, out_size)
        + batch_norm(out_width)
        + conv2d(out_width, out_width, 3, out_size)
        + batch_norm(out_width);
    if needs_projection(in_width, out_width, stride) {
        cost += conv2d(in_width, out_width, 1, out_size) + batch_norm(out_width);
    }
    cost
}

/// Float elements a stem keeps for its backward pass, per image: a lower bound (the outputs
/// of its convolution and BatchNorm).
pub fn stem_activations(out_ch: usize, size: usize) -> u64 {
    2 * (out_ch * size * size) as u64
}

/// Float elements a BasicBlock keeps for its backward pass, per image: a lower bound (five of
/// its output-sized maps: both convolutions, both BatchNorms, the first ReLU; two more with a
/// projection shortcut).
pub fn basic_block_activations(
    in_width: usize,
    out_width: usize,
    stride: usize,
    in_size: usize,
) -> u64 {
    let out_size = conv_out_size(in_size, stride);
    let maps = if needs_projection(in_width, out_width, stride) {
        7
    } else {
        5
    };
    maps * (out_width * out_size * out_size) as u64
}

/// A classifier head: global average pool, an optional BatchNorm1d, then Linear(width, classes).
pub fn classifier_head(width: usize, num_classes: usize, batch_norm_first: bool) -> Cost {
    let norm = if batch_norm_first {
        batch_norm(width)
    } else {
        Cost::default()
    };
    norm + linear(width, num_classes, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_costs_by_hand() {
        // 16->16 at 32x32: two 3x3 convs of 2,304 weights, two BNs of 32.
        let c = basic_block(16, 16, 1, 32);
        assert_eq!(c.params, 2 * 2304 + 64);
        assert_eq!(c.macs, 2 * 2304 * 1024);
        // 16->32 stride 2 at 32x32: output 16x16, plus the 1x1 projection.
        let c = basic_block(16, 32, 2, 32);
        assert_eq!(c.params, 4608 + 9216 + 128 + 512 + 64);
        assert_eq!(c.macs, (4608 + 9216 + 512) * 256);
    }

    #[test]
    fn activations_count_output_maps() {
        assert_eq!(stem_activations(16, 32), 2 * 16 * 1024);
        assert_eq!(basic_block_activations(16, 16, 1, 32), 5 * 16 * 1024);
        assert_eq!(basic_block_activations(16, 32, 2, 32), 7 * 32 * 256);
    }

    #[test]
    fn odd_sizes_round_up_like_padded_convolutions() {
        assert_eq!(conv_out_size(7, 2), 4);
        assert_eq!(conv_out_size(8, 2), 4);
        assert_eq!(conv_out_size(1, 2), 1);
    }
}
