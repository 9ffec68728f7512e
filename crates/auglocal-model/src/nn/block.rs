//! The residual BasicBlock, used by the primary network and by AugLocal's aux nets.

use auglocal_kernels::{Conv2d, FastOps};
use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Tensor, backend::Backend};

use super::{BatchNorm, BatchNormConfig, conv2d_config};
use crate::cost::needs_projection;

/// Configuration of a [`BasicBlock`].
#[derive(Config, Debug, PartialEq, Eq)]
pub struct BasicBlockConfig {
    /// Input channels.
    pub in_width: usize,
    /// Output channels.
    pub out_width: usize,
    /// Stride of the first convolution and of the projection (1 or 2).
    #[config(default = 1)]
    pub stride: usize,
}

impl BasicBlockConfig {
    /// Builds a freshly initialised block.
    pub fn init<B: Backend>(&self, device: &B::Device) -> BasicBlock<B> {
        let (i, o, s) = (self.in_width, self.out_width, self.stride);
        BasicBlock {
            conv1: Conv2d::new(&conv2d_config(i, o, 3, s), device),
            bn1: BatchNormConfig::new(o).init(device),
            conv2: Conv2d::new(&conv2d_config(o, o, 3, 1), device),
            bn2: BatchNormConfig::new(o).init(device),
            shortcut: needs_projection(i, o, s).then(|| Projection {
                conv: Conv2d::new(&conv2d_config(i, o, 1, s), device),
                bn: BatchNormConfig::new(o).init(device),
            }),
        }
    }
}

/// The projection shortcut: 1x1 conv (stride, no bias) + BN.
#[derive(Module, Debug)]
pub struct Projection<B: Backend> {
    /// The 1x1 convolution.
    pub conv: Conv2d<B>,
    /// Its BatchNorm.
    pub bn: BatchNorm<B>,
}

/// conv3x3(stride) + BN + ReLU + conv3x3 + BN, plus the shortcut (identity, or a projection when
/// the stride or the width changes), then ReLU.
#[derive(Module, Debug)]
pub struct BasicBlock<B: Backend> {
    /// First 3x3 convolution (carries the stride).
    pub conv1: Conv2d<B>,
    /// BatchNorm after `conv1`.
    pub bn1: BatchNorm<B>,
    /// Second 3x3 convolution.
    pub conv2: Conv2d<B>,
    /// BatchNorm after `conv2`.
    pub bn2: BatchNorm<B>,
    /// Projection shortcut; `None` is the identity.
    pub shortcut: Option<Projection<B>>,
}

impl<B: FastOps> BasicBlock<B> {
    /// # Shapes
    /// - input: `[batch, in_width, H, W]`
    /// - output: `[batch, out_width, ceil(H / stride), ceil(W / stride)]`
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let residual = match &self.shortcut {
            Some(p) => p.bn.forward(p.conv.forward(x.clone())),
            None => x.clone(),
        };
        let out = self.bn1.forward_relu(self.conv1.forward(x));
        self.bn2.forward_add_relu(self.conv2.forward(out), residual)
    }
}
