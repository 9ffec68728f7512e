//! The residual Bottleneck of the deeper ImageNet ResNets (torchvision's layout: the stride is
//! on the 3x3 convolution).

use auglocal_kernels::{Conv2d, FastOps};
use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Tensor, backend::Backend};

use super::{BatchNorm, BatchNormConfig, Projection, conv2d_config};
use crate::BOTTLENECK_EXPANSION;
use crate::cost::needs_projection;

/// Configuration of a [`Bottleneck`].
#[derive(Config, Debug, PartialEq, Eq)]
pub struct BottleneckConfig {
    /// Input channels.
    pub in_width: usize,
    /// Channels of the inner convolutions; the output has `4 * planes`.
    pub planes: usize,
    /// Stride of the 3x3 convolution and of the projection (1 or 2).
    #[config(default = 1)]
    pub stride: usize,
}

impl BottleneckConfig {
    /// Builds a freshly initialised block.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Bottleneck<B> {
        let (i, p, s) = (self.in_width, self.planes, self.stride);
        let o = p * BOTTLENECK_EXPANSION;
        Bottleneck {
            conv1: Conv2d::new(&conv2d_config(i, p, 1, 1), device),
            bn1: BatchNormConfig::new(p).init(device),
            conv2: Conv2d::new(&conv2d_config(p, p, 3, s), device),
            bn2: BatchNormConfig::new(p).init(device),
            conv3: Conv2d::new(&conv2d_config(p, o, 1, 1), device),
            bn3: BatchNormConfig::new(o).init(device),
            shortcut: needs_projection(i, o, s).then(|| Projection {
                conv: Conv2d::new(&conv2d_config(i, o, 1, s), device),
                bn: BatchNormConfig::new(o).init(device),
            }),
        }
    }
}

/// conv1x1 + BN + ReLU, conv3x3(stride) + BN + ReLU, conv1x1 (x4) + BN, plus the shortcut
/// (identity, or a projection when the stride or the width changes), then ReLU.
#[derive(Module, Debug)]
pub struct Bottleneck<B: Backend> {
    /// 1x1 reduction to `planes`.
    pub conv1: Conv2d<B>,
    /// BatchNorm after `conv1`.
    pub bn1: BatchNorm<B>,
    /// 3x3 convolution (carries the stride).
    pub conv2: Conv2d<B>,
    /// BatchNorm after `conv2`.
    pub bn2: BatchNorm<B>,
    /// 1x1 expansion to `4 * planes`.
    pub conv3: Conv2d<B>,
    /// BatchNorm after `conv3`.
    pub bn3: BatchNorm<B>,
    /// Projection shortcut; `None` is the identity.
    pub shortcut: Option<Projection<B>>,
}

impl<B: FastOps> Bottleneck<B> {
    /// # Shapes
    /// - input: `[batch, in_width, H, W]`
    /// - output: `[batch, 4 * planes, ceil(H / stride), ceil(W / stride)]`
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let residual = match &self.shortcut {
            Some(p) => p.bn.forward(p.conv.forward(x.clone())),
            None => x.clone(),
        };
        let out = self.bn1.forward_relu(self.conv1.forward(x));
        let out = self.bn2.forward_relu(self.conv2.forward(out));
        self.bn3.forward_add_relu(self.conv3.forward(out), residual)
    }
}
