//! Everything a run needs, in one serialisable configuration: re-running from a run's
//! `config.json` repeats the run.

use std::path::PathBuf;

use auglocal_data::DatasetName;
use auglocal_model::{Arch, NetworkConfig, NetworkSpec};
use auglocal_plan::{LocalConfig, LossWeights, Rule};
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::execution::Execution;
use crate::schedule::Schedule;

/// A complete training run, in sections as `config.json` holds it: the network, the local
/// rule, the data, the length and pace of training, the optimiser, what the run records, and
/// how its steps execute. Every field has a default ([`TrainConfig::default`]), so a
/// configuration file names only what it changes. `config.json` of runs written before the
/// sections existed (every field at the top level) are read too ([`layout`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", default, deny_unknown_fields)]
pub struct TrainConfig {
    /// The primary network.
    pub network: NetworkSettings,
    /// The local-learning rule and its settings.
    pub local: LocalSettings,
    /// The data set and its loading.
    pub data: DataSettings,
    /// Epochs.
    pub epochs: usize,
    /// Images per batch (training and evaluation).
    pub batch: usize,
    /// Base learning rate.
    pub lr: f64,
    /// The learning-rate schedule.
    pub schedule: Schedule,
    /// Every module's SGD optimiser.
    pub optimizer: SgdSettings,
    /// Seed of the initialisation, the shuffles and the augmentations.
    pub seed: u64,
    /// Also measure every aux head's accuracy (train and test): how representations improve
    /// with depth.
    pub aux_accuracy: bool,
    /// Which checkpoints stay besides the last (which a resume continues from).
    pub keep_checkpoints: Keep,
    /// How the steps run, on how many threads and processes; may change on resume.
    #[serde(skip_serializing_if = "ExecutionSettings::is_default")]
    pub execution: ExecutionSettings,
}

/// The layout of `config.json` that [`TrainConfig`] writes, as its `format` field: 2, the
/// sections. A file without `format` is of the flat layout of earlier runs (format 1), or a
/// hand-written configuration in either layout.
pub const CONFIG_FORMAT: u64 = 2;

impl Serialize for TrainConfig {
    /// The sections, after `"format": 2`.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        /// The fields of the configuration, flattened after `format`.
        struct Sections<'a>(&'a TrainConfig);
        impl Serialize for Sections<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                TrainConfig::serialize(self.0, serializer)
            }
        }
        #[derive(Serialize)]
        struct Versioned<'a> {
            format: u64,
            #[serde(flatten)]
            config: Sections<'a>,
        }
        Versioned {
            format: CONFIG_FORMAT,
            config: Sections(self),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for TrainConfig {
    /// Today's sections (format 2), or, without `format`, either layout ([`layout::nest`]).
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut value = serde_json::Value::deserialize(deserializer)?;
        let format = match &mut value {
            serde_json::Value::Object(map) => map.remove("format"),
            _ => None,
        };
        let value = match format {
            None => layout::nest(value),
            Some(f) if f.as_u64() == Some(CONFIG_FORMAT) => value,
            Some(f) => {
                return Err(D::Error::custom(format!(
                    "`format` {f} is not one this release reads (it writes and reads \
                     {CONFIG_FORMAT}, and reads files without `format`)"
                )));
            }
        };
        TrainConfig::deserialize(value).map_err(D::Error::custom)
    }
}

/// The primary network of a run (its classes and input channels come from the data set).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkSettings {
    /// The architecture.
    pub arch: Arch,
    /// Width multiplier of every width.
    pub width: f64,
    /// Side of the square images the network takes; `None` is
    /// [`TrainConfig::image_size`]'s default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_size: Option<usize>,
}

impl NetworkSettings {
    /// The network's configuration for images of `shape` (`[channels, size, size]`) in
    /// `num_classes` classes.
    pub fn config(&self, num_classes: usize, [channels, size, _]: [usize; 3]) -> NetworkConfig {
        NetworkConfig::new(self.arch)
            .with_num_classes(num_classes)
            .with_width_multiplier(self.width)
            .with_in_channels(channels)
            .with_image_size(size)
    }
}

impl Default for NetworkSettings {
    fn default() -> Self {
        Self {
            arch: Arch::ResNet32,
            width: 1.0,
            image_size: None,
        }
    }
}

/// The local-learning rule of a run and its settings, in the paper's terms.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalSettings {
    /// The rule.
    pub rule: Rule,
    /// K, the number of local modules; `None` is the number of units.
    pub k: Option<usize>,
    /// d, the maximum aux depth (AugLocal).
    pub depth: usize,
    /// c, the pyramid coefficient (AugLocal); `None` keeps every aux net at depth d.
    pub pyramid: Option<f64>,
    /// InfoPro's loss weights; `None`: the reference's for the network
    /// ([`LossWeights::reference`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub infopro_weights: Option<LossWeights>,
}

impl LocalSettings {
    /// The planner's configuration for `network` (`k` defaults to its number of units).
    pub fn config(&self, network: &NetworkSpec) -> LocalConfig {
        LocalConfig::new(self.rule, self.k.unwrap_or(network.num_units()))
            .with_depth(self.depth)
            .with_pyramid(self.pyramid)
            .with_infopro_weights(self.infopro_weights)
    }
}

impl Default for LocalSettings {
    /// AugLocal with one unit per module, d = 2, pyramid 0.5.
    fn default() -> Self {
        Self {
            rule: Rule::AugLocal,
            k: None,
            depth: 2,
            pyramid: Some(0.5),
            infopro_weights: None,
        }
    }
}

/// The data set of a run and how it is loaded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataSettings {
    /// The data set.
    pub dataset: DatasetName,
    /// Where its files are; `None` searches the usual places. May change on resume.
    pub data_dir: Option<PathBuf>,
    /// Train on the first N training images only.
    pub train_limit: Option<usize>,
    /// Evaluate on the first N test images only.
    pub test_limit: Option<usize>,
    /// Data-loading threads. May change on resume.
    pub workers: usize,
}

impl Default for DataSettings {
    fn default() -> Self {
        Self {
            dataset: DatasetName::FashionMnist,
            data_dir: None,
            train_limit: None,
            test_limit: None,
            workers: 2,
        }
    }
}

/// Every module's SGD optimiser: Nesterov momentum, no dampening, coupled weight decay, as the
/// reference.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SgdSettings {
    /// Momentum.
    pub momentum: f64,
    /// Coupled L2 weight decay on every parameter (BatchNorm and biases too, as the reference).
    pub weight_decay: f64,
}

impl Default for SgdSettings {
    fn default() -> Self {
        Self {
            momentum: 0.9,
            weight_decay: 1e-4,
        }
    }
}

/// How a run's steps execute; all of it may change on resume but `nodes`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExecutionSettings {
    /// Sequentially, pipelined in stages, or as data-parallel replicas, one thread (and
    /// device) each ([`crate::execution`]).
    #[serde(skip_serializing_if = "Execution::is_sequential")]
    pub strategy: Execution,
    /// Threads of each pool (the sequential one, each pipeline stage's or replica's); `None`:
    /// sequential steps on the calling thread and rayon's default pool, stages and replicas
    /// dividing the machine's cores.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
    /// The processes (nodes of an MPI job) that train the run together, each running the
    /// strategy's data-parallel replicas; `None`: this process alone. A run resumes only with
    /// as many.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes: Option<usize>,
}

impl ExecutionSettings {
    /// Sequential, on default threads, in one process (what `config.json` leaves out).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

pub mod layout {
    //! The flat layout of `config.json` that runs wrote before the configuration had
    //! sections: every field at the top level, and the execution strategy as `execution`
    //! (or, before that, `"pipeline": S`).

    use serde_json::{Map, Value};

    /// The section of each field of the flat layout that moved into one.
    const MOVED: [(&str, &str, &str); 17] = [
        ("arch", "network", "arch"),
        ("width", "network", "width"),
        ("image_size", "network", "image_size"),
        ("rule", "local", "rule"),
        ("k", "local", "k"),
        ("depth", "local", "depth"),
        ("pyramid", "local", "pyramid"),
        ("infopro_weights", "local", "infopro_weights"),
        ("dataset", "data", "dataset"),
        ("data_dir", "data", "data_dir"),
        ("train_limit", "data", "train_limit"),
        ("test_limit", "data", "test_limit"),
        ("workers", "data", "workers"),
        ("momentum", "optimizer", "momentum"),
        ("weight_decay", "optimizer", "weight_decay"),
        ("threads", "execution", "threads"),
        ("nodes", "execution", "nodes"),
    ];

    /// Whether `execution` holds a strategy itself (the flat layout: `"sequential"`,
    /// `{"pipelined": {...}}`, `{"data_parallel": {...}}`) rather than a section.
    fn is_strategy(value: &Value) -> bool {
        match value {
            Value::Object(map) => map
                .keys()
                .any(|k| ["sequential", "pipelined", "data_parallel"].contains(&k.as_str())),
            _ => true,
        }
    }

    /// `value` in today's sections: fields of the flat layout move into their sections
    /// (unless the section already names them, which the reader then refuses as unknown);
    /// anything else is left as it is.
    pub fn nest(value: Value) -> Value {
        let Value::Object(mut map) = value else {
            return value;
        };
        let mut moved: Vec<(&str, &str, Value)> = Vec::new();
        for (flat, section, field) in MOVED {
            if let Some(v) = map.remove(flat) {
                moved.push((section, field, v));
            }
        }
        if let Some(strategy) = map.remove("execution") {
            if is_strategy(&strategy) {
                moved.push(("execution", "strategy", strategy));
            } else {
                map.insert("execution".into(), strategy);
            }
        }
        if let Some(stages) = map.remove("pipeline") {
            moved.push(("execution", "strategy", stages));
        }
        for (section, field, v) in moved {
            let entry = map
                .entry(section)
                .or_insert_with(|| Value::Object(Map::new()));
            match entry {
                Value::Object(fields) if !fields.contains_key(field) => {
                    fields.insert(field.into(), v);
                }
                // Named twice, or a section that is not an object: left for the reader to
                // refuse by name.
                _ => {
                    map.insert(field.into(), v);
                }
            }
        }
        Value::Object(map)
    }
}

/// Most threads of a pool.
pub const MAX_THREADS: usize = 1024;

/// Most nodes (processes) of a run.
pub const MAX_NODES: usize = 4096;

/// Which epochs' checkpoints a run keeps: the last always (a resume continues from it), and
/// with `best` the one of the best test accuracy too (the earliest of equals), with `all`
/// every one. `auglocal export --epoch N` and `--best` read what is kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Keep {
    /// The last checkpoint only.
    #[default]
    Last,
    /// The last, and the one of the best test accuracy.
    Best,
    /// Every epoch's.
    All,
}

impl std::str::FromStr for Keep {
    type Err = String;

    /// `last`, `best` or `all`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "last" => Ok(Keep::Last),
            "best" => Ok(Keep::Best),
            "all" => Ok(Keep::All),
            _ => Err(format!("expected last, best or all, got '{s}'")),
        }
    }
}

impl std::fmt::Display for Keep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Keep::Last => "last",
            Keep::Best => "best",
            Keep::All => "all",
        })
    }
}

impl Keep {
    /// Whether the checkpoint of `epoch` stays once epochs `1..=history.len()` are done.
    pub fn keeps(self, epoch: usize, history: &[crate::EpochMetrics]) -> bool {
        epoch == history.len()
            || match self {
                Keep::Last => false,
                Keep::Best => best_epoch(history) == Some(epoch),
                Keep::All => true,
            }
    }
}

/// The epoch of the best test accuracy (the earliest of equals); `None` before any epoch.
pub fn best_epoch(history: &[crate::EpochMetrics]) -> Option<usize> {
    history
        .iter()
        .fold(None::<&crate::EpochMetrics>, |best, m| match best {
            Some(b) if b.test_accuracy >= m.test_accuracy => Some(b),
            _ => Some(m),
        })
        .map(|m| m.epoch)
}

/// Largest batch size.
pub const MAX_BATCH: usize = 65_536;
/// Most epochs of a run.
pub const MAX_EPOCHS: usize = 100_000;
/// Most data-loading threads.
pub const MAX_WORKERS: usize = 256;

impl Default for TrainConfig {
    /// ResNet-32, AugLocal with K = 16, d = 2, pyramid 0.5, on Fashion-MNIST; 10 epochs of
    /// batch 128 at lr 0.1 with the reference's cosine schedule, its warm-up scaled to the
    /// run's length (none for 10 epochs; the reference's 10 for 400).
    fn default() -> Self {
        Self {
            network: NetworkSettings::default(),
            local: LocalSettings::default(),
            data: DataSettings::default(),
            epochs: 10,
            batch: 128,
            lr: 0.1,
            schedule: Schedule::SCALED,
            optimizer: SgdSettings::default(),
            seed: 0,
            aux_accuracy: false,
            keep_checkpoints: Keep::Last,
            execution: ExecutionSettings::default(),
        }
    }
}

impl TrainConfig {
    /// The network for images of `shape` (`[channels, size, size]`, what the data pipeline
    /// produces) in `num_classes` classes: the data set's shape flows into the network.
    pub fn network_spec(
        &self,
        num_classes: usize,
        shape: [usize; 3],
    ) -> Result<NetworkSpec, TrainError> {
        Ok(self.network.config(num_classes, shape).spec()?)
    }

    /// The planner's configuration for `network`.
    pub fn local_config(&self, network: &NetworkSpec) -> LocalConfig {
        self.local.config(network)
    }

    /// Side of the images the data pipeline makes and the network takes: `image_size` if
    /// set; else, for a data set of fixed-size images, its own (32 for the CIFAR-size sets,
    /// Fashion-MNIST and MNIST centred on a 32x32 canvas; 96 for STL-10), whatever the
    /// network; else (image folders, ImageNet, synthetic) the larger of the data set's and the
    /// network's own (224 for ImageNet and for the ImageNet ResNets and VGG).
    pub fn image_size(&self) -> usize {
        self.network.image_size.unwrap_or_else(|| {
            let data = self.data.dataset.default_image_size();
            match self.data.dataset.native_shape() {
                Some(_) => data,
                None => data.max(self.network.arch.default_image_size()),
            }
        })
    }

    /// Learning rate of epoch `epoch` (from 1).
    pub fn lr_at(&self, epoch: usize) -> f64 {
        self.schedule.lr(self.lr, epoch, self.epochs)
    }

    /// Checks every value that does not need the data, including the plan (with 10 classes:
    /// the class count does not change the partition). Every size has an upper bound
    /// ([`MAX_BATCH`], [`MAX_EPOCHS`], [`MAX_WORKERS`] and the network's own).
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |m: String| Err(TrainError::Config(m));
        if !(1..=MAX_EPOCHS).contains(&self.epochs) {
            return bad(format!(
                "epochs must be in 1..={MAX_EPOCHS}, got {}",
                self.epochs
            ));
        }
        self.execution.strategy.validate()?;
        if self
            .execution
            .threads
            .is_some_and(|t| !(1..=MAX_THREADS).contains(&t))
        {
            return bad(format!(
                "threads must be in 1..={MAX_THREADS}, got {}",
                self.execution.threads.unwrap_or(0)
            ));
        }
        if !(1..=MAX_BATCH).contains(&self.batch) {
            return bad(format!(
                "the batch size must be in 1..={MAX_BATCH}, got {}",
                self.batch
            ));
        }
        let nodes = self.execution.nodes.unwrap_or(1);
        if !(1..=MAX_NODES).contains(&nodes) {
            return bad(format!("nodes must be in 1..={MAX_NODES}, got {nodes}"));
        }
        if nodes > 1 && self.execution.strategy.replicas().is_none() {
            return bad(format!(
                "{nodes} nodes train data-parallel replicas: make `config.execution.strategy` \
                 `Execution::DataParallel` (not {})",
                if self.execution.strategy.stages().is_some() {
                    "pipelined"
                } else {
                    "sequential training"
                }
            ));
        }
        if let Some(replicas) = self.execution.strategy.replicas()
            && self.batch < replicas * nodes
        {
            let all = replicas * nodes;
            return bad(format!(
                "a batch of {} images cannot be shared by {all} data-parallel replicas{}: \
                 give `config.batch` {all} or more",
                self.batch,
                if nodes > 1 {
                    format!(" ({replicas} on each of {nodes} nodes)")
                } else {
                    String::new()
                }
            ));
        }
        if self.data.workers > MAX_WORKERS {
            return bad(format!(
                "`config.data.workers` must be at most {MAX_WORKERS}, got {}",
                self.data.workers
            ));
        }
        if let Schedule::Cosine {
            warmup: Some(warmup),
        } = self.schedule
            && warmup >= self.epochs
        {
            return bad(format!(
                "{warmup} warm-up epochs leave none of the {} epochs to the cosine schedule (the \
                 learning rate would never reach its base value); use `config.schedule.warmup` \
                 below {}, or leave it out to scale it to the run",
                self.epochs, self.epochs
            ));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!(
                "the learning rate must be a finite number > 0, got {}",
                self.lr
            ));
        }
        if !(0.0..1.0).contains(&self.optimizer.momentum) {
            return bad(format!(
                "momentum must be in [0, 1), got {}",
                self.optimizer.momentum
            ));
        }
        if !(self.optimizer.weight_decay.is_finite() && self.optimizer.weight_decay >= 0.0) {
            return bad(format!(
                "weight decay must be >= 0, got {}",
                self.optimizer.weight_decay
            ));
        }
        if self.data.train_limit == Some(0) || self.data.test_limit == Some(0) {
            return bad(
                "`config.data.train_limit` and `config.data.test_limit` must be at least 1".into(),
            );
        }
        let size = self.image_size();
        if self
            .data
            .dataset
            .native_shape()
            .is_some_and(|n| n.height > size || n.width > size)
        {
            return bad(format!(
                "`config.network.image_size` {size} is smaller than the {} images of {}; the data \
                 pipeline pads images onto a larger canvas but does not shrink them",
                self.data
                    .dataset
                    .native_shape()
                    .map_or(String::new(), |n| format!("{}x{}", n.height, n.width)),
                self.data.dataset
            ));
        }
        let network = self.network_spec(10, [3, size, size])?;
        auglocal_plan::Plan::new(&network, &self.local_config(&network))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(accuracies: &[f64]) -> Vec<crate::EpochMetrics> {
        accuracies
            .iter()
            .enumerate()
            .map(|(i, &test_accuracy)| {
                serde_json::from_value(serde_json::json!({
                    "epoch": i + 1, "lr": 0.1, "loss": [1.0], "train_accuracy": 0.5,
                    "test_accuracy": test_accuracy, "train_images": 1, "test_images": 1,
                    "train_seconds": 1.0, "eval_seconds": 1.0, "images_per_second": 1.0,
                    "peak_memory": {}
                }))
                .expect("metrics")
            })
            .collect()
    }

    #[test]
    fn kept_checkpoints_are_the_last_and_the_best() {
        let h = history(&[0.5, 0.7, 0.7, 0.6]);
        assert_eq!(best_epoch(&h), Some(2), "the earliest of equals");
        assert_eq!(best_epoch(&[]), None);
        let kept = |keep: Keep| (1..=4).filter(|&e| keep.keeps(e, &h)).collect::<Vec<_>>();
        assert_eq!(kept(Keep::Last), [4]);
        assert_eq!(kept(Keep::Best), [2, 4]);
        assert_eq!(kept(Keep::All), [1, 2, 3, 4]);
        // Old configurations, without the field, keep the last.
        let old: TrainConfig = serde_json::from_str("{}").expect("defaults");
        assert_eq!(old.keep_checkpoints, Keep::Last);
    }

    #[test]
    fn invalid_values_are_refused_before_any_work() {
        let ok = TrainConfig::default();
        assert!(ok.validate().is_ok());
        let cases = [
            TrainConfig {
                epochs: 0,
                ..ok.clone()
            },
            TrainConfig {
                batch: 0,
                ..ok.clone()
            },
            TrainConfig {
                lr: f64::NAN,
                ..ok.clone()
            },
            TrainConfig {
                optimizer: SgdSettings {
                    momentum: 1.0,
                    ..ok.clone().optimizer
                },
                ..ok.clone()
            },
            TrainConfig {
                data: DataSettings {
                    train_limit: Some(0),
                    ..ok.clone().data
                },
                ..ok.clone()
            },
            TrainConfig {
                local: LocalSettings {
                    k: Some(17),
                    ..ok.clone().local
                },
                ..ok.clone()
            },
            TrainConfig {
                network: NetworkSettings {
                    width: 0.0,
                    ..ok.clone().network
                },
                ..ok.clone()
            },
            TrainConfig {
                network: NetworkSettings {
                    width: 1e300,
                    ..ok.clone().network
                },
                ..ok.clone()
            },
            TrainConfig {
                batch: usize::MAX,
                ..ok.clone()
            },
            TrainConfig {
                epochs: usize::MAX,
                ..ok.clone()
            },
            TrainConfig {
                local: LocalSettings {
                    depth: usize::MAX - 1,
                    ..ok.clone().local
                },
                ..ok.clone()
            },
            TrainConfig {
                schedule: Schedule::REFERENCE,
                ..ok.clone()
            },
            TrainConfig {
                network: NetworkSettings {
                    image_size: Some(16),
                    ..ok.clone().network
                },
                ..ok.clone()
            },
            TrainConfig {
                network: NetworkSettings {
                    arch: Arch::Vgg11,
                    image_size: Some(31),
                    ..ok.clone().network
                },
                data: DataSettings {
                    dataset: DatasetName::Synthetic,
                    ..ok.clone().data
                },
                ..ok.clone()
            },
        ];
        for c in cases {
            assert!(c.validate().is_err(), "{c:?}");
        }
        let err = TrainConfig {
            local: LocalSettings {
                k: Some(3),
                ..ok.local.clone()
            },
            ..ok
        }
        .validate()
        .expect_err("too few modules");
        assert!(
            err.is_bad_input() && err.to_string().contains("K - d"),
            "{err}"
        );
    }

    #[test]
    fn several_nodes_train_data_parallel_replicas_that_share_each_batch() {
        let dp = |replicas, nodes, batch| TrainConfig {
            execution: ExecutionSettings {
                strategy: Execution::DataParallel { replicas },
                nodes: Some(nodes),
                ..Default::default()
            },
            batch,
            ..TrainConfig::default()
        };
        assert!(dp(2, 3, 6).validate().is_ok());
        assert!(dp(1, 1, 1).validate().is_ok());
        let err = dp(2, 3, 5).validate().expect_err("5 images for 6 replicas");
        assert!(
            err.to_string()
                .contains("6 data-parallel replicas (2 on each of 3 nodes)"),
            "{err}"
        );
        assert!(dp(1, 0, 8).validate().is_err());
        assert!(dp(1, MAX_NODES + 1, 1 << 16).validate().is_err());
        for execution in [Execution::Sequential, Execution::Pipelined { stages: 2 }] {
            let err = TrainConfig {
                execution: ExecutionSettings {
                    strategy: execution,
                    ..dp(1, 2, 8).execution
                },
                ..dp(1, 2, 8)
            }
            .validate()
            .expect_err("nodes train replicas");
            assert!(
                err.to_string()
                    .contains("make `config.execution.strategy` `Execution::DataParallel`"),
                "{err}"
            );
        }
        // One process's runs record no `nodes`.
        let json = serde_json::to_value(TrainConfig::default()).expect("json");
        assert!(json.get("execution").is_none());
        let json = serde_json::to_value(dp(1, 2, 8)).expect("json");
        assert_eq!(json["execution"]["nodes"], 2);
    }

    #[test]
    fn the_default_run_leaves_warm_up_and_the_reference_one_is_valid() {
        let default = TrainConfig::default();
        assert!(default.validate().is_ok());
        // The reference's schedule at its length: 10 warm-up epochs of 400.
        let reference = TrainConfig {
            epochs: 400,
            ..TrainConfig::default()
        };
        assert_eq!(reference.schedule.warmup_epochs(400), 10);
        // The default 10 epochs peak at the base rate, not at ~0.027 of 0.1.
        let peak = (1..=default.epochs)
            .map(|e| default.lr_at(e))
            .fold(0.0, f64::max);
        assert!(peak > 0.09, "{peak}");
    }

    #[test]
    fn image_size_follows_the_data_then_the_network() {
        let c = |arch, dataset| TrainConfig {
            network: NetworkSettings {
                arch,
                ..Default::default()
            },
            data: DataSettings {
                dataset,
                ..Default::default()
            },
            ..TrainConfig::default()
        };
        assert_eq!(
            c(Arch::ResNet32, DatasetName::FashionMnist).image_size(),
            32
        );
        assert_eq!(c(Arch::ResNet34, DatasetName::Cifar10).image_size(), 32);
        assert_eq!(c(Arch::Vgg13, DatasetName::Stl10).image_size(), 96);
        assert_eq!(c(Arch::ResNet32, DatasetName::Synthetic).image_size(), 32);
        assert_eq!(c(Arch::ResNet18, DatasetName::Synthetic).image_size(), 224);
        assert_eq!(c(Arch::ResNet32, DatasetName::Imagenet).image_size(), 224);
        let explicit = TrainConfig {
            network: NetworkSettings {
                image_size: Some(64),
                ..c(Arch::Vgg11, DatasetName::Cifar10).network
            },
            ..c(Arch::Vgg11, DatasetName::Cifar10)
        };
        assert_eq!(explicit.image_size(), 64);
        assert!(explicit.validate().is_ok());
        // A configuration without the field (every config.json before it existed) writes none.
        let json = serde_json::to_string(&TrainConfig::default()).expect("serialise");
        assert!(!json.contains("image_size"), "{json}");
    }

    #[test]
    fn json_round_trips_and_rejects_unknown_fields() {
        let c = TrainConfig {
            local: LocalSettings {
                rule: Rule::Dgl,
                k: Some(4),
                ..Default::default()
            },
            schedule: Schedule::Constant,
            ..TrainConfig::default()
        };
        let json = serde_json::to_string(&c).expect("serialise");
        assert_eq!(
            serde_json::from_str::<TrainConfig>(&json).expect("parse"),
            c
        );
        let partial: TrainConfig = serde_json::from_str(r#"{"epochs": 3}"#).expect("defaults");
        assert_eq!(partial.epochs, 3);
        assert_eq!(partial.schedule, Schedule::SCALED);
        assert_eq!(partial.lr, 0.1);
        assert!(serde_json::from_str::<TrainConfig>(r#"{"epoch": 3}"#).is_err());
        // A section names only what it changes.
        let partial: TrainConfig =
            serde_json::from_str(r#"{"network": {"width": 0.5}}"#).expect("defaults");
        assert_eq!(partial.network.width, 0.5);
        assert_eq!(partial.network.arch, Arch::ResNet32);
        for bad in [
            r#"{"network": {"widht": 0.5}}"#,
            r#"{"network": 3}"#,
            r#"{"width": 0.5, "network": {"width": 0.25}}"#,
        ] {
            let err = serde_json::from_str::<TrainConfig>(bad).expect_err(bad);
            assert!(
                err.to_string().contains("width") || err.to_string().contains("Network"),
                "{bad}: {err}"
            );
        }
    }

    /// A `config.json` as runs wrote it before the configuration had sections.
    const FLAT: &str = r#"{
      "arch": "resnet32", "width": 0.125, "rule": "greedy", "k": 16, "depth": 2,
      "pyramid": 0.5, "dataset": "fashion-mnist", "data_dir": "/data/fashion-mnist",
      "train_limit": 32, "test_limit": 48, "epochs": 1, "batch": 64, "lr": 0.05,
      "schedule": {"kind": "cosine", "warmup": 0}, "momentum": 0.9, "weight_decay": 0.0001,
      "seed": 0, "workers": 2, "aux_accuracy": true, "keep_checkpoints": "last",
      "execution": {"data_parallel": {"replicas": 2}}, "threads": 1, "nodes": 2
    }"#;

    #[test]
    fn the_flat_layout_of_earlier_runs_reads_into_the_sections() {
        let old: TrainConfig = serde_json::from_str(FLAT).expect("an earlier run's config");
        let expected = TrainConfig {
            network: NetworkSettings {
                width: 0.125,
                ..Default::default()
            },
            local: LocalSettings {
                rule: Rule::Greedy,
                k: Some(16),
                ..Default::default()
            },
            data: DataSettings {
                data_dir: Some("/data/fashion-mnist".into()),
                train_limit: Some(32),
                test_limit: Some(48),
                ..Default::default()
            },
            epochs: 1,
            batch: 64,
            lr: 0.05,
            schedule: Schedule::Cosine { warmup: Some(0) },
            aux_accuracy: true,
            execution: ExecutionSettings {
                strategy: Execution::DataParallel { replicas: 2 },
                threads: Some(1),
                nodes: Some(2),
            },
            ..Default::default()
        };
        assert_eq!(old, expected);
        // Written back, it has sections, and reads back the same.
        let json = serde_json::to_value(&old).expect("json");
        assert_eq!(json["network"]["width"], 0.125);
        assert_eq!(json["execution"]["nodes"], 2);
        assert!(json.get("width").is_none() && json.get("threads").is_none());
        assert_eq!(json["format"], CONFIG_FORMAT);
        let text = serde_json::to_string(&old).expect("text");
        assert!(text.starts_with(r#"{"format":2,"network":"#), "{text}");
        assert_eq!(
            serde_json::from_value::<TrainConfig>(json).expect("back"),
            old
        );
    }

    #[test]
    fn a_format_this_release_does_not_know_is_refused_and_format_2_is_not_flat() {
        let newer = serde_json::from_str::<TrainConfig>(r#"{"format": 3, "epochs": 2}"#)
            .expect_err("format 3");
        assert!(newer.to_string().contains("`format` 3"), "{newer}");
        // Format 2 has sections only: a flat field is unknown there.
        let flat = serde_json::from_str::<TrainConfig>(r#"{"format": 2, "width": 0.5}"#)
            .expect_err("flat field in format 2");
        assert!(flat.to_string().contains("width"), "{flat}");
        let sections: TrainConfig =
            serde_json::from_str(r#"{"format": 2, "network": {"width": 0.5}}"#).expect("format 2");
        assert_eq!(sections.network.width, 0.5);
    }
}
