//! A run directory: `config.json`, `plan.json`, `metrics.jsonl` and `checkpoints/`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use auglocal_aux::Plan;
use auglocal_data::{Data, DataConfig, Loader, LoaderConfig};
use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;

use crate::checkpoint::{self, write_atomic};
use crate::memory::Meter;
use crate::metrics::EpochMetrics;
use crate::progress::Progress;
use crate::trainer::{Evaluation, Trainer, evaluate, sgd_config};
use crate::{TrainConfig, TrainError};

const CONFIG: &str = "config.json";
const PLAN: &str = "plan.json";
const METRICS: &str = "metrics.jsonl";

/// A training run and its directory.
pub struct Run<B: AutodiffBackend> {
    dir: PathBuf,
    config: TrainConfig,
    plan: Plan,
    data: Data,
    trainer: Trainer<B>,
    train_loader: Loader<B>,
    test_loader: Loader<B::InnerBackend>,
    completed: usize,
}

impl<B: AutodiffBackend> Run<B> {
    /// Starts a new run in `dir` (created if needed; a directory that already holds a run is
    /// refused). The configuration, the plan and the data are checked before anything is
    /// written.
    pub fn create(config: TrainConfig, dir: &Path, device: &B::Device) -> Result<Self, TrainError> {
        config.validate()?;
        if dir.join(CONFIG).exists() {
            return Err(TrainError::Config(format!(
                "{} already holds a run; resume it with --resume {} or choose another --out",
                dir.display(),
                dir.display()
            )));
        }
        let mut run = Self::build(config, dir, device)?;
        // Record where the data was found, so that the run resumes from any directory.
        if let Some(location) = &run.data.location {
            run.config.data_dir =
                Some(location.canonicalize().unwrap_or_else(|_| location.clone()));
        }
        fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
        let json = |v: serde_json::Result<Vec<u8>>, name: &str| {
            v.map_err(|e| TrainError::io(dir.join(name), e))
        };
        write_atomic(
            &dir.join(CONFIG),
            &json(serde_json::to_vec_pretty(&run.config), CONFIG)?,
        )?;
        write_atomic(
            &dir.join(PLAN),
            &json(serde_json::to_vec_pretty(&run.plan), PLAN)?,
        )?;
        write_atomic(&dir.join(METRICS), b"")?;
        Ok(run)
    }

    /// Reopens the run in `dir` at its last complete epoch (from scratch if no checkpoint was
    /// written yet); metrics of epochs after that checkpoint are dropped, as they will be
    /// measured again.
    pub fn resume(dir: &Path, device: &B::Device) -> Result<Self, TrainError> {
        let config = read_config(dir)?;
        config.validate()?;
        let mut run = Self::build(config, dir, device)?;
        if let Some((ckpt, _)) = checkpoint::latest(dir) {
            let state = checkpoint::load(&ckpt, &mut run.trainer, device)?;
            run.completed = state.epoch;
        }
        let kept: Vec<String> = read_metrics(dir)?
            .into_iter()
            .filter(|m| m.epoch <= run.completed)
            .filter_map(|m| serde_json::to_string(&m).ok())
            .collect();
        let mut text = kept.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        write_atomic(&dir.join(METRICS), text.as_bytes())?;
        Ok(run)
    }

    fn build(config: TrainConfig, dir: &Path, device: &B::Device) -> Result<Self, TrainError> {
        let mut data_config = DataConfig::new(config.dataset, config.image_size());
        data_config.data_dir = config.data_dir.clone();
        let data = Data::open(&data_config)?.limit(config.train_limit, config.test_limit);
        let network = config.network(data.num_classes, config.image_size())?;
        let plan = Plan::new(&network, &config.local(&network))?;
        let sgd = sgd_config(config.momentum, config.weight_decay);
        let trainer = Trainer::init(&plan, &sgd, config.seed, device);
        let loader = |train: bool| LoaderConfig {
            workers: config.workers,
            ..if train {
                LoaderConfig::train(config.batch, config.seed)
            } else {
                LoaderConfig::eval(config.batch)
            }
        };
        let train_loader = Loader::new(
            data.train.clone(),
            data.train_pipeline.clone(),
            loader(true),
            device.clone(),
        )?;
        let test_loader = Loader::new(
            data.test.clone(),
            data.test_pipeline.clone(),
            loader(false),
            device.clone(),
        )?;
        Ok(Self {
            dir: dir.to_path_buf(),
            config,
            plan,
            data,
            trainer,
            train_loader,
            test_loader,
            completed: 0,
        })
    }

    /// The run's configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The local-learning plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The data (where it was read from, image counts).
    pub fn data(&self) -> &Data {
        &self.data
    }

    /// The trainer (network and optimisers).
    pub fn trainer(&self) -> &Trainer<B> {
        &self.trainer
    }

    /// The run directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Epochs completed (and checkpointed).
    pub fn completed(&self) -> usize {
        self.completed
    }

    /// Trains the remaining epochs; after each one, appends its metrics and writes a
    /// checkpoint. A diverging loss stops the run with [`TrainError::Diverged`], leaving the
    /// last good checkpoint in place.
    pub fn train(&mut self, progress: &mut dyn Progress) -> Result<Vec<EpochMetrics>, TrainError> {
        let mut all = Vec::new();
        while let Some(metrics) = self.train_next(progress)? {
            all.push(metrics);
        }
        Ok(all)
    }

    /// Trains the next epoch (`None` once every epoch is done), then appends its metrics and
    /// writes a checkpoint.
    pub fn train_next(
        &mut self,
        progress: &mut dyn Progress,
    ) -> Result<Option<EpochMetrics>, TrainError> {
        if self.completed >= self.config.epochs {
            return Ok(None);
        }
        self.train_epoch(self.completed + 1, progress).map(Some)
    }

    fn train_epoch(
        &mut self,
        epoch: usize,
        progress: &mut dyn Progress,
    ) -> Result<EpochMetrics, TrainError> {
        let lr = self.config.lr_at(epoch);
        let meter = Meter::start();
        let training = self
            .trainer
            .train_epoch(&self.train_loader, epoch, lr, progress)
            .map_err(|e| self.with_checkpoint_hint(e))?;
        let peak_memory = meter.peak();
        let eval_start = Instant::now();
        let eval = self.evaluate()?;
        let aux = self.config.aux_accuracy;
        let metrics = EpochMetrics {
            epoch,
            lr,
            loss: training.losses,
            train_accuracy: training.accuracy,
            test_accuracy: eval.accuracy,
            aux_train_accuracy: aux.then_some(training.aux_accuracy),
            aux_test_accuracy: aux.then_some(eval.aux_accuracy),
            train_images: training.images,
            test_images: eval.images,
            train_seconds: training.seconds,
            eval_seconds: eval_start.elapsed().as_secs_f64(),
            images_per_second: training.images as f64 / training.seconds.max(1e-9),
            peak_memory,
        };
        self.append_metrics(&metrics)?;
        checkpoint::save(&self.dir, epoch, self.config.seed, &self.trainer)?;
        self.completed = epoch;
        progress.message(&metrics.summary());
        Ok(metrics)
    }

    fn with_checkpoint_hint(&self, err: TrainError) -> TrainError {
        match err {
            TrainError::Diverged {
                module,
                epoch,
                step,
                loss,
                lr,
                ..
            } => TrainError::Diverged {
                module,
                epoch,
                step,
                loss,
                lr,
                hint: match checkpoint::latest(&self.dir) {
                    Some((dir, state)) => format!(" at {} (epoch {})", dir.display(), state.epoch),
                    None => {
                        ", but none was written yet: the first epoch diverged; lower --lr".into()
                    }
                },
            },
            other => other,
        }
    }

    /// Test accuracy of the current network (BatchNorm in inference mode); aux heads too if
    /// the configuration asks for them.
    pub fn evaluate(&self) -> Result<Evaluation, TrainError> {
        self.evaluate_with(self.config.aux_accuracy)
    }

    /// Test accuracy of the current network, and of every aux head if `aux`.
    pub fn evaluate_with(&self, aux: bool) -> Result<Evaluation, TrainError> {
        evaluate(
            &self.trainer.network().valid(),
            self.test_loader.epoch(0),
            aux,
        )
    }

    fn append_metrics(&self, metrics: &EpochMetrics) -> Result<(), TrainError> {
        let path = self.dir.join(METRICS);
        let line = serde_json::to_string(metrics).map_err(|e| TrainError::io(&path, e))?;
        let mut file = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| TrainError::io(&path, e))?;
        writeln!(file, "{line}")
            .and_then(|_| file.sync_data())
            .map_err(|e| TrainError::io(&path, e))
    }
}

/// A JSON file of a run directory.
fn read_json<T: serde::de::DeserializeOwned>(dir: &Path, name: &str) -> Result<T, TrainError> {
    let path = dir.join(name);
    let bytes = fs::read(&path).map_err(|e| {
        TrainError::io(&path, format!("{e}; is {} a run directory?", dir.display()))
    })?;
    serde_json::from_slice(&bytes).map_err(|e| TrainError::io(&path, e))
}

/// The configuration of a run directory (`config.json`), not yet validated.
pub fn read_config(dir: &Path) -> Result<TrainConfig, TrainError> {
    read_json(dir, CONFIG)
}

/// The plan of a run directory (`plan.json`).
pub fn read_plan(dir: &Path) -> Result<Plan, TrainError> {
    read_json(dir, PLAN)
}

/// The metrics of a run directory, one per completed epoch line.
pub fn read_metrics(dir: &Path) -> Result<Vec<EpochMetrics>, TrainError> {
    let path = dir.join(METRICS);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(TrainError::io(&path, e)),
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| TrainError::io(&path, e)))
        .collect()
}
