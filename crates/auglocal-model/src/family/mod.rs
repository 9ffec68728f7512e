//! Network families: each file lays one family out as units and a head, as the reference
//! builds it; [`NetworkConfig::spec`] (here) checks a configuration and asks its family. A new family is a new file here, a name in [`crate::Arch`] and its parity test;
//! the planner, the aux builder and the trainer read only the [`NetworkSpec`](crate::NetworkSpec)
//! it returns.

pub mod cifar;
pub mod imagenet;
pub mod vgg;

use crate::spec::{
    HeadSpec, LocalStyle, MAX_CHANNELS, MAX_IMAGE_SIZE, MAX_WIDTH_MULTIPLIER, UnitSpec,
    check_classes,
};
use crate::{Arch, Family, ModelError, NetworkConfig, NetworkSpec};

impl NetworkConfig {
    /// Checks the configuration and lays the network out as units.
    ///
    /// Every size is bounded ([`MAX_CLASSES`], [`MAX_WIDTH_MULTIPLIER`], [`MAX_CHANNELS`],
    /// [`MAX_IMAGE_SIZE`]), so that parameter and multiply-add counts cannot overflow; an
    /// image too small for the network's pools is an error naming the smallest size.
    pub fn spec(&self) -> Result<NetworkSpec, ModelError> {
        check_classes(self.num_classes)?;
        if !(self.width_multiplier.is_finite()
            && self.width_multiplier > 0.0
            && self.width_multiplier <= MAX_WIDTH_MULTIPLIER)
        {
            return Err(ModelError::InvalidWidthMultiplier(self.width_multiplier));
        }
        if !(1..=MAX_CHANNELS).contains(&self.in_channels)
            || !(1..=MAX_IMAGE_SIZE).contains(&self.image_size)
        {
            return Err(ModelError::InvalidInput {
                channels: self.in_channels,
                size: self.image_size,
            });
        }
        let layout = layout(self).ok_or(ModelError::CustomLayout)?;
        let min = min_image_size(self.arch);
        if self.image_size < min {
            return Err(ModelError::ImageTooSmall {
                arch: self.arch,
                size: self.image_size,
                min,
            });
        }
        Ok(NetworkSpec {
            arch: self.arch,
            num_classes: self.num_classes,
            width_multiplier: self.width_multiplier,
            in_channels: self.in_channels,
            image_size: self.image_size,
            units: layout.units,
            head: layout.head,
            local: layout.local,
        })
    }
}

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

impl Arch {
    /// Number of units (stem and blocks, or conv units); 0 for a custom network, which has as
    /// many as its owner built.
    pub fn num_units(self) -> usize {
        match self.family() {
            Family::CifarResNet => cifar::num_units(self),
            Family::ImageNetResNet => imagenet::num_units(self),
            Family::Vgg => vgg::num_units(self),
            Family::Custom => 0,
        }
    }
}

/// The smallest input side `arch` takes.
pub(crate) fn min_image_size(arch: Arch) -> usize {
    match arch.family() {
        Family::CifarResNet | Family::ImageNetResNet | Family::Custom => 1,
        Family::Vgg => vgg::MIN_IMAGE_SIZE,
    }
}
