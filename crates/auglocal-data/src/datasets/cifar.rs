//! CIFAR-10 and CIFAR-100, binary versions: 32x32 RGB images; CIFAR-10 in five training batches
//! and a test batch, CIFAR-100 in one training and one test file (fine labels). The two differ
//! only in their classes and files.

use std::path::PathBuf;
use std::sync::Arc;

use super::{DatasetInfo, none, pad_crop};
use crate::formats::cifar::{self, Cifar};
use crate::registry::{Located, Split};
use crate::transform::Padding;
use crate::{ImageShape, Normalize};

pub(super) const CIFAR10: DatasetInfo = DatasetInfo {
    name: "cifar10",
    native_shape: Some(ImageShape::new(3, 32, 32)),
    classes: Some(&CIFAR10_CLASSES),
    class_folders: false,
    default_image_size: 32,
    normalize: Normalize::CIFAR,
    train_augment: |size| pad_crop(4, Padding::Reflect, size, true),
    eval_augment: none,
    hint: "Extract cifar-10-binary.tar.gz (https://www.cs.toronto.edu/~kriz/cifar.html) into \
           data/cifar10",
    archive_subdir: Some("cifar-10-batches-bin"),
    also_searched: &[],
    files: cifar10_files,
    read: |_, _, paths| Ok(Arc::new(cifar::read(paths, Cifar::Ten)?)),
};

pub(super) const CIFAR100: DatasetInfo = DatasetInfo {
    name: "cifar100",
    classes: Some(&CIFAR100_CLASSES),
    hint: "Extract cifar-100-binary.tar.gz (https://www.cs.toronto.edu/~kriz/cifar.html) into \
           data/cifar100",
    archive_subdir: Some("cifar-100-binary"),
    files: cifar100_files,
    read: |_, _, paths| Ok(Arc::new(cifar::read(paths, Cifar::Hundred)?)),
    ..CIFAR10
};

/// CIFAR-10's (`batches.meta.txt`).
const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// CIFAR-100's fine labels (`fine_label_names.txt`, alphabetical).
const CIFAR100_CLASSES: [&str; 100] = [
    "apple",
    "aquarium_fish",
    "baby",
    "bear",
    "beaver",
    "bed",
    "bee",
    "beetle",
    "bicycle",
    "bottle",
    "bowl",
    "boy",
    "bridge",
    "bus",
    "butterfly",
    "camel",
    "can",
    "castle",
    "caterpillar",
    "cattle",
    "chair",
    "chimpanzee",
    "clock",
    "cloud",
    "cockroach",
    "couch",
    "crab",
    "crocodile",
    "cup",
    "dinosaur",
    "dolphin",
    "elephant",
    "flatfish",
    "forest",
    "fox",
    "girl",
    "hamster",
    "house",
    "kangaroo",
    "keyboard",
    "lamp",
    "lawn_mower",
    "leopard",
    "lion",
    "lizard",
    "lobster",
    "man",
    "maple_tree",
    "motorcycle",
    "mountain",
    "mouse",
    "mushroom",
    "oak_tree",
    "orange",
    "orchid",
    "otter",
    "palm_tree",
    "pear",
    "pickup_truck",
    "pine_tree",
    "plain",
    "plate",
    "poppy",
    "porcupine",
    "possum",
    "rabbit",
    "raccoon",
    "ray",
    "road",
    "rocket",
    "rose",
    "sea",
    "seal",
    "shark",
    "shrew",
    "skunk",
    "skyscraper",
    "snail",
    "snake",
    "spider",
    "squirrel",
    "streetcar",
    "sunflower",
    "sweet_pepper",
    "table",
    "tank",
    "telephone",
    "television",
    "tiger",
    "tractor",
    "train",
    "trout",
    "tulip",
    "turtle",
    "wardrobe",
    "whale",
    "willow_tree",
    "wolf",
    "woman",
    "worm",
];

fn cifar10_files(located: &Located, split: Split) -> Option<Vec<PathBuf>> {
    match split {
        Split::Train => (1..=5)
            .map(|i| located.file(&[&format!("data_batch_{i}.bin")]))
            .collect(),
        Split::Test => Some(vec![located.file(&["test_batch.bin"])?]),
    }
}

fn cifar100_files(located: &Located, split: Split) -> Option<Vec<PathBuf>> {
    Some(vec![located.file(&[match split {
        Split::Train => "train.bin",
        Split::Test => "test.bin",
    }])?])
}
