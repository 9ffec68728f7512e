//! One training step per rule: ResNet-20 at batch 16 on CIFAR-size images, through the
//! trainer (forward, local losses, backward, per-module SGD steps); and AugLocal pipelined in
//! two stages of one thread each, 8 steps streamed through the pipeline per iteration.
//!
//! Run with `cargo bench --bench train_step`; criterion reports images per second.

use std::hint::black_box;

use auglocal::burn::backend::{Autodiff, Flex};
use auglocal::burn::data::dataloader::batcher::Batcher;
use auglocal::data::{ImageBatch, ImageBatcher, ImageSource, Normalize, Synthetic};
use auglocal::model::{Arch, NetworkConfig};
use auglocal::plan::{LocalConfig, Plan, Rule, StagePlan};
use auglocal::train::pipeline::Pipeline;
use auglocal::train::{Strategy, Trainer, sgd_config};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

type B = Autodiff<Flex>;

const BATCH: usize = 16;

fn batch() -> ImageBatch<B> {
    let images = Synthetic::new(BATCH, 10, 32, 0);
    let samples = (0..BATCH)
        .map(|i| images.load(i).expect("in range"))
        .collect();
    ImageBatcher {
        normalize: Normalize::HALF,
    }
    .batch(samples, &Default::default())
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("train_step");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(10);
    let network = NetworkConfig::new(Arch::ResNet20).spec().expect("network");
    for (rule, k) in [
        (Rule::Bp, 1),
        (Rule::Greedy, 10),
        (Rule::Dgl, 10),
        (Rule::AugLocal, 10),
    ] {
        let plan = Plan::new(&network, &LocalConfig::new(rule, k)).expect("plan");
        let mut trainer = Trainer::<B>::init(&plan, &sgd_config(0.9, 1e-4), 0, &Default::default());
        let data = batch();
        group.bench_function(format!("resnet20/{rule}"), |b| {
            b.iter(|| {
                black_box(
                    trainer
                        .step(data.images.clone(), data.targets.clone(), 0.05)
                        .expect("steps"),
                )
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("train_pipelined");
    const STEPS: usize = 8;
    group.throughput(Throughput::Elements((STEPS * BATCH) as u64));
    group.sample_size(10);
    let plan = Plan::new(&network, &LocalConfig::new(Rule::AugLocal, 10)).expect("plan");
    let mut trainer = Trainer::<B>::init(&plan, &sgd_config(0.9, 1e-4), 0, &Default::default());
    let data = batch();
    for stages in [1, 2] {
        let cut = StagePlan::balance(&plan, stages).expect("stages");
        let strategy = Strategy::Pipelined(Pipeline::new(cut, &Default::default()).with_threads(1));
        group.bench_function(format!("resnet20/auglocal/{stages}-stages"), |b| {
            b.iter(|| {
                let batches = (0..STEPS).map(|_| Ok((data.images.clone(), data.targets.clone())));
                black_box(
                    trainer
                        .train_batches(batches, 0.05, &strategy, &mut |_, _| Ok(()))
                        .expect("steps"),
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
