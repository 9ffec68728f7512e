//! The local-learning configuration: rule, K, maximum aux depth d, pyramid coefficient, and
//! InfoPro's loss weights.

use std::fmt;
use std::str::FromStr;

use auglocal_model::Arch;
use serde::{Deserialize, Serialize};

use crate::Rule;

/// What to plan: the paper's "K local modules" (`k`), the maximum aux depth `d` (`depth`) and the
/// pyramid coefficient `c` (`pyramid`; `None` keeps every aux net at depth `d`).
///
/// `depth` and `pyramid` only shape AugLocal's aux nets; `k` is ignored by `bp`;
/// `infopro_weights` weighs InfoPro's losses only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LocalConfig {
    /// The rule.
    pub rule: Rule,
    /// K: the number of gradient-isolated local modules before AugLocal's `K - d` adjustment.
    pub k: usize,
    /// d: aux depth at the first isolation point (the number of BasicBlocks of each aux net).
    pub depth: usize,
    /// c: with the pyramid on, aux depth falls linearly from `d` at the first isolation point to
    /// about `d - c (d - 1)` at the last. 0.5 in every published run.
    pub pyramid: Option<f64>,
    /// InfoPro's loss weights; `None` takes the reference's for the network
    /// ([`LossWeights::reference`]). Absent from the JSON when `None`, as in plans written
    /// before InfoPro.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infopro_weights: Option<LossWeights>,
}

impl LocalConfig {
    /// `rule` with `k` modules, d = 2, pyramid 0.5 and the reference's InfoPro weights.
    pub fn new(rule: Rule, k: usize) -> Self {
        Self {
            rule,
            k,
            depth: 2,
            pyramid: Some(0.5),
            infopro_weights: None,
        }
    }

    /// With aux depth `depth`.
    pub fn with_depth(self, depth: usize) -> Self {
        Self { depth, ..self }
    }

    /// With pyramid coefficient `pyramid` (`None`: every aux net at depth d).
    pub fn with_pyramid(self, pyramid: Option<f64>) -> Self {
        Self { pyramid, ..self }
    }

    /// With InfoPro's loss weights (`None`: the reference's for the network).
    pub fn with_infopro_weights(self, infopro_weights: Option<LossWeights>) -> Self {
        Self {
            infopro_weights,
            ..self
        }
    }

    /// Plain end-to-end backprop.
    pub fn bp() -> Self {
        Self::new(Rule::Bp, 1)
    }
}

/// InfoPro's loss weights, `[reconstruction, classification]` (the paper's `lambda_r` and
/// `lambda_c`), at the first isolation point and at the last; the points between take the
/// linear interpolation (point `i` of `n`: ratio `i / (n - 1)`, as the reference).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LossWeights {
    /// At the first isolation point.
    pub first: [f64; 2],
    /// At the last isolation point.
    pub last: [f64; 2],
}

impl LossWeights {
    /// The reference's for ResNet-32 with K = 16, and for every network but ResNet-110:
    /// (5, 0.05) -> (0.2, 0.5).
    pub const RESNET32: LossWeights = LossWeights {
        first: [5.0, 0.05],
        last: [0.2, 0.5],
    };
    /// The reference's for ResNet-110 with K = 55: (5, 0) -> (0.5, 1).
    pub const RESNET110: LossWeights = LossWeights {
        first: [5.0, 0.0],
        last: [0.5, 1.0],
    };

    /// The reference's weights for `arch`: ResNet-110's for ResNet-110, ResNet-32's for every
    /// other network (the reference publishes only these two).
    pub fn reference(arch: Arch) -> Self {
        match arch {
            Arch::ResNet110 => Self::RESNET110,
            _ => Self::RESNET32,
        }
    }

    /// The weights of isolation point `index` of `points`.
    pub fn at(&self, index: usize, points: usize) -> [f64; 2] {
        let ratio = if points > 1 {
            index as f64 / (points - 1) as f64
        } else {
            0.0
        };
        [0, 1].map(|i| self.first[i] * (1.0 - ratio) + self.last[i] * ratio)
    }

    /// Whether every weight is finite and at least 0.
    pub fn is_valid(&self) -> bool {
        self.first
            .iter()
            .chain(&self.last)
            .all(|w| w.is_finite() && *w >= 0.0)
    }
}

impl fmt::Display for LossWeights {
    /// `R1,C1,R2,C2`, as `--infopro-weights` takes them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [r1, c1] = self.first;
        let [r2, c2] = self.last;
        write!(f, "{r1},{c1},{r2},{c2}")
    }
}

impl FromStr for LossWeights {
    type Err = String;

    /// `R1,C1,R2,C2`: reconstruction and classification weights at the first isolation point,
    /// then at the last.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let values: Vec<f64> = s
            .split(',')
            .map(|v| v.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|e| format!("{s:?}: {e}; expected four numbers R1,C1,R2,C2"))?;
        let [r1, c1, r2, c2] = values[..] else {
            return Err(format!(
                "{s:?} has {} numbers; expected four, R1,C1,R2,C2 (reconstruction and \
                 classification at the first isolation point, then at the last)",
                values.len()
            ));
        };
        let weights = LossWeights {
            first: [r1, c1],
            last: [r2, c2],
        };
        if !weights.is_valid() {
            return Err(format!("{s:?}: every weight must be finite and at least 0"));
        }
        Ok(weights)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_move_linearly_from_the_first_point_to_the_last() {
        let w = LossWeights::RESNET32;
        assert_eq!(w.at(0, 15), [5.0, 0.05]);
        assert_eq!(w.at(14, 15), [0.2, 0.5]);
        let [r, c] = w.at(7, 15);
        assert!((r - 2.6).abs() < 1e-12 && (c - 0.275).abs() < 1e-12);
        // One isolation point takes the first weights, as the reference (ratio 0).
        assert_eq!(w.at(0, 1), [5.0, 0.05]);
        assert_eq!(
            LossWeights::reference(Arch::ResNet110),
            LossWeights::RESNET110
        );
        assert_eq!(
            LossWeights::reference(Arch::ResNet20),
            LossWeights::RESNET32
        );
    }

    #[test]
    fn weights_parse_back_and_bad_ones_are_refused() {
        let w: LossWeights = "5,0,0.5,1".parse().expect("four weights");
        assert_eq!(w, LossWeights::RESNET110);
        assert_eq!(w.to_string().parse::<LossWeights>(), Ok(w));
        for bad in [
            "5,0,0.5",
            "5,0,0.5,1,2",
            "a,0,0,0",
            "-1,0,0,0",
            "inf,0,0,0",
            "NaN,0,0,0",
        ] {
            assert!(bad.parse::<LossWeights>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_configuration_without_weights_reads_and_writes_as_before_infopro() {
        // Plans written before InfoPro had no `infopro_weights`; a plan without them writes
        // none, so those plans still compare equal on resume.
        let old = r#"{"rule":"auglocal","k":16,"depth":2,"pyramid":0.5}"#;
        let config: LocalConfig = serde_json::from_str(old).expect("an old configuration");
        assert_eq!(config, LocalConfig::new(Rule::AugLocal, 16));
        assert_eq!(serde_json::to_string(&config).expect("json"), old);
        let with = config.with_infopro_weights(Some(LossWeights::RESNET32));
        let json = serde_json::to_string(&with).expect("json");
        assert!(json.contains(r#""infopro_weights":{"first":[5.0,0.05],"last":[0.2,0.5]}"#));
        assert_eq!(
            serde_json::from_str::<LocalConfig>(&json).expect("parse"),
            with
        );
    }
}
