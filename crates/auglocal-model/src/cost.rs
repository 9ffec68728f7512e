//! Parameter and multiply-add counts, computed from layer definitions (no tensors).
//!
//! Conventions: parameters are the trainable ones (convolution and linear weights and biases,
//! BatchNorm scale and shift; BatchNorm running statistics are state, not parameters).
//! Multiply-adds (MACs) are those of convolutions and linear layers, per image, in the forward
//! pass; BatchNorm, ReLU, pooling and residual additions are not counted.

use std::iter::Sum;
use std::ops::{Add, AddAssign};

use serde::{Deserialize, Serialize};

/// Channels of a Bottleneck's output per plane.
pub const BOTTLENECK_EXPANSION: usize = 4;

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

/// A `kernel x kernel` convolution with bias whose output is `out_size x out_size`.
pub fn conv2d_biased(in_ch: usize, out_ch: usize, kernel: usize, out_size: usize) -> Cost {
    conv2d(in_ch, out_ch, kernel, out_size)
        + Cost {
            params: out_ch as u64,
            macs: 0,
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

/// A Bottleneck whose input is `in_size x in_size`: conv1x1 (in -> planes) + BN + ReLU,
/// conv3x3(stride) + BN + ReLU, conv1x1 (planes -> 4 planes) + BN, plus a 1x1 conv (stride) +
/// BN projection shortcut when the stride or the width changes (torchvision's layout).
pub fn bottleneck(in_width: usize, planes: usize, stride: usize, in_size: usize) -> Cost {
    let out_width = planes * BOTTLENECK_EXPANSION;
    let out_size = conv_out_size(in_size, stride);
    let mut cost = conv2d(in_width, planes, 1, in_size)
        + batch_norm(planes)
        + conv2d(planes, planes, 3, out_size)
        + batch_norm(planes)
        + conv2d(planes, out_width, 1, out_size)
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

/// Float elements a Bottleneck keeps for its backward pass, per image: a lower bound (the
/// outputs of its three convolutions and BatchNorms and of its two inner ReLUs; two more
/// output-sized maps with a projection shortcut).
pub fn bottleneck_activations(
    in_width: usize,
    planes: usize,
    stride: usize,
    in_size: usize,
) -> u64 {
    let out_width = planes * BOTTLENECK_EXPANSION;
    let out_size = conv_out_size(in_size, stride);
    let (inner_in, inner_out) = ((in_size * in_size) as u64, (out_size * out_size) as u64);
    let out = (out_width as u64) * inner_out;
    let projection = if needs_projection(in_width, out_width, stride) {
        2 * out
    } else {
        0
    };
    3 * planes as u64 * (inner_in + inner_out) + 2 * out + projection
}

/// Float elements a VGG conv unit keeps for its backward pass, per image: a lower bound (the
/// max-pool's output, the convolution's, the BatchNorm's and the ReLU's).
pub fn vgg_conv_activations(
    in_width: usize,
    out_width: usize,
    max_pool: bool,
    in_size: usize,
) -> u64 {
    let size = if max_pool { in_size / 2 } else { in_size };
    let area = (size * size) as u64;
    let pooled = if max_pool { in_width as u64 * area } else { 0 };
    pooled + 3 * out_width as u64 * area
}

/// The reference's VGG aux head: an adaptive average pool of the flattened map to `features`,
/// 2 x (Linear(features, features), BN1d, ReLU), Linear(features, classes).
pub fn mlp_head(features: usize, num_classes: usize) -> Cost {
    let hidden = linear(features, features, true) + batch_norm(features);
    hidden + hidden + linear(features, num_classes, true)
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
    fn bottleneck_and_vgg_costs_by_hand() {
        // torchvision's resnet50 layer1[0]: 64 -> 64 planes -> 256, projection, at 56x56.
        let c = bottleneck(64, 64, 1, 56);
        assert_eq!(
            c.params,
            4096 + 128 + 36_864 + 128 + 16_384 + 512 + 16_384 + 512
        );
        assert_eq!(c.macs, (4096 + 36_864 + 16_384 + 16_384) * 56 * 56);
        // layer2[0]: 256 -> 128 planes, stride 2 on the 3x3: the 1x1 runs at 56, the rest at 28.
        let c = bottleneck(256, 128, 2, 56);
        assert_eq!(c.macs, 32_768 * 3136 + (147_456 + 65_536 + 131_072) * 784);
        assert_eq!(conv2d_biased(3, 64, 3, 224).params, 1728 + 64);
        assert_eq!(mlp_head(512, 10).params, 2 * (262_656 + 1024) + 5130);
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
