//! [`Conv2d`]: Burn's 2-D convolution module, convolving through [`FastConv`].

use burn::module::{Module, Param};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2dConfig;
use burn::tensor::ops::{ConvOptions, PadMode};
use burn::tensor::{Tensor, TensorPrimitive, backend::Backend};

use crate::FastConv;

/// A drop-in for [`burn::nn::conv::Conv2d`]: the same fields, so the same record (checkpoints
/// of either load into the other), built from the same [`Conv2dConfig`]
/// ([`Conv2d::new`]) or converted from Burn's module (`From`). Only its forward differs: it
/// runs [`conv2d`], whose backward is [`FastConv`]'s.
#[derive(Module, Debug)]
pub struct Conv2d<B: Backend> {
    /// `[channels_out, channels_in / groups, kernel_h, kernel_w]`.
    pub weight: Param<Tensor<B, 4>>,
    /// `[channels_out]`.
    pub bias: Option<Param<Tensor<B, 1>>>,
    /// Stride `[h, w]`.
    pub stride: [usize; 2],
    /// Kernel size `[h, w]`.
    pub kernel_size: [usize; 2],
    /// Dilation `[h, w]`.
    pub dilation: [usize; 2],
    /// Groups.
    pub groups: usize,
    /// Padding.
    pub padding: PaddingConfig2d,
}

impl<B: Backend> Conv2d<B> {
    /// A freshly initialised convolution, exactly as `config.init(device)` builds Burn's.
    pub fn new(config: &Conv2dConfig, device: &B::Device) -> Self {
        config.init(device).into()
    }
}

impl<B: Backend> From<burn::nn::conv::Conv2d<B>> for Conv2d<B> {
    fn from(c: burn::nn::conv::Conv2d<B>) -> Self {
        Self {
            weight: c.weight,
            bias: c.bias,
            stride: c.stride,
            kernel_size: c.kernel_size,
            dilation: c.dilation,
            groups: c.groups,
            padding: c.padding,
        }
    }
}

impl<B: Backend> From<Conv2d<B>> for burn::nn::conv::Conv2d<B> {
    fn from(c: Conv2d<B>) -> Self {
        Self {
            weight: c.weight,
            bias: c.bias,
            stride: c.stride,
            kernel_size: c.kernel_size,
            dilation: c.dilation,
            groups: c.groups,
            padding: c.padding,
        }
    }
}

impl<B: FastConv> Conv2d<B> {
    /// # Shapes
    /// - input: `[batch, channels_in, height, width]`
    /// - output: `[batch, channels_out, height_out, width_out]`
    pub fn forward(&self, input: Tensor<B, 4>) -> Tensor<B, 4> {
        let [_, _, height, width] = input.dims();
        let ((top, bottom), (left, right)) = padding_pairs(
            &self.padding,
            [height, width],
            self.kernel_size,
            self.stride,
        );
        let bias = self.bias.as_ref().map(|b| b.val());
        if top == bottom && left == right {
            let options = ConvOptions::new(self.stride, [top, left], self.dilation, self.groups);
            conv2d(input, self.weight.val(), bias, options)
        } else {
            // Asymmetric padding ("same" with an even kernel): pad explicitly, as Burn does.
            let padded = input.pad((left, right, top, bottom), PadMode::Constant(0.0));
            let options = ConvOptions::new(self.stride, [0, 0], self.dilation, self.groups);
            conv2d(padded, self.weight.val(), bias, options)
        }
    }
}

/// `((top, bottom), (left, right))` for an input of `[height, width]`, as Burn's `Conv2d`
/// computes them (Burn keeps its own helper crate-private).
fn padding_pairs(
    padding: &PaddingConfig2d,
    [height, width]: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
) -> ((usize, usize), (usize, usize)) {
    let same = |k: usize, s: usize, size: usize| {
        let out = size.div_ceil(s);
        let total = if out > 0 {
            ((out - 1) * s + k).saturating_sub(size)
        } else {
            0
        };
        (total / 2, total - total / 2)
    };
    match padding {
        PaddingConfig2d::Valid => ((0, 0), (0, 0)),
        PaddingConfig2d::Same => (
            same(kernel[0], stride[0], height),
            same(kernel[1], stride[1], width),
        ),
        PaddingConfig2d::Explicit(top, left, bottom, right) => ((*top, *bottom), (*left, *right)),
    }
}

/// A 2-D convolution through [`FastConv`] (symmetric padding in `options`).
///
/// # Shapes
/// - `x`: `[batch, channels_in, height, width]`
/// - `weight`: `[channels_out, channels_in / groups, kernel_h, kernel_w]`
/// - `bias`: `[channels_out]`
/// - output: `[batch, channels_out, height_out, width_out]`
pub fn conv2d<B: FastConv>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    bias: Option<Tensor<B, 1>>,
    options: ConvOptions<2>,
) -> Tensor<B, 4> {
    let out = B::fast_conv2d(
        x.into_primitive().tensor(),
        weight.into_primitive().tensor(),
        bias.map(|b| b.into_primitive().tensor()),
        options,
    );
    Tensor::from_primitive(TensorPrimitive::Float(out))
}
