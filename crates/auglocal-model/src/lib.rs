#![doc = include_str!("../README.md")]
//!
//! ## In this crate
//!
//! Two layers, kept apart:
//! - **pure description** ([`Arch`], [`NetworkConfig`], [`NetworkSpec`], [`UnitSpec`],
//!   [`HeadSpec`], [`cost`]): widths, strides, feature-map sizes, parameter and multiply-add
//!   counts, with no tensors. Each [`Family`] is one file of [`family`]: the CIFAR ResNets, the
//!   ImageNet ResNets (BasicBlock and Bottleneck) and VGG with BatchNorm;
//! - **Burn modules** ([`nn`]): [`nn::Network`] and its units, built by [`NetworkSpec::init`]
//!   and runnable unit by unit;
//! - **your own network**: any Burn modules implementing [`LocalUnit`], described for the
//!   planner by one dry forward pass ([`CustomNetworkConfig::spec`]);
//! - **exported models** ([`export`]): the trained primary network alone, as safetensors
//!   with a JSON manifest (description, preprocessing, class names, checksum), loaded back
//!   for inference on any backend by [`export::load`].
//!
//! Without the default `burn` feature only the descriptions and the export manifest build.
//!
//! ```
//! use auglocal_model::{Arch, NetworkConfig};
//!
//! let spec = NetworkConfig::new(Arch::ResNet32).spec().unwrap();
//! assert_eq!(spec.num_units(), 16);
//! assert_eq!(spec.cost().params, 466_906);
//!
//! let vgg = NetworkConfig::new(Arch::Vgg13).with_num_classes(1000).spec().unwrap();
//! assert_eq!((vgg.num_units(), vgg.image_size), (10, 224));
//! assert_eq!(vgg.cost().params, 133_053_736);
//! ```

mod arch;
pub mod cost;
#[cfg(feature = "burn")]
mod custom;
mod error;
pub mod export;
pub mod family;
#[cfg(feature = "burn")]
pub mod nn;
mod spec;

pub use arch::{Arch, Family};
pub use cost::{BOTTLENECK_EXPANSION, Cost};
#[cfg(feature = "burn")]
pub use custom::{CustomNetworkConfig, LocalUnit};
pub use error::ModelError;
pub use spec::{
    AuxHeadStyle, HeadSpec, Init, LocalStyle, MAX_CHANNELS, MAX_CLASSES, MAX_IMAGE_SIZE,
    MAX_WIDTH_MULTIPLIER, NetworkConfig, NetworkSpec, STAGE_WIDTHS, UnitKind, UnitSpec, VGG_POOL,
};
