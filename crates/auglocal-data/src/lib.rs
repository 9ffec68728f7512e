#![doc = include_str!("../README.md")]
//!
//! ## In this crate
//!
//! - [`formats`]: CIFAR-10/100 binary, SVHN format 2 (MATLAB v5), STL-10 binary, IDX (MNIST,
//!   Fashion-MNIST; plain or gzipped) and ImageNet-style image folders, with PNG/JPEG decoding
//!   ([`formats::decode`]). Each parses and validates bytes; errors name the file, what was
//!   expected and what was found. Memory is bounded by what a file's header declares (and
//!   decoded images by fixed limits), so no input makes a reader swell.
//! - [`ImageSet`]: a whole set in one contiguous u8 buffer; [`ImageSource`]: anything that
//!   loads image `i` (sets, lazily decoded folders, the [`Synthetic`] set).
//! - [`Augment`] and [`ImagePipeline`]: pad + crop + flip, random-resized crop, resize + centre
//!   crop, grey to RGB, 28 -> 32 canvas, normalisation, with per-image seeded randomness;
//!   [`Preprocess`]: any image file to a trained network's input (inference).
//! - [`ImageBatcher`] (a Burn `Batcher`) and [`Loader`]: batches in a reproducible order, made
//!   on worker threads.
//! - [`registry`]: data sets by name ([`DatasetName`]), found in the folder given, `data/<name>` or
//!   Debian's Fashion-MNIST folder; each data set's facts (shape, classes, normalisation,
//!   augmentations, files, reader, hint) are one file of `src/datasets/`.

pub mod augment;
#[cfg(feature = "burn")]
mod batcher;
mod datasets;
mod error;
pub mod formats;
mod image;
mod image_pipeline;
#[cfg(feature = "burn")]
mod loader;
mod preprocess;
pub mod registry;
mod source;
mod synthetic;
pub mod transform;

pub use augment::Augment;
#[cfg(feature = "burn")]
pub use batcher::{ImageBatch, ImageBatcher};
pub use error::DataError;
pub use image::{ImageSet, ImageShape, Sample};
pub use image_pipeline::{ImagePipeline, Normalize};
#[cfg(feature = "burn")]
pub use loader::{Batches, Loader, LoaderConfig};
pub use preprocess::Preprocess;
pub use registry::{Data, DataConfig, DatasetName, Split};
#[cfg(feature = "burn")]
pub use source::SourceDataset;
pub use source::{First, ImageSource};
pub use synthetic::Synthetic;
