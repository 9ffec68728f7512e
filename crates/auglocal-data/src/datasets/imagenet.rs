//! ImageNet-style folders: `train/<class>/*.JPEG` and `val/<class>/*.JPEG`, images of any size.

use std::path::PathBuf;
use std::sync::Arc;

use super::DatasetInfo;
use crate::augment::Augment;
use crate::formats::folder::ImageFolder;
use crate::registry::{Located, Split};
use crate::source::ImageSource;
use crate::{DataError, Normalize};

pub(super) const INFO: DatasetInfo = DatasetInfo {
    name: "imagenet",
    native_shape: None,
    classes: None,
    class_folders: true,
    default_image_size: 224,
    normalize: Normalize::IMAGENET,
    train_augment: |size| Augment::RandomResizedCrop { size, flip: true },
    // 224 -> resize 256, centre crop 224.
    eval_augment: |size| Augment::ResizeCenterCrop {
        resize: size * 256 / 224,
        crop: size,
    },
    hint: "Arrange ImageNet as data/imagenet/train/<class>/*.JPEG and \
           data/imagenet/val/<class>/*.JPEG",
    archive_subdir: None,
    also_searched: &[],
    files,
    read,
};

fn files(located: &Located, split: Split) -> Option<Vec<PathBuf>> {
    let d = located.dir.join(match split {
        Split::Train => "train",
        Split::Test => "val",
    });
    d.is_dir().then(|| vec![d])
}

fn read(
    located: &Located,
    split: Split,
    paths: &[PathBuf],
) -> Result<Arc<dyn ImageSource>, DataError> {
    Ok(match split {
        Split::Train => Arc::new(ImageFolder::open(&paths[0])?),
        // Validation classes take the training classes' labels, by folder name.
        Split::Test => {
            let classes = located.class_folders()?;
            Arc::new(ImageFolder::open_with_classes(&paths[0], &classes)?)
        }
    })
}
