//! Each flex convolution kernel against Burn 0.21's, on the convolutions of a CIFAR ResNet at
//! batch 128: `cargo bench -p auglocal-kernels`. Runs in the current rayon pool
//! (`RAYON_NUM_THREADS=1` for one core).

use auglocal_kernels::flex;
use burn::backend::Flex;
use burn::tensor::ops::{ConvOptions, ModuleOps};
use criterion::{Criterion, criterion_group, criterion_main};

mod common;
use common::tensor;

/// `(name, [n, c, h, w], o, kernel, stride, padding)`.
type Shape = (&'static str, [usize; 4], usize, usize, usize, usize);

const SHAPES: &[Shape] = &[
    ("16x16x3x3@32", [128, 16, 32, 32], 16, 3, 1, 1),
    ("16x32x3x3s2@32", [128, 16, 32, 32], 32, 3, 2, 1),
    ("64x64x3x3@8", [128, 64, 8, 8], 64, 3, 1, 1),
    ("32x64x1x1s2@16", [128, 32, 16, 16], 64, 1, 2, 0),
];

fn kernels(c: &mut Criterion) {
    for &(name, x_shape, o, k, s, p) in SHAPES {
        let side = |i: usize| (i + 2 * p - k) / s + 1;
        let (x, w) = (tensor(&x_shape), tensor(&[o, x_shape[1], k, k]));
        let dy = tensor(&[x_shape[0], o, side(x_shape[2]), side(x_shape[3])]);
        let opt = ConvOptions::new([s, s], [p, p], [1, 1], 1);
        let mut group = c.benchmark_group(name);
        group.sample_size(10);
        let args = || (x.clone(), w.clone(), dy.clone(), opt.clone());
        group.bench_function("forward/fast", |b| {
            b.iter(|| flex::conv2d(x.clone(), w.clone(), None, opt.clone()))
        });
        group.bench_function("forward/burn", |b| {
            b.iter(|| Flex::conv2d(x.clone(), w.clone(), None, opt.clone()))
        });
        group.bench_function("weight/fast", |b| {
            b.iter(|| {
                let (x, w, dy, o) = args();
                flex::conv2d_weight_backward(x, w, dy, o)
            })
        });
        group.bench_function("weight/burn", |b| {
            b.iter(|| {
                let (x, w, dy, o) = args();
                Flex::conv2d_weight_backward(x, w, dy, o)
            })
        });
        group.bench_function("input/fast", |b| {
            b.iter(|| {
                let (x, w, dy, o) = args();
                flex::conv2d_x_backward(x, w, dy, o)
            })
        });
        group.bench_function("input/burn", |b| {
            b.iter(|| {
                let (x, w, dy, o) = args();
                Flex::conv2d_x_backward(x, w, dy, o)
            })
        });
        group.finish();
    }
}

criterion_group!(benches, kernels);
criterion_main!(benches);
