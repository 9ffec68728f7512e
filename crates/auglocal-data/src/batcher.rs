//! Burn's batcher: samples to normalised image tensors and integer targets on a device.

use burn::data::dataloader::batcher::Batcher;
use burn::tensor::{Int, Tensor, TensorData, backend::Backend};

use crate::{Normalize, Sample};

/// A batch on a device.
#[derive(Clone, Debug)]
pub struct ImageBatch<B: Backend> {
    /// Normalised images, `[batch, channels, height, width]`.
    pub images: Tensor<B, 4>,
    /// Class indices, `[batch]`.
    pub targets: Tensor<B, 1, Int>,
}

/// Stacks same-shaped samples into an [`ImageBatch`], normalising the pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ImageBatcher {
    /// The normalisation applied to every pixel.
    pub normalize: Normalize,
}

impl<B: Backend> Batcher<B, Sample, ImageBatch<B>> for ImageBatcher {
    /// # Panics
    /// If `items` is empty or its samples differ in shape (the loader guarantees neither).
    fn batch(&self, items: Vec<Sample>, device: &B::Device) -> ImageBatch<B> {
        let shape = items
            .first()
            .expect("a batch holds at least one sample")
            .shape;
        let n = shape.len();
        let mut pixels = vec![0f32; items.len() * n];
        for (item, out) in items.iter().zip(pixels.chunks_exact_mut(n)) {
            assert_eq!(item.shape, shape, "every sample of a batch has one shape");
            self.normalize.write(item, out);
        }
        let labels: Vec<i64> = items.iter().map(|s| s.label as i64).collect();
        let dims = [items.len(), shape.channels, shape.height, shape.width];
        ImageBatch {
            images: Tensor::from_data(TensorData::new(pixels, dims), device),
            targets: Tensor::from_data(TensorData::new(labels, [items.len()]), device),
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::Flex;

    use super::*;
    use crate::ImageShape;

    #[test]
    fn batches_on_the_device_with_the_right_shapes_and_values() {
        let shape = ImageShape::new(3, 2, 2);
        let items = vec![
            Sample {
                pixels: vec![0; 12],
                shape,
                label: 4,
            },
            Sample {
                pixels: vec![255; 12],
                shape,
                label: 9,
            },
        ];
        let batcher = ImageBatcher {
            normalize: Normalize::HALF,
        };
        let batch: ImageBatch<Flex> = batcher.batch(items, &Default::default());
        assert_eq!(batch.images.dims(), [2, 3, 2, 2]);
        let values: Vec<f32> = batch.images.into_data().to_vec().expect("f32");
        assert_eq!((values[0], values[12]), (-1.0, 1.0));
        let targets: Vec<i64> = batch
            .targets
            .into_data()
            .convert::<i64>()
            .to_vec()
            .expect("ints");
        assert_eq!(targets, vec![4, 9]);
    }
}
