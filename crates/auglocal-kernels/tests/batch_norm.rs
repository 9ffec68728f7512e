//! The fused BatchNorm2d (+ residual + ReLU) kernels against Burn's own `BatchNorm` followed by
//! the addition and the ReLU, and the flex backward kernel against the composed default.
//!
//! Tolerance: both paths compute the same statistics and gradients with sums in different
//! orders (f64 across rows here, f32 trees there), so they agree to f32 rounding. A relative
//! error (Frobenius norm of the difference over the reference's norm) below 1e-5 passes; a wrong
//! channel, a missed mask or a dropped term gives errors of order 1e-1 or more.

mod common;

use auglocal_kernels::{BatchNormOptions, BatchNormSaved, batch_norm2d, flex};
use burn::backend::{Autodiff, Flex};
use burn::module::Param;
use burn::nn::BatchNormConfig;
use burn::tensor::activation::relu;
use burn::tensor::{Tensor, TensorData};
use common::{relative_error, to_vec};

const TOLERANCE: f64 = 1e-5;
const EPSILON: f64 = 1e-5;

type A = Autodiff<Flex>;

/// The shapes of the CIFAR ResNets' BatchNorms, then odd ones: rows shorter than the 16 lanes,
/// rows not a multiple of them, one image, one value per row, many channels.
const SHAPES: &[[usize; 4]] = &[
    [8, 16, 32, 32],
    [8, 32, 16, 16],
    [8, 64, 8, 8],
    [3, 5, 7, 9],
    [1, 4, 3, 3],
    [17, 3, 1, 1],
    [2, 130, 4, 5],
];

fn tensor<const D: usize>(
    shape: [usize; D],
    seed: u64,
    device: &burn_flex::FlexDevice,
) -> Tensor<A, D> {
    let len = shape.iter().product();
    Tensor::from_data(TensorData::new(common::values(len, seed), shape), device)
}

/// Output and gradients `[x, gamma, beta, residual]` of `sum(bn(x) [+ residual] -> [relu] * r)`
/// through the kernel (`fast`) or Burn's `BatchNorm` and tensor ops.
fn run(
    shape: [usize; 4],
    residual: bool,
    options: BatchNormOptions,
    fast: bool,
    track_x: bool,
) -> (Vec<f32>, [Option<Vec<f32>>; 4]) {
    let device = Default::default();
    let c = shape[1];
    let x = tensor(shape, 1, &device);
    let x = if track_x { x.require_grad() } else { x };
    // gamma in [0, 2): some channels near zero, none all-zero.
    let gamma = (tensor([c], 2, &device) + 1.0).require_grad();
    let beta = tensor([c], 3, &device).require_grad();
    let res = residual.then(|| tensor(shape, 4, &device).require_grad());
    let r = tensor(shape, 5, &device);
    let out = if fast {
        batch_norm2d(x.clone(), gamma.clone(), beta.clone(), res.clone(), options).output
    } else {
        let mut bn = BatchNormConfig::new(c)
            .with_epsilon(options.epsilon)
            .init::<A>(&device);
        bn.gamma = Param::from_tensor(gamma.clone());
        bn.beta = Param::from_tensor(beta.clone());
        let y = bn.forward(x.clone());
        let y = match &res {
            Some(s) => y + s.clone(),
            None => y,
        };
        if options.relu { relu(y) } else { y }
    };
    let grads = (out.clone() * r).sum().backward();
    let vec = |t: Option<Tensor<Flex, 1>>| t.map(|t| t.into_data().to_vec::<f32>().expect("f32"));
    let flat = |t: &Tensor<A, 4>| vec(t.grad(&grads).map(|g| g.flatten(0, 3)));
    // Burn's BatchNorm holds the same tensors as its params: their grads are read off them.
    let grads_of = |t: &Tensor<A, 1>| vec(t.grad(&grads));
    (
        out.into_data().to_vec::<f32>().expect("f32"),
        [
            flat(&x),
            grads_of(&gamma),
            grads_of(&beta),
            res.as_ref().and_then(flat),
        ],
    )
}

#[test]
fn autodiff_kernel_matches_burns_batch_norm_add_and_relu() {
    for &shape in SHAPES {
        for (residual, relu) in [(false, false), (false, true), (true, true), (true, false)] {
            let options = BatchNormOptions {
                epsilon: EPSILON,
                relu,
            };
            let (y, grads) = run(shape, residual, options, true, true);
            let (want_y, want) = run(shape, residual, options, false, true);
            let case = format!("{shape:?} residual {residual} relu {relu}");
            let err = relative_error(&y, &want_y);
            assert!(err < TOLERANCE, "output of {case}: relative error {err:e}");
            let names = ["x", "gamma", "beta", "residual"];
            common::assert_grads_agree(&names, &grads, &want, TOLERANCE, &case);
            assert_eq!(grads[3].is_some(), residual, "residual grad iff a residual");
        }
    }
}

#[test]
fn a_detached_input_gets_no_gradient_and_the_rest_are_unchanged() {
    let options = BatchNormOptions {
        epsilon: EPSILON,
        relu: true,
    };
    let (_, tracked) = run(SHAPES[3], true, options, true, true);
    let (_, detached) = run(SHAPES[3], true, options, true, false);
    assert!(detached[0].is_none(), "x is detached: no gradient");
    assert_eq!(
        tracked[1..],
        detached[1..],
        "gamma, beta and residual grads"
    );
}

/// The flex kernels' inputs for `shape`: x, gamma, beta, residual and an output gradient.
fn flex_inputs(shape: [usize; 4]) -> [burn_flex::FlexTensor; 5] {
    let c = shape[1];
    let per_channel = |seed| common::flex([1, 1, 1, c], seed).reshape([c].into());
    [
        common::flex(shape, 1),
        per_channel(2),
        per_channel(3),
        common::flex(shape, 4),
        common::flex(shape, 5),
    ]
}

/// Forward and backward through the flex kernels: output, mean, var, then the gradients of
/// x, gamma, beta and the residual.
fn flex_pass(shape: [usize; 4], composed_backward: bool) -> Vec<Vec<f32>> {
    let [x, gamma, beta, residual, dy] = flex_inputs(shape);
    let options = BatchNormOptions {
        epsilon: EPSILON,
        relu: true,
    };
    let f = flex::batch_norm2d(x.clone(), gamma.clone(), beta, Some(residual), options)
        .expect("an f32 tensor has a kernel");
    let saved = BatchNormSaved {
        x,
        gamma,
        mean: f.mean.clone(),
        var: f.var.clone(),
        output: Some(f.output.clone()),
        epsilon: EPSILON,
    };
    let g = if composed_backward {
        auglocal_kernels::batch_norm2d_backward_composed::<Flex>(saved, dy, true)
    } else {
        flex::batch_norm2d_backward(saved, dy, true)
    };
    let residual = g.residual.expect("asked for");
    [f.output, f.mean, f.var, g.x, g.gamma, g.beta, residual]
        .into_iter()
        .map(to_vec)
        .collect()
}

#[test]
fn flex_backward_matches_the_composed_default() {
    for &shape in SHAPES {
        let fast = flex_pass(shape, false);
        let composed = flex_pass(shape, true);
        // Same forward: the first three agree exactly.
        assert_eq!(fast[..3], composed[..3], "forward of {shape:?}");
        for (name, (f, w)) in ["x", "gamma", "beta", "residual"]
            .iter()
            .zip(fast[3..].iter().zip(&composed[3..]))
        {
            let err = relative_error(f, w);
            assert!(err < TOLERANCE, "{name} grad of {shape:?}: {err:e}");
        }
    }
}

#[test]
fn same_inputs_give_bit_identical_results_in_any_pool() {
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool");
        pool.install(|| flex_pass(SHAPES[0], false))
    };
    let one = run(1);
    assert_eq!(one, run(1), "repeat in a 1-thread pool");
    assert_eq!(one, run(2), "2 threads");
    assert_eq!(one, run(3), "3 threads");
}
