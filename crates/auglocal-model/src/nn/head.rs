//! Classifier heads: global average pool, an optional BatchNorm1d, then a Linear layer.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};

use crate::nn::{BatchNorm, BatchNormConfig};
use auglocal_kernels::FastPool;
use burn::tensor::{Tensor, backend::Backend};

pub use auglocal_kernels::global_avg_pool;

/// Configuration of a [`ClassifierHead`].
#[derive(Config, Debug, PartialEq, Eq)]
pub struct ClassifierHeadConfig {
    /// Channels of the incoming feature map.
    pub width: usize,
    /// Output classes.
    pub num_classes: usize,
    /// Insert a BatchNorm1d(width) between the pooling and the Linear layer (the reference does
    /// this for AugLocal aux nets of depth 1).
    #[config(default = false)]
    pub batch_norm: bool,
}

impl ClassifierHeadConfig {
    /// Builds a freshly initialised head.
    pub fn init<B: Backend>(&self, device: &B::Device) -> ClassifierHead<B> {
        ClassifierHead {
            norm: self
                .batch_norm
                .then(|| BatchNormConfig::new(self.width).init(device)),
            linear: LinearConfig::new(self.width, self.num_classes).init(device),
        }
    }
}

/// GAP -> flatten -> (BatchNorm1d) -> Linear(width, classes): the primary head, the greedy
/// rule's aux net, and the head of every AugLocal aux net.
#[derive(Module, Debug)]
pub struct ClassifierHead<B: Backend> {
    /// Optional BatchNorm1d before the Linear layer (PyTorch's running variance).
    pub norm: Option<BatchNorm<B>>,
    /// The classifier.
    pub linear: Linear<B>,
}

impl<B: FastPool> ClassifierHead<B> {
    /// # Shapes
    /// - input: `[batch, width, H, W]`
    /// - output: `[batch, num_classes]` (logits)
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let pooled = global_avg_pool(x);
        let pooled = match &self.norm {
            Some(bn) => bn.forward_1d(pooled),
            None => pooled,
        };
        self.linear.forward(pooled)
    }
}
