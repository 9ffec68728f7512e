//! Exported models: the trained primary network alone (no aux nets, no optimiser state), for
//! inference anywhere.
//!
//! An export is two files side by side:
//! - `NAME.safetensors`: the network's tensors (weights and BatchNorm running statistics, f32)
//!   in the [safetensors](https://huggingface.co/docs/safetensors) format, written by Burn's
//!   `burn-store`. Burn loads it with `SafetensorsStore` into the same module; Python reads
//!   it with `safetensors.torch.load_file`. Tensor names are the module's field paths
//!   (`units.3.Block.conv1.weight`, `head.Linear.linear.weight`).
//! - `NAME.json`: the [`Manifest`]: the network's description ([`crate::NetworkSpec`] and a
//!   [`Summary`]), the data set's preprocessing ([`auglocal_data::Preprocess`]: stored shape,
//!   canvas, resize, mean and std), class names, where the weights came from, and the weights
//!   file's size and SHA-256.
//!
//! [`load`] rebuilds auglocal's own networks from the manifest; [`load_custom`] loads into a
//! library user's own units ([`crate::LocalUnit`]), given freshly built ones. Loading checks
//! the checksum first, then that every tensor of the module is in the file with its shape and
//! that the file holds nothing else.

mod error;
#[cfg(feature = "burn")]
mod load;
mod manifest;

pub use error::ExportError;
#[cfg(feature = "burn")]
pub use load::{Exported, Prediction, Prepared, load, load_custom, read_image, save};
pub use manifest::{
    MANIFEST_FORMAT, MAX_CLASS_NAME, MAX_UNITS, Manifest, Provenance, Summary, WeightsFile,
    manifest_path,
};
