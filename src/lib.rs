//! # auglocal
//!
//! Supervised local learning for deep image classifiers, on Burn: the network is cut into
//! gradient-isolated modules, each trained by its own auxiliary network, so a module's
//! activations are freed as soon as its own backward pass is done. AugLocal (Ma et al., ICLR
//! 2024) builds each aux net from a uniformly spaced sample of the units that follow the module,
//! with aux depth falling linearly for deeper modules.
//!
//! This crate re-exports the workspace's crates:
//! - [`model`]: networks as ordered lists of units (CIFAR ResNet-20..110, ImageNet
//!   ResNet-18..152, VGG-11..19, or Burn modules of your own) and their Burn modules;
//! - [`plan`]: the pure AugLocal planner (partition, depth schedule, unit selection, costs) and
//!   the aux nets built from a plan;
//! - [`data`]: readers for the official data files, the reference's augmentations, and an
//!   ordered prefetching loader;
//! - [`train`]: the local trainer (backprop through the same path), run directories with
//!   checkpoints and metrics, peak-memory measurement;
//! - [`kernels`]: hand-written kernels behind Burn's backend extension (`FastOps`: the CPU
//!   convolution, forward and backward, through im2col and GEMM on every core, and the
//!   training-mode BatchNorm fused with the residual and ReLU), and the `Conv2d` module and
//!   `batch_norm2d` function a network of one's own can use to train through them.
//!
//! ```
//! use auglocal::plan::{LocalConfig, Plan, Rule};
//! use auglocal::model::{Arch, NetworkConfig};
//!
//! let network = NetworkConfig::new(Arch::ResNet110).spec().unwrap();
//! let plan = Plan::new(&network, &LocalConfig::new(Rule::AugLocal, 55).with_depth(3)).unwrap();
//! assert_eq!(plan.num_modules(), 52);
//! ```

pub use auglocal_data as data;
pub use auglocal_kernels as kernels;
pub use auglocal_model as model;
pub use auglocal_plan as plan;
/// The planner under its former name ([`plan`]), kept so that code written against it builds.
#[doc(hidden)]
pub use auglocal_plan as aux;
pub use auglocal_train as train;
/// The Burn that auglocal is built with (0.21.0). Use it rather than a `burn` dependency of
/// your own; `use auglocal::burn;` puts it in scope for `#[derive(Module)]`.
pub use burn;
