//! The flex (CPU) kernels of [`FastConv`](crate::FastConv): f32 convolutions with groups 1 and
//! dilation 1 run per-image im2col (or the image itself for a 1x1 at stride 1) and single-thread
//! GEMMs, images spread over the current rayon pool; 3x3 ones with padding 1, at stride 1 or at
//! stride 2 over even sides, run direct kernels instead (`direct.rs`), all three passes.
//! Anything else (other dtypes, grouped or dilated convolutions), and everything when
//! [`Kernels::Burn`] is chosen, runs Burn's own forward and default backward.

mod direct;
mod fill;
mod gemm;
mod geometry;
mod kernels;
mod norm;

use burn::backend::Flex;
use burn::tensor::ops::{ConvOptions, ModuleOps};
use burn::tensor::{Bytes, DType, Shape, TensorMetadata};
use burn_flex::{FlexTensor, Layout};

use crate::mode::{Kernels, active_kernels};
use crate::norm::{BatchNormForward, BatchNormGrads, BatchNormOptions, BatchNormSaved};
use geometry::Geometry;

/// The geometry of a convolution the kernels here cover, when [`Kernels::Fast`] is on:
/// `x`, `weight` and `other` (the bias or the output gradient, when there is one) in f32.
fn covered(
    x: &FlexTensor,
    weight: &FlexTensor,
    other: Option<&FlexTensor>,
    options: &ConvOptions<2>,
) -> Option<Geometry> {
    let f32_ = |t: &FlexTensor| t.dtype() == DType::F32;
    if active_kernels() != Kernels::Fast || !f32_(x) || !f32_(weight) || !other.is_none_or(f32_) {
        return None;
    }
    Geometry::new(
        x.shape().dims(),
        weight.shape().dims(),
        options.stride,
        options.padding,
        options.dilation,
        options.groups,
    )
}

fn f32s(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>().expect("a contiguous f32 tensor")
}

fn tensor(data: Vec<f32>, shape: impl Into<Shape>) -> FlexTensor {
    FlexTensor::new(
        Bytes::from_elems(data),
        Layout::contiguous(shape.into()),
        DType::F32,
    )
}

/// The convolution's forward pass: `[n, o, ho, wo]`.
pub fn conv2d(
    x: FlexTensor,
    weight: FlexTensor,
    bias: Option<FlexTensor>,
    options: ConvOptions<2>,
) -> FlexTensor {
    match covered(&x, &weight, bias.as_ref(), &options) {
        Some(g) => {
            let (x, weight) = (x.to_contiguous(), weight.to_contiguous());
            let bias = bias.map(|b| b.to_contiguous());
            let y = kernels::forward(&g, f32s(&x), f32s(&weight), bias.as_ref().map(f32s));
            tensor(y, [g.n, g.o, g.ho, g.wo])
        }
        _ => Flex::conv2d(x, weight, bias, options),
    }
}

/// The gradient for `x` (`[n, c, h, w]`) of a convolution with output gradient `output_grad`.
pub fn conv2d_x_backward(
    x: FlexTensor,
    weight: FlexTensor,
    output_grad: FlexTensor,
    options: ConvOptions<2>,
) -> FlexTensor {
    match covered(&x, &weight, Some(&output_grad), &options) {
        Some(g) => {
            let (weight, dy) = (weight.to_contiguous(), output_grad.to_contiguous());
            let dx = kernels::input_grad(&g, f32s(&weight), f32s(&dy));
            tensor(dx, [g.n, g.c, g.h, g.w])
        }
        _ => Flex::conv2d_x_backward(x, weight, output_grad, options),
    }
}

/// The gradient for `weight` (`[o, c, kh, kw]`) of a convolution.
pub fn conv2d_weight_backward(
    x: FlexTensor,
    weight: FlexTensor,
    output_grad: FlexTensor,
    options: ConvOptions<2>,
) -> FlexTensor {
    match covered(&x, &weight, Some(&output_grad), &options) {
        Some(g) => {
            let (x, dy) = (x.to_contiguous(), output_grad.to_contiguous());
            let dw = kernels::weight_grad(&g, f32s(&x), f32s(&dy));
            tensor(dw, [g.o, g.c, g.kh, g.kw])
        }
        _ => Flex::conv2d_weight_backward(x, weight, output_grad, options),
    }
}

/// The gradient for `bias` (`[o]`) of a convolution.
pub fn conv2d_bias_backward(
    x: FlexTensor,
    bias: FlexTensor,
    output_grad: FlexTensor,
) -> FlexTensor {
    let fast = active_kernels() == Kernels::Fast;
    match output_grad.shape().dims::<4>() {
        [_, o, ho, wo] if fast && output_grad.dtype() == DType::F32 && o * ho * wo > 0 => {
            let dy = output_grad.to_contiguous();
            tensor(kernels::bias_grad(f32s(&dy), o, ho * wo), [o])
        }
        _ => Flex::conv2d_bias_backward(x, bias, output_grad),
    }
}

/// The `[n * c, h * w]` rows of a training-mode BatchNorm's tensors, when the kernels here
/// cover them ([`Kernels::Fast`] on; f32; `like_x` shaped like `x`, `per_channel` `[c]`).
fn norm_rows(
    x: &FlexTensor,
    like_x: &[Option<&FlexTensor>],
    per_channel: &[&FlexTensor],
) -> Option<norm::Rows> {
    let shape = x.shape();
    let dims = shape.as_slice();
    let &[n, c, h, w] = dims else { return None };
    let fits =
        |t: &FlexTensor, shape: &[usize]| t.dtype() == DType::F32 && t.shape().as_slice() == shape;
    let covered = active_kernels() == Kernels::Fast
        && n * c * h * w > 0
        && fits(x, dims)
        && like_x.iter().all(|t| t.is_none_or(|t| fits(t, dims)))
        && per_channel.iter().all(|t| fits(t, &[c]));
    covered.then_some(norm::Rows { n, c, p: h * w })
}

/// Training-mode BatchNorm2d (see [`FastBatchNorm`](crate::FastBatchNorm)): `None` outside
/// f32 or when Burn's ops are chosen.
pub fn batch_norm2d(
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    residual: Option<FlexTensor>,
    options: BatchNormOptions,
) -> Option<BatchNormForward<Flex>> {
    let rows = norm_rows(&x, &[residual.as_ref()], &[&gamma, &beta])?;
    let (x, gamma, beta) = (
        x.to_contiguous(),
        gamma.to_contiguous(),
        beta.to_contiguous(),
    );
    let residual = residual.map(|r| r.to_contiguous());
    let (mean, var) = norm::statistics(rows, f32s(&x));
    let inv_std = norm::inverse_std(&var, options.epsilon);
    let channels = norm::Channels {
        gamma: f32s(&gamma),
        mean: &mean,
        inv_std: &inv_std,
    };
    let residual = residual.as_ref().map(f32s);
    let y = norm::forward(
        rows,
        f32s(&x),
        channels,
        f32s(&beta),
        residual,
        options.relu,
    );
    Some(BatchNormForward {
        output: tensor(y, x.shape().clone()),
        mean: tensor(mean, [rows.c]),
        var: tensor(var, [rows.c]),
    })
}

/// The gradients of [`batch_norm2d`]; Burn's ops (the trait's default) outside f32 or when
/// they are chosen.
pub fn batch_norm2d_backward(
    saved: BatchNormSaved<Flex>,
    output_grad: FlexTensor,
    with_residual: bool,
) -> BatchNormGrads<Flex> {
    let like_x = [saved.output.as_ref(), Some(&output_grad)];
    let per_channel = [&saved.gamma, &saved.mean, &saved.var];
    let Some(rows) = norm_rows(&saved.x, &like_x, &per_channel) else {
        return crate::norm::batch_norm2d_backward_composed::<Flex>(
            saved,
            output_grad,
            with_residual,
        );
    };
    let contiguous = |t: FlexTensor| t.to_contiguous();
    let (x, gamma, mean) = (
        contiguous(saved.x),
        contiguous(saved.gamma),
        contiguous(saved.mean),
    );
    let (output, dy) = (saved.output.map(contiguous), contiguous(output_grad));
    let inv_std = norm::inverse_std(f32s(&contiguous(saved.var)), saved.epsilon);
    let channels = norm::Channels {
        gamma: f32s(&gamma),
        mean: f32s(&mean),
        inv_std: &inv_std,
    };
    let output = output.as_ref().map(f32s);
    let grads = norm::backward(rows, f32s(&x), channels, output, f32s(&dy), with_residual);
    let shape = x.shape().clone();
    BatchNormGrads {
        x: tensor(grads.x, shape.clone()),
        gamma: tensor(grads.gamma, [rows.c]),
        beta: tensor(grads.beta, [rows.c]),
        residual: grads.residual.map(|d| tensor(d, shape)),
    }
}

/// The gradient for `x` (`[n, c, h, w]`) of global average pooling, the same values as
/// [`global_avg_pool_backward_composed`](crate::global_avg_pool_backward_composed) in one
/// parallel pass; Burn's ops outside f32 or when they are chosen.
pub fn global_avg_pool_backward(output_grad: FlexTensor, [n, c, h, w]: [usize; 4]) -> FlexTensor {
    let fast = active_kernels() == Kernels::Fast && output_grad.dtype() == DType::F32;
    if !fast || output_grad.shape().as_slice() != [n, c] || h * w == 0 {
        return crate::pool::global_avg_pool_backward_composed::<Flex>(output_grad, [n, c, h, w]);
    }
    let grad = output_grad.to_contiguous();
    let grad = f32s(&grad);
    // The two factors of the two `mean_dim`s' backward, rounded as Burn rounds them.
    let (per_w, per_h) = ((1.0 / w as f64) as f32, (1.0 / h as f64) as f32);
    let dx = fill::par_vec(
        n * c * h * w,
        h * w,
        norm::MIN_TASK.div_ceil(h * w),
        |r, map| {
            let value = grad[r] * per_w * per_h;
            map.write(std::iter::repeat_n(value, h * w));
        },
    );
    tensor(dx, [n, c, h, w])
}
