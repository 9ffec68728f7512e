//! STL-10, binary version, labelled splits: 96x96 RGB images.

use std::path::PathBuf;
use std::sync::Arc;

use super::{DatasetInfo, none, pad_crop};
use crate::formats::stl10;
use crate::registry::{Located, Split};
use crate::source::ImageSource;
use crate::transform::Padding;
use crate::{DataError, ImageShape, Normalize};

pub(super) const INFO: DatasetInfo = DatasetInfo {
    name: "stl10",
    native_shape: Some(ImageShape::new(3, 96, 96)),
    classes: Some(&CLASSES),
    class_folders: false,
    default_image_size: 96,
    normalize: Normalize::HALF,
    train_augment: |size| pad_crop(4, Padding::Zero, size, true),
    eval_augment: none,
    hint: "Extract stl10_binary.tar.gz (https://cs.stanford.edu/~acoates/stl10/) into data/stl10",
    archive_subdir: Some("stl10_binary"),
    also_searched: &[],
    files,
    read,
};

/// STL-10's (`class_names.txt`).
const CLASSES: [&str; 10] = [
    "airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck",
];

fn files(located: &Located, split: Split) -> Option<Vec<PathBuf>> {
    let p = match split {
        Split::Train => "train",
        Split::Test => "test",
    };
    Some(vec![
        located.file(&[&format!("{p}_X.bin")])?,
        located.file(&[&format!("{p}_y.bin")])?,
    ])
}

fn read(_: &Located, _: Split, paths: &[PathBuf]) -> Result<Arc<dyn ImageSource>, DataError> {
    Ok(Arc::new(stl10::read(&paths[0], &paths[1])?))
}
