//! Network families: each file lays one family out as units and a head, as the reference
//! builds it. A new family is a new file here, a name in [`crate::Arch`] and its parity test;
//! the planner, the aux builder and the trainer read only the [`NetworkSpec`](crate::NetworkSpec)
//! it returns.

pub mod cifar;
pub mod imagenet;
pub mod vgg;

use crate::spec::{HeadSpec, LocalStyle, UnitSpec};
use crate::{Arch, Family, NetworkConfig};

/// What a family function returns.
pub(crate) struct Layout {
    pub units: Vec<UnitSpec>,
    pub head: HeadSpec,
    pub local: LocalStyle,
}

/// Lays `config`'s network out (sizes already checked to be in range); `None` for a custom
/// network, which its owner describes ([`crate::CustomNetworkConfig`]).
pub(crate) fn layout(config: &NetworkConfig) -> Option<Layout> {
    match config.arch.family() {
        Family::CifarResNet => Some(cifar::layout(config)),
        Family::ImageNetResNet => Some(imagenet::layout(config)),
        Family::Vgg => Some(vgg::layout(config)),
        Family::Custom => None,
    }
}

/// Number of units of `arch` (0 for a custom network: it has as many as its owner built).
pub(crate) fn num_units(arch: Arch) -> usize {
    match arch.family() {
        Family::CifarResNet => cifar::num_units(arch),
        Family::ImageNetResNet => imagenet::num_units(arch),
        Family::Vgg => vgg::num_units(arch),
        Family::Custom => 0,
    }
}

/// The smallest input side `arch` takes.
pub(crate) fn min_image_size(arch: Arch) -> usize {
    match arch.family() {
        Family::CifarResNet | Family::ImageNetResNet | Family::Custom => 1,
        Family::Vgg => vgg::MIN_IMAGE_SIZE,
    }
}
