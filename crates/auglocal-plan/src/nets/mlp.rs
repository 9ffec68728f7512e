//! The reference's VGG aux head: the flattened map pooled to a fixed width, then an MLP.

use auglocal_model::cost::{self, Cost};
use auglocal_model::nn::{BatchNorm, BatchNormConfig};
use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::module::adaptive_avg_pool1d;
use burn::tensor::{Tensor, backend::Backend};

/// Configuration of an [`MlpHead`].
#[derive(Config, Debug, PartialEq, Eq)]
pub struct MlpHeadConfig {
    /// Width the flattened map is pooled to, and of the two hidden layers (512).
    pub features: usize,
    /// Output classes.
    pub num_classes: usize,
}

impl MlpHeadConfig {
    /// Parameters and multiply-adds per image (the pooling is not counted).
    pub fn cost(&self) -> Cost {
        cost::mlp_head(self.features, self.num_classes)
    }

    /// Builds a freshly initialised head (PyTorch's defaults, as the reference leaves them).
    pub fn init<B: Backend>(&self, device: &B::Device) -> MlpHead<B> {
        let f = self.features;
        MlpHead {
            fc1: LinearConfig::new(f, f).init(device),
            bn1: BatchNormConfig::new(f).init(device),
            fc2: LinearConfig::new(f, f).init(device),
            bn2: BatchNormConfig::new(f).init(device),
            fc3: LinearConfig::new(f, self.num_classes).init(device),
            features: f,
        }
    }
}

/// Flatten, adaptive average pool of the `C * H * W` vector to `features`, then
/// 2 x (Linear, BN1d, ReLU) and Linear -> classes.
#[derive(Module, Debug)]
pub struct MlpHead<B: Backend> {
    /// First hidden layer.
    pub fc1: Linear<B>,
    /// Its BatchNorm1d.
    pub bn1: BatchNorm<B>,
    /// Second hidden layer.
    pub fc2: Linear<B>,
    /// Its BatchNorm1d.
    pub bn2: BatchNorm<B>,
    /// The classifier.
    pub fc3: Linear<B>,
    /// Width of the pooled vector.
    pub features: usize,
}

impl<B: Backend> MlpHead<B> {
    /// # Shapes
    /// - input: `[batch, C, H, W]`
    /// - output: `[batch, num_classes]` (logits)
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let batch = x.dims()[0];
        let flat: Tensor<B, 3> = x.flatten::<2>(1, 3).unsqueeze_dim(1);
        let pooled = adaptive_avg_pool1d(flat, self.features).reshape([batch, self.features]);
        let h = relu(self.bn1.forward_1d(self.fc1.forward(pooled)));
        let h = relu(self.bn2.forward_1d(self.fc2.forward(h)));
        self.fc3.forward(h)
    }
}
