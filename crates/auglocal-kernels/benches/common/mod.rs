//! Shared inputs of the kernel benches.

use burn::tensor::TensorData;
use burn_flex::FlexTensor;

/// A tensor of `shape` holding a fixed spread of values in [-1, 1).
pub fn tensor(shape: &[usize]) -> FlexTensor {
    let len: usize = shape.iter().product();
    let values = (0..len)
        .map(|i| ((i * 7919 % 1000) as f32 - 500.0) / 500.0)
        .collect::<Vec<_>>();
    FlexTensor::from_data(TensorData::new(values, shape.to_vec()))
}
