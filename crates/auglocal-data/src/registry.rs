//! Data sets by name, and opening them: the search for their files, both splits and their
//! pipelines. Each data set's own facts are in its file of `src/datasets/`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::augment::Augment;
use crate::formats::folder::ImageFolder;
use crate::source::{First, ImageSource};
use crate::synthetic::Synthetic;
use crate::{DataError, ImagePipeline, ImageShape, Normalize, Preprocess};

pub use crate::datasets::DEBIAN_FASHION_MNIST;
/// Environment variable naming a folder that holds one subfolder per data set.
pub const DATA_DIR_ENV: &str = "AUGLOCAL_DATA_DIR";

/// The data sets auglocal reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetName {
    /// CIFAR-10 binary version.
    Cifar10,
    /// CIFAR-100 binary version (fine labels).
    Cifar100,
    /// SVHN format 2 (`*_32x32.mat`), without "extra".
    Svhn,
    /// STL-10 binary, labelled splits.
    Stl10,
    /// ImageNet-style folders `train/<class>/*.JPEG` and `val/<class>/*.JPEG`.
    Imagenet,
    /// Fashion-MNIST IDX files (stands in for CIFAR-10 on machines without it).
    FashionMnist,
    /// MNIST IDX files.
    Mnist,
    /// Generated class patterns under noise; no files.
    Synthetic,
}

/// Training or test split.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// The training split.
    Train,
    /// The test (or validation) split.
    Test,
}

impl DatasetName {
    /// Every data set.
    pub const ALL: [DatasetName; 8] = [
        DatasetName::Cifar10,
        DatasetName::Cifar100,
        DatasetName::Svhn,
        DatasetName::Stl10,
        DatasetName::Imagenet,
        DatasetName::FashionMnist,
        DatasetName::Mnist,
        DatasetName::Synthetic,
    ];

    /// The name on the command line, and of its folder under `data/`.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// Shape of the stored images (`None`: image folders vary).
    pub fn native_shape(self) -> Option<ImageShape> {
        self.info().native_shape
    }

    /// The names of the classes by label, for the data sets whose classes are fixed.
    pub fn class_names(self) -> Option<&'static [&'static str]> {
        self.info().classes
    }

    /// Side of the square images a network for this data set takes by default: 32 for the
    /// CIFAR-size sets (Fashion-MNIST and MNIST are centred on a 32x32 canvas), 96 for STL-10,
    /// 224 for ImageNet.
    pub fn default_image_size(self) -> usize {
        self.info().default_image_size
    }

    /// The normalisation of the reference (or the data set's usual one).
    pub fn normalize(self) -> Normalize {
        self.info().normalize
    }

    /// Training augmentation for a network taking `size x size` images.
    pub fn train_augment(self, size: usize) -> Augment {
        (self.info().train_augment)(size)
    }

    /// Evaluation transformation for a network taking `size x size` images.
    pub fn eval_augment(self, size: usize) -> Augment {
        (self.info().eval_augment)(size)
    }

    /// What to do when the files are missing.
    pub fn hint(self) -> &'static str {
        self.info().hint
    }
}

impl fmt::Display for DatasetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DatasetName {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let key = s.to_ascii_lowercase().replace('_', "-");
        let key = if key == "fashionmnist" {
            "fashion-mnist".to_string()
        } else {
            key
        };
        Self::ALL
            .into_iter()
            .find(|d| d.name() == key)
            .ok_or_else(|| DataError::UnknownDataset {
                name: s.to_string(),
                known: Self::ALL.map(DatasetName::name).join(", "),
            })
    }
}

/// What to open.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataConfig {
    /// The data set.
    pub dataset: DatasetName,
    /// Folder holding the files (or holding a `<name>/` folder with them); `None` searches
    /// `$AUGLOCAL_DATA_DIR/<name>`, `data/<name>` and, for Fashion-MNIST, Debian's folder.
    pub data_dir: Option<PathBuf>,
    /// Side of the square images the network takes.
    pub image_size: usize,
    /// Images of the synthetic set, (train, test).
    pub synthetic_len: (usize, usize),
}

impl DataConfig {
    /// A configuration with the default search and synthetic sizes (5,000 + 1,000).
    pub fn new(dataset: DatasetName, image_size: usize) -> Self {
        Self {
            dataset,
            data_dir: None,
            image_size,
            synthetic_len: (5_000, 1_000),
        }
    }

    /// The evaluation pipeline of a network taking `image_size` images: grey repeated to RGB,
    /// smaller stored images centred on a canvas of the network's side, the data set's
    /// deterministic resize and normalisation.
    pub fn test_pipeline(&self) -> ImagePipeline {
        self.pipeline(self.dataset.eval_augment(self.image_size))
    }

    /// The training pipeline: as [`DataConfig::test_pipeline`], with the training augmentation.
    pub fn train_pipeline(&self) -> ImagePipeline {
        self.pipeline(self.dataset.train_augment(self.image_size))
    }

    fn pipeline(&self, augment: Augment) -> ImagePipeline {
        let size = self.image_size;
        let canvas = self
            .dataset
            .native_shape()
            .filter(|s| s.height < size || s.width < size)
            .map(|_| size);
        ImagePipeline {
            channels: 3,
            canvas,
            augment,
            normalize: self.dataset.normalize(),
        }
    }

    /// How any image file becomes what a network trained on this data set takes: the test
    /// pipeline, after bringing the image to the stored images' shape.
    pub fn preprocess(&self) -> Preprocess {
        Preprocess {
            stored: self.dataset.native_shape(),
            pipeline: self.test_pipeline(),
            image_size: self.image_size,
        }
    }

    /// The names of the classes, by label: the data set's own, or for image folders the
    /// class folders of the training root (which must then be found); `None` for the
    /// synthetic set.
    pub fn class_names(&self) -> Result<Option<Vec<String>>, DataError> {
        if let Some(names) = self.dataset.class_names() {
            return Ok(Some(names.iter().map(|n| n.to_string()).collect()));
        }
        if !self.dataset.info().class_folders {
            return Ok(None);
        }
        Ok(Some(
            locate(self.dataset, self.data_dir.as_deref())?.class_folders()?,
        ))
    }
}

/// An opened data set: both splits and their pipelines.
pub struct Data {
    /// Which data set.
    pub dataset: DatasetName,
    /// The folder the files came from (`None` for the synthetic set).
    pub location: Option<PathBuf>,
    /// Number of classes.
    pub num_classes: usize,
    /// Shape of every image the pipelines make, what the network takes.
    pub image_shape: ImageShape,
    /// Training images.
    pub train: Arc<dyn ImageSource>,
    /// Test images.
    pub test: Arc<dyn ImageSource>,
    /// Training pipeline (augmentation).
    pub train_pipeline: ImagePipeline,
    /// Evaluation pipeline.
    pub test_pipeline: ImagePipeline,
}

impl Data {
    /// Finds, reads and checks both splits of a data set.
    pub fn open(config: &DataConfig) -> Result<Data, DataError> {
        let name = config.dataset;
        let size = config.image_size;
        if let Some(native) = name.native_shape()
            && (native.height > size || native.width > size)
        {
            return Err(DataError::Config(format!(
                "{name} images are {}x{}, larger than the {size}x{size} the network takes; \
                 build the network for {}x{} images",
                native.height, native.width, native.height, native.width
            )));
        }
        let (location, train, test) = match name {
            DatasetName::Synthetic => {
                let (n_train, n_test) = config.synthetic_len;
                let train = Synthetic::new(n_train, 10, size, 0);
                let test = Synthetic::new(n_test, 10, size, 0).with_offset(n_train);
                (
                    None,
                    Arc::new(train) as Arc<dyn ImageSource>,
                    Arc::new(test) as Arc<_>,
                )
            }
            _ => {
                let files = locate(name, config.data_dir.as_deref())?;
                let train = files.read(Split::Train)?;
                let test = files.read(Split::Test)?;
                (Some(files.dir), train, test)
            }
        };
        let num_classes = train.num_classes();
        Ok(Data {
            dataset: name,
            location,
            num_classes,
            image_shape: ImageShape::new(3, size, size),
            train,
            test,
            train_pipeline: config.train_pipeline(),
            test_pipeline: config.test_pipeline(),
        })
    }

    /// Keeps the first `train` training and `test` test images (`--train-limit`,
    /// `--test-limit`).
    pub fn limit(mut self, train: Option<usize>, test: Option<usize>) -> Self {
        if let Some(n) = train {
            self.train = Arc::new(First::new(self.train, n));
        }
        if let Some(n) = test {
            self.test = Arc::new(First::new(self.test, n));
        }
        self
    }
}

/// The files of a data set, found in `dir`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    /// Which data set.
    pub dataset: DatasetName,
    /// The folder holding the files.
    pub dir: PathBuf,
}

impl Located {
    /// The first of `names` present in the folder. Whatever is there counts (a folder, a FIFO,
    /// a dangling symlink): the reader then says what is wrong with that path, instead of the
    /// data set being reported missing.
    pub(crate) fn file(&self, names: &[&str]) -> Option<PathBuf> {
        names
            .iter()
            .map(|n| self.dir.join(n))
            .find(|p| std::fs::symlink_metadata(p).is_ok())
    }

    /// The files of `split`, or `None` if one is missing.
    fn paths(&self, split: Split) -> Option<Vec<PathBuf>> {
        (self.dataset.info().files)(self, split)
    }

    /// The class folders of the training root, in label order (image folders).
    pub(crate) fn class_folders(&self) -> Result<Vec<String>, DataError> {
        let train = self.paths(Split::Train).ok_or_else(|| {
            DataError::Config(format!(
                "{}: the training split of {} is incomplete",
                self.dir.display(),
                self.dataset
            ))
        })?;
        ImageFolder::list_classes(&train[0])
    }

    /// Reads one split.
    pub fn read(&self, split: Split) -> Result<Arc<dyn ImageSource>, DataError> {
        let paths = self.paths(split).ok_or_else(|| {
            DataError::Config(format!(
                "{}: the {} split of {} is incomplete",
                self.dir.display(),
                match split {
                    Split::Train => "training",
                    Split::Test => "test",
                },
                self.dataset
            ))
        })?;
        (self.dataset.info().read)(self, split, &paths)
    }
}

/// The folders searched for `name`, in order.
pub fn search_dirs(name: DatasetName, data_dir: Option<&Path>) -> Vec<PathBuf> {
    let roots: Vec<PathBuf> = match data_dir {
        Some(dir) => vec![dir.to_path_buf(), dir.join(name.name())],
        None => {
            let mut roots: Vec<PathBuf> = std::env::var_os(DATA_DIR_ENV)
                .map(|d| PathBuf::from(d).join(name.name()))
                .into_iter()
                .collect();
            roots.push(Path::new("data").join(name.name()));
            roots.extend(name.info().also_searched.iter().map(PathBuf::from));
            roots
        }
    };
    roots
        .into_iter()
        .flat_map(|r| {
            let sub = name.info().archive_subdir.map(|s| r.join(s));
            std::iter::once(r).chain(sub)
        })
        .collect()
}

/// Finds the folder holding both splits of `name`.
pub fn locate(name: DatasetName, data_dir: Option<&Path>) -> Result<Located, DataError> {
    let dirs = search_dirs(name, data_dir);
    dirs.iter()
        .map(|dir| Located {
            dataset: name,
            dir: dir.clone(),
        })
        .find(|l| l.paths(Split::Train).is_some() && l.paths(Split::Test).is_some())
        .ok_or_else(|| DataError::NotFound {
            name: name.to_string(),
            searched: dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            hint: name.hint().to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_names_cover_every_label() {
        for name in DatasetName::ALL {
            let Some(names) = name.class_names() else {
                continue;
            };
            let expected = if name == DatasetName::Cifar100 {
                100
            } else {
                10
            };
            assert_eq!(names.len(), expected, "{name}");
            let mut unique = names.to_vec();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), names.len(), "{name}: names repeat");
        }
        assert_eq!(
            DatasetName::FashionMnist.class_names().map(|n| n[9]),
            Some("Ankle boot")
        );
    }

    #[test]
    fn names_parse_and_unknown_names_list_the_known_ones() {
        for d in DatasetName::ALL {
            assert_eq!(d.name().parse::<DatasetName>().expect("known"), d);
        }
        assert_eq!(
            "Fashion_MNIST".parse::<DatasetName>().expect("alias"),
            DatasetName::FashionMnist
        );
        let err = "cifar11".parse::<DatasetName>().expect_err("unknown");
        assert!(err.to_string().contains("cifar10, cifar100, svhn"), "{err}");
    }

    #[test]
    fn missing_data_says_where_it_looked_and_what_to_do() {
        let err =
            locate(DatasetName::Svhn, Some(Path::new("/nonexistent/dir"))).expect_err("missing");
        let msg = err.to_string();
        assert!(msg.contains("/nonexistent/dir/svhn"), "{msg}");
        assert!(msg.contains("train_32x32.mat"), "{msg}");
    }

    #[test]
    fn synthetic_opens_without_files_and_images_too_large_are_refused() {
        let data = Data::open(&DataConfig::new(DatasetName::Synthetic, 16)).expect("synthetic");
        assert_eq!(
            (data.train.len(), data.test.len(), data.num_classes),
            (5000, 1000, 10)
        );
        let data = data.limit(Some(100), Some(1_000_000));
        assert_eq!((data.train.len(), data.test.len()), (100, 1000));
        let err = Data::open(&DataConfig::new(DatasetName::Stl10, 32))
            .err()
            .expect("96 > 32");
        assert!(err.to_string().contains("96x96"), "{err}");
    }

    #[test]
    fn archive_subfolders_are_searched() {
        let dirs = search_dirs(DatasetName::Cifar10, Some(Path::new("/d")));
        assert!(
            dirs.contains(&PathBuf::from("/d/cifar10/cifar-10-batches-bin")),
            "{dirs:?}"
        );
        let dirs = search_dirs(DatasetName::FashionMnist, None);
        assert!(
            dirs.contains(&PathBuf::from(DEBIAN_FASHION_MNIST)),
            "{dirs:?}"
        );
    }
}
