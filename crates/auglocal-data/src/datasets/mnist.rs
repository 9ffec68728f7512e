//! MNIST, IDX files: 28x28 grey digits.

use super::{DIGITS, DatasetInfo, idx_files, pad_crop, read_idx};
use crate::transform::Padding;
use crate::{ImageShape, Normalize};

pub(super) const INFO: DatasetInfo = DatasetInfo {
    name: "mnist",
    native_shape: Some(ImageShape::new(1, 28, 28)),
    classes: Some(&DIGITS),
    class_folders: false,
    // Centred on a 32x32 canvas, as CIFAR.
    default_image_size: 32,
    normalize: Normalize::MNIST,
    // Digits are not mirror-symmetric.
    train_augment: |size| pad_crop(4, Padding::Zero, size, false),
    eval_augment: super::none,
    hint: "Put train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz \
           and t10k-labels-idx1-ubyte.gz in data/mnist",
    archive_subdir: None,
    also_searched: &[],
    files: idx_files,
    read: read_idx,
};
