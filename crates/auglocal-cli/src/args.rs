//! Flags shared by the commands that build a network and a local-learning plan.

use std::fmt;
use std::str::FromStr;

use anyhow::Result;
use auglocal_aux::{LocalConfig, LossWeights, Rule};
use auglocal_model::{Arch, NetworkConfig, NetworkSpec};
use clap::Args;

/// The primary network.
#[derive(Args, Debug, Clone)]
pub struct NetworkArgs {
    /// The primary network, seen as an ordered list of units (the stem, each residual block
    /// or VGG stage): a CIFAR ResNet (resnet20, resnet32, resnet44, resnet56, resnet110), an
    /// ImageNet ResNet (resnet18, resnet34, resnet50, resnet101, resnet152) or a VGG with
    /// BatchNorm (vgg11, vgg13, vgg16, vgg19); `auglocal plan --arch X` shows its units.
    #[arg(long, default_value = "resnet32")]
    pub arch: Arch,

    /// Number of classes of the primary head and of every auxiliary network.
    #[arg(long, default_value_t = 10)]
    pub classes: usize,

    /// Width multiplier of every width (0.25 gives a quarter-width network).
    #[arg(long, default_value_t = 1.0)]
    pub width: f64,

    /// Side of the square input image [default: the network's, 32 for the CIFAR ResNets, 224
    /// for the ImageNet ResNets and VGG].
    #[arg(long)]
    pub image_size: Option<usize>,
}

impl NetworkArgs {
    /// Validates the flags into a network description.
    pub fn spec(&self) -> Result<NetworkSpec> {
        Ok(NetworkConfig::new(self.arch)
            .with_num_classes(self.classes)
            .with_width_multiplier(self.width)
            .with_image_size(
                self.image_size
                    .unwrap_or_else(|| self.arch.default_image_size()),
            )
            .spec()?)
    }
}

/// The local-learning rule and its settings, in the paper's terms.
#[derive(Args, Debug, Clone)]
pub struct LocalArgs {
    /// The learning rule. bp: end-to-end backpropagation (one module; K is ignored).
    /// greedy: supervised greedy local learning, a GAP + linear classifier after each of the
    /// first K-1 units. dgl: Decoupled Greedy Learning's auxiliary head at the same places.
    /// predsim: PredSim at the same places, 0.99 x a similarity-matching loss + 0.01 x the
    /// cross-entropy of a pooled linear prediction. auglocal: each auxiliary network is built from layers uniformly sampled from the
    /// subsequent layers of the primary network (fresh weights), its depth shrinking for
    /// deeper modules.
    #[arg(long, default_value = "auglocal")]
    pub rule: Rule,

    /// K, the number of gradient-isolated local modules [default: the number of units, one
    /// unit per module, as in the paper]. For auglocal the reference trains K - d modules:
    /// isolation points after units 0 .. K-d-2, and the last module (the final d+1 units when
    /// K equals the number of units) learns from the output loss.
    #[arg(long, short = 'k')]
    pub k: Option<usize>,

    /// d, the depth of the auxiliary networks (auglocal): how many layers each one samples
    /// from the layers that follow its module (with the pyramid, the depth at the first
    /// module) [default: 2].
    #[arg(long, short = 'd')]
    pub depth: Option<usize>,

    /// c, the pyramidal depth coefficient in [0, 1] (auglocal): auxiliary depth decreases
    /// linearly from d at the first module to about d - c(d - 1) at the last. "none" keeps
    /// every auxiliary network at depth d [default: 0.5].
    #[arg(long, allow_negative_numbers = true)]
    pub pyramid: Option<Pyramid>,

    /// InfoPro's loss weights R1,C1,R2,C2 (infopro): reconstruction and classification at
    /// the first isolation point, then at the last, interpolated linearly between [default:
    /// the reference's, 5,0,0.5,1 for resnet110 and 5,0.05,0.2,0.5 for every other network].
    #[arg(long, value_name = "R1,C1,R2,C2")]
    pub infopro_weights: Option<LossWeights>,
}

impl LocalArgs {
    /// The planner's configuration for `network` (validated when planned).
    pub fn config(&self, network: &NetworkSpec) -> LocalConfig {
        let mut config = LocalConfig::new(self.rule, self.k.unwrap_or(network.num_units()));
        if let Some(depth) = self.depth {
            config = config.with_depth(depth);
        }
        if let Some(pyramid) = self.pyramid {
            config = config.with_pyramid(pyramid.0);
        }
        config.with_infopro_weights(self.infopro_weights)
    }

    /// A note on the flags given that the rule does not use.
    pub fn note(&self) -> Option<String> {
        ignored_flags(
            self.rule,
            Given {
                k: self.k.is_some(),
                depth: self.depth.is_some(),
                pyramid: self.pyramid.is_some(),
                infopro_weights: self.infopro_weights.is_some(),
            },
        )
    }
}

/// Which of the local-learning flags were given.
#[derive(Clone, Copy, Debug, Default)]
pub struct Given {
    /// `--k`.
    pub k: bool,
    /// `--depth`.
    pub depth: bool,
    /// `--pyramid`.
    pub pyramid: bool,
    /// `--infopro-weights`.
    pub infopro_weights: bool,
}

/// What a rule ignores of the local-learning flags given: bp trains one module and uses none
/// of them; only auglocal has an aux depth, and only infopro loss weights.
pub fn ignored_flags(rule: Rule, given: Given) -> Option<String> {
    // `"--a, --b ignored: why"` for the flags of `flags` that were given, if any.
    let note = |flags: &[(&str, bool)], why: &str| {
        let ignored: Vec<&str> = flags.iter().filter(|(_, g)| *g).map(|(f, _)| *f).collect();
        (!ignored.is_empty()).then(|| format!("{} ignored: {why}", ignored.join(", ")))
    };
    if rule == Rule::Bp {
        let flags = [
            ("--k", given.k),
            ("--depth", given.depth),
            ("--pyramid", given.pyramid),
            ("--infopro-weights", given.infopro_weights),
        ];
        return note(&flags, "bp trains the whole network as one module");
    }
    let mut notes = Vec::new();
    if rule != Rule::AugLocal {
        let flags = [("--depth", given.depth), ("--pyramid", given.pyramid)];
        notes.extend(note(&flags, "only auglocal's aux nets have a depth"));
    }
    if rule != Rule::InfoPro && given.infopro_weights {
        notes.push("--infopro-weights ignored: only infopro weighs its losses".to_string());
    }
    (!notes.is_empty()).then(|| notes.join("; "))
}

/// A pyramid coefficient, or `none`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pyramid(pub Option<f64>);

impl FromStr for Pyramid {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("none") || s.eq_ignore_ascii_case("off") {
            return Ok(Pyramid(None));
        }
        s.parse::<f64>()
            .map(|c| Pyramid(Some(c)))
            .map_err(|_| format!("expected a coefficient in [0, 1] or 'none', got '{s}'"))
    }
}

impl fmt::Display for Pyramid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(c) => write!(f, "{c}"),
            None => f.write_str("none"),
        }
    }
}
