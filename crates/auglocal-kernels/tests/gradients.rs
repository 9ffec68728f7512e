//! The flex kernels against Burn's own convolution and default backward, on random inputs, for every
//! convolution shape of the project and the odd cases.
//!
//! Tolerance: the two paths sum the same products in different orders, so they agree to f32
//! rounding. A relative error (Frobenius norm of the difference over the reference's norm)
//! below 1e-5 passes: f32 has 24 bits (6e-8) and the longest sums here are ~10^5 terms; a wrong
//! index or a missed tile gives errors of order 1.

mod common;

use auglocal_kernels::flex;
use burn::backend::{Autodiff, Flex};
use burn::module::Param;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2dConfig;
use burn::tensor::ops::{ConvOptions, ModuleOps};
use burn::tensor::{Tensor, TensorData};
use common::{CASES, Case, flex as random, relative_error, to_vec};

const TOLERANCE: f64 = 1e-5;

fn options(c: &Case) -> ConvOptions<2> {
    ConvOptions::new([c.s, c.s], [c.p, c.p], [1, 1], 1)
}

#[test]
fn backend_kernels_match_burns_defaults() {
    for (i, c) in CASES.iter().enumerate() {
        let seed = 3 * i as u64;
        let (x, w, dy) = (
            random(c.x, seed),
            random(c.weight(), seed + 1),
            random(c.out(), seed + 2),
        );
        let o = options(c);

        let dx = flex::conv2d_x_backward(x.clone(), w.clone(), dy.clone(), o.clone());
        let want = Flex::conv2d_x_backward(x.clone(), w.clone(), dy.clone(), o.clone());
        let err = relative_error(&to_vec(dx), &to_vec(want));
        assert!(err < TOLERANCE, "x grad of {c:?}: relative error {err:e}");

        let dw = flex::conv2d_weight_backward(x.clone(), w.clone(), dy.clone(), o.clone());
        let want = Flex::conv2d_weight_backward(x.clone(), w, dy.clone(), o);
        let err = relative_error(&to_vec(dw), &to_vec(want));
        assert!(
            err < TOLERANCE,
            "weight grad of {c:?}: relative error {err:e}"
        );

        let b = common::flex([1, 1, 1, c.o], seed).reshape([c.o].into());
        let db = flex::conv2d_bias_backward(x.clone(), b.clone(), dy.clone());
        let want = Flex::conv2d_bias_backward(x, b, dy);
        let err = relative_error(&to_vec(db), &to_vec(want));
        assert!(
            err < TOLERANCE,
            "bias grad of {c:?}: relative error {err:e}"
        );
    }
}

#[test]
fn forward_matches_flex() {
    for (i, c) in CASES.iter().enumerate() {
        let seed = 5 * i as u64;
        let (x, w) = (random(c.x, seed), random(c.weight(), seed + 1));
        let b = random([1, 1, 1, c.o], seed + 2).reshape([c.o].into());
        for bias in [None, Some(b)] {
            let y = flex::conv2d(x.clone(), w.clone(), bias.clone(), options(c));
            let want = Flex::conv2d(x.clone(), w.clone(), bias, options(c));
            let err = relative_error(&to_vec(y), &to_vec(want));
            assert!(err < TOLERANCE, "forward of {c:?}: relative error {err:e}");
        }
    }
}

#[test]
fn kernels_read_non_contiguous_inputs() {
    let c = Case::new([4, 6, 10, 10], 5, 3, 2, 1);
    // The same values, stored transposed and viewed back: a strided layout.
    let x = random([4, 6, 10, 10], 7)
        .transpose(2, 3)
        .to_contiguous()
        .transpose(2, 3);
    assert!(!x.is_contiguous());
    let (w, dy) = (random(c.weight(), 8), random(c.out(), 9));
    let dense = x.to_contiguous();
    let a = flex::conv2d_weight_backward(x, w.clone(), dy.clone(), options(&c));
    let b = flex::conv2d_weight_backward(dense, w, dy, options(&c));
    assert_eq!(to_vec(a), to_vec(b));
}

type A = Autodiff<Flex>;

/// Gradients of `sum(conv(x) * r)` for x, weight and bias, through `auglocal_kernels::Conv2d`
/// (fast) or Burn's `Conv2d` (default), with the same weights; `track_x: false` detaches x.
fn autodiff_grads(c: &Case, bias: bool, fast: bool, track_x: bool) -> [Option<Vec<f32>>; 3] {
    let device = Default::default();
    let config = Conv2dConfig::new([c.x[1], c.o], [c.k, c.k])
        .with_stride([c.s, c.s])
        .with_padding(PaddingConfig2d::Explicit(c.p, c.p, c.p, c.p))
        .with_bias(bias);
    let mut burn_conv = config.init::<A>(&device);
    let w = common::values(c.weight().iter().product(), 11);
    burn_conv.weight =
        Param::from_tensor(Tensor::from_data(TensorData::new(w, c.weight()), &device));
    if bias {
        let b = Tensor::from_data(TensorData::new(common::values(c.o, 14), [c.o]), &device);
        burn_conv.bias = Some(Param::from_tensor(b));
    }
    let x = Tensor::<A, 4>::from_data(
        TensorData::new(common::values(c.x.iter().product(), 12), c.x),
        &device,
    );
    let x = if track_x { x.require_grad() } else { x };
    let r = Tensor::<A, 4>::from_data(
        TensorData::new(common::values(c.out().iter().product(), 13), c.out()),
        &device,
    );
    let out = if fast {
        auglocal_kernels::Conv2d::from(burn_conv.clone()).forward(x.clone())
    } else {
        burn_conv.forward(x.clone())
    };
    let grads = (out * r).sum().backward();
    let vec = |t: Option<Tensor<Flex, 4>>| t.map(|t| t.into_data().to_vec::<f32>().expect("f32"));
    [
        vec(x.grad(&grads)),
        vec(burn_conv.weight.grad(&grads)),
        burn_conv
            .bias
            .as_ref()
            .and_then(|b| b.grad(&grads))
            .map(|t| t.into_data().to_vec::<f32>().expect("f32")),
    ]
}

#[test]
fn autodiff_step_matches_burns_conv2d_and_skips_a_detached_input() {
    for c in [CASES[2], CASES[3], CASES[14], CASES[17]] {
        for bias in [false, true] {
            for track_x in [true, false] {
                let fast = autodiff_grads(&c, bias, true, track_x);
                let want = autodiff_grads(&c, bias, false, track_x);
                let case = format!("{c:?} bias {bias}");
                common::assert_grads_agree(
                    &["x", "weight", "bias"],
                    &fast,
                    &want,
                    TOLERANCE,
                    &case,
                );
                assert_eq!(fast[0].is_some(), track_x, "x grad iff x is tracked");
                assert_eq!(fast[2].is_some(), bias, "bias grad iff there is a bias");
            }
        }
    }
}

#[test]
fn same_inputs_give_bit_identical_gradients_in_any_pool() {
    let c = CASES[4];
    let (x, w, dy) = (random(c.x, 1), random(c.weight(), 2), random(c.out(), 3));
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool");
        pool.install(|| {
            let o = options(&c);
            let dw = flex::conv2d_weight_backward(x.clone(), w.clone(), dy.clone(), o.clone());
            let dx = flex::conv2d_x_backward(x.clone(), w.clone(), dy.clone(), o);
            (to_vec(dw), to_vec(dx))
        })
    };
    let one = run(1);
    assert_eq!(one, run(1), "repeat in a 1-thread pool");
    assert_eq!(one, run(2), "2 threads");
    assert_eq!(one, run(3), "3 threads");
}

/// Saved by one module and loaded by the other, through the recorder auglocal's checkpoints use.
#[test]
fn the_module_keeps_burns_record() {
    use burn::module::Module;
    use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
    let recorder = BinBytesRecorder::<FullPrecisionSettings>::new();
    let device = Default::default();
    let config = Conv2dConfig::new([3, 4], [3, 3]).with_bias(true);
    let mut ours = auglocal_kernels::Conv2d::<Flex>::new(&config, &device);
    // Parameters are initialised lazily, per clone: fix them first.
    let w = Tensor::from_data(
        TensorData::new(common::values(4 * 3 * 9, 4), [4, 3, 3, 3]),
        &device,
    );
    ours.weight = Param::from_tensor(w);
    ours.bias = Some(Param::from_tensor(Tensor::from_data(
        [0.5, -1.0, 2.0, 0.25],
        &device,
    )));
    let bytes = recorder
        .record(ours.clone().into_record(), ())
        .expect("save");
    let record = recorder.load(bytes, &device).expect("load as Burn's");
    let theirs = config.init::<Flex>(&device).load_record(record);
    let bytes = recorder
        .record(theirs.clone().into_record(), ())
        .expect("save");
    let record = recorder.load(bytes, &device).expect("load as ours");
    let back = auglocal_kernels::Conv2d::<Flex>::new(&config, &device).load_record(record);
    assert_eq!(
        ours.weight.val().into_data(),
        theirs.weight.val().into_data()
    );
    assert_eq!(
        back.weight.val().into_data(),
        theirs.weight.val().into_data()
    );
    let x = Tensor::<Flex, 4>::from_data(
        TensorData::new(common::values(2 * 3 * 6 * 6, 5), [2, 3, 6, 6]),
        &device,
    );
    let a = ours
        .forward(x.clone())
        .into_data()
        .to_vec::<f32>()
        .expect("f32");
    let b = theirs.forward(x).into_data().to_vec::<f32>().expect("f32");
    let err = relative_error(&a, &b);
    assert!(err < TOLERANCE, "same forward up to rounding: {err:e}");
}
