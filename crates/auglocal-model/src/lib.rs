//! Networks as ordered lists of units, and the Burn modules built from them.
//!
//! Two layers, kept apart:
//! - **pure description** ([`Arch`], [`ResNetConfig`], [`NetworkSpec`], [`UnitSpec`], [`cost`]):
//!   widths, strides, feature-map sizes, parameter and multiply-add counts, with no tensors;
//! - **Burn modules** ([`nn`]): [`nn::ResNet`] and its parts, built by [`NetworkSpec::init`] and
//!   runnable unit by unit.
//!
//! ```
//! use auglocal_model::{Arch, ResNetConfig};
//!
//! let spec = ResNetConfig::new(Arch::ResNet32).spec().unwrap();
//! assert_eq!(spec.num_units(), 16);
//! assert_eq!(spec.cost().params, 466_906);
//! ```

mod arch;
pub mod cost;
mod error;
pub mod nn;
mod spec;

pub use arch::Arch;
pub use cost::Cost;
pub use error::ModelError;
pub use spec::{
    MAX_CHANNELS, MAX_CLASSES, MAX_IMAGE_SIZE, MAX_WIDTH_MULTIPLIER, NetworkSpec, ResNetConfig,
    STAGE_WIDTHS, UnitKind, UnitSpec,
};
