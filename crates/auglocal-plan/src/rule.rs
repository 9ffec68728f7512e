//! The local-learning rules: which aux net each isolation point gets.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::PlanError;

/// How the network is cut and what trains each module.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rule {
    /// End-to-end backprop: one module, no isolation point (K is ignored).
    Bp,
    /// Greedy local learning: isolation points after units 0..K-2, each with a GAP + Linear head.
    Greedy,
    /// Decoupled Greedy Learning (Belilovsky et al. 2020): the greedy partition with DGL's
    /// convolutional + MLP aux head.
    Dgl,
    /// AugLocal: aux nets built from a uniform sample of the units that follow each isolation
    /// point, with the `K - d` partition and (optionally) pyramidal depth.
    #[serde(rename = "auglocal")]
    AugLocal,
    /// PredSim (Nøkland & Eidnes 2019): the greedy partition; each module is trained by a
    /// weighted sum of a similarity-matching loss and a pooled prediction's cross-entropy.
    #[serde(rename = "predsim")]
    PredSim,
    /// InfoPro (Wang et al. 2021): the greedy partition; each module is trained by a weighted
    /// sum of the reconstruction of the input image and a small classifier's cross-entropy,
    /// the weights moving linearly from the first module to the last.
    #[serde(rename = "infopro")]
    InfoPro,
}

impl Rule {
    /// Every rule.
    pub const ALL: [Rule; 6] = [
        Rule::Bp,
        Rule::Greedy,
        Rule::Dgl,
        Rule::InfoPro,
        Rule::PredSim,
        Rule::AugLocal,
    ];

    /// The name used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Rule::Bp => "bp",
            Rule::Greedy => "greedy",
            Rule::Dgl => "dgl",
            Rule::AugLocal => "auglocal",
            Rule::PredSim => "predsim",
            Rule::InfoPro => "infopro",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Rule {
    type Err = PlanError;

    /// Parses a rule name, ignoring case (`AugLocal`, `auglocal`, `BP`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let key = s.to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|r| r.name() == key)
            .ok_or_else(|| PlanError::UnknownRule {
                name: s.to_string(),
                known: Self::ALL.map(Rule::name).join(", "),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rule_names_and_rejects_others() {
        assert_eq!("AugLocal".parse::<Rule>(), Ok(Rule::AugLocal));
        assert_eq!("bp".parse::<Rule>(), Ok(Rule::Bp));
        let err = "hebbian".parse::<Rule>().expect_err("not a rule");
        assert!(matches!(err, PlanError::UnknownRule { .. }));
        assert!(
            err.to_string()
                .contains("bp, greedy, dgl, infopro, predsim, auglocal"),
            "{err}"
        );
    }

    #[test]
    fn names_round_trip_through_json() {
        for rule in Rule::ALL {
            let json = serde_json::to_string(&rule).expect("serialise");
            assert_eq!(json, format!("\"{}\"", rule.name()));
            assert_eq!(serde_json::from_str::<Rule>(&json).expect("parse"), rule);
        }
    }
}
