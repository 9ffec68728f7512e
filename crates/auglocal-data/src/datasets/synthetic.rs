//! The synthetic set: class patterns under noise, generated ([`crate::Synthetic`]); no files.

use std::path::PathBuf;
use std::sync::Arc;

use super::{DatasetInfo, none};
use crate::registry::{Located, Split};
use crate::source::ImageSource;
use crate::{DataError, Normalize};

pub(super) const INFO: DatasetInfo = DatasetInfo {
    name: "synthetic",
    native_shape: None,
    classes: None,
    class_folders: false,
    default_image_size: 32,
    normalize: Normalize::HALF,
    train_augment: none,
    eval_augment: none,
    hint: "The synthetic set needs no files",
    archive_subdir: None,
    also_searched: &[],
    files: |_, _| None,
    read,
};

/// `files` finds none, so a split is refused before it is read; this says so again.
fn read(_: &Located, _: Split, _: &[PathBuf]) -> Result<Arc<dyn ImageSource>, DataError> {
    Err(DataError::Config("the synthetic set has no files".into()))
}
