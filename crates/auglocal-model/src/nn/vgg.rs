//! VGG's unit (max-pool, conv3x3 with bias, BN, ReLU) and VGG's classifier head.

use auglocal_kernels::{Conv2d, FastOps};
use burn::module::{Initializer, Module, Param};
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::module::{adaptive_avg_pool2d, max_pool2d};
use burn::tensor::{Tensor, backend::Backend};

use super::{BatchNorm, BatchNormConfig, conv};
use crate::{Init, VGG_POOL};

/// 2x2 max-pool of stride 2 (rounding down).
///
/// # Shapes
/// - input: `[batch, C, H, W]`
/// - output: `[batch, C, H / 2, W / 2]`
pub fn max_pool_2x2<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    max_pool2d(x, [2, 2], [2, 2], [0, 0], [1, 1], false)
}

/// (2x2 max-pool) + conv3x3 (padding 1, with bias) + BN + ReLU.
#[derive(Module, Debug)]
pub struct VggConv<B: Backend> {
    /// The 3x3 convolution.
    pub conv: Conv2d<B>,
    /// Its BatchNorm.
    pub bn: BatchNorm<B>,
    /// Whether the 2x2 max-pool comes first (not recorded: it comes from the spec).
    pub max_pool: bool,
}

impl<B: Backend> VggConv<B> {
    /// A freshly initialised unit `in_width -> out_width`.
    pub fn new(
        init: Init,
        in_width: usize,
        out_width: usize,
        max_pool: bool,
        device: &B::Device,
    ) -> Self {
        Self {
            conv: conv(init, [in_width, out_width], 3, 1, true, device),
            bn: BatchNormConfig::new(out_width).init(device),
            max_pool,
        }
    }
}

impl<B: FastOps> VggConv<B> {
    /// # Shapes
    /// - input: `[batch, in_width, H, W]`
    /// - output: `[batch, out_width, H', W']`, `H' = H / 2` with the max-pool, else `H`
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let x = if self.max_pool { max_pool_2x2(x) } else { x };
        self.bn.forward_relu(self.conv.forward(x))
    }
}

/// VGG's head: max-pool, adaptive average pool to 7x7, then Linear, ReLU, Dropout(0.5),
/// Linear, ReLU, Dropout(0.5), Linear. Linear weights `N(0, 0.01)`, biases 0 (torchvision).
#[derive(Module, Debug)]
pub struct VggHead<B: Backend> {
    /// `49 * width -> hidden`.
    pub fc1: Linear<B>,
    /// `hidden -> hidden`.
    pub fc2: Linear<B>,
    /// `hidden -> classes`.
    pub fc3: Linear<B>,
    /// Dropout after each hidden layer (active on an autodiff backend only).
    pub dropout: Dropout,
}

impl<B: Backend> VggHead<B> {
    /// A freshly initialised head for `width`-channel maps.
    pub fn new(width: usize, hidden: usize, num_classes: usize, device: &B::Device) -> Self {
        let linear = |d_in, d_out| {
            let mut l = LinearConfig::new(d_in, d_out)
                .with_initializer(Initializer::Normal {
                    mean: 0.0,
                    std: 0.01,
                })
                .init(device);
            l.bias = Some(Param::from_tensor(Tensor::zeros([d_out], device)));
            l
        };
        Self {
            fc1: linear(width * VGG_POOL * VGG_POOL, hidden),
            fc2: linear(hidden, hidden),
            fc3: linear(hidden, num_classes),
            dropout: DropoutConfig::new(0.5).init(),
        }
    }

    /// # Shapes
    /// - input: `[batch, width, H, W]`, `H >= 2`
    /// - output: `[batch, num_classes]` (logits)
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let x = adaptive_avg_pool2d(max_pool_2x2(x), [VGG_POOL, VGG_POOL]);
        let x: Tensor<B, 2> = x.flatten(1, 3);
        let x = self.dropout.forward(relu(self.fc1.forward(x)));
        let x = self.dropout.forward(relu(self.fc2.forward(x)));
        self.fc3.forward(x)
    }
}
