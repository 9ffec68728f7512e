//! Global average pooling: the flex backward kernel against the composed default, and the
//! autodiff op against Burn's `mean_dims(&[2, 3])`, bit for bit (both compute the same
//! products in the same order; a wrong map, a missed factor or a factor rounded differently
//! shows in the bits).

mod common;

use auglocal_kernels::{FastPool, global_avg_pool, global_avg_pool_backward_composed};
use burn::backend::{Autodiff, Flex};
use burn::tensor::{Tensor, TensorData, TensorMetadata};
use burn_flex::FlexTensor;
use common::{to_vec, values};

type A = Autodiff<Flex>;

/// The pooled maps of the CIFAR ResNets' heads and aux nets, ImageNet's 7x7, then odd ones:
/// one value per map, sides that are not powers of two, one image.
const SHAPES: &[[usize; 4]] = &[
    [8, 64, 8, 8],
    [8, 16, 32, 32],
    [4, 32, 7, 7],
    [17, 3, 1, 1],
    [3, 5, 3, 5],
    [1, 130, 6, 10],
];

#[test]
fn flex_backward_matches_the_composed_default_bit_for_bit() {
    for (i, &[n, c, h, w]) in SHAPES.iter().enumerate() {
        let grad = FlexTensor::from_data(TensorData::new(values(n * c, i as u64), [n, c]));
        let got = <Flex as FastPool>::fast_global_avg_pool_backward(grad.clone(), [n, c, h, w]);
        let want = global_avg_pool_backward_composed::<Flex>(grad, [n, c, h, w]);
        assert_eq!(got.shape().dims::<4>(), [n, c, h, w]);
        assert_eq!(to_vec(got), to_vec(want), "shape {:?}", [n, c, h, w]);
    }
}

/// The pooled output and the input's gradient of `sum(pooled * weights)`, through
/// [`global_avg_pool`] (`fast`) or Burn's `mean_dims`.
fn run(shape: [usize; 4], seed: u64, fast: bool) -> (Vec<f32>, Vec<f32>) {
    let device = Default::default();
    let data = |shape: Vec<usize>, seed| {
        let len = shape.iter().product();
        TensorData::new(values(len, seed), shape)
    };
    let x = Tensor::<A, 4>::from_data(data(shape.to_vec(), seed), &device).require_grad();
    let [n, c, _, _] = shape;
    let weights = Tensor::<A, 2>::from_data(data(vec![n, c], seed + 1), &device);
    let pooled = if fast {
        global_avg_pool(x.clone())
    } else {
        x.clone().mean_dims(&[2, 3]).reshape([n, c])
    };
    let grads = (pooled.clone() * weights).sum().backward();
    let dx = x.grad(&grads).expect("x is tracked");
    let vec = |d: TensorData| d.to_vec::<f32>().expect("f32");
    (vec(pooled.into_data()), vec(dx.into_data()))
}

#[test]
fn autodiff_op_matches_burns_mean_dims_bit_for_bit() {
    for (i, &shape) in SHAPES.iter().enumerate() {
        let (pooled, dx) = run(shape, 10 * i as u64, true);
        let (want_pooled, want_dx) = run(shape, 10 * i as u64, false);
        assert_eq!(pooled, want_pooled, "forward of {shape:?}");
        assert_eq!(dx, want_dx, "x grad of {shape:?}");
    }
}

#[test]
fn an_untracked_input_gets_no_gradient() {
    let device = Default::default();
    let x = Tensor::<A, 4>::from_data(
        TensorData::new(values(2 * 3 * 4 * 4, 7), [2, 3, 4, 4]),
        &device,
    );
    let w = Tensor::<A, 1>::from_data(TensorData::new(values(3, 8), [3]), &device).require_grad();
    let pooled = global_avg_pool(x.clone()) * w.clone().unsqueeze::<2>();
    let grads = pooled.sum().backward();
    assert!(x.grad(&grads).is_none(), "x is not tracked");
    assert!(w.grad(&grads).is_some(), "the weight still is");
}
