//! The architectures auglocal builds, by family: the CIFAR ResNets of He et al. (2016), the
//! ImageNet ResNets (torchvision's layout) and VGG with BatchNorm, as the AugLocal reference
//! builds them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ModelError;

/// A family of networks: how its units are laid out and how AugLocal builds its aux nets.
/// Each family is one file of [`crate::family`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// `6n + 2` layers: a conv3x3 stem, three stages of `n` BasicBlocks of widths 16/32/64.
    CifarResNet,
    /// torchvision's ResNets: a conv7x7/2 + max-pool stem, four stages of BasicBlocks or
    /// Bottlenecks of 64/128/256/512 planes.
    ImageNetResNet,
    /// VGG with BatchNorm: conv3x3 + BN + ReLU units between 2x2 max-pools, a 3-layer MLP head.
    Vgg,
    /// A library user's own network ([`crate::CustomNetworkConfig`]): units the planner knows
    /// from a dry forward pass, auglocal's linear head.
    Custom,
}

/// A network architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// CIFAR, `n = 3`: 10 units.
    ResNet20,
    /// CIFAR, `n = 5`: 16 units.
    ResNet32,
    /// CIFAR, `n = 7`: 22 units.
    ResNet44,
    /// CIFAR, `n = 9`: 28 units.
    ResNet56,
    /// CIFAR, `n = 18`: 55 units.
    ResNet110,
    /// ImageNet, BasicBlocks `[2, 2, 2, 2]`: 9 units.
    ResNet18,
    /// ImageNet, BasicBlocks `[3, 4, 6, 3]`: 17 units.
    ResNet34,
    /// ImageNet, Bottlenecks `[3, 4, 6, 3]`: 17 units.
    ResNet50,
    /// ImageNet, Bottlenecks `[3, 4, 23, 3]`: 34 units.
    ResNet101,
    /// ImageNet, Bottlenecks `[3, 8, 36, 3]`: 51 units.
    ResNet152,
    /// VGG-11 (BN): 8 conv units.
    Vgg11,
    /// VGG-13 (BN): 10 conv units.
    Vgg13,
    /// VGG-16 (BN): 13 conv units.
    Vgg16,
    /// VGG-19 (BN): 16 conv units.
    Vgg19,
    /// A library user's own network, described by [`crate::CustomNetworkConfig::spec`]; not in
    /// [`Arch::ALL`], not parsed from the command line, and [`crate::NetworkConfig`] cannot
    /// lay it out.
    Custom,
}

impl Arch {
    /// Every architecture, family by family, shallowest first.
    pub const ALL: [Arch; 14] = [
        Arch::ResNet20,
        Arch::ResNet32,
        Arch::ResNet44,
        Arch::ResNet56,
        Arch::ResNet110,
        Arch::ResNet18,
        Arch::ResNet34,
        Arch::ResNet50,
        Arch::ResNet101,
        Arch::ResNet152,
        Arch::Vgg11,
        Arch::Vgg13,
        Arch::Vgg16,
        Arch::Vgg19,
    ];

    /// The name used on the command line and in JSON, e.g. `resnet32`, `vgg13`.
    pub fn name(self) -> &'static str {
        match self {
            Arch::ResNet20 => "resnet20",
            Arch::ResNet32 => "resnet32",
            Arch::ResNet44 => "resnet44",
            Arch::ResNet56 => "resnet56",
            Arch::ResNet110 => "resnet110",
            Arch::ResNet18 => "resnet18",
            Arch::ResNet34 => "resnet34",
            Arch::ResNet50 => "resnet50",
            Arch::ResNet101 => "resnet101",
            Arch::ResNet152 => "resnet152",
            Arch::Vgg11 => "vgg11",
            Arch::Vgg13 => "vgg13",
            Arch::Vgg16 => "vgg16",
            Arch::Vgg19 => "vgg19",
            Arch::Custom => "custom",
        }
    }

    /// The family.
    pub fn family(self) -> Family {
        match self {
            Arch::ResNet20 | Arch::ResNet32 | Arch::ResNet44 | Arch::ResNet56 | Arch::ResNet110 => {
                Family::CifarResNet
            }
            Arch::ResNet18
            | Arch::ResNet34
            | Arch::ResNet50
            | Arch::ResNet101
            | Arch::ResNet152 => Family::ImageNetResNet,
            Arch::Vgg11 | Arch::Vgg13 | Arch::Vgg16 | Arch::Vgg19 => Family::Vgg,
            Arch::Custom => Family::Custom,
        }
    }

    /// Side of the images the family is built for: 32 for the CIFAR ResNets (and for a custom
    /// network, whose size is the one it was described at), 224 for the ImageNet families. Any
    /// size the network's pools and strides allow works.
    pub fn default_image_size(self) -> usize {
        match self.family() {
            Family::CifarResNet | Family::Custom => 32,
            Family::ImageNetResNet | Family::Vgg => 224,
        }
    }

    /// The classes the family is built for: 10 for the CIFAR ResNets (CIFAR-10; and for a
    /// custom network), 1,000 for the ImageNet families (as torchvision's and the reference's
    /// ImageNet networks).
    pub fn default_classes(self) -> usize {
        match self.family() {
            Family::CifarResNet | Family::Custom => 10,
            Family::ImageNetResNet | Family::Vgg => 1000,
        }
    }

    fn known_names() -> String {
        Self::ALL.map(Arch::name).join(", ")
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Arch {
    type Err = ModelError;

    /// Parses `resnet32`, `ResNet32`, `resnet-32`, `VGG-13` or `vgg13_bn`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let key: String = s.chars().filter(|c| *c != '-' && *c != '_').collect();
        let key = key.to_ascii_lowercase();
        let key = key
            .strip_suffix("bn")
            .filter(|k| k.starts_with("vgg"))
            .unwrap_or(&key);
        Self::ALL
            .into_iter()
            .find(|arch| arch.name() == key)
            .ok_or_else(|| ModelError::UnknownArch {
                name: s.to_string(),
                known: Self::known_names(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_counts_of_every_family() {
        let units: Vec<usize> = Arch::ALL.iter().map(|a| a.num_units()).collect();
        assert_eq!(
            units,
            vec![10, 16, 22, 28, 55, 9, 17, 17, 34, 51, 8, 10, 13, 16]
        );
    }

    #[test]
    fn parses_common_spellings_and_rejects_others() {
        assert_eq!("resnet110".parse::<Arch>(), Ok(Arch::ResNet110));
        assert_eq!("ResNet-32".parse::<Arch>(), Ok(Arch::ResNet32));
        assert_eq!("VGG-13".parse::<Arch>(), Ok(Arch::Vgg13));
        assert_eq!("vgg13_bn".parse::<Arch>(), Ok(Arch::Vgg13));
        let err = "resnet33".parse::<Arch>().expect_err("not an architecture");
        assert!(err.to_string().contains("resnet33"), "{err}");
        assert!(err.to_string().contains("vgg19"), "{err}");
    }

    #[test]
    fn names_round_trip() {
        for arch in Arch::ALL {
            assert_eq!(arch.name().parse::<Arch>(), Ok(arch));
        }
    }
}
