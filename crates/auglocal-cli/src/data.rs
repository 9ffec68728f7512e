//! `auglocal data`: find a data set, read it, and say what the trainer will see.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use auglocal_data::formats::encode::write_png;
use auglocal_data::transform::Padding;
use auglocal_data::{Augment, Data, DataConfig, DatasetName, ImagePipeline, ImageSource};
use clap::Args;

use crate::format::thousands;

/// Flags of `auglocal data`.
#[derive(Args, Debug)]
pub struct DataArgs {
    /// The data set: cifar10, cifar100, svhn, stl10, imagenet, fashion-mnist, mnist or
    /// synthetic. Fashion-MNIST (28x28 grey, padded to 32x32 and repeated to 3 channels)
    /// stands in for CIFAR-10 where CIFAR-10 is not available.
    #[arg(long, default_value = "fashion-mnist")]
    dataset: DatasetName,

    /// Folder holding the data set's files (or a folder with a <dataset>/ subfolder). Without
    /// it: $AUGLOCAL_DATA_DIR/<dataset>, data/<dataset>, and for Fashion-MNIST Debian's
    /// /usr/share/datasets/fashion-mnist.
    #[arg(long)]
    data_dir: Option<PathBuf>,

    /// Side of the square images the network takes [default: the data set's: 32, 96 for
    /// stl10, 224 for imagenet].
    #[arg(long)]
    image_size: Option<usize>,

    /// Also write the first --limit test images (or training images, with --split train) as
    /// PNG files, as stored, into DIR/<label>/<index>.png: real images to try
    /// `auglocal predict` on (it scores such class folders).
    #[arg(long, value_name = "DIR")]
    write_images: Option<PathBuf>,

    /// The split --write-images writes.
    #[arg(long, default_value = "test", requires = "write_images")]
    split: SplitArg,

    /// How many images --write-images writes.
    #[arg(long, default_value_t = 100, requires = "write_images")]
    limit: usize,
}

/// A split on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SplitArg {
    /// The training images.
    Train,
    /// The test images.
    Test,
}

/// Opens the data set and prints a summary.
pub fn run(args: &DataArgs) -> Result<()> {
    let size = args
        .image_size
        .unwrap_or_else(|| args.dataset.default_image_size());
    if !(1..=auglocal_model::MAX_IMAGE_SIZE).contains(&size) {
        return Err(crate::exit::usage(format!(
            "--image-size must be in 1..={}, got {size}",
            auglocal_model::MAX_IMAGE_SIZE
        )));
    }
    if let Some(dir) = &args.write_images {
        crate::output::OutputFile::check_folder(dir)?;
    }
    let mut config = DataConfig::new(args.dataset, size);
    config.data_dir = args.data_dir.clone();
    let data = Data::open(&config).with_context(|| format!("opening {}", args.dataset))?;
    match &data.location {
        Some(dir) => println!("{}: read from {}", data.dataset, dir.display()),
        None => println!("{}: generated (no files)", data.dataset),
    }
    for (split, source, pipeline) in [
        ("train", &data.train, &data.train_pipeline),
        ("test", &data.test, &data.test_pipeline),
    ] {
        let stored = source.shape().map_or("varying sizes".to_string(), |s| {
            format!("{}x{}x{}", s.channels, s.height, s.width)
        });
        println!(
            "  {split:5} {:>7} images, stored {stored}, {}",
            thousands(source.len() as u64),
            describe(pipeline)
        );
    }
    // Every image of both splits is read and decoded now, so that a file that does not load
    // is found here rather than in the middle of a training epoch.
    check_images("train", data.train.as_ref())?;
    let counts = class_counts(data.test.as_ref())?;
    println!(
        "  {} classes; test images per class: {}",
        data.num_classes,
        counts
            .iter()
            .map(|c| thousands(*c as u64))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(dir) = &args.write_images {
        let source = match args.split {
            SplitArg::Train => &data.train,
            SplitArg::Test => &data.test,
        };
        let n = write_images(source.as_ref(), dir, args.limit)?;
        println!(
            "  wrote {} images into {}/<label>/",
            thousands(n as u64),
            dir.display()
        );
    }
    Ok(())
}

/// Writes the first `limit` images of `source` to `dir/<label>/<index>.png`.
fn write_images(source: &dyn ImageSource, dir: &Path, limit: usize) -> Result<usize> {
    let n = limit.min(source.len());
    let width = source.len().to_string().len();
    for i in 0..n {
        let sample = source.load(i)?;
        let folder = dir.join(sample.label.to_string());
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("creating {}", folder.display()))?;
        write_png(&sample, &folder.join(format!("{i:0width$}.png")))?;
    }
    Ok(n)
}

/// The most failing images named in `data`'s error.
const BAD_IMAGES_SHOWN: usize = 5;

/// Loads every image of `source`; refuses (exit 2) the split if any does not load, naming the
/// first few.
fn check_images(split: &str, source: &dyn ImageSource) -> Result<()> {
    load_all(split, source, |_| {})
}

/// Loads every image of `source`, calling `each` on the ones that load; refuses the split if
/// any does not, naming the first few.
fn load_all(
    split: &str,
    source: &dyn ImageSource,
    mut each: impl FnMut(&auglocal_data::Sample),
) -> Result<()> {
    let mut bad = Vec::new();
    let mut failed = 0usize;
    for i in 0..source.len() {
        match source.load(i) {
            Ok(sample) => each(&sample),
            Err(e) => {
                failed += 1;
                if bad.len() < BAD_IMAGES_SHOWN {
                    bad.push(format!("  {e}"));
                }
            }
        }
    }
    if failed > 0 {
        return Err(crate::exit::usage(format!(
            "{failed} of {} {split} images do not load; remove or replace them (the first {}):\n{}",
            thousands(source.len() as u64),
            bad.len(),
            bad.join("\n")
        )));
    }
    Ok(())
}

fn class_counts(source: &dyn ImageSource) -> Result<Vec<usize>> {
    let mut counts = vec![0usize; source.num_classes()];
    load_all("test", source, |sample| {
        if let Some(c) = counts.get_mut(sample.label) {
            *c += 1;
        }
    })?;
    Ok(counts)
}

fn describe(p: &ImagePipeline) -> String {
    let mut steps = Vec::new();
    if let Some(size) = p.canvas {
        steps.push(format!("centred on a {size}x{size} canvas"));
    }
    steps.push(match &p.augment {
        Augment::None => "no augmentation".to_string(),
        Augment::PadCrop {
            pad,
            padding,
            size,
            flip,
        } => format!(
            "{} pad {pad} + random crop {size}{}",
            match padding {
                Padding::Reflect => "reflect",
                Padding::Zero => "zero",
            },
            if *flip { " + horizontal flip" } else { "" }
        ),
        Augment::RandomResizedCrop { size, flip } => format!(
            "random resized crop {size}{}",
            if *flip { " + horizontal flip" } else { "" }
        ),
        Augment::ResizeCenterCrop { resize, crop } => {
            format!("resize {resize} + centre crop {crop}")
        }
    });
    let n = &p.normalize;
    steps.push(format!(
        "normalised with mean ({:.3}, {:.3}, {:.3}), std ({:.3}, {:.3}, {:.3})",
        n.mean[0], n.mean[1], n.mean[2], n.std[0], n.std[1], n.std[2]
    ));
    steps.join(", ")
}
