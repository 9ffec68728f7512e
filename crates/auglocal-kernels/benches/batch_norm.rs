//! The flex BatchNorm2d kernels (fused with the residual addition and the ReLU, as at the end
//! of a residual block) against the same computation composed of Burn 0.21's tensor ops, on
//! the BatchNorms of a CIFAR ResNet at batch 128: `cargo bench -p auglocal-kernels --bench
//! batch_norm`. Runs in the current rayon pool (`RAYON_NUM_THREADS=1` for one core).

use auglocal_kernels::{
    BatchNormOptions, BatchNormSaved, Kernels, batch_norm2d, batch_norm2d_backward_composed, flex,
    set_kernels,
};
use burn::backend::Flex;
use burn::tensor::{Tensor, TensorPrimitive};
use criterion::{Criterion, criterion_group, criterion_main};

mod common;
use common::tensor;

const SHAPES: &[(&str, [usize; 4])] = &[
    ("16@32", [128, 16, 32, 32]),
    ("32@16", [128, 32, 16, 16]),
    ("64@8", [128, 64, 8, 8]),
];

const OPTIONS: BatchNormOptions = BatchNormOptions {
    epsilon: 1e-5,
    relu: true,
};

fn float<const D: usize>(t: burn_flex::FlexTensor) -> Tensor<Flex, D> {
    Tensor::from_primitive(TensorPrimitive::Float(t))
}

fn kernels(c: &mut Criterion) {
    for &(name, shape) in SHAPES {
        let ch = [shape[1]];
        let (x, residual, dy) = (tensor(&shape), tensor(&shape), tensor(&shape));
        let (gamma, beta) = (tensor(&ch), tensor(&ch));
        set_kernels(Kernels::Fast);
        let forward = flex::batch_norm2d(
            x.clone(),
            gamma.clone(),
            beta.clone(),
            Some(residual.clone()),
            OPTIONS,
        )
        .expect("f32 has a kernel");
        let saved = BatchNormSaved {
            x: x.clone(),
            gamma: gamma.clone(),
            mean: forward.mean,
            var: forward.var,
            output: Some(forward.output),
            epsilon: OPTIONS.epsilon,
        };
        let mut group = c.benchmark_group(name);
        group.sample_size(10);
        group.bench_function("forward/fast", |b| {
            set_kernels(Kernels::Fast);
            b.iter(|| {
                let residual = Some(residual.clone());
                flex::batch_norm2d(x.clone(), gamma.clone(), beta.clone(), residual, OPTIONS)
            })
        });
        group.bench_function("forward/burn", |b| {
            set_kernels(Kernels::Burn);
            b.iter(|| {
                let residual = Some(float(residual.clone()));
                let (g, b) = (float(gamma.clone()), float(beta.clone()));
                batch_norm2d(float(x.clone()), g, b, residual, OPTIONS)
            })
        });
        group.bench_function("backward/fast", |b| {
            set_kernels(Kernels::Fast);
            b.iter(|| flex::batch_norm2d_backward(saved.clone(), dy.clone(), true))
        });
        group.bench_function("backward/burn", |b| {
            b.iter(|| batch_norm2d_backward_composed::<Flex>(saved.clone(), dy.clone(), true))
        });
        group.finish();
    }
}

criterion_group!(benches, kernels);
criterion_main!(benches);
