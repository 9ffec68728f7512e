//! The stem unit: conv3x3 + BN + ReLU.

use auglocal_kernels::{Conv2d, FastOps};
use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Tensor, backend::Backend};

use super::{BatchNorm, BatchNormConfig, conv2d_config};

/// Configuration of a [`Stem`].
#[derive(Config, Debug)]
pub struct StemConfig {
    /// Input channels (3 for RGB).
    pub in_channels: usize,
    /// Output channels.
    pub out_width: usize,
}

impl StemConfig {
    /// Builds a freshly initialised stem.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Stem<B> {
        Stem {
            conv: Conv2d::new(
                &conv2d_config(self.in_channels, self.out_width, 3, 1),
                device,
            ),
            bn: BatchNormConfig::new(self.out_width).init(device),
        }
    }
}

/// conv3x3 (stride 1, no bias) + BN + ReLU.
#[derive(Module, Debug)]
pub struct Stem<B: Backend> {
    /// The 3x3 convolution.
    pub conv: Conv2d<B>,
    /// Its BatchNorm.
    pub bn: BatchNorm<B>,
}

impl<B: FastOps> Stem<B> {
    /// # Shapes
    /// - input: `[batch, in_channels, H, W]`
    /// - output: `[batch, out_width, H, W]`
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.bn.forward_relu(self.conv.forward(x))
    }
}
