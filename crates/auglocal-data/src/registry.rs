//! Data sets by name: where their files are, how they are read, and their pipelines.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::augment::Augment;
use crate::formats::cifar::{self, Cifar};
use crate::formats::folder::ImageFolder;
use crate::formats::{idx, stl10, svhn};
use crate::source::{First, ImageSource};
use crate::synthetic::Synthetic;
use crate::transform::Padding;
use crate::{DataError, ImagePipeline, ImageShape, Normalize, Preprocess};

/// Where Debian's `dataset-fashion-mnist` package installs the data.
pub const DEBIAN_FASHION_MNIST: &str = "/usr/share/datasets/fashion-mnist";
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
        match self {
            DatasetName::Cifar10 => "cifar10",
            DatasetName::Cifar100 => "cifar100",
            DatasetName::Svhn => "svhn",
            DatasetName::Stl10 => "stl10",
            DatasetName::Imagenet => "imagenet",
            DatasetName::FashionMnist => "fashion-mnist",
            DatasetName::Mnist => "mnist",
            DatasetName::Synthetic => "synthetic",
        }
    }

    /// Shape of the stored images (`None`: image folders vary).
    pub fn native_shape(self) -> Option<ImageShape> {
        match self {
            DatasetName::Cifar10 | DatasetName::Cifar100 | DatasetName::Svhn => {
                Some(ImageShape::new(3, 32, 32))
            }
            DatasetName::Stl10 => Some(ImageShape::new(3, 96, 96)),
            DatasetName::FashionMnist | DatasetName::Mnist => Some(ImageShape::new(1, 28, 28)),
            DatasetName::Imagenet | DatasetName::Synthetic => None,
        }
    }

    /// The names of the classes by label, for the data sets whose classes are fixed.
    pub fn class_names(self) -> Option<&'static [&'static str]> {
        match self {
            DatasetName::FashionMnist => Some(&FASHION_MNIST_CLASSES),
            DatasetName::Mnist | DatasetName::Svhn => Some(&DIGITS),
            DatasetName::Cifar10 => Some(&CIFAR10_CLASSES),
            DatasetName::Cifar100 => Some(&CIFAR100_CLASSES),
            DatasetName::Stl10 => Some(&STL10_CLASSES),
            DatasetName::Imagenet | DatasetName::Synthetic => None,
        }
    }

    /// Side of the square images a network for this data set takes by default: 32 for the
    /// CIFAR-size sets (Fashion-MNIST and MNIST are centred on a 32x32 canvas), 96 for STL-10,
    /// 224 for ImageNet.
    pub fn default_image_size(self) -> usize {
        match self {
            DatasetName::Stl10 => 96,
            DatasetName::Imagenet => 224,
            _ => 32,
        }
    }

    /// The normalisation of the reference (or the data set's usual one).
    pub fn normalize(self) -> Normalize {
        match self {
            DatasetName::Cifar10 | DatasetName::Cifar100 => Normalize::CIFAR,
            DatasetName::Svhn | DatasetName::Stl10 | DatasetName::Synthetic => Normalize::HALF,
            DatasetName::Imagenet => Normalize::IMAGENET,
            DatasetName::FashionMnist => Normalize::FASHION_MNIST,
            DatasetName::Mnist => Normalize::MNIST,
        }
    }

    /// Training augmentation for a network taking `size x size` images.
    pub fn train_augment(self, size: usize) -> Augment {
        let pad_crop = |pad, padding, flip| Augment::PadCrop {
            pad,
            padding,
            size,
            flip,
        };
        match self {
            DatasetName::Cifar10 | DatasetName::Cifar100 => pad_crop(4, Padding::Reflect, true),
            DatasetName::Svhn => pad_crop(2, Padding::Zero, false),
            DatasetName::Stl10 | DatasetName::FashionMnist => pad_crop(4, Padding::Zero, true),
            // Digits are not mirror-symmetric.
            DatasetName::Mnist => pad_crop(4, Padding::Zero, false),
            DatasetName::Imagenet => Augment::RandomResizedCrop { size, flip: true },
            DatasetName::Synthetic => Augment::None,
        }
    }

    /// Evaluation transformation for a network taking `size x size` images.
    pub fn eval_augment(self, size: usize) -> Augment {
        match self {
            // 224 -> resize 256, centre crop 224.
            DatasetName::Imagenet => Augment::ResizeCenterCrop {
                resize: size * 256 / 224,
                crop: size,
            },
            _ => Augment::None,
        }
    }

    /// What to do when the files are missing.
    pub fn hint(self) -> &'static str {
        match self {
            DatasetName::FashionMnist => {
                "Run scripts/fetch-data.sh (Debian's dataset-fashion-mnist package, or the \
                 official download), or give the folder of the four IDX files (`data_dir`)"
            }
            DatasetName::Mnist => {
                "Put train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, \
                 t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz in data/mnist"
            }
            DatasetName::Cifar10 => {
                "Extract cifar-10-binary.tar.gz (https://www.cs.toronto.edu/~kriz/cifar.html) \
                 into data/cifar10"
            }
            DatasetName::Cifar100 => {
                "Extract cifar-100-binary.tar.gz (https://www.cs.toronto.edu/~kriz/cifar.html) \
                 into data/cifar100"
            }
            DatasetName::Svhn => {
                "Put train_32x32.mat and test_32x32.mat (http://ufldl.stanford.edu/housenumbers/) \
                 in data/svhn"
            }
            DatasetName::Stl10 => {
                "Extract stl10_binary.tar.gz (https://cs.stanford.edu/~acoates/stl10/) into \
                 data/stl10"
            }
            DatasetName::Imagenet => {
                "Arrange ImageNet as data/imagenet/train/<class>/*.JPEG and \
                 data/imagenet/val/<class>/*.JPEG"
            }
            DatasetName::Synthetic => "The synthetic set needs no files",
        }
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

/// Fashion-MNIST's classes (Zalando's labels, in label order).
const FASHION_MNIST_CLASSES: [&str; 10] = [
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
/// MNIST's and SVHN's (SVHN's label 10 is read as the digit 0).
const DIGITS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
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
/// STL-10's (`class_names.txt`).
const STL10_CLASSES: [&str; 10] = [
    "airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck",
];

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
        if self.dataset != DatasetName::Imagenet {
            return Ok(None);
        }
        let files = locate(self.dataset, self.data_dir.as_deref())?;
        let train = files.paths(Split::Train).ok_or_else(|| {
            DataError::Config(format!(
                "{}: the training split of imagenet is incomplete",
                files.dir.display()
            ))
        })?;
        Ok(Some(ImageFolder::list_classes(&train[0])?))
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
    fn file(&self, names: &[&str]) -> Option<PathBuf> {
        names
            .iter()
            .map(|n| self.dir.join(n))
            .find(|p| std::fs::symlink_metadata(p).is_ok())
    }

    fn idx_pair(&self, prefix: &str) -> Option<(PathBuf, PathBuf)> {
        let images = format!("{prefix}-images-idx3-ubyte");
        let labels = format!("{prefix}-labels-idx1-ubyte");
        Some((
            self.file(&[&format!("{images}.gz"), &images])?,
            self.file(&[&format!("{labels}.gz"), &labels])?,
        ))
    }

    /// The files of `split`, or `None` if one is missing.
    fn paths(&self, split: Split) -> Option<Vec<PathBuf>> {
        let train = split == Split::Train;
        match self.dataset {
            DatasetName::Cifar10 => {
                if train {
                    (1..=5)
                        .map(|i| self.file(&[&format!("data_batch_{i}.bin")]))
                        .collect()
                } else {
                    Some(vec![self.file(&["test_batch.bin"])?])
                }
            }
            DatasetName::Cifar100 => Some(vec![self.file(&[if train {
                "train.bin"
            } else {
                "test.bin"
            }])?]),
            DatasetName::Svhn => Some(vec![self.file(&[if train {
                "train_32x32.mat"
            } else {
                "test_32x32.mat"
            }])?]),
            DatasetName::Stl10 => {
                let p = if train { "train" } else { "test" };
                Some(vec![
                    self.file(&[&format!("{p}_X.bin")])?,
                    self.file(&[&format!("{p}_y.bin")])?,
                ])
            }
            DatasetName::FashionMnist | DatasetName::Mnist => {
                let (i, l) = self.idx_pair(if train { "train" } else { "t10k" })?;
                Some(vec![i, l])
            }
            DatasetName::Imagenet => {
                let d = self.dir.join(if train { "train" } else { "val" });
                d.is_dir().then(|| vec![d])
            }
            DatasetName::Synthetic => None,
        }
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
        Ok(match self.dataset {
            DatasetName::Cifar10 => Arc::new(cifar::read(&paths, Cifar::Ten)?),
            DatasetName::Cifar100 => Arc::new(cifar::read(&paths, Cifar::Hundred)?),
            DatasetName::Svhn => Arc::new(svhn::read(&paths[0])?),
            DatasetName::Stl10 => Arc::new(stl10::read(&paths[0], &paths[1])?),
            DatasetName::FashionMnist | DatasetName::Mnist => {
                let shape = self.dataset.native_shape().map(|s| (s.height, s.width));
                Arc::new(idx::read(&paths[0], &paths[1], 10, shape)?)
            }
            DatasetName::Imagenet => match split {
                Split::Train => Arc::new(ImageFolder::open(&paths[0])?),
                // Validation classes take the training classes' labels, by folder name.
                Split::Test => {
                    let train = self.paths(Split::Train).ok_or_else(|| {
                        DataError::Config(format!(
                            "{}: the training split of imagenet is incomplete",
                            self.dir.display()
                        ))
                    })?;
                    let classes = ImageFolder::list_classes(&train[0])?;
                    Arc::new(ImageFolder::open_with_classes(&paths[0], &classes)?)
                }
            },
            // `paths` has no files for it, so the error above was already returned.
            DatasetName::Synthetic => {
                return Err(DataError::Config("the synthetic set has no files".into()));
            }
        })
    }
}

/// Subfolders that official archives extract to.
fn archive_subdir(name: DatasetName) -> Option<&'static str> {
    match name {
        DatasetName::Cifar10 => Some("cifar-10-batches-bin"),
        DatasetName::Cifar100 => Some("cifar-100-binary"),
        DatasetName::Stl10 => Some("stl10_binary"),
        _ => None,
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
            if name == DatasetName::FashionMnist {
                roots.push(PathBuf::from(DEBIAN_FASHION_MNIST));
            }
            roots
        }
    };
    roots
        .into_iter()
        .flat_map(|r| {
            let sub = archive_subdir(name).map(|s| r.join(s));
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
