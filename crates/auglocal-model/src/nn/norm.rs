//! BatchNorm over `[batch, channels, H, W]`, on auglocal's fused kernel, and over
//! `[batch, features]` (BatchNorm1d), both with PyTorch's running statistics.
//!
//! Burn 0.21's `BatchNorm` broadcasts per-channel statistics of shape `[1, C, 1, 1]` over
//! `[N, C, H, W]`; its CPU backend runs 4-D broadcasts through a generic per-element strided
//! iterator, which took about half of a training step. Training here runs
//! [`auglocal_kernels::batch_norm2d`] instead: one kernel over every core on the CPU, fused
//! with the residual addition and the ReLU that follow it in a block, and Burn's ops on the
//! contiguous `[N * C, H * W]` view elsewhere. Parameters (`gamma`, `beta`) and running
//! statistics (`running_mean`, `running_var`) are laid out and initialised as in Burn and
//! PyTorch; like PyTorch, the running variance is updated with the unbiased batch variance.

use auglocal_kernels::{BatchNormOptions, FastBatchNorm, batch_norm2d, batch_norm2d_inference};
use burn::config::Config;
use burn::module::{Initializer, Module, Param, RunningState};
use burn::tensor::{Tensor, backend::Backend};

/// Configuration of a [`BatchNorm`].
#[derive(Config, Debug, PartialEq)]
pub struct BatchNormConfig {
    /// Channels.
    pub num_features: usize,
    /// Added to the variance for numerical stability.
    #[config(default = 1e-5)]
    pub epsilon: f64,
    /// Weight of the newest batch in the running statistics.
    #[config(default = 0.1)]
    pub momentum: f64,
}

impl BatchNormConfig {
    /// A BatchNorm with weight 1, bias 0, running mean 0 and running variance 1.
    pub fn init<B: Backend>(&self, device: &B::Device) -> BatchNorm<B> {
        let c = self.num_features;
        BatchNorm {
            gamma: Initializer::Ones.init([c], device),
            beta: Initializer::Zeros.init([c], device),
            running_mean: RunningState::new(Tensor::zeros([c], device)),
            running_var: RunningState::new(Tensor::ones([c], device)),
            momentum: self.momentum,
            epsilon: self.epsilon,
        }
    }
}

/// Batch normalisation of feature maps ([`BatchNorm::forward`], `BatchNorm2d`) or of feature
/// vectors ([`BatchNorm::forward_1d`], `BatchNorm1d`): batch statistics on an autodiff
/// backend (training), running statistics otherwise (inference). Its fields are Burn's
/// `BatchNorm`'s, so records of either load into the other.
#[derive(Module, Debug)]
pub struct BatchNorm<B: Backend> {
    /// Scale, `[C]`.
    pub gamma: Param<Tensor<B, 1>>,
    /// Shift, `[C]`.
    pub beta: Param<Tensor<B, 1>>,
    /// Running mean, `[C]`.
    pub running_mean: RunningState<Tensor<B, 1>>,
    /// Running variance, `[C]`.
    pub running_var: RunningState<Tensor<B, 1>>,
    /// Weight of the newest batch in the running statistics.
    pub momentum: f64,
    /// Added to the variance.
    pub epsilon: f64,
}

impl<B: FastBatchNorm> BatchNorm<B> {
    /// # Shapes
    /// - input: `[batch, channels, H, W]`
    /// - output: `[batch, channels, H, W]`
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.forward_fused(x, None, false)
    }

    /// `relu(self.forward(x))` in one op.
    ///
    /// # Shapes
    /// - input, output: `[batch, channels, H, W]`
    pub fn forward_relu(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.forward_fused(x, None, true)
    }

    /// `relu(self.forward(x) + residual)` in one op: the end of a residual block.
    ///
    /// # Shapes
    /// - input, residual, output: `[batch, channels, H, W]`
    pub fn forward_add_relu(&self, x: Tensor<B, 4>, residual: Tensor<B, 4>) -> Tensor<B, 4> {
        self.forward_fused(x, Some(residual), true)
    }

    /// Batch statistics on an autodiff backend (training, through [`batch_norm2d`], which is a
    /// single kernel on the CPU), running statistics otherwise.
    fn forward_fused(
        &self,
        x: Tensor<B, 4>,
        residual: Option<Tensor<B, 4>>,
        relu: bool,
    ) -> Tensor<B, 4> {
        let options = BatchNormOptions {
            epsilon: self.epsilon,
            relu,
        };
        if B::ad_enabled(&x.device()) {
            let [n, _, h, w] = x.dims();
            let trained = batch_norm2d(x, self.gamma.val(), self.beta.val(), residual, options);
            self.update_running(trained.mean, trained.var, n * h * w);
            trained.output
        } else {
            batch_norm2d_inference(
                x,
                self.running_mean.value(),
                self.running_var.value(),
                self.gamma.val(),
                self.beta.val(),
                residual,
                options,
            )
        }
    }
}

impl<B: Backend> BatchNorm<B> {
    fn update_running(&self, mean: Tensor<B, 1>, var: Tensor<B, 1>, count: usize) {
        update_running(
            &self.running_mean,
            &self.running_var,
            self.momentum,
            mean,
            var,
            count,
        );
    }
}

/// PyTorch's update of the running statistics: `running = (1 - m) running + m batch`, with the
/// *unbiased* batch variance (`count / (count - 1)` times the biased one). Burn 0.21's own
/// BatchNorm uses the biased variance.
fn update_running<B: Backend>(
    running_mean: &RunningState<Tensor<B, 1>>,
    running_var: &RunningState<Tensor<B, 1>>,
    m: f64,
    mean: Tensor<B, 1>,
    biased_var: Tensor<B, 1>,
    count: usize,
) {
    let unbiased = count as f64 / (count.max(2) - 1) as f64;
    let mean = mean.detach();
    let var = biased_var.detach().mul_scalar(unbiased);
    let old_mean = running_mean.value_sync();
    let old_var = running_var.value_sync();
    running_mean.update(
        old_mean
            .mul_scalar(1.0 - m)
            .add(mean.mul_scalar(m))
            .detach(),
    );
    running_var.update(old_var.mul_scalar(1.0 - m).add(var.mul_scalar(m)).detach());
}

impl<B: Backend> BatchNorm<B> {
    /// Batch normalisation of feature vectors, PyTorch's `BatchNorm1d` on `[N, C]`.
    ///
    /// # Shapes
    /// - input: `[batch, features]`
    /// - output: `[batch, features]`
    pub fn forward_1d(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let [n, c] = x.dims();
        let (centered, var) = if B::ad_enabled(&x.device()) {
            let mean = x.clone().mean_dim(0);
            let centered = x - mean.clone();
            let var = centered.clone().square().mean_dim(0);
            update_running(
                &self.running_mean,
                &self.running_var,
                self.momentum,
                mean.reshape([c]),
                var.clone().reshape([c]),
                n,
            );
            (centered, var)
        } else {
            let mean = self.running_mean.value().reshape([1, c]);
            let var = self.running_var.value().reshape([1, c]);
            (x - mean, var)
        };
        let scale = (var + self.epsilon).sqrt().recip() * self.gamma.val().reshape([1, c]);
        centered * scale + self.beta.val().reshape([1, c])
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::{Autodiff, Flex};
    use burn::module::AutodiffModule;
    use burn::nn::BatchNormConfig as BurnBatchNormConfig;
    use burn::tensor::{Distribution, TensorData, Tolerance};

    use super::*;

    type A = Autodiff<Flex>;

    fn input() -> Tensor<A, 4> {
        Tensor::random(
            [3, 4, 5, 6],
            Distribution::Normal(1.5, 2.0),
            &Default::default(),
        )
        .require_grad()
    }

    #[test]
    fn training_forward_and_gradients_match_burns_batch_norm() {
        let device = Default::default();
        let ours = BatchNormConfig::new(4).init::<A>(&device);
        let burns = BurnBatchNormConfig::new(4).init::<A>(&device);
        let x = input();
        let weights = Tensor::<A, 4>::random([3, 4, 5, 6], Distribution::Default, &device);
        let a = ours.forward(x.clone());
        let b = burns.forward(x.clone());
        a.clone()
            .into_data()
            .assert_approx_eq::<f32>(&b.clone().into_data(), Tolerance::default());
        let ga = (a * weights.clone()).sum().backward();
        let gb = (b * weights).sum().backward();
        let grad = |g: &<A as burn::tensor::backend::AutodiffBackend>::Gradients,
                    t: &Tensor<A, 4>| {
            t.grad(g).expect("input gradient").into_data()
        };
        grad(&ga, &x).assert_approx_eq::<f32>(&grad(&gb, &x), Tolerance::default());
        ours.gamma
            .grad(&ga)
            .expect("gamma")
            .into_data()
            .assert_approx_eq::<f32>(
                &burns.gamma.grad(&gb).expect("gamma").into_data(),
                Tolerance::default(),
            );
    }

    #[test]
    fn batch_norm_1d_matches_burns_forward_and_pytorchs_running_variance() {
        let device = Default::default();
        // PyTorch:
        //   bn = torch.nn.BatchNorm1d(2); x = torch.tensor([[1., 10.], [2., 20.], [4., 60.]])
        //   bn(x); bn.running_mean, bn.running_var
        //   -> tensor([0.2333, 3.0000]), tensor([1.1333, 70.9000])
        // (mean (7/3, 30); unbiased var (7/3, 700): 0.9 + 0.1 var). Burn's BatchNorm records
        // 0.9 + 0.1 (14/9, 1400/3) = (1.0556, 47.5667), the biased variance.
        let x = Tensor::<A, 2>::from_floats([[1.0, 10.0], [2.0, 20.0], [4.0, 60.0]], &device);
        let ours = BatchNormConfig::new(2).init::<A>(&device);
        let burns = BurnBatchNormConfig::new(2).init::<A>(&device);
        let a = ours.forward_1d(x.clone());
        let b = burns.forward(x.clone());
        a.into_data()
            .assert_approx_eq::<f32>(&b.into_data(), Tolerance::default());
        let valid = ours.valid();
        valid
            .running_mean
            .value()
            .into_data()
            .assert_approx_eq::<f32>(
                &TensorData::from([0.233_333_33f32, 3.0]),
                Tolerance::default(),
            );
        valid
            .running_var
            .value()
            .into_data()
            .assert_approx_eq::<f32>(
                &TensorData::from([1.133_333_3f32, 70.9]),
                Tolerance::default(),
            );
        // Inference normalises with those statistics.
        let out = valid.forward_1d(x.inner());
        let normalise = |row: [f32; 2]| {
            [
                (row[0] - 0.233_333_33) / (1.133_333_3f32 + 1e-5).sqrt(),
                (row[1] - 3.0) / (70.9f32 + 1e-5).sqrt(),
            ]
        };
        let expected = TensorData::from([
            normalise([1.0, 10.0]),
            normalise([2.0, 20.0]),
            normalise([4.0, 60.0]),
        ]);
        out.into_data()
            .assert_approx_eq::<f32>(&expected, Tolerance::default());
    }

    #[test]
    fn running_statistics_follow_pytorch_and_drive_inference() {
        let device = Default::default();
        let bn = BatchNormConfig::new(4).init::<A>(&device);
        let x = input();
        let _ = bn.forward(x.clone());
        // PyTorch: running_mean = 0.9 * 0 + 0.1 * mean; running_var = 0.9 * 1 + 0.1 * unbiased var.
        let flat = x.clone().inner().swap_dims(0, 1).reshape([4, 90]);
        let mean = flat.clone().mean_dim(1).reshape([4]);
        let var = flat.var(1).reshape([4]); // unbiased
        let valid = bn.valid();
        valid
            .running_mean
            .value()
            .into_data()
            .assert_approx_eq::<f32>(
                &mean.clone().mul_scalar(0.1).into_data(),
                Tolerance::default(),
            );
        valid
            .running_var
            .value()
            .into_data()
            .assert_approx_eq::<f32>(
                &var.mul_scalar(0.1).add_scalar(0.9).into_data(),
                Tolerance::default(),
            );
        // Inference uses the running statistics.
        let out = valid.forward(x.clone().inner());
        let rm = valid.running_mean.value().reshape([1, 4, 1, 1]);
        let rv = valid.running_var.value().reshape([1, 4, 1, 1]);
        let expected = (x.inner() - rm) / (rv + 1e-5).sqrt();
        out.into_data()
            .assert_approx_eq::<f32>(&expected.into_data(), Tolerance::default());
    }
}
