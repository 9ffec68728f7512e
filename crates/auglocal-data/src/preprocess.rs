//! From any image file to what a trained network takes: the test pipeline, preceded by what
//! brings an image of another shape to the data set's own.

use serde::{Deserialize, Serialize};

use crate::augment::{Augment, item_rng};
use crate::formats::decode::MAX_SIDE;
use crate::transform::{repeat_channels, resize_center_crop, to_grey};
use crate::{DataError, ImagePipeline, ImageShape, Sample};

/// How an image of any size and colour becomes a network's input, for inference.
///
/// An image of the data set's stored shape goes through exactly the test pipeline, so an
/// exported model classifies the data set's own images as its evaluation did. Any other image
/// is first converted to the stored images' channels (RGB to grey by ITU-R 601 luma, as PIL's
/// `convert("L")`; grey to RGB by repetition) and resized to their side (shorter side, then
/// centre crop, as torchvision's `Resize` + `CenterCrop`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preprocess {
    /// Shape of the data set's stored images (Fashion-MNIST 1x28x28, CIFAR 3x32x32), `None`
    /// where they vary (image folders).
    pub stored: Option<ImageShape>,
    /// The test pipeline: channels, canvas, the deterministic resize, normalisation.
    pub pipeline: ImagePipeline,
    /// Side of the square images the network takes.
    pub image_size: usize,
}

/// Resize + centre crop to `side x side`, for grey or RGB images (resized in RGB: the grey of
/// three equal channels is the channel itself).
fn resize_square(sample: Sample, side: usize) -> Sample {
    let channels = sample.shape.channels;
    let resized = resize_center_crop(&repeat_channels(sample, 3), side, side);
    if channels == 1 {
        to_grey(&resized)
    } else {
        resized
    }
}

fn invalid(what: impl Into<String>) -> DataError {
    DataError::Config(what.into())
}

impl Preprocess {
    /// Shape of what [`Preprocess::apply`] makes: `[channels, image_size, image_size]`.
    pub fn output_shape(&self) -> ImageShape {
        ImageShape::new(self.pipeline.channels, self.image_size, self.image_size)
    }

    /// Checks a description read from a file: channels 1 or 3, sides and sizes within the
    /// decoder's limits, square stored images, a deterministic resize (never a training
    /// augmentation), finite means and positive finite deviations.
    pub fn validate(&self) -> Result<(), DataError> {
        let side_ok = |s: usize| (1..=MAX_SIDE as usize).contains(&s);
        if !matches!(self.pipeline.channels, 1 | 3) {
            return Err(invalid(format!(
                "a network takes 1 or 3 channels, got {}",
                self.pipeline.channels
            )));
        }
        if !side_ok(self.image_size) {
            return Err(invalid(format!(
                "image side must be 1 to {MAX_SIDE}, got {}",
                self.image_size
            )));
        }
        if let Some(s) = self.stored
            && (!matches!(s.channels, 1 | 3) || s.height != s.width || !side_ok(s.height))
        {
            return Err(invalid(format!(
                "stored images must be square, 1 to {MAX_SIDE} pixels, with 1 or 3 channels; \
                 got {}x{}x{}",
                s.channels, s.height, s.width
            )));
        }
        if self.pipeline.canvas.is_some_and(|c| !side_ok(c)) {
            return Err(invalid(format!("canvas side must be 1 to {MAX_SIDE}")));
        }
        match self.pipeline.augment {
            Augment::None => {}
            Augment::ResizeCenterCrop { resize, crop } if side_ok(resize) && side_ok(crop) => {}
            ref other => {
                return Err(invalid(format!(
                    "inference takes no augmentation but a resize and centre crop within \
                     {MAX_SIDE} pixels, got {other:?}"
                )));
            }
        }
        let n = &self.pipeline.normalize;
        if !n.mean.iter().all(|m| m.is_finite()) || !n.std.iter().all(|s| s.is_finite() && *s > 0.0)
        {
            return Err(invalid(format!(
                "normalisation needs finite means and positive finite deviations, got mean {:?}, \
                 std {:?}",
                n.mean, n.std
            )));
        }
        Ok(())
    }

    /// The image as the network takes it, u8 CHW of [`Preprocess::output_shape`] (normalise
    /// with [`Preprocess::write`]).
    pub fn apply(&self, sample: Sample) -> Sample {
        let sample = match self.stored {
            Some(s) if (sample.shape.height, sample.shape.width) != (s.height, s.width) => {
                resize_square(sample, s.height)
            }
            _ => sample,
        };
        let channels = self.stored.map_or(self.pipeline.channels, |s| s.channels);
        let sample = match (sample.shape.channels, channels) {
            (1, c) if c > 1 => repeat_channels(sample, c),
            (c, 1) if c > 1 => to_grey(&sample),
            _ => sample,
        };
        // The evaluation pipeline draws nothing: any generator gives the same image.
        let sample = self.pipeline.apply(sample, &mut item_rng(0, 0, 0));
        let out = self.output_shape();
        if (sample.shape.height, sample.shape.width) == (out.height, out.width) {
            sample
        } else {
            resize_square(sample, out.height)
        }
    }

    /// Writes the normalised floats of `prepared` (the output of [`Preprocess::apply`]) into
    /// `out` (`output_shape().len()` long).
    pub fn write(&self, prepared: &Sample, out: &mut [f32]) {
        self.pipeline.normalize.write(prepared, out);
    }

    /// [`Preprocess::apply`] then [`Preprocess::write`], into a new buffer.
    pub fn floats(&self, sample: Sample) -> Vec<f32> {
        let prepared = self.apply(sample);
        let mut out = vec![0.0; prepared.pixels.len()];
        self.write(&prepared, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DataConfig, DatasetName, Normalize};

    fn grey(side: usize, value: u8) -> Sample {
        Sample {
            pixels: vec![value; side * side],
            shape: ImageShape::new(1, side, side),
            label: 0,
        }
    }

    #[test]
    fn a_stored_image_goes_through_the_test_pipeline_unchanged() {
        let config = DataConfig::new(DatasetName::FashionMnist, 32);
        let pre = config.preprocess();
        let mut sample = grey(28, 0);
        sample.pixels[5 * 28 + 7] = 200;
        let ours = pre.apply(sample.clone());
        let theirs = config.test_pipeline().apply(sample, &mut item_rng(9, 9, 9));
        assert_eq!(ours, theirs);
        assert_eq!(ours.shape, ImageShape::new(3, 32, 32));
        // 28 -> 32 centres with 2 pixels of zeros; the pixel moves by (2, 2) in every channel.
        assert_eq!((ours.at(2, 7, 9), ours.at(0, 0, 0)), (200, 0));
    }

    #[test]
    fn a_large_colour_photo_becomes_a_grey_28_on_the_canvas() {
        let pre = DataConfig::new(DatasetName::FashionMnist, 32).preprocess();
        // 56x84 RGB, pure green: luma 587/1000 * 255 = 149.7 -> 150.
        let (h, w) = (56, 84);
        let mut pixels = vec![0u8; 3 * h * w];
        pixels[h * w..2 * h * w].fill(255);
        let photo = Sample {
            pixels,
            shape: ImageShape::new(3, h, w),
            label: 0,
        };
        let out = pre.apply(photo);
        assert_eq!(out.shape, ImageShape::new(3, 32, 32));
        assert_eq!((out.at(0, 16, 16), out.at(2, 16, 16)), (150, 150));
        assert_eq!(out.at(1, 1, 1), 0, "the canvas border stays zero");
    }

    #[test]
    fn folder_images_of_any_size_come_out_at_the_network_side() {
        let pre = DataConfig::new(DatasetName::Imagenet, 64).preprocess();
        assert!(pre.stored.is_none());
        let out = pre.apply(grey(100, 7));
        assert_eq!(out.shape, ImageShape::new(3, 64, 64));
        let floats = pre.floats(grey(30, 255));
        let expected = (1.0 - Normalize::IMAGENET.mean[1]) / Normalize::IMAGENET.std[1];
        assert!((floats[64 * 64 + 100] - expected).abs() < 1e-5);
    }

    #[test]
    fn descriptions_out_of_range_are_refused() {
        let good = DataConfig::new(DatasetName::Cifar10, 32).preprocess();
        good.validate().expect("the data set's own");
        let mut bad = good.clone();
        bad.pipeline.normalize.std[1] = 0.0;
        assert!(bad.validate().is_err());
        let mut bad = good.clone();
        bad.pipeline.augment = DatasetName::Cifar10.train_augment(32);
        assert!(bad.validate().is_err(), "a random crop at inference");
        let mut bad = good.clone();
        bad.stored = Some(ImageShape::new(2, 32, 32));
        assert!(bad.validate().is_err());
        let mut bad = good;
        bad.image_size = usize::MAX;
        assert!(bad.validate().is_err());
    }
}
