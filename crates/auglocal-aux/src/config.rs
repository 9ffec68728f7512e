//! The local-learning configuration: rule, K, maximum aux depth d, pyramid coefficient.

use burn::config::Config;

use crate::Rule;

/// What to plan: the paper's "K local modules" (`k`), the maximum aux depth `d` (`depth`) and the
/// pyramid coefficient `c` (`pyramid`; `None` keeps every aux net at depth `d`).
///
/// `depth` and `pyramid` only shape AugLocal's aux nets; `k` is ignored by `bp`.
#[derive(Config, Debug, PartialEq)]
pub struct LocalConfig {
    /// The rule.
    pub rule: Rule,
    /// K: the number of gradient-isolated local modules before AugLocal's `K - d` adjustment.
    pub k: usize,
    /// d: aux depth at the first isolation point (the number of BasicBlocks of each aux net).
    #[config(default = 2)]
    pub depth: usize,
    /// c: with the pyramid on, aux depth falls linearly from `d` at the first isolation point to
    /// about `d - c (d - 1)` at the last. 0.5 in every published run.
    #[config(default = "Some(0.5)")]
    pub pyramid: Option<f64>,
}

impl LocalConfig {
    /// Plain end-to-end backprop.
    pub fn bp() -> Self {
        Self::new(Rule::Bp, 1)
    }
}
