//! The flags of a run's settings, one group per section of its `config.json`
//! ([`TrainConfig`]'s `network`, `local`, `data`, the training's own fields, `execution`):
//! each flag is declared once here, and `train`, `plan` and `bench` flatten the groups they
//! take. A flag left out keeps the value it had (the default, or `--config`'s).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::Result;
use auglocal_data::DatasetName;
use auglocal_model::{Arch, NetworkSpec};
use auglocal_plan::{LossWeights, Rule};
use auglocal_train::{
    DataSettings, Execution, ExecutionSettings, Keep, LocalSettings, NetworkSettings, Schedule,
    TrainConfig,
};
use clap::Args;

use crate::exit::usage;

/// Sets `$target.$field` to each flag `$args.$field` given.
macro_rules! given {
    ($args:ident => $target:ident: $($field:ident),*) => {
        $( if let Some(v) = &$args.$field { $target.$field = v.clone(); } )*
    };
}

/// The primary network (`network` in config.json).
#[derive(Args, Debug, Clone, Default, PartialEq)]
pub struct NetworkArgs {
    /// The primary network, seen as an ordered list of units (the stem, each residual block
    /// or VGG stage): a CIFAR-size ResNet (resnet20, resnet32, resnet44, resnet56, resnet110),
    /// an ImageNet ResNet (resnet18, resnet34, resnet50, resnet101, resnet152) or a VGG with
    /// BatchNorm (vgg11, vgg13, vgg16, vgg19); `auglocal plan --arch X` shows its units
    /// [default: resnet32].
    #[arg(long)]
    pub arch: Option<Arch>,

    /// Width multiplier of every width (0.25 gives a quarter-width network) [default: 1].
    #[arg(long)]
    pub width: Option<f64>,

    /// Side of the square images the network takes (and the data pipeline makes) [default:
    /// the data set's for fixed-size data sets (32 for CIFAR and Fashion-MNIST, 96 for
    /// STL-10); else the network's (32 for the CIFAR-size ResNets, 224 for the ImageNet
    /// ResNets and VGG)].
    #[arg(long)]
    pub image_size: Option<usize>,
}

impl NetworkArgs {
    /// Sets the settings these flags give.
    pub fn apply(&self, settings: &mut NetworkSettings) {
        given!(self => settings: arch, width);
        if self.image_size.is_some() {
            settings.image_size = self.image_size;
        }
    }

    /// The defaults with these flags, the image side settled: the flag's, else the network's
    /// own (no data set decides it here).
    pub fn settings(&self) -> NetworkSettings {
        let mut settings = NetworkSettings::default();
        self.apply(&mut settings);
        let size = settings
            .image_size
            .unwrap_or_else(|| settings.arch.default_image_size());
        settings.image_size = Some(size);
        settings
    }

    /// The network of `classes` classes (else the family's) on RGB images of
    /// [`NetworkArgs::settings`]' side, validated.
    pub fn spec(&self, classes: Option<usize>) -> Result<NetworkSpec> {
        let settings = self.settings();
        let size = settings.image_size.unwrap_or_default();
        let classes = classes.unwrap_or_else(|| settings.arch.default_classes());
        Ok(settings.config(classes, [3, size, size]).spec()?)
    }
}

/// The local-learning rule and its settings, in the paper's terms (`local` in config.json).
#[derive(Args, Debug, Clone, Default, PartialEq)]
pub struct LocalArgs {
    /// The learning rule [default: auglocal]. bp: end-to-end backpropagation (one module; K
    /// is ignored). greedy: supervised greedy local learning, a GAP + linear classifier after
    /// each of the first K-1 units. dgl: Decoupled Greedy Learning's auxiliary head at the
    /// same places. predsim: PredSim at the same places, 0.99 x a similarity-matching loss +
    /// 0.01 x the cross-entropy of a pooled linear prediction. infopro: InfoPro's
    /// reconstruction and classification heads at the same places. auglocal: each auxiliary
    /// network is built from layers uniformly sampled from the subsequent layers of the
    /// primary network (fresh weights), its depth shrinking for deeper modules.
    #[arg(long)]
    pub rule: Option<Rule>,

    #[command(flatten)]
    pub modules: ModuleArgs,
}

impl LocalArgs {
    /// Sets the settings these flags give.
    pub fn apply(&self, settings: &mut LocalSettings) {
        given!(self => settings: rule);
        self.modules.apply(settings);
    }

    /// The defaults with these flags.
    pub fn settings(&self) -> LocalSettings {
        let mut settings = LocalSettings::default();
        self.apply(&mut settings);
        settings
    }

    /// A note on the flags given that `rule` does not use.
    pub fn note(&self, rule: Rule) -> Option<String> {
        self.modules.note(rule)
    }
}

/// How a rule cuts the network into modules and shapes their aux nets: the settings of
/// `local` in config.json but the rule (`bench` measures several rules with one).
#[derive(Args, Debug, Clone, Default, PartialEq)]
pub struct ModuleArgs {
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

impl ModuleArgs {
    /// Sets the settings these flags give.
    pub fn apply(&self, settings: &mut LocalSettings) {
        given!(self => settings: depth);
        if self.k.is_some() {
            settings.k = self.k;
        }
        if let Some(Pyramid(c)) = self.pyramid {
            settings.pyramid = c;
        }
        if self.infopro_weights.is_some() {
            settings.infopro_weights = self.infopro_weights;
        }
    }

    /// A note on the flags given that `rule` does not use.
    pub fn note(&self, rule: Rule) -> Option<String> {
        ignored_flags(
            rule,
            Given {
                k: self.k.is_some(),
                depth: self.depth.is_some(),
                pyramid: self.pyramid.is_some(),
                infopro_weights: self.infopro_weights.is_some(),
            },
        )
    }
}

/// The data set and its loading (`data` in config.json).
#[derive(Args, Debug, Clone, Default, PartialEq)]
pub struct DataArgs {
    /// The data set (see `auglocal data --help`) [default: fashion-mnist].
    #[arg(long)]
    pub dataset: Option<DatasetName>,
    /// Folder holding the data set's files [default: the usual places].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Train on the first N training images only (quick runs).
    #[arg(long, value_name = "N")]
    pub train_limit: Option<usize>,
    /// Evaluate on the first N test images only.
    #[arg(long, value_name = "N")]
    pub test_limit: Option<usize>,
    /// Data-loading threads [default: 2].
    #[arg(long)]
    pub workers: Option<usize>,
}

impl DataArgs {
    /// Sets the settings these flags give.
    pub fn apply(&self, settings: &mut DataSettings) {
        given!(self => settings: dataset, workers);
        if self.data_dir.is_some() {
            settings.data_dir = self.data_dir.clone();
        }
        if self.train_limit.is_some() {
            settings.train_limit = self.train_limit;
        }
        if self.test_limit.is_some() {
            settings.test_limit = self.test_limit;
        }
    }
}

/// The length and pace of training, the optimiser, and what the run records (the top-level
/// fields of config.json and `optimizer`).
#[derive(Args, Debug, Clone, Default, PartialEq)]
pub struct TrainingArgs {
    /// Epochs [default: 10].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Images per batch [default: 128; the paper: 1024 on CIFAR-10 and SVHN, 128 on STL-10].
    #[arg(long)]
    pub batch: Option<usize>,
    /// Base learning rate [default: 0.1; the paper: 0.8 at batch 1024].
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f64>,
    /// Learning-rate schedule: cosine (with --warmup epochs of linear warm-up, the reference)
    /// or constant [default: cosine].
    #[arg(long, value_name = "cosine|constant")]
    pub schedule: Option<Schedule>,
    /// Warm-up epochs of the cosine schedule, fewer than --epochs [default: scaled to the run
    /// as the reference's 10 of 400 epochs: epochs / 40, at most 10; none below 40 epochs].
    #[arg(long)]
    pub warmup: Option<usize>,
    /// SGD momentum (Nesterov) [default: 0.9].
    #[arg(long)]
    pub momentum: Option<f64>,
    /// Weight decay on every parameter [default: 1e-4].
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Seed of the initialisation, shuffles and augmentations [default: 0].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Also measure every aux head's train and test accuracy each epoch.
    #[arg(long)]
    pub aux_accuracy: bool,
    /// Checkpoints kept besides the last: none (last), the best test accuracy's (best), or
    /// every epoch's (all); `auglocal export --epoch N / --best` reads them [default: last].
    #[arg(long, value_name = "last|best|all")]
    pub keep_checkpoints: Option<Keep>,
}

impl TrainingArgs {
    /// Sets the settings these flags give.
    pub fn apply(&self, config: &mut TrainConfig) -> Result<()> {
        given!(self => config: epochs, batch, lr, seed, keep_checkpoints);
        let optimizer = &mut config.optimizer;
        given!(self => optimizer: momentum, weight_decay);
        config.schedule = match (self.schedule, self.warmup, config.schedule) {
            (Some(Schedule::Constant), None, _) => Schedule::Constant,
            (Some(Schedule::Constant), Some(_), _) | (None, Some(_), Schedule::Constant) => {
                return Err(usage(
                    "--warmup applies to the cosine schedule; the constant schedule has none",
                ));
            }
            (Some(Schedule::Cosine { .. }), w, Schedule::Cosine { warmup })
            | (None, w @ Some(_), Schedule::Cosine { warmup }) => Schedule::Cosine {
                warmup: w.or(warmup),
            },
            (Some(Schedule::Cosine { .. }), w, Schedule::Constant) => {
                Schedule::Cosine { warmup: w }
            }
            (None, None, s) => s,
        };
        config.aux_accuracy |= self.aux_accuracy;
        Ok(())
    }
}

/// How the steps run (`execution` in config.json); may change on resume.
#[derive(Args, Debug, Clone, Default, PartialEq)]
pub struct ExecutionArgs {
    /// Train the modules as a pipeline of S stages, one thread (and device) each, balanced by
    /// the plan's cost: the same weights as training them one after the other, sooner
    /// (`auglocal plan --pipeline S` shows the stages) [default: no pipeline].
    #[arg(long, value_name = "S")]
    pub pipeline: Option<usize>,
    /// Data-parallel training: N replicas of the network, each on a thread (and device) of its
    /// own and a contiguous 1/N share of every batch (the batch stays --batch), gradients
    /// averaged across them before each module's step (see docs/scaling.md, "Data-parallel
    /// training") [default: one replica]. Not with --pipeline.
    #[arg(long, value_name = "N", conflicts_with = "pipeline")]
    pub data_parallel: Option<usize>,
    /// Threads of each pipeline stage's or replica's pool (of the one pool otherwise)
    /// [default: the cores divided among the stages or replicas].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

impl ExecutionArgs {
    /// Whether any of these flags is given.
    pub fn any(&self) -> bool {
        *self != Self::default()
    }

    /// Sets the settings these flags give.
    pub fn apply(&self, settings: &mut ExecutionSettings) {
        if let Some(stages) = self.pipeline {
            settings.strategy = Execution::Pipelined { stages };
        }
        if let Some(replicas) = self.data_parallel {
            settings.strategy = Execution::DataParallel { replicas };
        }
        if self.threads.is_some() {
            settings.threads = self.threads;
        }
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
