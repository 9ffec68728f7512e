//! The stem unit: conv `k x k` (stride s) + BN + ReLU, optionally followed by a 3x3/2
//! max-pool (torchvision's ImageNet stem: conv7x7/2 + BN + ReLU + max-pool).

use auglocal_kernels::{Conv2d, FastOps};
use burn::config::Config;
use burn::module::Module;
use burn::tensor::module::max_pool2d;
use burn::tensor::{Tensor, backend::Backend};

use super::{BatchNorm, BatchNormConfig, conv2d_config};

/// Configuration of a [`Stem`].
#[derive(Config, Debug)]
pub struct StemConfig {
    /// Input channels (3 for RGB).
    pub in_channels: usize,
    /// Output channels.
    pub out_width: usize,
    /// Side of the convolution's kernel (padding `kernel / 2`).
    #[config(default = 3)]
    pub kernel: usize,
    /// Stride of the convolution.
    #[config(default = 1)]
    pub stride: usize,
    /// Whether a 3x3 max-pool of stride 2 and padding 1 follows.
    #[config(default = false)]
    pub max_pool: bool,
}

impl StemConfig {
    /// Builds a freshly initialised stem.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Stem<B> {
        Stem {
            conv: Conv2d::new(
                &conv2d_config(self.in_channels, self.out_width, self.kernel, self.stride),
                device,
            ),
            bn: BatchNormConfig::new(self.out_width).init(device),
            max_pool: self.max_pool,
        }
    }
}

/// conv (no bias) + BN + ReLU (+ max-pool). Its record holds the convolution and the
/// BatchNorm only, so records of the CIFAR stem written before the pool existed still load.
#[derive(Module, Debug)]
pub struct Stem<B: Backend> {
    /// The convolution.
    pub conv: Conv2d<B>,
    /// Its BatchNorm.
    pub bn: BatchNorm<B>,
    /// Whether the 3x3/2 max-pool follows (not recorded: it comes from the network's spec).
    pub max_pool: bool,
}

impl<B: FastOps> Stem<B> {
    /// # Shapes
    /// - input: `[batch, in_channels, H, W]`
    /// - output: `[batch, out_width, H', W']`, `H' = ceil(H / stride)`, halved again (rounding
    ///   up) by the max-pool
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let x = self.bn.forward_relu(self.conv.forward(x));
        if self.max_pool {
            max_pool2d(x, [3, 3], [2, 2], [1, 1], [1, 1], false)
        } else {
            x
        }
    }
}
