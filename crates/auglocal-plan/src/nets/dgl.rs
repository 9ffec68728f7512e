//! DGL's auxiliary head (Belilovsky et al. 2020), as the AugLocal reference builds it.

use auglocal_kernels::{Conv2d, FastOps};
use auglocal_model::cost::{self, Cost};
use auglocal_model::nn::{BatchNorm, BatchNormConfig, conv2d_config};
use burn::config::Config;
use burn::module::Module;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Tensor, backend::Backend};

/// Number of 1x1 conv + BN + ReLU layers of the DGL head.
pub const DGL_CONV_LAYERS: usize = 3;
/// Number of hidden Linear + BN1d + ReLU layers of the DGL head.
pub const DGL_MLP_LAYERS: usize = 2;

/// Configuration of a [`DglHead`] reading a `width x input_size x input_size` feature map.
#[derive(Config, Debug, PartialEq, Eq)]
pub struct DglHeadConfig {
    /// Channels of the feature map.
    pub width: usize,
    /// Side of the feature map.
    pub input_size: usize,
    /// Output classes.
    pub num_classes: usize,
}

impl DglHeadConfig {
    /// Side after the first adaptive average pool: `ceil(input_size / 4)`.
    pub fn pool_size(&self) -> usize {
        self.input_size.div_ceil(4)
    }

    /// Side after the second pool: `min(pool_size, 2)`.
    pub fn mlp_pool_size(&self) -> usize {
        self.pool_size().min(2)
    }

    /// Width of the MLP: the flattened size `width * mlp_pool_size^2`.
    pub fn hidden(&self) -> usize {
        self.width * self.mlp_pool_size().pow(2)
    }

    /// Parameters and multiply-adds per image.
    pub fn cost(&self) -> Cost {
        let (c, p, h) = (self.width, self.pool_size(), self.hidden());
        let conv = cost::conv2d(c, c, 1, p) + cost::batch_norm(c);
        let mlp = cost::linear(h, h, false) + cost::batch_norm(h);
        let convs: Cost = (0..DGL_CONV_LAYERS).map(|_| conv).sum();
        let mlps: Cost = (0..DGL_MLP_LAYERS).map(|_| mlp).sum();
        convs + mlps + cost::linear(h, self.num_classes, true)
    }

    /// Builds a freshly initialised head (convolutions as the reference initialises them).
    pub fn init<B: Backend>(&self, device: &B::Device) -> DglHead<B> {
        let (c, h) = (self.width, self.hidden());
        DglHead {
            pool: AdaptiveAvgPool2dConfig::new([self.pool_size(); 2]).init(),
            convs: (0..DGL_CONV_LAYERS)
                .map(|_| ConvBn {
                    conv: Conv2d::new(&conv2d_config(c, c, 1, 1), device),
                    bn: BatchNormConfig::new(c).init(device),
                })
                .collect(),
            mlp_pool: AdaptiveAvgPool2dConfig::new([self.mlp_pool_size(); 2]).init(),
            mlp: (0..DGL_MLP_LAYERS)
                .map(|_| LinearBn {
                    linear: LinearConfig::new(h, h).with_bias(false).init(device),
                    bn: BatchNormConfig::new(h).init(device),
                })
                .collect(),
            classifier: LinearConfig::new(h, self.num_classes).init(device),
        }
    }
}

/// A 1x1 convolution (no bias) + BatchNorm2d, followed by ReLU in the forward pass.
#[derive(Module, Debug)]
pub struct ConvBn<B: Backend> {
    /// The 1x1 convolution.
    pub conv: Conv2d<B>,
    /// Its BatchNorm.
    pub bn: BatchNorm<B>,
}

/// A Linear layer (no bias) + BatchNorm1d, followed by ReLU in the forward pass.
#[derive(Module, Debug)]
pub struct LinearBn<B: Backend> {
    /// The linear layer.
    pub linear: Linear<B>,
    /// Its BatchNorm1d.
    pub bn: BatchNorm<B>,
}

/// Adaptive-avg-pool to `ceil(H / 4)`, 3 x (1x1 conv, BN, ReLU), adaptive-avg-pool to
/// `min(that, 2)`, flatten, 2 x (Linear, BN1d, ReLU), Linear -> classes.
#[derive(Module, Debug)]
pub struct DglHead<B: Backend> {
    /// First pool.
    pub pool: AdaptiveAvgPool2d,
    /// The 1x1 convolutions.
    pub convs: Vec<ConvBn<B>>,
    /// Second pool.
    pub mlp_pool: AdaptiveAvgPool2d,
    /// The hidden MLP layers.
    pub mlp: Vec<LinearBn<B>>,
    /// The final classifier.
    pub classifier: Linear<B>,
}

impl<B: FastOps> DglHead<B> {
    /// # Shapes
    /// - input: `[batch, width, input_size, input_size]`
    /// - output: `[batch, num_classes]`
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let x = self.pool.forward(x);
        let x = self
            .convs
            .iter()
            .fold(x, |x, l| l.bn.forward_relu(l.conv.forward(x)));
        let x = self.mlp_pool.forward(x);
        let [batch, c, h, w] = x.dims();
        let x = x.reshape([batch, c * h * w]);
        let x = self
            .mlp
            .iter()
            .fold(x, |x, l| relu(l.bn.forward_1d(l.linear.forward(x))));
        self.classifier.forward(x)
    }
}
