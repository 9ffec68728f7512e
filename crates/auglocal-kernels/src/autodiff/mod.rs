//! The kernels on [`Autodiff`](burn::backend::Autodiff): backward steps of their own that call
//! the inner backend's kernels, built the way burn-autodiff 0.21 builds its own ops.
//!
//! A gradient is computed only for the inputs the graph tracks: a module's input is detached in
//! local learning, so its input gradient is skipped altogether.

mod conv;
mod norm;
mod pool;

pub(crate) use conv::conv2d;
pub(crate) use norm::batch_norm2d;
pub(crate) use pool::global_avg_pool;
