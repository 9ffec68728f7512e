//! InfoPro's aux net (Wang et al. 2021), as the AugLocal reference builds it for its
//! comparison: a small convolutional classifier and a decoder that reconstructs the input
//! image from the feature map (method doc, section 11).

use auglocal_kernels::{Conv2d, FastOps};
use auglocal_model::cost::{self, Cost};
use auglocal_model::nn::{BatchNorm, BatchNormConfig, conv2d_config, global_avg_pool};
use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::{Distribution, Int, Tensor, TensorData, backend::Backend};

use super::cross_entropy;

/// Width of the classifier's hidden Linear layer (the reference's `--aux_net_feature_dim`).
pub const INFOPRO_HIDDEN: usize = 128;
/// Channels of the decoder's hidden convolution (the reference's `2c` decoder: 12).
pub const INFOPRO_DECODER_WIDTH: usize = 12;

/// Configuration of an [`InfoProHead`] reading a `width x input_size x input_size` map of a
/// network whose images are `image_channels x image_size x image_size`.
#[derive(Config, Debug, PartialEq)]
pub struct InfoProHeadConfig {
    /// Channels of the feature map.
    pub width: usize,
    /// Side of the feature map.
    pub input_size: usize,
    /// Output classes.
    pub num_classes: usize,
    /// Channels of the classifier's convolution.
    pub classifier_width: usize,
    /// Stride of the classifier's convolution.
    pub classifier_stride: usize,
    /// Channels of the images the decoder reconstructs.
    pub image_channels: usize,
    /// Side of those images.
    pub image_size: usize,
    /// Weight of the reconstruction loss (`lambda_r`).
    pub reconstruction_weight: f64,
    /// Weight of the classification loss (`lambda_c`).
    pub classification_weight: f64,
}

impl InfoProHeadConfig {
    /// The head of a map `width` wide in a network whose last stage is `final_width` wide:
    /// the reference's classifier convolution doubles the width with stride 2 (16 -> 32,
    /// 32 -> 64 in the CIFAR ResNets) and keeps the last stage's width with stride 1 (64 ->
    /// 64), as the InfoPro paper's own code does.
    pub fn for_map(
        [width, input_size]: [usize; 2],
        final_width: usize,
        num_classes: usize,
        [image_channels, image_size]: [usize; 2],
        [reconstruction_weight, classification_weight]: [f64; 2],
    ) -> Self {
        let (classifier_width, classifier_stride) = if width < final_width {
            (2 * width, 2)
        } else {
            (width, 1)
        };
        Self {
            width,
            input_size,
            num_classes,
            classifier_width,
            classifier_stride,
            image_channels,
            image_size,
            reconstruction_weight,
            classification_weight,
        }
    }

    /// Parameters and multiply-adds per image: the classifier (convolution, BatchNorm, two
    /// Linear layers) and the decoder (two biased convolutions at the image's size, a
    /// BatchNorm); the upsampling is not counted.
    pub fn cost(&self) -> Cost {
        let (c, w) = (self.width, self.classifier_width);
        let out = cost::conv_out_size(self.input_size, self.classifier_stride);
        let classifier = cost::conv2d(c, w, 3, out)
            + cost::batch_norm(w)
            + cost::linear(w, INFOPRO_HIDDEN, true)
            + cost::linear(INFOPRO_HIDDEN, self.num_classes, true);
        let d = INFOPRO_DECODER_WIDTH;
        let decoder = cost::conv2d_biased(c, d, 3, self.image_size)
            + cost::batch_norm(d)
            + cost::conv2d_biased(d, self.image_channels, 3, self.image_size);
        classifier + decoder
    }

    /// Builds a freshly initialised head as the reference does: every convolution's weights
    /// He fan-out normal, the decoder's biases and the Linear layers PyTorch's defaults.
    pub fn init<B: Backend>(&self, device: &B::Device) -> InfoProHead<B> {
        let (c, w, d) = (self.width, self.classifier_width, INFOPRO_DECODER_WIDTH);
        InfoProHead {
            conv: Conv2d::new(&conv2d_config(c, w, 3, self.classifier_stride), device),
            bn: BatchNormConfig::new(w).init(device),
            fc1: LinearConfig::new(w, INFOPRO_HIDDEN).init(device),
            fc2: LinearConfig::new(INFOPRO_HIDDEN, self.num_classes).init(device),
            decoder_conv1: biased_conv([c, d], device),
            decoder_bn: BatchNormConfig::new(d).init(device),
            decoder_conv2: biased_conv([d, self.image_channels], device),
            image_size: self.image_size,
            reconstruction_weight: self.reconstruction_weight,
            classification_weight: self.classification_weight,
        }
    }
}

/// A 3x3 convolution with bias: He fan-out normal weights (the reference's loop over every
/// `nn.Conv2d`), a bias of PyTorch's default `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`.
fn biased_conv<B: Backend>([in_ch, out_ch]: [usize; 2], device: &B::Device) -> Conv2d<B> {
    let mut conv = Conv2d::new(&conv2d_config(in_ch, out_ch, 3, 1), device);
    let bound = 1.0 / ((in_ch * 9) as f64).sqrt();
    conv.bias = Some(Param::from_tensor(Tensor::random(
        [out_ch],
        Distribution::Uniform(-bound, bound),
        device,
    )));
    conv
}

/// InfoPro's aux net: a classifier (3x3 convolution, BatchNorm, ReLU, GAP, Linear -> 128,
/// ReLU, Linear -> classes) and a decoder (bilinear upsampling with aligned corners to the
/// image's size, 3x3 convolution -> 12, BatchNorm, ReLU, 3x3 convolution -> the image's
/// channels, sigmoid).
#[derive(Module, Debug)]
pub struct InfoProHead<B: Backend> {
    /// The classifier's convolution.
    pub conv: Conv2d<B>,
    /// Its BatchNorm.
    pub bn: BatchNorm<B>,
    /// The classifier's hidden Linear layer.
    pub fc1: Linear<B>,
    /// The classifier's output layer.
    pub fc2: Linear<B>,
    /// The decoder's first convolution.
    pub decoder_conv1: Conv2d<B>,
    /// Its BatchNorm.
    pub decoder_bn: BatchNorm<B>,
    /// The decoder's output convolution.
    pub decoder_conv2: Conv2d<B>,
    /// Side of the reconstructed images.
    pub image_size: usize,
    /// Weight of the reconstruction loss.
    pub reconstruction_weight: f64,
    /// Weight of the classification loss.
    pub classification_weight: f64,
}

impl<B: FastOps> InfoProHead<B> {
    /// The classifier.
    ///
    /// # Shapes
    /// - input: `[batch, width, input_size, input_size]`
    /// - output: `[batch, num_classes]` (logits)
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let h = global_avg_pool(self.bn.forward_relu(self.conv.forward(x)));
        self.fc2.forward(relu(self.fc1.forward(h)))
    }

    /// The decoder's reconstruction of the images, in (0, 1).
    ///
    /// # Shapes
    /// - input: `[batch, width, input_size, input_size]`
    /// - output: `[batch, image_channels, image_size, image_size]`
    pub fn reconstruct(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let up = upsample_bilinear(x, self.image_size);
        let h = self.decoder_bn.forward_relu(self.decoder_conv1.forward(up));
        sigmoid(self.decoder_conv2.forward(h))
    }

    /// The local loss, `reconstruction_weight * BCE(reconstruction, pixels) +
    /// classification_weight * cross-entropy`, and the classifier's logits.
    ///
    /// # Shapes
    /// - x: `[batch, width, input_size, input_size]`; targets: `[batch]`; pixels: the
    ///   batch's images in [0, 1], `[batch, image_channels, image_size, image_size]`
    /// - returns logits `[batch, num_classes]` and the loss `[1]`
    pub fn local_loss(
        &self,
        x: Tensor<B, 4>,
        targets: Tensor<B, 1, Int>,
        pixels: Tensor<B, 4>,
    ) -> (Tensor<B, 2>, Tensor<B, 1>) {
        let logits = self.forward(x.clone());
        let classification = cross_entropy(logits.clone(), targets);
        let reconstruction = binary_cross_entropy(self.reconstruct(x), pixels);
        let loss = reconstruction.mul_scalar(self.reconstruction_weight)
            + classification.mul_scalar(self.classification_weight);
        (logits, loss)
    }
}

/// Bilinear upsampling with aligned corners (PyTorch's `interpolate(mode="bilinear",
/// align_corners=True)`) to `size x size`, written as two matrix products, one per axis:
/// Burn's CubeCL backends (WGPU, CUDA) have no backward pass for their bilinear
/// interpolation, and a matrix product has one on every backend. Output pixel `o` of an axis
/// reads input position `o * (in - 1) / (out - 1)` and mixes its two neighbours linearly.
///
/// # Shapes
/// - input: `[batch, C, H, W]`
/// - output: `[batch, C, size, size]`
pub fn upsample_bilinear<B: Backend>(x: Tensor<B, 4>, size: usize) -> Tensor<B, 4> {
    let [batch, c, h, w] = x.dims();
    let device = x.device();
    let rows = interpolation_matrix::<B>(h, size, &device)
        .unsqueeze::<3>()
        .expand([batch * c, size, h]);
    let cols = interpolation_matrix::<B>(w, size, &device)
        .transpose()
        .unsqueeze::<3>()
        .expand([batch * c, w, size]);
    rows.matmul(x.reshape([batch * c, h, w]))
        .matmul(cols)
        .reshape([batch, c, size, size])
}

/// The `[out, in]` matrix of 1-D linear interpolation with aligned corners.
fn interpolation_matrix<B: Backend>(input: usize, out: usize, device: &B::Device) -> Tensor<B, 2> {
    let mut m = vec![0f32; out * input];
    let scale = if out > 1 {
        (input - 1) as f64 / (out - 1) as f64
    } else {
        0.0
    };
    for o in 0..out {
        let src = o as f64 * scale;
        let i0 = (src.floor() as usize).min(input - 1);
        let i1 = (i0 + 1).min(input - 1);
        let w1 = (src - i0 as f64) as f32;
        m[o * input + i0] += 1.0 - w1;
        m[o * input + i1] += w1;
    }
    Tensor::from_data(TensorData::new(m, [out, input]), device)
}

/// PyTorch's `BCELoss` (mean): `-(t log p + (1 - t) log(1 - p))` averaged over every element,
/// each log clamped to at least -100.
///
/// The logs are taken of `max(p, f32::MIN_POSITIVE)` (and of `1 - p` likewise), then set to
/// -100 where the probability is below `e^-100`: PyTorch's values (except for subnormal
/// probabilities above `e^-100`, whose log is -87.3 here), and gradients that stay finite where
/// a sigmoid has saturated to exactly 0 or 1. A plain `log(p).clamp_min(-100)` would give the
/// same loss but a NaN gradient there (`0 / 0` in the log's backward), which ended InfoPro runs
/// a few steps in; the sigmoid before it passes no gradient at saturation either way.
///
/// # Shapes
/// - probabilities, targets: the same shape, values in [0, 1]
/// - output: `[1]`
pub fn binary_cross_entropy<B: Backend, const D: usize>(
    probabilities: Tensor<B, D>,
    targets: Tensor<B, D>,
) -> Tensor<B, 1> {
    let log_p = clamped_log(probabilities.clone());
    let log_q = clamped_log(probabilities.neg().add_scalar(1.0));
    let per_element = targets.clone() * log_p + targets.neg().add_scalar(1.0) * log_q;
    per_element.mean().neg()
}

/// `max(ln p, -100)` for `p` in [0, 1], with a finite gradient everywhere (see
/// [`binary_cross_entropy`]).
fn clamped_log<B: Backend, const D: usize>(p: Tensor<B, D>) -> Tensor<B, D> {
    const FLOOR: f32 = -100.0;
    let below = p.clone().lower_elem(FLOOR.exp());
    p.clamp_min(f32::MIN_POSITIVE).log().mask_fill(below, FLOOR)
}

#[cfg(test)]
mod tests {
    use burn::backend::Flex;

    use super::*;

    type B = Flex;

    #[test]
    fn bce_of_a_known_image_is_the_hand_computed_one() {
        let device = Default::default();
        // A 2x2 image and its reconstruction: per pixel -ln 0.8, -ln 0.6, -(0.5 ln 0.5 + 0.5
        // ln 0.5) and -ln 0.9. Then a pixel predicted as exactly 0 where the target is 1,
        // whose log is clamped to -100, and one predicted exactly right.
        let p = Tensor::<B, 4>::from_floats([[[[0.8, 0.4], [0.5, 0.1]]]], &device);
        let t = Tensor::<B, 4>::from_floats([[[[1.0, 0.0], [0.5, 0.0]]]], &device);
        let got = binary_cross_entropy(p, t).into_scalar();
        let expected = -(0.8f64.ln() + 0.6f64.ln() + 0.5f64.ln() + 0.9f64.ln()) / 4.0;
        assert!((f64::from(got) - expected).abs() < 1e-6, "{got} {expected}");

        let p = Tensor::<B, 1>::from_floats([0.0, 1.0], &device);
        let t = Tensor::<B, 1>::from_floats([1.0, 1.0], &device);
        let got = binary_cross_entropy(p, t).into_scalar();
        assert!((got - 50.0).abs() < 1e-4, "{got}");
    }

    #[test]
    fn bce_through_a_saturated_sigmoid_has_a_finite_gradient() {
        type A = burn::backend::Autodiff<Flex>;
        let device = Default::default();
        // sigmoid(+-120) is exactly 1 and 0 in f32; 0.3 is an ordinary logit.
        let z = Tensor::<A, 1>::from_floats([120.0, -120.0, 0.3, 120.0], &device).require_grad();
        let t = Tensor::<A, 1>::from_floats([0.0, 1.0, 1.0, 1.0], &device);
        let loss = binary_cross_entropy(sigmoid(z.clone()), t);
        // Two pixels wrong by a whole log each (100), one ordinary, one exactly right.
        let ordinary = -(1.0 / (1.0 + (-0.3f64).exp())).ln();
        let got = f64::from(loss.clone().into_scalar());
        assert!((got - (200.0 + ordinary) / 4.0).abs() < 1e-4, "{got}");
        let grads = loss.backward();
        let dz: Vec<f32> = z
            .grad(&grads)
            .expect("tracked")
            .into_data()
            .to_vec()
            .expect("f32");
        assert!(dz.iter().all(|g| g.is_finite()), "{dz:?}");
        // The ordinary logit's gradient is (sigmoid(z) - t) / 4, as for any BCE of a sigmoid.
        let want = (1.0 / (1.0 + (-0.3f64).exp()) - 1.0) / 4.0;
        assert!((f64::from(dz[2]) - want).abs() < 1e-6, "{dz:?}");
    }

    #[test]
    fn the_classifier_doubles_the_width_below_the_last_stage() {
        let head =
            |width, size| InfoProHeadConfig::for_map([width, size], 64, 10, [3, 32], [5.0, 0.05]);
        for (width, size, conv, stride) in [(16, 32, 32, 2), (32, 16, 64, 2), (64, 8, 64, 1)] {
            let c = head(width, size);
            assert_eq!((c.classifier_width, c.classifier_stride), (conv, stride));
        }
        // The 16-wide head at 32x32, counted by hand: conv 16*32*9 = 4,608, BN 64, Linear
        // 32*128+128 = 4,224, Linear 128*10+10 = 1,290; decoder conv 16*12*9+12 = 1,740, BN
        // 24, conv 12*3*9+3 = 327.
        assert_eq!(
            head(16, 32).cost().params,
            4_608 + 64 + 4_224 + 1_290 + 1_740 + 24 + 327
        );
    }

    #[test]
    fn the_decoder_reconstructs_images_of_the_network_s_size() {
        let device = Default::default();
        let c = InfoProHeadConfig::for_map([8, 4], 16, 10, [3, 16], [1.0, 1.0]);
        let head = c.init::<B>(&device);
        let x = Tensor::<B, 4>::random([2, 8, 4, 4], Distribution::Default, &device);
        let r = head.reconstruct(x.clone());
        assert_eq!(r.dims(), [2, 3, 16, 16]);
        let values = r.into_data().to_vec::<f32>().expect("f32");
        assert!(values.iter().all(|v| *v > 0.0 && *v < 1.0));
        assert_eq!(head.forward(x).dims(), [2, 10]);
    }

    #[test]
    fn bilinear_upsampling_aligns_the_corners() {
        // A 2x2 map upsampled to 3x3 with aligned corners keeps the corners and averages
        // between them: the centre is the mean of the four.
        let device = Default::default();
        let x = Tensor::<B, 4>::from_floats([[[[0.0, 2.0], [4.0, 6.0]]]], &device);
        let v = upsample_bilinear(x, 3)
            .into_data()
            .to_vec::<f32>()
            .expect("f32");
        assert_eq!(v, vec![0.0, 1.0, 2.0, 2.0, 3.0, 4.0, 4.0, 5.0, 6.0]);
    }

    #[test]
    fn upsampling_equals_burn_s_bilinear_interpolation() {
        use burn::tensor::module::interpolate;
        use burn::tensor::ops::{InterpolateMode, InterpolateOptions};

        let device = Default::default();
        for (h, size) in [(8, 32), (16, 32), (5, 17), (32, 32), (1, 4)] {
            let x = Tensor::<B, 4>::random([2, 3, h, h], Distribution::Default, &device);
            let ours = upsample_bilinear(x.clone(), size);
            let burn = interpolate(
                x,
                [size, size],
                InterpolateOptions::new(InterpolateMode::Bilinear).with_align_corners(true),
            );
            let diff = (ours - burn).abs().max().into_scalar();
            assert!(diff < 1e-5, "{h} -> {size}: {diff}");
        }
    }
}
