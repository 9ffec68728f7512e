//! Errors of local-learning plans.

use auglocal_model::Arch;

/// Why a local-learning configuration cannot be planned for a network.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// The rule name is not one of [`crate::Rule::ALL`].
    #[error("unknown rule '{name}'; known: {known}")]
    UnknownRule {
        /// The name that was given.
        name: String,
        /// The known names, comma-separated.
        known: String,
    },
    /// K = 0.
    #[error("K (the number of local modules) must be at least 1 (K = 1 is backprop), got 0")]
    ZeroK,
    /// K larger than the number of units.
    #[error("K = {k} is larger than the {units} units of {arch}; use K <= {units}")]
    KTooLarge {
        /// K as given.
        k: usize,
        /// Units of the network.
        units: usize,
        /// The network.
        arch: Arch,
    },
    /// Maximum aux depth d = 0.
    #[error("the aux depth d must be at least 1, got 0")]
    ZeroDepth,
    /// Pyramid coefficient outside [0, 1] (or NaN).
    #[error("the pyramid coefficient must be in [0, 1], got {0}")]
    PyramidOutOfRange(f64),
    /// AugLocal's K - d partition leaves fewer than 2 modules.
    #[error(
        "AugLocal with K = {k} and d = {depth} leaves {modules} gradient-isolated module(s) \
         (K - d); it needs at least 2: use K in {min_k}..={max_k} for {arch}, or a smaller d"
    )]
    TooFewModules {
        /// K as given.
        k: usize,
        /// d as given.
        depth: usize,
        /// K - d, floored at 0.
        modules: usize,
        /// Smallest K that works with this d (d + 2).
        min_k: usize,
        /// Largest K (the number of units).
        max_k: usize,
        /// The network.
        arch: Arch,
    },
    /// d so large that no K works.
    #[error(
        "the aux depth d = {depth} is too large for {arch} ({units} units): AugLocal needs \
         K - d >= 2 with K <= {units}, so d <= {max_depth}"
    )]
    DepthTooLarge {
        /// d as given.
        depth: usize,
        /// Units of the network.
        units: usize,
        /// Largest usable d (units - 2).
        max_depth: usize,
        /// The network.
        arch: Arch,
    },
    /// InfoPro loss weights that are negative or not finite.
    #[error(
        "InfoPro's loss weights must be finite and at least 0, got {0} (reconstruction and \
         classification at the first isolation point, then at the last)"
    )]
    BadLossWeights(crate::LossWeights),
    /// A pipeline of more stages than modules, or of none.
    #[error(
        "a pipeline of {stages} stages needs 1 to {modules} stages: the plan has {modules} \
         gradient-isolated module(s), and each stage trains at least one{hint}"
    )]
    PipelineStages {
        /// Stages asked for.
        stages: usize,
        /// Modules of the plan.
        modules: usize,
        /// What to change.
        hint: &'static str,
    },
}
