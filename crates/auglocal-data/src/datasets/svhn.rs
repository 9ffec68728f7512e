//! SVHN, format 2 (`*_32x32.mat`, without "extra"): 32x32 RGB digits.

use std::path::PathBuf;
use std::sync::Arc;

use super::{DIGITS, DatasetInfo, none, pad_crop};
use crate::formats::svhn;
use crate::registry::{Located, Split};
use crate::source::ImageSource;
use crate::transform::Padding;
use crate::{DataError, ImageShape, Normalize};

pub(super) const INFO: DatasetInfo = DatasetInfo {
    name: "svhn",
    native_shape: Some(ImageShape::new(3, 32, 32)),
    classes: Some(&DIGITS),
    class_folders: false,
    default_image_size: 32,
    normalize: Normalize::HALF,
    // Digits are not mirror-symmetric.
    train_augment: |size| pad_crop(2, Padding::Zero, size, false),
    eval_augment: none,
    hint: "Put train_32x32.mat and test_32x32.mat (http://ufldl.stanford.edu/housenumbers/) in \
           data/svhn",
    archive_subdir: None,
    also_searched: &[],
    files,
    read,
};

fn files(located: &Located, split: Split) -> Option<Vec<PathBuf>> {
    Some(vec![located.file(&[match split {
        Split::Train => "train_32x32.mat",
        Split::Test => "test_32x32.mat",
    }])?])
}

fn read(_: &Located, _: Split, paths: &[PathBuf]) -> Result<Arc<dyn ImageSource>, DataError> {
    Ok(Arc::new(svhn::read(&paths[0])?))
}
