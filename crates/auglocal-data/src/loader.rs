//! An ordered, seeded, prefetching loader.
//!
//! Burn 0.21's multi-threaded `DataLoader` shuffles once per loader (every epoch sees the same
//! order), delivers batches in whatever order its threads finish, and queues up to 100
//! batches. Training needs a fresh, reproducible order each epoch, the same batches whatever
//! the number of threads, and little memory held by the loader; this loader gives all three:
//! - the order of epoch `e` is a permutation seeded by (seed, e);
//! - each image is augmented with its own generator, seeded by (seed, e, index);
//! - worker `w` makes batches `w, w + W, w + 2W, ...` and hands them over through a channel of
//!   `prefetch` slots; the consumer reads the workers in turn, so batches arrive in order and
//!   at most `W * (prefetch + 1)` are in flight.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use burn::data::dataloader::batcher::Batcher;
use burn::tensor::backend::Backend;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::augment::{epoch_rng, item_rng};
use crate::source::ImageSource;
use crate::{DataError, ImageBatch, ImageBatcher, ImagePipeline, ImageShape};

/// How batches are made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoaderConfig {
    /// Images per batch.
    pub batch_size: usize,
    /// Shuffle each epoch (training) or keep the stored order (evaluation).
    pub shuffle: bool,
    /// Seed of the shuffles and augmentations.
    pub seed: u64,
    /// Worker threads; 0 makes every batch on the calling thread.
    pub workers: usize,
    /// Batches each worker may have ready ahead of the consumer.
    pub prefetch: usize,
    /// Drop a last, smaller batch.
    pub drop_last: bool,
}

impl LoaderConfig {
    /// Training: shuffled, 2 workers, 2 batches of prefetch each.
    pub fn train(batch_size: usize, seed: u64) -> Self {
        Self {
            batch_size,
            shuffle: true,
            seed,
            workers: 2,
            prefetch: 2,
            drop_last: false,
        }
    }

    /// Evaluation: stored order, same threads.
    pub fn eval(batch_size: usize) -> Self {
        Self {
            shuffle: false,
            ..Self::train(batch_size, 0)
        }
    }
}

struct Shared<B: Backend> {
    source: Arc<dyn ImageSource>,
    pipeline: ImagePipeline,
    batcher: ImageBatcher,
    config: LoaderConfig,
    device: B::Device,
}

/// Makes batches of one source through one pipeline, epoch after epoch.
pub struct Loader<B: Backend> {
    shared: Arc<Shared<B>>,
}

impl<B: Backend> Loader<B> {
    /// A loader; checks that the pipeline gives every image one shape and that there is at
    /// least one batch.
    pub fn new(
        source: Arc<dyn ImageSource>,
        pipeline: ImagePipeline,
        config: LoaderConfig,
        device: B::Device,
    ) -> Result<Self, DataError> {
        if config.batch_size == 0 {
            return Err(DataError::Config(
                "the batch size must be at least 1".into(),
            ));
        }
        if source.shape().is_none() && !pipeline.augment.fixes_size() {
            return Err(DataError::Config(
                "images of varying sizes need a resizing augmentation to be batched".into(),
            ));
        }
        let batcher = ImageBatcher {
            normalize: pipeline.normalize,
        };
        let loader = Self {
            shared: Arc::new(Shared {
                source,
                pipeline,
                batcher,
                config,
                device,
            }),
        };
        if loader.num_batches() == 0 {
            return Err(DataError::Config(format!(
                "{} images make no batch of {}{}",
                loader.shared.source.len(),
                loader.shared.config.batch_size,
                if loader.shared.config.drop_last {
                    " (drop_last is on)"
                } else {
                    ""
                }
            )));
        }
        Ok(loader)
    }

    /// Number of images per epoch (after `drop_last`).
    pub fn num_images(&self) -> usize {
        let c = &self.shared.config;
        let n = self.shared.source.len();
        if c.drop_last { n - n % c.batch_size } else { n }
    }

    /// Number of batches per epoch.
    pub fn num_batches(&self) -> usize {
        self.num_images().div_ceil(self.shared.config.batch_size)
    }

    /// Shape of one image of a batch, if known before loading (not for image folders without
    /// a resizing augmentation, which `new` refuses).
    pub fn image_shape(&self) -> Option<ImageShape> {
        let s = &self.shared;
        let input = s
            .source
            .shape()
            .unwrap_or(ImageShape::new(s.pipeline.channels, 1, 1));
        Some(s.pipeline.output_shape(input))
    }

    /// The order in which epoch `epoch` visits the images.
    pub fn order(&self, epoch: usize) -> Vec<usize> {
        order(&self.shared.config, self.shared.source.len(), epoch)
    }

    /// The batches of epoch `epoch`, in order.
    pub fn epoch(&self, epoch: usize) -> Batches<B> {
        let order = Arc::new(self.order(epoch));
        let total = self.num_batches();
        let workers = self.shared.config.workers.min(total);
        let mut receivers = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        for w in 0..workers {
            let (tx, rx) = sync_channel(self.shared.config.prefetch);
            let (shared, order) = (self.shared.clone(), order.clone());
            let handle = std::thread::Builder::new()
                .name(format!("auglocal-data-{w}"))
                .spawn(move || work(&shared, &order, epoch, w, workers, total, &tx));
            match handle {
                Ok(h) => {
                    receivers.push(rx);
                    handles.push(h);
                }
                // No thread to be had: stop those started and make every batch on the calling
                // thread (workers exit once their channel is closed).
                Err(_) => {
                    receivers.clear();
                    handles
                        .drain(..)
                        .for_each(|h: JoinHandle<()>| drop(h.join()));
                    break;
                }
            }
        }
        Batches {
            shared: self.shared.clone(),
            order,
            epoch,
            next: 0,
            total,
            receivers,
            handles,
        }
    }
}

fn order(config: &LoaderConfig, len: usize, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    if config.shuffle {
        order.shuffle(&mut epoch_rng(config.seed, epoch));
    }
    if config.drop_last {
        order.truncate(len - len % config.batch_size);
    }
    order
}

impl<B: Backend> Shared<B> {
    fn make_batch(
        &self,
        order: &[usize],
        epoch: usize,
        b: usize,
    ) -> Result<ImageBatch<B>, DataError> {
        let bs = self.config.batch_size;
        let indices = &order[b * bs..((b + 1) * bs).min(order.len())];
        let samples = indices
            .iter()
            .map(|&i| {
                let sample = self.source.load(i)?;
                let mut rng = item_rng(self.config.seed, epoch, i);
                Ok(self.pipeline.apply(sample, &mut rng))
            })
            .collect::<Result<Vec<_>, DataError>>()?;
        Ok(self.batcher.batch(samples, &self.device))
    }
}

fn work<B: Backend>(
    shared: &Shared<B>,
    order: &[usize],
    epoch: usize,
    worker: usize,
    workers: usize,
    total: usize,
    tx: &SyncSender<Result<ImageBatch<B>, DataError>>,
) {
    for b in (worker..total).step_by(workers) {
        let batch = shared.make_batch(order, epoch, b);
        let failed = batch.is_err();
        // A closed channel means the consumer stopped early: stop too.
        if tx.send(batch).is_err() || failed {
            return;
        }
    }
}

/// The batches of one epoch, in order; dropping it stops the workers.
pub struct Batches<B: Backend> {
    shared: Arc<Shared<B>>,
    order: Arc<Vec<usize>>,
    epoch: usize,
    next: usize,
    total: usize,
    receivers: Vec<Receiver<Result<ImageBatch<B>, DataError>>>,
    handles: Vec<JoinHandle<()>>,
}

impl<B: Backend> Iterator for Batches<B> {
    type Item = Result<ImageBatch<B>, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.total {
            return None;
        }
        let b = self.next;
        self.next += 1;
        if self.receivers.is_empty() {
            return Some(self.shared.make_batch(&self.order, self.epoch, b));
        }
        let received = self.receivers[b % self.receivers.len()].recv();
        Some(received.unwrap_or_else(|_| {
            Err(DataError::Config(format!(
                "data worker stopped before batch {b} of epoch {}",
                self.epoch
            )))
        }))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.total - self.next;
        (left, Some(left))
    }
}

impl<B: Backend> ExactSizeIterator for Batches<B> {}

impl<B: Backend> Drop for Batches<B> {
    fn drop(&mut self) {
        // Closing the channels makes every worker's next send fail, so it returns.
        self.receivers.clear();
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::Flex;

    use super::*;
    use crate::augment::Augment;
    use crate::transform::Padding;
    use crate::{Normalize, Sample, Synthetic};

    fn pipeline() -> ImagePipeline {
        ImagePipeline {
            channels: 3,
            canvas: None,
            augment: Augment::PadCrop {
                pad: 2,
                padding: Padding::Reflect,
                size: 8,
                flip: true,
            },
            normalize: Normalize::HALF,
        }
    }

    fn loader(len: usize, config: LoaderConfig) -> Loader<Flex> {
        let source = Arc::new(Synthetic::new(len, 5, 8, 3));
        Loader::new(source, pipeline(), config, Default::default()).expect("valid loader")
    }

    fn collect(loader: &Loader<Flex>, epoch: usize) -> Vec<(Vec<f32>, Vec<i64>)> {
        loader
            .epoch(epoch)
            .map(|b| {
                let b = b.expect("batch");
                let images = b.images.into_data().to_vec().expect("f32");
                let targets = b
                    .targets
                    .into_data()
                    .convert::<i64>()
                    .to_vec()
                    .expect("i64");
                (images, targets)
            })
            .collect()
    }

    #[test]
    fn batches_do_not_depend_on_the_number_of_workers() {
        let config = |workers| LoaderConfig {
            workers,
            ..LoaderConfig::train(6, 11)
        };
        let inline = collect(&loader(40, config(0)), 2);
        assert_eq!(inline.len(), 7);
        assert_eq!(inline[6].1.len(), 4, "the last batch holds the rest");
        for workers in [1, 3] {
            assert_eq!(
                collect(&loader(40, config(workers)), 2),
                inline,
                "{workers} workers"
            );
        }
    }

    #[test]
    fn every_epoch_has_its_own_order_and_evaluation_keeps_the_stored_one() {
        let l = loader(50, LoaderConfig::train(10, 1));
        let (a, b) = (l.order(0), l.order(1));
        assert_ne!(a, b);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
        assert_eq!(a, loader(50, LoaderConfig::train(10, 1)).order(0), "seeded");
        let e = loader(50, LoaderConfig::eval(10));
        assert_eq!(e.order(3), (0..50).collect::<Vec<_>>());
        let labels: Vec<i64> = collect(&e, 0).into_iter().flat_map(|(_, t)| t).collect();
        assert_eq!(labels, (0..50).map(|i| (i % 5) as i64).collect::<Vec<_>>());
    }

    #[test]
    fn drop_last_and_early_stop() {
        let l = loader(
            23,
            LoaderConfig {
                drop_last: true,
                ..LoaderConfig::train(5, 0)
            },
        );
        assert_eq!((l.num_batches(), l.num_images()), (4, 20));
        let mut batches = l.epoch(0);
        assert!(batches.next().is_some());
        drop(batches); // must not hang on workers blocked in send
        assert!(
            Loader::<Flex>::new(
                Arc::new(Synthetic::new(3, 2, 8, 0)),
                pipeline(),
                LoaderConfig {
                    drop_last: true,
                    ..LoaderConfig::train(5, 0)
                },
                Default::default()
            )
            .is_err()
        );
    }

    struct Broken;

    impl ImageSource for Broken {
        fn len(&self) -> usize {
            12
        }
        fn num_classes(&self) -> usize {
            2
        }
        fn shape(&self) -> Option<ImageShape> {
            Some(ImageShape::new(3, 8, 8))
        }
        fn load(&self, index: usize) -> Result<Sample, DataError> {
            if index == 7 {
                return Err(DataError::Decode {
                    path: "img7.jpg".into(),
                    message: "broken".into(),
                });
            }
            Synthetic::new(12, 2, 8, 0).load(index)
        }
    }

    #[test]
    fn a_failing_image_surfaces_as_an_error_naming_it() {
        for workers in [0, 2] {
            let config = LoaderConfig {
                workers,
                ..LoaderConfig::eval(4)
            };
            let l = Loader::<Flex>::new(Arc::new(Broken), pipeline(), config, Default::default())
                .expect("valid");
            let results: Vec<_> = l.epoch(0).collect();
            assert!(results[0].is_ok());
            let err = results[1].as_ref().expect_err("batch 1 holds image 7");
            assert!(err.to_string().contains("img7.jpg"), "{err}");
        }
    }
}
