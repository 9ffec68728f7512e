//! Initialisation: the reference's He (fan-out) normal convolutions, BN weight 1 and bias 0,
//! PyTorch's default for Linear layers (Burn's default matches it), and PyTorch's default for
//! the convolutions of VGG aux nets ([`Init::TorchDefault`]).

use auglocal_kernels::Conv2d;
use burn::module::{Initializer, Param};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2dConfig;
use burn::tensor::{Tensor, backend::Backend};

use crate::Init;

/// Conv weights ~ Normal(0, sqrt(2 / (kernel * kernel * out_channels))), as the reference does
/// for every convolution of the primary network and of the aux nets.
pub fn conv_initializer(kernel: usize, out_channels: usize) -> Initializer {
    Initializer::Normal {
        mean: 0.0,
        std: (2.0 / (kernel * kernel * out_channels) as f64).sqrt(),
    }
}

/// A bias-free square convolution with padding `kernel / 2` and the reference's initialisation.
pub fn conv2d_config(in_ch: usize, out_ch: usize, kernel: usize, stride: usize) -> Conv2dConfig {
    let pad = kernel / 2;
    Conv2dConfig::new([in_ch, out_ch], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_bias(false)
        .with_initializer(conv_initializer(kernel, out_ch))
}

/// A square convolution with padding `kernel / 2`, with or without bias, drawn as `init`
/// says: He fan-out normal weights and zero bias, or PyTorch's defaults
/// (`U(-1/sqrt(fan_in), 1/sqrt(fan_in))` for weights and bias, Burn's default too).
pub fn conv<B: Backend>(
    init: Init,
    [in_ch, out_ch]: [usize; 2],
    kernel: usize,
    stride: usize,
    bias: bool,
    device: &B::Device,
) -> Conv2d<B> {
    let config = conv2d_config(in_ch, out_ch, kernel, stride).with_bias(bias);
    match init {
        Init::HeFanOut => {
            let mut conv = Conv2d::new(&config, device);
            if bias {
                conv.bias = Some(Param::from_tensor(Tensor::zeros([out_ch], device)));
            }
            conv
        }
        Init::TorchDefault => Conv2d::new(
            &config.with_initializer(Conv2dConfig::new([1, 1], [1, 1]).initializer),
            device,
        ),
    }
}
