//! The CIFAR ResNets of He et al. (2016): a stem and three stages of BasicBlocks.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ModelError;

/// A CIFAR ResNet with `6n + 2` layers: a stem, then three stages of `n` BasicBlocks of widths
/// 16, 32 and 64, the second and third starting with a stride-2 block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// `n = 3`: 10 units.
    ResNet20,
    /// `n = 5`: 16 units.
    ResNet32,
    /// `n = 7`: 22 units.
    ResNet44,
    /// `n = 9`: 28 units.
    ResNet56,
    /// `n = 18`: 55 units.
    ResNet110,
}

impl Arch {
    /// Every architecture, shallowest first.
    pub const ALL: [Arch; 5] = [
        Arch::ResNet20,
        Arch::ResNet32,
        Arch::ResNet44,
        Arch::ResNet56,
        Arch::ResNet110,
    ];

    /// The name used on the command line and in JSON, e.g. `resnet32`.
    pub fn name(self) -> &'static str {
        match self {
            Arch::ResNet20 => "resnet20",
            Arch::ResNet32 => "resnet32",
            Arch::ResNet44 => "resnet44",
            Arch::ResNet56 => "resnet56",
            Arch::ResNet110 => "resnet110",
        }
    }

    /// BasicBlocks per stage (`n`).
    pub fn blocks_per_stage(self) -> usize {
        match self {
            Arch::ResNet20 => 3,
            Arch::ResNet32 => 5,
            Arch::ResNet44 => 7,
            Arch::ResNet56 => 9,
            Arch::ResNet110 => 18,
        }
    }

    /// Number of units: the stem and every BasicBlock.
    pub fn num_units(self) -> usize {
        1 + 3 * self.blocks_per_stage()
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

    /// Parses `resnet32`, `ResNet32` or `resnet-32`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let key: String = s.chars().filter(|c| *c != '-' && *c != '_').collect();
        let key = key.to_ascii_lowercase();
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
    fn unit_counts_follow_6n_plus_2() {
        let units: Vec<usize> = Arch::ALL.iter().map(|a| a.num_units()).collect();
        assert_eq!(units, vec![10, 16, 22, 28, 55]);
    }

    #[test]
    fn parses_common_spellings_and_rejects_others() {
        assert_eq!("resnet110".parse::<Arch>(), Ok(Arch::ResNet110));
        assert_eq!("ResNet-32".parse::<Arch>(), Ok(Arch::ResNet32));
        let err = "resnet33".parse::<Arch>().expect_err("not an architecture");
        assert!(err.to_string().contains("resnet33"), "{err}");
        assert!(err.to_string().contains("resnet110"), "{err}");
    }
}
