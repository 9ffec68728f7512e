#![doc = include_str!("../README.md")]
//!
//! ## In this crate
//!
//! Three kernels so far, all for Burn 0.21's CPU backend (flex):
//!
//! - **The 2-D convolution.** Flex computes a convolution's forward pass well (tiled im2col +
//!   GEMM) but its backward through generic fallbacks: the weight gradient as a convolution
//!   whose kernel is the whole output gradient (a degenerate, memory-bound GEMM after
//!   single-threaded transposes of both tensors), the input gradient as a transposed
//!   convolution that loops over the batch serially. Those two took two thirds of a training
//!   step. [`FastConv`] replaces both with per-image im2col / col2im and GEMMs of well-shaped
//!   matrices, spread over the current rayon pool and reduced in a fixed order (bit-identical
//!   results for any thread count); the forward pass, once the backward was fast, was the next
//!   largest cost and runs the same way. The 3x3 stride-1 convolutions (most of a ResNet's
//!   multiply-adds) then left im2col behind: [`flex`]'s direct kernels convolve a zero-bordered
//!   copy of a few images with register-blocked shifted vector loads (AVX-512 or AVX2 picked at
//!   run time), 1.15-3.2x faster than im2col + GEMM per convolution pass; the stride-2 ones
//!   (the downsampling blocks) follow, the input split into its four even/odd phases, 1.4-1.7x
//!   faster.
//! - **Training-mode BatchNorm2d**, optionally fused with the residual addition and the ReLU
//!   after it. Composed of Burn's ops it is about ten single-threaded elementwise passes forward
//!   and as many backward, the largest cost once the convolutions were fast;
//!   [`FastBatchNorm`] makes it three passes each way over every core, again in a fixed order.
//! - **Global average pooling's backward.** Burn's is two broadcast multiplications, each a
//!   single-threaded strided pass over the pooled input, in every head (each aux net's too);
//!   [`FastPool`] writes the same values in one pass over every core.
//!
//! - [`FastConv`], [`FastBatchNorm`], [`FastPool`]: the backend extensions; [`FastOps`] names a
//!   backend with all three (what the networks' forward passes ask for) and [`FastOpsAutodiff`] an autodiff
//!   backend whose inner backend has them too (what a trainer needs).
//! - [`Conv2d`]: a drop-in for `burn::nn::conv::Conv2d` (same config, same record) that
//!   convolves through [`FastConv`]; [`conv2d`] is the tensor-level function.
//! - [`batch_norm2d`]: the tensor-level BatchNorm (the kernel where there is one, Burn's ops
//!   otherwise); `auglocal_model::nn::BatchNorm` is the module. [`global_avg_pool`]: the
//!   pooling of the classifier heads.
//! - [`Kernels`]: switch back to Burn's own ops for all three (`AUGLOCAL_KERNELS=burn`).
//!
//! On the WGPU and CUDA backends nothing changes: CubeCL has its own backward kernels, which
//! [`FastConv`]'s defaults call, and [`batch_norm2d`] composes Burn's ops there.

mod autodiff;
mod ext;
pub mod flex;
mod mode;
mod module;
mod norm;
mod pool;

pub use ext::{FastConv, FastOps, FastOpsAutodiff};
pub use mode::{
    KERNELS_ENV, Kernels, OLD_KERNELS_ENV, ParseKernelsError, active_kernels, set_kernels,
};
pub use module::{Conv2d, conv2d};
pub use norm::{
    BatchNormForward, BatchNormGrads, BatchNormOptions, BatchNormSaved, BatchNormTrained,
    FastBatchNorm, batch_norm2d, batch_norm2d_backward_composed, batch_norm2d_inference,
};
pub use pool::{
    FastPool, global_avg_pool, global_avg_pool_backward_composed, global_avg_pool_composed,
};
