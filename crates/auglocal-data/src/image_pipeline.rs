//! From a stored image to what the network sees: channels, canvas, augmentation, normalisation.

use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::augment::Augment;
use crate::transform::{center_on_canvas, repeat_channels};
use crate::{ImageShape, Sample};

/// Per-channel normalisation: `(pixel / 255 - mean) / std`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalize {
    /// Mean of each channel, in [0, 1].
    pub mean: [f32; 3],
    /// Standard deviation of each channel, in [0, 1].
    pub std: [f32; 3],
}

impl Normalize {
    /// CIFAR-10/100 (the reference): mean (125.3, 123.0, 113.9) / 255, std (63.0, 62.1, 66.7) / 255.
    pub const CIFAR: Normalize = Normalize {
        mean: [125.3 / 255.0, 123.0 / 255.0, 113.9 / 255.0],
        std: [63.0 / 255.0, 62.1 / 255.0, 66.7 / 255.0],
    };
    /// SVHN and STL-10 (the reference): mean = std = 0.5.
    pub const HALF: Normalize = Normalize {
        mean: [0.5; 3],
        std: [0.5; 3],
    };
    /// ImageNet (torchvision).
    pub const IMAGENET: Normalize = Normalize {
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
    };
    /// Fashion-MNIST training-set statistics, repeated over the three channels.
    pub const FASHION_MNIST: Normalize = Normalize {
        mean: [0.2860; 3],
        std: [0.3530; 3],
    };
    /// MNIST training-set statistics, repeated over the three channels.
    pub const MNIST: Normalize = Normalize {
        mean: [0.1307; 3],
        std: [0.3081; 3],
    };
    /// None: pixels scaled to [0, 1] only.
    pub const UNIT: Normalize = Normalize {
        mean: [0.0; 3],
        std: [1.0; 3],
    };

    /// Writes the normalised CHW floats of `sample` into `out` (`sample.pixels.len()` long).
    pub fn write(&self, sample: &Sample, out: &mut [f32]) {
        let plane = sample.shape.height * sample.shape.width;
        for (c, (src, dst)) in sample
            .pixels
            .chunks_exact(plane)
            .zip(out.chunks_exact_mut(plane))
            .enumerate()
        {
            let (mean, std) = (self.mean[c.min(2)], self.std[c.min(2)]);
            let scale = 1.0 / (255.0 * std);
            let shift = mean / std;
            for (o, &p) in dst.iter_mut().zip(src) {
                *o = p as f32 * scale - shift;
            }
        }
    }
}

/// What happens to each image before batching.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImagePipeline {
    /// Channels the network takes (grey images are repeated to 3).
    pub channels: usize,
    /// Centre smaller images on a zero canvas of this side first (Fashion-MNIST 28 -> 32).
    pub canvas: Option<usize>,
    /// The augmentation (training) or the deterministic resize (evaluation).
    pub augment: Augment,
    /// Normalisation, applied by the batcher.
    pub normalize: Normalize,
}

impl ImagePipeline {
    /// Shape of the output for inputs of `input`.
    pub fn output_shape(&self, input: ImageShape) -> ImageShape {
        let side = |s: usize| self.canvas.map_or(s, |c| s.max(c));
        let prepared = ImageShape::new(self.channels, side(input.height), side(input.width));
        self.augment.output_shape(prepared)
    }

    /// Channels, canvas, then augmentation with parameters from `rng` (u8 out; the batcher
    /// normalises).
    pub fn apply(&self, sample: Sample, rng: &mut StdRng) -> Sample {
        let sample = repeat_channels(sample, self.channels);
        let sample = match self.canvas {
            Some(size) => center_on_canvas(sample, size),
            None => sample,
        };
        self.augment.apply(sample, rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::augment::item_rng;

    #[test]
    fn normalisation_matches_the_formula() {
        let sample = Sample {
            pixels: vec![0, 255, 128],
            shape: ImageShape::new(3, 1, 1),
            label: 0,
        };
        let mut out = [0f32; 3];
        Normalize::CIFAR.write(&sample, &mut out);
        let expected = [
            (0.0 - 125.3 / 255.0) / (63.0 / 255.0),
            (1.0 - 123.0 / 255.0) / (62.1 / 255.0),
            (128.0 / 255.0 - 113.9 / 255.0) / (66.7 / 255.0),
        ];
        for (o, e) in out.iter().zip(expected) {
            assert!((o - e).abs() < 1e-5, "{o} vs {e}");
        }
    }

    #[test]
    fn grey_28_becomes_rgb_32() {
        let p = ImagePipeline {
            channels: 3,
            canvas: Some(32),
            augment: Augment::None,
            normalize: Normalize::FASHION_MNIST,
        };
        let grey = ImageShape::new(1, 28, 28);
        assert_eq!(p.output_shape(grey), ImageShape::new(3, 32, 32));
        let sample = Sample {
            pixels: vec![200; grey.len()],
            shape: grey,
            label: 4,
        };
        let out = p.apply(sample, &mut item_rng(0, 0, 0));
        assert_eq!(out.shape, ImageShape::new(3, 32, 32));
        assert_eq!(
            (out.at(1, 0, 0), out.at(2, 2, 2), out.at(0, 29, 29)),
            (0, 200, 200)
        );
    }
}
