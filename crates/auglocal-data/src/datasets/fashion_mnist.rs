//! Fashion-MNIST, IDX files: 28x28 grey images of clothing (stands in for CIFAR-10 on machines
//! without it; Debian packages it).

use super::{DatasetInfo, idx_files, pad_crop, read_idx};
use crate::transform::Padding;
use crate::{ImageShape, Normalize};

/// Where Debian's `dataset-fashion-mnist` package installs the data.
pub const DEBIAN_FASHION_MNIST: &str = "/usr/share/datasets/fashion-mnist";

pub(super) const INFO: DatasetInfo = DatasetInfo {
    name: "fashion-mnist",
    native_shape: Some(ImageShape::new(1, 28, 28)),
    classes: Some(&CLASSES),
    class_folders: false,
    // Centred on a 32x32 canvas, as CIFAR.
    default_image_size: 32,
    normalize: Normalize::FASHION_MNIST,
    train_augment: |size| pad_crop(4, Padding::Zero, size, true),
    eval_augment: super::none,
    hint: "Run scripts/fetch-data.sh (Debian's dataset-fashion-mnist package, or the official \
           download), or give the folder of the four IDX files (`data_dir`)",
    archive_subdir: None,
    also_searched: &[DEBIAN_FASHION_MNIST],
    files: idx_files,
    read: read_idx,
};

/// Fashion-MNIST's classes (Zalando's labels, in label order).
const CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];
