//! The backend extension for training-mode BatchNorm2d, optionally fused with the residual
//! addition and the ReLU after it, and [`batch_norm2d`], which runs it or, where a backend has
//! no kernel, the same computation composed of Burn's tensor ops.
//!
//! Burn 0.21's CPU backend runs elementwise ops and broadcasts on one thread, and a BatchNorm
//! composed of them is about ten of those passes forward and as many backward, each a tensor's
//! worth of memory traffic. The fused kernel reads its input three times forward (mean,
//! variance, output) and three times backward, over every core.

use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{Tensor, TensorPrimitive};

/// What a training-mode BatchNorm2d computes after the normalisation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNormOptions {
    /// Added to the variance.
    pub epsilon: f64,
    /// Apply a ReLU to the output (after the residual, when there is one).
    pub relu: bool,
}

/// The forward pass of a training-mode BatchNorm2d, as backend primitives.
#[derive(Debug)]
pub struct BatchNormForward<B: Backend> {
    /// `act(gamma * (x - mean) / sqrt(var + epsilon) + beta [+ residual])`, `[n, c, h, w]`.
    pub output: FloatTensor<B>,
    /// The batch mean of every channel, `[c]`.
    pub mean: FloatTensor<B>,
    /// The batch's biased variance of every channel, `[c]`.
    pub var: FloatTensor<B>,
}

/// The gradients of a training-mode BatchNorm2d, as backend primitives.
#[derive(Debug)]
pub struct BatchNormGrads<B: Backend> {
    /// For the input, `[n, c, h, w]`.
    pub x: FloatTensor<B>,
    /// For the scale, `[c]`.
    pub gamma: FloatTensor<B>,
    /// For the shift, `[c]`.
    pub beta: FloatTensor<B>,
    /// For the residual, `[n, c, h, w]`, when asked for.
    pub residual: Option<FloatTensor<B>>,
}

/// A backend that may compute a training-mode BatchNorm2d with a kernel of its own.
///
/// Flex has one ([`crate::flex`]); [`Autodiff`](burn::backend::Autodiff) runs its inner
/// backend's and registers a backward step that calls the inner backend's backward; WGPU and
/// CUDA have none, and [`batch_norm2d`] composes Burn's ops there, as before.
///
/// # Shapes
/// - `x`, `residual`, `output_grad` and the output: `[batch, channels, height, width]`
/// - `gamma`, `beta`, `mean`, `var`: `[channels]`
pub trait FastBatchNorm: Backend {
    /// The forward pass with batch statistics, or `None` when this backend has no kernel for
    /// it (the default).
    fn fast_batch_norm2d(
        _x: FloatTensor<Self>,
        _gamma: FloatTensor<Self>,
        _beta: FloatTensor<Self>,
        _residual: Option<FloatTensor<Self>>,
        _options: BatchNormOptions,
    ) -> Option<BatchNormForward<Self>> {
        None
    }

    /// The gradients of [`FastBatchNorm::fast_batch_norm2d`], given what its forward pass
    /// saved and the output's gradient; the residual's gradient only when `with_residual`.
    ///
    /// The default, [`batch_norm2d_backward_composed`], composes Burn's tensor ops: `dz` is the
    /// output gradient masked by the ReLU, `xhat = (x - mean) / sqrt(var + epsilon)`,
    /// `dbeta = sum(dz)`, `dgamma = sum(dz xhat)`,
    /// `dx = gamma / (sqrt(var + epsilon) M) (M dz - dbeta - xhat dgamma)` with sums over the
    /// `M = n h w` values of each channel, and the residual's gradient is `dz`.
    fn fast_batch_norm2d_backward(
        saved: BatchNormSaved<Self>,
        output_grad: FloatTensor<Self>,
        with_residual: bool,
    ) -> BatchNormGrads<Self> {
        batch_norm2d_backward_composed::<Self>(saved, output_grad, with_residual)
    }
}

/// What the backward pass of a training-mode BatchNorm2d needs from its forward pass.
///
/// # Shapes
/// - `x`, `output`: `[batch, channels, height, width]`
/// - `gamma`, `mean`, `var`: `[channels]`
#[derive(Clone, Debug)]
pub struct BatchNormSaved<B: Backend> {
    /// The forward's input.
    pub x: FloatTensor<B>,
    /// The scale.
    pub gamma: FloatTensor<B>,
    /// The batch mean the forward returned.
    pub mean: FloatTensor<B>,
    /// The batch variance the forward returned.
    pub var: FloatTensor<B>,
    /// The forward's output when it went through the ReLU (the ReLU's mask); `None` without.
    pub output: Option<FloatTensor<B>>,
    /// Added to the variance.
    pub epsilon: f64,
}

/// The gradients of a training-mode BatchNorm2d composed of Burn's tensor ops: the default of
/// [`FastBatchNorm::fast_batch_norm2d_backward`], and the reference its kernels are tested
/// against. Arguments as there.
pub fn batch_norm2d_backward_composed<B: Backend>(
    saved: BatchNormSaved<B>,
    output_grad: FloatTensor<B>,
    with_residual: bool,
) -> BatchNormGrads<B> {
    let x = float::<B, 4>(saved.x);
    let [n, c, h, w] = x.dims();
    let channel = |t: FloatTensor<B>| float::<B, 1>(t).reshape([1, c, 1, 1]);
    let dz = float::<B, 4>(output_grad);
    let dz = match saved.output {
        Some(y) => dz.mask_fill(float::<B, 4>(y).lower_equal_elem(0.0), 0.0),
        None => dz,
    };
    let inv_std = (channel(saved.var) + saved.epsilon).sqrt().recip();
    let xhat = (x - channel(saved.mean)) * inv_std.clone();
    let per_channel = |t: Tensor<B, 4>| t.sum_dim(0).sum_dim(2).sum_dim(3);
    let dbeta = per_channel(dz.clone());
    let dgamma = per_channel(dz.clone() * xhat.clone());
    let count = (n * h * w) as f64;
    let dx = (dz.clone().mul_scalar(count) - dbeta.clone() - xhat * dgamma.clone())
        * (channel(saved.gamma) * inv_std).div_scalar(count);
    BatchNormGrads {
        x: dx.into_primitive().tensor(),
        gamma: dgamma.reshape([c]).into_primitive().tensor(),
        beta: dbeta.reshape([c]).into_primitive().tensor(),
        residual: with_residual.then(|| dz.into_primitive().tensor()),
    }
}

fn float<B: Backend, const D: usize>(t: FloatTensor<B>) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(t))
}

/// A training-mode BatchNorm2d's output and the batch statistics it used.
#[derive(Debug)]
pub struct BatchNormTrained<B: Backend> {
    /// `[n, c, h, w]`.
    pub output: Tensor<B, 4>,
    /// The batch mean, `[c]`, detached.
    pub mean: Tensor<B, 1>,
    /// The batch's biased variance, `[c]`, detached.
    pub var: Tensor<B, 1>,
}

/// Training-mode BatchNorm2d with batch statistics, then `+ residual` and a ReLU when asked:
/// `act(gamma (x - mean) / sqrt(var + epsilon) + beta [+ residual])`.
///
/// Runs [`FastBatchNorm`]'s kernel where the backend has one (and
/// [`Kernels::Fast`](crate::Kernels) is on), else the same computation composed of
/// Burn's ops on the contiguous view `[n * c, h * w]` with per-row statistics (plain row loops
/// on the CPU, rather than 4-D broadcasts).
///
/// # Shapes
/// - `x`, `residual`, output: `[batch, channels, height, width]`
/// - `gamma`, `beta`: `[channels]`
pub fn batch_norm2d<B: FastBatchNorm>(
    x: Tensor<B, 4>,
    gamma: Tensor<B, 1>,
    beta: Tensor<B, 1>,
    residual: Option<Tensor<B, 4>>,
    options: BatchNormOptions,
) -> BatchNormTrained<B> {
    let prim = |t: Tensor<B, 4>| t.into_primitive().tensor();
    let fused = B::fast_batch_norm2d(
        prim(x.clone()),
        gamma.clone().into_primitive().tensor(),
        beta.clone().into_primitive().tensor(),
        residual.clone().map(prim),
        options,
    );
    if let Some(f) = fused {
        return BatchNormTrained {
            output: float(f.output),
            mean: float::<B, 1>(f.mean).detach(),
            var: float::<B, 1>(f.var).detach(),
        };
    }
    let [n, c, h, w] = x.dims();
    let x2 = x.reshape([n * c, h * w]);
    // Mean of every (image, channel) row, then over images: [1, C].
    let mean = x2.clone().mean_dim(1).reshape([n, c]).mean_dim(0);
    let centered = x2 - per_row(mean.clone(), n);
    let var = centered
        .clone()
        .square()
        .mean_dim(1)
        .reshape([n, c])
        .mean_dim(0);
    BatchNormTrained {
        output: normalize(
            centered,
            var.clone(),
            gamma,
            beta,
            residual,
            options,
            [n, c, h, w],
        ),
        mean: mean.reshape([c]).detach(),
        var: var.reshape([c]).detach(),
    }
}

/// Inference-mode BatchNorm2d with given statistics (the running ones), then `+ residual` and
/// a ReLU when asked; composed of Burn's ops on the `[n * c, h * w]` view like
/// [`batch_norm2d`]'s fallback.
///
/// # Shapes
/// - `x`, `residual`, output: `[batch, channels, height, width]`
/// - `mean`, `var`, `gamma`, `beta`: `[channels]`
pub fn batch_norm2d_inference<B: Backend>(
    x: Tensor<B, 4>,
    mean: Tensor<B, 1>,
    var: Tensor<B, 1>,
    gamma: Tensor<B, 1>,
    beta: Tensor<B, 1>,
    residual: Option<Tensor<B, 4>>,
    options: BatchNormOptions,
) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    let centered = x.reshape([n * c, h * w]) - per_row(mean.reshape([1, c]), n);
    let var = var.reshape([1, c]);
    normalize(centered, var, gamma, beta, residual, options, [n, c, h, w])
}

/// `act(centered * gamma / sqrt(var + epsilon) + beta [+ residual])` on the `[n * c, h * w]`
/// view, `var` `[1, c]`; returns `[n, c, h, w]`.
fn normalize<B: Backend>(
    centered: Tensor<B, 2>,
    var: Tensor<B, 2>,
    gamma: Tensor<B, 1>,
    beta: Tensor<B, 1>,
    residual: Option<Tensor<B, 4>>,
    options: BatchNormOptions,
    [n, c, h, w]: [usize; 4],
) -> Tensor<B, 4> {
    let scale = (var + options.epsilon).sqrt().recip() * gamma.reshape([1, c]);
    let shift = beta.reshape([1, c]);
    let output = (centered * per_row(scale, n) + per_row(shift, n)).reshape([n, c, h, w]);
    let output = match residual {
        Some(r) => output + r,
        None => output,
    };
    match options.relu {
        true => burn::tensor::activation::relu(output),
        false => output,
    }
}

/// `[1, C]` per-channel values repeated to one per row of the `[N * C, H * W]` view.
fn per_row<B: Backend>(channel: Tensor<B, 2>, n: usize) -> Tensor<B, 2> {
    let [_, c] = channel.dims();
    channel.repeat_dim(0, n).reshape([n * c, 1])
}

/// No kernel: [`batch_norm2d`] composes Burn's ops.
#[cfg(feature = "wgpu")]
impl FastBatchNorm for burn::backend::Wgpu {}

/// No kernel: [`batch_norm2d`] composes Burn's ops.
#[cfg(feature = "cuda")]
impl FastBatchNorm for burn::backend::Cuda {}
