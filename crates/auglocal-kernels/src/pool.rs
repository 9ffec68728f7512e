//! The backend extension for global average pooling, and [`global_avg_pool`], which runs it.
//!
//! Composed of Burn 0.21's ops, the pooling is two `mean_dim`s, and the backward of each
//! multiplies a tensor of ones by the gradient broadcast over the reduced dimension: on the CPU
//! two single-threaded strided passes over the whole input, every aux net's head and the
//! primary head paying them. The flex kernel writes the input's gradient in one parallel pass.

use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{Shape, Tensor, TensorMetadata, TensorPrimitive};

/// A backend that may compute global average pooling, forward or backward, with a kernel of
/// its own.
///
/// Both default to Burn's ops; flex overrides the backward ([`crate::flex`]), and
/// [`Autodiff`](burn::backend::Autodiff) of flex runs the inner forward and registers a
/// backward step that calls that kernel (of any other backend, Burn's ops and backward).
///
/// # Shapes
/// - `x`: `[batch, channels, height, width]`
/// - the output and `output_grad`: `[batch, channels]`
pub trait FastPool: Backend {
    /// Whether [`FastPool::fast_global_avg_pool_backward`] is a kernel of this backend's own
    /// (flex): only then does [`Autodiff`](burn::backend::Autodiff) register a backward step
    /// of its own; otherwise it keeps Burn's backward of the two `mean_dim`s, exactly as before
    /// this extension (WGPU, CUDA).
    const BACKWARD_KERNEL: bool = false;

    /// The mean of every `[height, width]` map (default: [`global_avg_pool_composed`]).
    fn fast_global_avg_pool(x: FloatTensor<Self>) -> FloatTensor<Self> {
        global_avg_pool_composed::<Self>(x)
    }

    /// The gradient for `x`, shaped `[batch, channels, height, width]` (default:
    /// [`global_avg_pool_backward_composed`]).
    fn fast_global_avg_pool_backward(
        output_grad: FloatTensor<Self>,
        shape: [usize; 4],
    ) -> FloatTensor<Self> {
        global_avg_pool_backward_composed::<Self>(output_grad, shape)
    }
}

/// Global average pooling over the spatial dimensions, through [`FastPool`].
///
/// # Shapes
/// - input: `[batch, channels, height, width]`
/// - output: `[batch, channels]`
pub fn global_avg_pool<B: FastPool>(x: Tensor<B, 4>) -> Tensor<B, 2> {
    let pooled = B::fast_global_avg_pool(x.into_primitive().tensor());
    Tensor::from_primitive(TensorPrimitive::Float(pooled))
}

/// Global average pooling composed of Burn's ops: `mean_dim` over the height, then over the
/// width (Burn's `mean_dims(&[2, 3])`), reshaped to `[batch, channels]`.
pub fn global_avg_pool_composed<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
    let [n, c, _, _] = x.shape().dims();
    let mean = B::float_mean_dim(B::float_mean_dim(x, 2), 3);
    B::float_reshape(mean, Shape::new([n, c]))
}

/// The gradient for `x` of global average pooling composed of Burn's ops: every value of a
/// map is `output_grad * (1 / width) * (1 / height)`, each factor rounded to f32 and the
/// products in that order, as Burn's backward of the two `mean_dim`s computes it, and
/// broadcast to the input's shape by a multiplication with ones, as Burn broadcasts it there
/// (a materialised tensor, not a view with zero strides).
pub fn global_avg_pool_backward_composed<B: Backend>(
    output_grad: FloatTensor<B>,
    [n, c, h, w]: [usize; 4],
) -> FloatTensor<B> {
    let grad = B::float_reshape(output_grad, Shape::new([n, c, 1, 1]));
    let grad = B::float_mul_scalar(grad, (1.0 / w as f64).into());
    let grad = B::float_mul_scalar(grad, (1.0 / h as f64).into());
    let (device, dtype) = (B::float_device(&grad), grad.dtype());
    let ones = B::float_ones(Shape::new([n, c, h, w]), &device, dtype.into());
    B::float_mul(ones, grad)
}
