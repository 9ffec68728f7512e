//! Hand-written kernels of auglocal, plugged into Burn through its backend-extension mechanism
//! (a trait over [`Backend`](burn::tensor::backend::Backend), implemented for each backend and
//! for [`Autodiff`](burn::backend::Autodiff), which registers its own backward step).
//!
//! The one kernel so far is the 2-D convolution. Burn 0.21's CPU backend (flex) computes a
//! convolution's forward pass well (tiled im2col + GEMM) but its backward through generic
//! fallbacks: the weight gradient as a convolution whose kernel is the whole output gradient (a
//! degenerate, memory-bound GEMM after single-threaded transposes of both tensors), the input
//! gradient as a transposed convolution that loops over the batch serially. Those two took two
//! thirds of a training step. [`FastConv`] replaces both on flex with per-image im2col / col2im
//! and GEMMs of well-shaped matrices, spread over the current rayon pool and reduced in a fixed
//! order (bit-identical results for any thread count); the forward pass, once the backward was
//! fast, was the next largest cost and runs the same way.
//!
//! - [`FastConv`]: the backend extension; [`FastConvAutodiff`] names an autodiff backend whose
//!   inner backend has it too (what a trainer needs).
//! - [`Conv2d`]: a drop-in for `burn::nn::conv::Conv2d` (same config, same record) that
//!   convolves through [`FastConv`]; [`conv2d`] is the tensor-level function.
//! - [`ConvBackward`]: switch back to Burn's own backward (`AUGLOCAL_CONV_BACKWARD=burn`).
//!
//! On the WGPU and CUDA backends nothing changes: CubeCL has its own backward kernels and
//! [`FastConv`]'s defaults call them.

mod autodiff;
mod ext;
pub mod flex;
mod mode;
mod module;

pub use ext::{FastConv, FastConvAutodiff};
pub use mode::{
    CONV_BACKWARD_ENV, ConvBackward, ParseConvBackwardError, conv_backward, set_conv_backward,
};
pub use module::{Conv2d, conv2d};
