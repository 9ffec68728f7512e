//! The pixels InfoPro's decoders reconstruct: a batch's images in [0, 1], restored from the
//! normalised images the network takes.

use auglocal_data::Normalize;
use burn::tensor::{Tensor, TensorData, backend::Backend};

/// `images * std + mean` per channel (the reference's `_image_restore`): the pixels in [0, 1]
/// of images normalised as `normalize` does.
///
/// # Shapes
/// - images: `[batch, C, H, W]`
/// - output: the same shape
pub fn restore<B: Backend>(images: Tensor<B, 4>, normalize: &Normalize) -> Tensor<B, 4> {
    let channels = images.dims()[1];
    let device = images.device();
    let per_channel = |values: [f32; 3]| {
        let v: Vec<f32> = (0..channels).map(|c| values[c.min(2)]).collect();
        Tensor::<B, 4>::from_data(TensorData::new(v, [1, channels, 1, 1]), &device)
    };
    images * per_channel(normalize.std) + per_channel(normalize.mean)
}

#[cfg(test)]
mod tests {
    use auglocal_data::{ImageShape, Sample};
    use burn::backend::Flex;

    use super::*;

    #[test]
    fn restores_the_pixels_the_normaliser_wrote() {
        let sample = Sample {
            pixels: vec![0, 255, 128, 64, 32, 200],
            shape: ImageShape::new(3, 2, 1),
            label: 0,
        };
        let mut normalised = [0f32; 6];
        Normalize::CIFAR.write(&sample, &mut normalised);
        let images = Tensor::<Flex, 4>::from_data(
            TensorData::new(normalised.to_vec(), [1, 3, 2, 1]),
            &Default::default(),
        );
        let pixels = restore(images, &Normalize::CIFAR)
            .into_data()
            .to_vec::<f32>()
            .expect("f32");
        for (p, &q) in pixels.iter().zip(&sample.pixels) {
            assert!((p - f32::from(q) / 255.0).abs() < 1e-6, "{pixels:?}");
        }
    }
}
