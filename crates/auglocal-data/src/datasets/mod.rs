//! Each data set's facts, one file per data set (CIFAR-10 and CIFAR-100 share one): its name, the shape of its stored images, its
//! classes, the image side a network for it takes, the reference's normalisation and
//! augmentations, where its files are and how they are read, and what to do when they are
//! missing. [`crate::DatasetName`] picks the file; everything else reads the facts.

mod cifar;
mod fashion_mnist;
mod imagenet;
mod mnist;
mod stl10;
mod svhn;
mod synthetic;

use std::path::PathBuf;
use std::sync::Arc;

use crate::augment::Augment;
use crate::registry::{Located, Split};
use crate::source::ImageSource;
use crate::transform::Padding;
use crate::{DataError, DatasetName, ImageShape, Normalize};

pub use fashion_mnist::DEBIAN_FASHION_MNIST;

/// What auglocal knows of one data set.
pub(crate) struct DatasetInfo {
    /// The name on the command line, and of its folder under `data/`.
    pub name: &'static str,
    /// Shape of the stored images (`None`: image folders vary, or generated).
    pub native_shape: Option<ImageShape>,
    /// The names of the classes by label, where they are fixed.
    pub classes: Option<&'static [&'static str]>,
    /// Whether the classes are the training root's class folders (image folders).
    pub class_folders: bool,
    /// Side of the square images a network for this data set takes by default.
    pub default_image_size: usize,
    /// The normalisation of the reference (or the data set's usual one).
    pub normalize: Normalize,
    /// Training augmentation for a network taking `size x size` images.
    pub train_augment: fn(size: usize) -> Augment,
    /// Evaluation transformation for a network taking `size x size` images.
    pub eval_augment: fn(size: usize) -> Augment,
    /// What to do when the files are missing.
    pub hint: &'static str,
    /// The subfolder the official archive extracts to, searched inside each folder.
    pub archive_subdir: Option<&'static str>,
    /// Folders searched after `$AUGLOCAL_DATA_DIR/<name>` and `data/<name>`.
    pub also_searched: &'static [&'static str],
    /// The files of a split in a folder, or `None` if one is missing (always `None` for a
    /// set without files).
    pub files: fn(&Located, Split) -> Option<Vec<PathBuf>>,
    /// Reads a split from its files (as `files` found them).
    pub read: ReadSplit,
}

/// Reads a split of a data set found in a folder, from the files its `files` found.
pub(crate) type ReadSplit =
    fn(&Located, Split, &[PathBuf]) -> Result<Arc<dyn ImageSource>, DataError>;

impl DatasetName {
    /// The facts of this data set.
    pub(crate) fn info(self) -> &'static DatasetInfo {
        match self {
            DatasetName::Cifar10 => &cifar::CIFAR10,
            DatasetName::Cifar100 => &cifar::CIFAR100,
            DatasetName::Svhn => &svhn::INFO,
            DatasetName::Stl10 => &stl10::INFO,
            DatasetName::Imagenet => &imagenet::INFO,
            DatasetName::FashionMnist => &fashion_mnist::INFO,
            DatasetName::Mnist => &mnist::INFO,
            DatasetName::Synthetic => &synthetic::INFO,
        }
    }
}

/// No transformation (evaluation of the fixed-size sets).
fn none(_size: usize) -> Augment {
    Augment::None
}

/// Pads by `pad` pixels, crops a random `size x size` window and, with `flip`, mirrors half.
fn pad_crop(pad: usize, padding: Padding, size: usize, flip: bool) -> Augment {
    Augment::PadCrop {
        pad,
        padding,
        size,
        flip,
    }
}

/// The digit names, for MNIST and SVHN (SVHN's label 10 is read as the digit 0).
const DIGITS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// The image and label files of an IDX pair (`{prefix}-images-idx3-ubyte` and
/// `{prefix}-labels-idx1-ubyte`, gzipped or not): MNIST's and Fashion-MNIST's layout.
fn idx_files(located: &Located, split: Split) -> Option<Vec<PathBuf>> {
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let images = format!("{prefix}-images-idx3-ubyte");
    let labels = format!("{prefix}-labels-idx1-ubyte");
    Some(vec![
        located.file(&[&format!("{images}.gz"), &images])?,
        located.file(&[&format!("{labels}.gz"), &labels])?,
    ])
}

/// Reads an IDX pair of 10 classes of 28x28 grey images.
fn read_idx(
    located: &Located,
    _split: Split,
    paths: &[PathBuf],
) -> Result<Arc<dyn ImageSource>, DataError> {
    let shape = located
        .dataset
        .info()
        .native_shape
        .map(|s| (s.height, s.width));
    Ok(Arc::new(crate::formats::idx::read(
        &paths[0], &paths[1], 10, shape,
    )?))
}
