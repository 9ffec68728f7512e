//! Initialisation of the reference: He (fan-out) normal convolutions, BN weight 1 and bias 0,
//! PyTorch's default for Linear layers (Burn's default matches it).

use burn::module::Initializer;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2dConfig;

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
