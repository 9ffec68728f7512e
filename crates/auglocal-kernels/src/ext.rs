//! The backend extensions: a convolution whose kernels a backend may override, and the
//! implementations of it and of [`FastBatchNorm`] for flex and autodiff.

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::ops::{ConvOptions, FloatTensor};

use crate::norm::{
    BatchNormForward, BatchNormGrads, BatchNormOptions, BatchNormSaved, FastBatchNorm,
};
use crate::pool::FastPool;

/// A backend whose 2-D convolution auglocal may compute with kernels of its own.
///
/// Every method defaults to Burn's own operation, so a backend opts in by overriding only what
/// it does better. Flex overrides all four (im2col + GEMM kernels, see [`crate::flex`]);
/// [`Autodiff`] overrides the forward to register a backward step that calls the inner
/// backend's; WGPU and CUDA keep every default.
///
/// # Shapes
/// - `x`: `[batch, channels_in, height, width]`
/// - `weight`: `[channels_out, channels_in / groups, kernel_h, kernel_w]`
/// - `bias`: `[channels_out]`
/// - `output_grad` and the output: `[batch, channels_out, height_out, width_out]`
pub trait FastConv: Backend {
    /// The convolution's forward pass (default: [`Backend::conv2d`]).
    fn fast_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: Option<FloatTensor<Self>>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv2d(x, weight, bias, options)
    }

    /// The gradient for `x`, shaped like `x` (default: Burn's `conv2d_x_backward`).
    fn fast_conv2d_x_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv2d_x_backward(x, weight, output_grad, options)
    }

    /// The gradient for `weight`, shaped like `weight` (default: Burn's
    /// `conv2d_weight_backward`).
    fn fast_conv2d_weight_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv2d_weight_backward(x, weight, output_grad, options)
    }

    /// The gradient for `bias`, shaped like `bias` (default: Burn's `conv2d_bias_backward`).
    fn fast_conv2d_bias_backward(
        x: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::conv2d_bias_backward(x, bias, output_grad)
    }
}

/// A backend with every kernel of this crate: [`FastConv`], [`FastBatchNorm`] and
/// [`FastPool`]. What the networks' forward passes need.
pub trait FastOps: FastConv + FastBatchNorm + FastPool {}

impl<B: FastConv + FastBatchNorm + FastPool> FastOps for B {}

/// An autodiff backend whose inner backend has [`FastOps`] too: training runs on the first,
/// evaluation (`AutodiffModule::valid`) on the second.
pub trait FastOpsAutodiff: AutodiffBackend<InnerBackend: FastOps> + FastOps {}

impl<B: AutodiffBackend<InnerBackend: FastOps> + FastOps> FastOpsAutodiff for B {}

impl FastConv for burn::backend::Flex {
    fn fast_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: Option<FloatTensor<Self>>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        crate::flex::conv2d(x, weight, bias, options)
    }

    fn fast_conv2d_x_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        crate::flex::conv2d_x_backward(x, weight, output_grad, options)
    }

    fn fast_conv2d_weight_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        crate::flex::conv2d_weight_backward(x, weight, output_grad, options)
    }

    fn fast_conv2d_bias_backward(
        x: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        crate::flex::conv2d_bias_backward(x, bias, output_grad)
    }
}

/// CubeCL's own convolution kernels, forward and backward.
#[cfg(feature = "wgpu")]
impl FastConv for burn::backend::Wgpu {}

/// CubeCL's own convolution kernels, forward and backward.
#[cfg(feature = "cuda")]
impl FastConv for burn::backend::Cuda {}

// The autodiff backend: see `autodiff/conv.rs` for the backward step.
impl<B: FastConv, C: CheckpointStrategy> FastConv for Autodiff<B, C> {
    fn fast_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: Option<FloatTensor<Self>>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        crate::autodiff::conv2d::<B, C>(x, weight, bias, options)
    }
}

impl FastBatchNorm for burn::backend::Flex {
    fn fast_batch_norm2d(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        residual: Option<FloatTensor<Self>>,
        options: BatchNormOptions,
    ) -> Option<BatchNormForward<Self>> {
        crate::flex::batch_norm2d(x, gamma, beta, residual, options)
    }

    fn fast_batch_norm2d_backward(
        saved: BatchNormSaved<Self>,
        output_grad: FloatTensor<Self>,
        with_residual: bool,
    ) -> BatchNormGrads<Self> {
        crate::flex::batch_norm2d_backward(saved, output_grad, with_residual)
    }
}

// The autodiff backend: see `autodiff/norm.rs` for the backward step. Its backward kernel is
// never called on `Autodiff` itself (second-order gradients are not supported), so it keeps
// the composed default.
impl<B: FastBatchNorm, C: CheckpointStrategy> FastBatchNorm for Autodiff<B, C> {
    fn fast_batch_norm2d(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        residual: Option<FloatTensor<Self>>,
        options: BatchNormOptions,
    ) -> Option<BatchNormForward<Self>> {
        crate::autodiff::batch_norm2d::<B, C>(x, gamma, beta, residual, options)
    }
}

impl FastPool for burn::backend::Flex {
    const BACKWARD_KERNEL: bool = true;

    fn fast_global_avg_pool_backward(
        output_grad: FloatTensor<Self>,
        shape: [usize; 4],
    ) -> FloatTensor<Self> {
        crate::flex::global_avg_pool_backward(output_grad, shape)
    }
}

/// Burn's ops.
#[cfg(feature = "wgpu")]
impl FastPool for burn::backend::Wgpu {}

/// Burn's ops.
#[cfg(feature = "cuda")]
impl FastPool for burn::backend::Cuda {}

// The autodiff backend: see `autodiff/pool.rs` for the backward step, registered only where
// the inner backend has a kernel for it; elsewhere Burn's ops and their backward, as before.
impl<B: FastPool, C: CheckpointStrategy> FastPool for Autodiff<B, C> {
    fn fast_global_avg_pool(x: FloatTensor<Self>) -> FloatTensor<Self> {
        if B::BACKWARD_KERNEL {
            crate::autodiff::global_avg_pool::<B, C>(x)
        } else {
            crate::pool::global_avg_pool_composed::<Self>(x)
        }
    }
}
