//! PredSim's aux net (Nøkland & Eidnes 2019), as the AugLocal reference builds it for its
//! comparison: a pooled prediction head and a similarity-matching branch, read from the same
//! feature map (method doc, section 11).

use auglocal_kernels::{Conv2d, FastOps};
use auglocal_model::cost::{self, Cost};
use auglocal_model::nn::conv2d_config;
use burn::config::Config;
use burn::module::Module;
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Int, Tensor, backend::Backend};

use super::cross_entropy;

/// The flattened size the prediction head pools down to, at most (the reference's 512).
pub const PREDSIM_FEATURES: usize = 512;
/// Weight of the similarity-matching loss (the reference's `--ixx` 0.99).
pub const PREDSIM_SIMILARITY_WEIGHT: f64 = 0.99;
/// Weight of the prediction loss (the reference's `--ixy` 0.01).
pub const PREDSIM_PREDICTION_WEIGHT: f64 = 0.01;

/// The average pooling of the prediction head: kernel (= stride), padding and output side,
/// height then width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PredSimPool {
    /// Kernel and stride.
    pub kernel: [usize; 2],
    /// Zero padding, counted in the averages (PyTorch's `count_include_pad`).
    pub padding: [usize; 2],
    /// Side of the pooled map.
    pub output: [usize; 2],
}

/// Configuration of a [`PredSimHead`] reading a `width x input_size x input_size` map.
#[derive(Config, Debug, PartialEq)]
pub struct PredSimHeadConfig {
    /// Channels of the feature map.
    pub width: usize,
    /// Side of the feature map.
    pub input_size: usize,
    /// Output classes.
    pub num_classes: usize,
    /// Weight of the similarity-matching loss.
    #[config(default = "PREDSIM_SIMILARITY_WEIGHT")]
    pub similarity_weight: f64,
    /// Weight of the prediction (cross-entropy) loss.
    #[config(default = "PREDSIM_PREDICTION_WEIGHT")]
    pub prediction_weight: f64,
}

impl PredSimHeadConfig {
    /// The reference's `get_pool_layer`: from a 1x1 kernel, the kernel's height and then its
    /// width are doubled in turn until the flattened map has at most [`PREDSIM_FEATURES`]
    /// values (or the height kernel covers the map), each output side `ceil(side / kernel)`
    /// with padding `(kernel * (out - side / kernel)) / 2`. A 16x32x32 map is pooled with an
    /// 8x4 kernel to 16x4x8 = 512 values.
    pub fn pool(&self) -> PredSimPool {
        let (c, s) = (self.width, self.input_size);
        let (mut kh, mut kw) = (1, 1);
        let (mut oh, mut ow) = (s, s);
        let mut flat = c * oh * ow;
        while flat > PREDSIM_FEATURES && kh < s {
            kh *= 2;
            oh = s.div_ceil(kh);
            flat = c * oh * ow;
            if flat > PREDSIM_FEATURES {
                kw *= 2;
                ow = s.div_ceil(kw);
                flat = c * oh * ow;
            }
        }
        PredSimPool {
            kernel: [kh, kw],
            padding: [(kh * (oh - s / kh)) / 2, (kw * (ow - s / kw)) / 2],
            output: [oh, ow],
        }
    }

    /// Inputs of the prediction head's Linear layer: the pooled map, flattened.
    pub fn features(&self) -> usize {
        let [oh, ow] = self.pool().output;
        self.width * oh * ow
    }

    /// Parameters and multiply-adds per image: the Linear layer and the similarity branch's
    /// 3x3 convolution.
    pub fn cost(&self) -> Cost {
        cost::linear(self.features(), self.num_classes, true)
            + cost::conv2d(self.width, self.width, 3, self.input_size)
    }

    /// Builds a freshly initialised head: the convolution as the reference initialises its
    /// convolutions, the Linear layer with PyTorch's defaults.
    pub fn init<B: Backend>(&self, device: &B::Device) -> PredSimHead<B> {
        let pool = self.pool();
        let [ph, pw] = pool.padding;
        PredSimHead {
            pool: AvgPool2dConfig::new(pool.kernel)
                .with_strides(pool.kernel)
                .with_padding(PaddingConfig2d::Explicit(ph, pw, ph, pw))
                .with_count_include_pad(true)
                .init(),
            classifier: LinearConfig::new(self.features(), self.num_classes).init(device),
            similarity: Conv2d::new(&conv2d_config(self.width, self.width, 3, 1), device),
            num_classes: self.num_classes,
            similarity_weight: self.similarity_weight,
            prediction_weight: self.prediction_weight,
        }
    }
}

/// PredSim's aux net: average pool, flatten, Linear -> classes (the prediction), and a 3x3
/// convolution (no bias) whose output's batch similarity matrix is matched to the labels'.
#[derive(Module, Debug)]
pub struct PredSimHead<B: Backend> {
    /// The prediction head's pooling.
    pub pool: AvgPool2d,
    /// The prediction head's classifier.
    pub classifier: Linear<B>,
    /// The similarity branch's convolution.
    pub similarity: Conv2d<B>,
    /// Output classes.
    pub num_classes: usize,
    /// Weight of the similarity-matching loss.
    pub similarity_weight: f64,
    /// Weight of the prediction loss.
    pub prediction_weight: f64,
}

impl<B: FastOps> PredSimHead<B> {
    /// The prediction.
    ///
    /// # Shapes
    /// - input: `[batch, width, input_size, input_size]`
    /// - output: `[batch, num_classes]` (logits)
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        self.classifier.forward(self.pool.forward(x).flatten(1, 3))
    }

    /// The local loss, `similarity_weight * similarity + prediction_weight * cross-entropy`,
    /// and the prediction's logits.
    ///
    /// # Shapes
    /// - x: `[batch, width, input_size, input_size]`; targets: `[batch]`
    /// - returns logits `[batch, num_classes]` and the loss `[1]`
    pub fn local_loss(
        &self,
        x: Tensor<B, 4>,
        targets: Tensor<B, 1, Int>,
    ) -> (Tensor<B, 2>, Tensor<B, 1>) {
        let logits = self.forward(x.clone());
        let prediction = cross_entropy(logits.clone(), targets.clone());
        let similarity = similarity_loss(self.similarity.forward(x), targets, self.num_classes);
        let loss = similarity.mul_scalar(self.similarity_weight)
            + prediction.mul_scalar(self.prediction_weight);
        (logits, loss)
    }
}

/// The reference's `SimLoss`: the mean squared difference between the similarity matrix of
/// `features` and that of the one-hot labels.
///
/// # Shapes
/// - features: `[batch, C, H, W]`; targets: `[batch]`
/// - output: `[1]`
pub fn similarity_loss<B: Backend>(
    features: Tensor<B, 4>,
    targets: Tensor<B, 1, Int>,
    num_classes: usize,
) -> Tensor<B, 1> {
    let labels = targets.one_hot::<2>(num_classes).float();
    let predicted = similarity_matrix(similarity_rows(features));
    let expected = similarity_matrix(labels);
    (predicted - expected).square().mean()
}

/// The rows whose similarities are compared: each channel's standard deviation over space
/// (unbiased, as `torch.std`) when the map has more than 3 channels and is taller than 1,
/// else the flattened map.
///
/// # Shapes
/// - input: `[batch, C, H, W]`
/// - output: `[batch, C]` or `[batch, C * H * W]`
pub fn similarity_rows<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 2> {
    let [batch, c, h, w] = x.dims();
    if c > 3 && h > 1 {
        x.reshape([batch, c, h * w])
            .var(2)
            .sqrt()
            .reshape([batch, c])
    } else {
        x.reshape([batch, c * h * w])
    }
}

/// The reference's `similarity_matrix`: every row centred and divided by `1e-8` plus its L2
/// norm, then the matrix of the rows' dot products, clamped to `[-1, 1]`.
///
/// # Shapes
/// - input: `[batch, features]`
/// - output: `[batch, batch]`
pub fn similarity_matrix<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    let centred = x.clone() - x.mean_dim(1);
    let norm = centred.clone().square().sum_dim(1).sqrt().add_scalar(1e-8);
    let rows = centred / norm;
    rows.clone().matmul(rows.transpose()).clamp(-1.0, 1.0)
}

#[cfg(test)]
mod tests {
    use burn::backend::Flex;
    use burn::tensor::TensorData;

    use super::*;

    type B = Flex;

    fn config(width: usize, size: usize) -> PredSimHeadConfig {
        PredSimHeadConfig::new(width, size, 10)
    }

    #[test]
    fn pools_as_the_reference_does() {
        // The method doc's example, and the other CIFAR ResNet stages.
        let p = config(16, 32).pool();
        assert_eq!((p.kernel, p.padding, p.output), ([8, 4], [0, 0], [4, 8]));
        assert_eq!(config(32, 16).pool().kernel, [4, 4]);
        assert_eq!(config(64, 8).pool().kernel, [4, 2]);
        for c in [config(16, 32), config(32, 16), config(64, 8)] {
            assert_eq!(c.features(), 512);
        }
        // Small enough already: no pooling.
        let p = config(64, 2).pool();
        assert_eq!((p.kernel, p.output), ([1, 1], [2, 2]));
        // A side the kernel does not divide is padded to ceil(side / kernel), and the pool
        // Burn builds gives that side.
        for (width, size) in [(16, 7), (64, 7), (8, 14), (64, 5)] {
            let c = config(width, size);
            let p = c.pool();
            let head = c.init::<B>(&Default::default());
            let x = Tensor::<B, 4>::ones([1, width, size, size], &Default::default());
            let [_, _, oh, ow] = head.pool.forward(x).dims();
            assert_eq!([oh, ow], p.output, "{width}x{size}x{size}: {p:?}");
            assert!(c.features() <= PREDSIM_FEATURES || p.kernel[0] >= size);
        }
    }

    #[test]
    fn similarity_matrix_of_a_tiny_batch_is_the_hand_computed_one() {
        let device = Default::default();
        // Rows (1, 2, 3), (3, 2, 1), (1, 1, 1): centred (-1, 0, 1), (1, 0, -1), (0, 0, 0);
        // norms sqrt(2), sqrt(2), 0 (the third row stays zero after the 1e-8).
        let x = Tensor::<B, 2>::from_floats(
            [[1.0, 2.0, 3.0], [3.0, 2.0, 1.0], [1.0, 1.0, 1.0]],
            &device,
        );
        let s = similarity_matrix(x)
            .into_data()
            .to_vec::<f32>()
            .expect("f32");
        let r = 2.0 / (2f32.sqrt() + 1e-8).powi(2);
        let expected = [r, -r, 0.0, -r, r, 0.0, 0.0, 0.0, 0.0];
        for (a, b) in s.iter().zip(expected) {
            assert!((a - b).abs() < 1e-6, "{s:?}");
        }
    }

    #[test]
    fn similarity_loss_of_a_tiny_batch_is_the_hand_computed_one() {
        let device = Default::default();
        // Four images of 4 channels, 2x2, of uneven values; the expected loss is computed
        // here from the definition, in f64.
        let values: Vec<f32> = (0..4 * 4 * 4)
            .map(|i| ((i * i * 7 + 3 * i) % 17) as f32 / 4.0)
            .collect();
        let x = Tensor::<B, 4>::from_data(TensorData::new(values.clone(), [4, 4, 2, 2]), &device);
        let targets = Tensor::<B, 1, Int>::from_ints([0, 2, 0, 1], &device);
        let got = similarity_loss(x, targets, 3).into_scalar();

        // Rows: each channel's unbiased standard deviation over its 4 values.
        let rows: Vec<Vec<f64>> = (0..4)
            .map(|i| {
                (0..4)
                    .map(|c| {
                        let v: Vec<f64> =
                            (0..4).map(|p| values[i * 16 + c * 4 + p] as f64).collect();
                        let m = v.iter().sum::<f64>() / 4.0;
                        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / 3.0).sqrt()
                    })
                    .collect()
            })
            .collect();
        let sim = |rows: &[Vec<f64>]| -> Vec<f64> {
            let n: Vec<Vec<f64>> = rows
                .iter()
                .map(|r| {
                    let m = r.iter().sum::<f64>() / r.len() as f64;
                    let c: Vec<f64> = r.iter().map(|x| x - m).collect();
                    let norm = c.iter().map(|x| x * x).sum::<f64>().sqrt() + 1e-8;
                    c.iter().map(|x| x / norm).collect()
                })
                .collect();
            let mut out = Vec::new();
            for a in &n {
                for b in &n {
                    let d: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
                    out.push(d.clamp(-1.0, 1.0));
                }
            }
            out
        };
        // One-hot labels over 3 classes: same class 1, else -1/2 (centred one-hot rows).
        let labels = [0usize, 2, 0, 1];
        let one_hot: Vec<Vec<f64>> = labels
            .iter()
            .map(|&l| (0..3).map(|k| f64::from(u8::from(k == l))).collect())
            .collect();
        let label_sim = sim(&one_hot);
        assert!((label_sim[1] + 0.5).abs() < 1e-6 && (label_sim[2] - 1.0).abs() < 1e-6);
        let feature_sim = sim(&rows);
        let expected: f64 = feature_sim
            .iter()
            .zip(&label_sim)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>()
            / 16.0;
        assert!(
            (f64::from(got) - expected).abs() < 1e-5,
            "{got} != {expected}"
        );
    }

    #[test]
    fn maps_with_three_channels_or_one_row_are_flattened() {
        let device = Default::default();
        let x = Tensor::<B, 4>::ones([2, 3, 4, 4], &device);
        assert_eq!(similarity_rows(x).dims(), [2, 48]);
        let x = Tensor::<B, 4>::ones([2, 8, 1, 1], &device);
        assert_eq!(similarity_rows(x).dims(), [2, 8]);
        let x = Tensor::<B, 4>::ones([2, 8, 2, 2], &device);
        assert_eq!(similarity_rows(x).dims(), [2, 8]);
    }
}
