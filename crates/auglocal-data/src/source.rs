//! Where images come from: anything that can load image `i` by index.

use std::sync::Arc;

#[cfg(feature = "burn")]
use burn::data::dataset::Dataset;

use crate::formats::folder::ImageFolder;
use crate::{DataError, ImageSet, ImageShape, Sample};

/// A random-access collection of labelled images.
pub trait ImageSource: Send + Sync {
    /// Number of images.
    fn len(&self) -> usize;

    /// Whether there is no image.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of classes.
    fn num_classes(&self) -> usize;

    /// Shape of every image, if they share one (`None` for image folders).
    fn shape(&self) -> Option<ImageShape>;

    /// Loads (and, for image folders, decodes) image `index`.
    fn load(&self, index: usize) -> Result<Sample, DataError>;
}

fn out_of_range(index: usize, len: usize) -> DataError {
    DataError::Config(format!("image {index} requested from a set of {len}"))
}

impl ImageSource for ImageSet {
    fn len(&self) -> usize {
        ImageSet::len(self)
    }

    fn num_classes(&self) -> usize {
        ImageSet::num_classes(self)
    }

    fn shape(&self) -> Option<ImageShape> {
        Some(ImageSet::shape(self))
    }

    fn load(&self, index: usize) -> Result<Sample, DataError> {
        self.sample(index)
            .ok_or_else(|| out_of_range(index, ImageSet::len(self)))
    }
}

impl ImageSource for ImageFolder {
    fn len(&self) -> usize {
        ImageFolder::len(self)
    }

    fn num_classes(&self) -> usize {
        self.classes().len()
    }

    fn shape(&self) -> Option<ImageShape> {
        None
    }

    fn load(&self, index: usize) -> Result<Sample, DataError> {
        ImageFolder::load(self, index)
    }
}

/// The first `len` images of a source (`--train-limit`, `--test-limit`).
pub struct First<S: ?Sized> {
    inner: Arc<S>,
    len: usize,
}

impl<S: ImageSource + ?Sized> First<S> {
    /// The first `len` images of `inner` (all of them if it holds fewer).
    pub fn new(inner: Arc<S>, len: usize) -> Self {
        let len = len.min(inner.len());
        Self { inner, len }
    }
}

impl<S: ImageSource + ?Sized> ImageSource for First<S> {
    fn len(&self) -> usize {
        self.len
    }

    fn num_classes(&self) -> usize {
        self.inner.num_classes()
    }

    fn shape(&self) -> Option<ImageShape> {
        self.inner.shape()
    }

    fn load(&self, index: usize) -> Result<Sample, DataError> {
        if index >= self.len {
            return Err(out_of_range(index, self.len));
        }
        self.inner.load(index)
    }
}

#[cfg(feature = "burn")]
/// Burn's view of any source: `get` is `load` with errors turned into `None`. The loader of
/// this crate uses [`ImageSource::load`], which says which file failed and why.
pub struct SourceDataset(pub Arc<dyn ImageSource>);

/// Burn's `Dataset` for sources: `get` is `load` with errors turned into `None`.
#[cfg(feature = "burn")]
macro_rules! impl_dataset {
    ($($t:ty),*) => {$(
        impl Dataset<Sample> for $t {
            fn get(&self, index: usize) -> Option<Sample> {
                ImageSource::load(self, index).ok()
            }

            fn len(&self) -> usize {
                ImageSource::len(self)
            }
        }
    )*};
}

#[cfg(feature = "burn")]
impl_dataset!(SourceDataset, ImageSet, ImageFolder, crate::Synthetic);

#[cfg(feature = "burn")]
impl ImageSource for SourceDataset {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn num_classes(&self) -> usize {
        self.0.num_classes()
    }

    fn shape(&self) -> Option<ImageShape> {
        self.0.shape()
    }

    fn load(&self, index: usize) -> Result<Sample, DataError> {
        self.0.load(index)
    }
}

#[cfg(all(test, feature = "burn"))]
mod tests {
    use super::*;
    use crate::Synthetic;

    #[test]
    fn sources_are_burn_datasets() {
        let synthetic = Synthetic::new(12, 4, 8, 0);
        let ds: &dyn Dataset<Sample> = &synthetic;
        assert_eq!(ds.len(), 12);
        assert_eq!(ds.get(6).map(|s| s.label), Some(2));
        assert!(ds.get(12).is_none());
        let first = SourceDataset(Arc::new(First::new(Arc::new(synthetic.clone()), 5)));
        assert_eq!(Dataset::len(&first), 5);
        assert_eq!(first.get(3), synthetic.load(3).ok());
        assert!(first.get(5).is_none());
    }
}
