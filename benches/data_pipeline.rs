//! Throughput of the data pipeline: load + augment + normalise + batch into Burn tensors, for
//! CIFAR-size images, on the loader's worker threads and on the calling thread alone.
//!
//! Run with `cargo bench --bench data_pipeline`; criterion reports images per second
//! ("elem/s"). The images are random pixels in memory, laid out as CIFAR-10 is after reading.

use std::hint::black_box;
use std::sync::Arc;

use auglocal::burn::backend::Flex;
use auglocal::data::{
    DatasetName, ImagePipeline, ImageSet, ImageShape, ImageSource, Loader, LoaderConfig,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const IMAGES: usize = 5_000;
const BATCH: usize = 128;

fn random_set(shape: ImageShape) -> ImageSet {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let pixels = (0..IMAGES * shape.len())
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let labels = (0..IMAGES).map(|i| (i % 10) as u16).collect();
    ImageSet::new(pixels, labels, shape, 10)
}

fn pipeline(name: DatasetName, native: ImageShape) -> ImagePipeline {
    ImagePipeline {
        channels: 3,
        canvas: (native.height < 32).then_some(32),
        augment: name.train_augment(32),
        normalize: name.normalize(),
    }
}

fn epoch(loader: &Loader<Flex>) {
    for batch in loader.epoch(0) {
        black_box(batch.expect("batch"));
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("data_pipeline");
    group.throughput(Throughput::Elements(IMAGES as u64));
    group.sample_size(10);
    for (name, shape) in [
        (DatasetName::Cifar10, ImageShape::new(3, 32, 32)),
        (DatasetName::FashionMnist, ImageShape::new(1, 28, 28)),
    ] {
        let source: Arc<dyn ImageSource> = Arc::new(random_set(shape));
        for workers in [0, 2] {
            let config = LoaderConfig {
                workers,
                ..LoaderConfig::train(BATCH, 0)
            };
            let loader = Loader::<Flex>::new(
                source.clone(),
                pipeline(name, shape),
                config,
                Default::default(),
            )
            .expect("loader");
            group.bench_function(format!("{name}/workers={workers}"), |b| {
                b.iter(|| epoch(&loader))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
