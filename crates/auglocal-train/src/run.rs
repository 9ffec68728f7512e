//! A training run and its directory (see [`crate::rundir`] for the files).
//!
//! What a run directory guarantees:
//! - [`Run::create`] refuses a directory that holds anything of a run; [`Run::overwrite`]
//!   replaces one, and only its own files.
//! - One writer: `create`, `overwrite` and `resume` hold the directory's lock for as long as
//!   the [`Run`] lives; a second process is refused. A run trained by several processes
//!   ([`Run::create_on_nodes`], [`Run::resume_on_nodes`]) is written by node 0 alone; every
//!   node reads it on resume, and all check that they train the same run.
//! - [`Run::resume`] continues from the last checkpoint, or refuses (changing nothing) when the
//!   run has metrics or checkpoint folders but no checkpoint that loads, or when `config.json`
//!   or `plan.json` no longer match what the checkpoint was trained with.
//! - [`evaluate_run`](crate::evaluate_run) only reads.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use auglocal_data::{Data, Loader, LoaderConfig};
use auglocal_kernels::FastOpsAutodiff;
use auglocal_plan::Plan;
use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;

use crate::built::{Built, check_execution, record_data_dir, test_loader};
use crate::checkpoint::{self, write_atomic};
use crate::execution::{Execution, Strategy};
use crate::memory::Meter;
use crate::metrics::EpochMetrics;
use crate::nodes::{Nodes, check_agree, fingerprint};
use crate::progress::Progress;
use crate::reopen::Opened;
use crate::rundir::{self, CONFIG, PLAN, RunLock};
use crate::trainer::{Evaluation, Trainer, evaluate};
use crate::{DivergedRun, TrainConfig, TrainError};

/// A training run and its directory.
pub struct Run<B: AutodiffBackend> {
    dir: PathBuf,
    device: B::Device,
    /// The device of each pipeline stage or data-parallel replica, where not all on
    /// `device`.
    devices: Option<Vec<B::Device>>,
    config: TrainConfig,
    plan: Plan,
    data: Data,
    trainer: Trainer<B>,
    train_loader: Loader<B>,
    test_loader: Loader<B::InnerBackend>,
    /// The metrics of every completed (checkpointed) epoch.
    history: Vec<EpochMetrics>,
    /// The processes that train the run together, if several.
    nodes: Option<Arc<dyn Nodes>>,
    /// The directory's lock, held by the one writer.
    _lock: Option<RunLock>,
}

impl<B: FastOpsAutodiff> Run<B> {
    /// Starts a new run in `dir` (created if needed). A directory that holds anything of a run
    /// (`config.json`, `plan.json`, `metrics.jsonl`, `checkpoints/`) is refused; so is a
    /// directory another process trains in. The configuration, the plan, the memory it needs
    /// and the data are checked before anything is written.
    pub fn create(config: TrainConfig, dir: &Path, device: &B::Device) -> Result<Self, TrainError> {
        Self::start(config, dir, device, false, None)
    }

    /// Starts a new run in `dir`, replacing the run it holds (`--overwrite`): the old run's
    /// files are removed once everything is checked and the lock is held; other files stay.
    pub fn overwrite(
        config: TrainConfig,
        dir: &Path,
        device: &B::Device,
    ) -> Result<Self, TrainError> {
        Self::start(config, dir, device, true, None)
    }

    /// Starts a new run that every node of `nodes` (the processes of an MPI job, each calling
    /// this with the same configuration) trains as one group of data-parallel replicas:
    /// `config.execution` must be data-parallel, and `config.nodes` is set to the node count.
    /// Node 0 alone checks and writes `dir` as [`Run::create`] (or [`Run::overwrite`]) does;
    /// the others build the same run without touching it. Every node checks that all build the
    /// same run (settings, plan and data) before anything is written.
    pub fn create_on_nodes(
        mut config: TrainConfig,
        dir: &Path,
        device: &B::Device,
        overwrite: bool,
        nodes: Arc<dyn Nodes>,
    ) -> Result<Self, TrainError> {
        let nodes = (nodes.size() > 1).then_some(nodes);
        config.execution.nodes = nodes.as_ref().map(|n| n.size());
        Self::start(config, dir, device, overwrite, nodes)
    }

    fn start(
        config: TrainConfig,
        dir: &Path,
        device: &B::Device,
        overwrite: bool,
        nodes: Option<Arc<dyn Nodes>>,
    ) -> Result<Self, TrainError> {
        config.validate()?;
        // Node 0 (or a process on its own) checks and writes the directory; other nodes only
        // build the same run.
        let writer = is_writer(nodes.as_deref());
        let refuse_existing = || {
            let entries = rundir::run_entries(dir);
            if entries.is_empty() || overwrite {
                return Ok(());
            }
            Err(TrainError::refused(
                dir,
                format!(
                    "already holds a run ({}); resume it (`Run::resume`), replace it \
                     (`Run::overwrite`), or choose another directory",
                    entries.join(", "),
                ),
            ))
        };
        if writer {
            if dir.exists() && !dir.is_dir() {
                return Err(TrainError::refused(
                    dir,
                    "is not a directory; name a folder for the run",
                ));
            }
            refuse_existing()?;
        }
        let mut built = Built::new(config, device)?;
        record_data_dir(&mut built);
        if let Some(nodes) = &nodes {
            check_agree(nodes.as_ref(), built.fingerprint()?, "the run they start")?;
        }
        if !writer {
            return Self::assemble(dir, device, built, Vec::new(), None, nodes);
        }
        let created = !dir.exists();
        fs::create_dir_all(dir).map_err(|e| {
            TrainError::refused(dir, format!("cannot create the run directory: {e}"))
        })?;
        let lock = match RunLock::acquire(dir) {
            Ok(lock) => lock,
            Err(e) => {
                if created {
                    let _ = fs::remove_dir(dir);
                }
                return Err(e);
            }
        };
        // Checked again under the lock: another process may have started a run meanwhile.
        refuse_existing()?;
        // A run exists whole or not at all: what a killed creation left is removed first, and
        // what this one wrote before a failure (a full disk) is removed again, with the lock
        // and the directory if this call made them.
        let written = if overwrite {
            rundir::remove_run(dir)
        } else {
            rundir::remove_unfinished(dir)
        }
        .and_then(|()| write_new_run(dir, &built));
        if let Err(e) = written {
            let _ = rundir::remove_unfinished(dir);
            drop(lock);
            let _ = fs::remove_file(dir.join(rundir::LOCK));
            if created {
                let _ = fs::remove_dir(dir);
            }
            return Err(e);
        }
        Self::assemble(dir, device, built, Vec::new(), Some(lock), nodes)
    }

    /// Reopens the run in `dir` at its last checkpoint (from scratch if it has none and no
    /// metrics). Refuses, changing nothing, when another process holds the run, when the run
    /// has metrics or checkpoint folders but no checkpoint that loads, or when `config.json`
    /// or `plan.json` differ from what the checkpoint recorded. `metrics.jsonl` is then
    /// rewritten from the checkpoint, which holds the metrics of every epoch it covers (a torn
    /// last line, or lines of epochs after the checkpoint, are dropped).
    pub fn resume(dir: &Path, device: &B::Device) -> Result<Self, TrainError> {
        Self::reopen(dir, device, None)
    }

    /// Reopens the run in `dir` on every node of `nodes` (the processes of an MPI job, each
    /// calling this), as [`Run::resume`] does: every node reads and checks the directory (it
    /// must see it: a shared file system, or a copy), node 0 alone locks and writes it. Refused
    /// when the run was trained by another number of nodes, or when the nodes read different
    /// runs.
    pub fn resume_on_nodes(
        dir: &Path,
        device: &B::Device,
        nodes: Arc<dyn Nodes>,
    ) -> Result<Self, TrainError> {
        Self::reopen(dir, device, Some(nodes))
    }

    fn reopen(
        dir: &Path,
        device: &B::Device,
        nodes: Option<Arc<dyn Nodes>>,
    ) -> Result<Self, TrainError> {
        // The lock file is created only in a directory that holds a run.
        let config = rundir::read_config(dir)?;
        let world = nodes.as_ref().map_or(1, |n| n.size());
        let nodes = nodes.filter(|_| world > 1);
        let trained_by = config.execution.nodes.unwrap_or(1);
        if trained_by != world {
            return Err(TrainError::NodeCount {
                path: dir.join(CONFIG),
                trained_by,
                world,
            });
        }
        let writer = is_writer(nodes.as_deref());
        let lock = writer.then(|| RunLock::acquire(dir)).transpose()?;
        let opened = Opened::read(dir, device)?;
        if let Some(nodes) = &nodes {
            let mut bytes = opened.built.fingerprint()?.to_le_bytes().to_vec();
            bytes.extend((opened.history.len() as u64).to_le_bytes());
            check_agree(
                nodes.as_ref(),
                fingerprint(&bytes),
                "the run they resume (its settings, plan, data and last checkpoint's epoch)",
            )?;
        }
        if !writer {
            return Self::assemble(dir, device, opened.built, opened.history, None, nodes);
        }
        rundir::write_metrics(dir, &opened.history)?;
        // A creation killed after its config.json left its marker behind; the run is whole.
        rundir::finish_creation(dir)?;
        // The plan was checked to be the recorded one; this writes it in today's layout.
        let plan =
            serde_json::to_vec_pretty(&opened.built.plan).map_err(|source| TrainError::Json {
                path: dir.join(PLAN),
                source,
            })?;
        write_atomic(&dir.join(PLAN), &plan)?;
        Self::assemble(dir, device, opened.built, opened.history, lock, nodes)
    }

    fn assemble(
        dir: &Path,
        device: &B::Device,
        built: Built<B>,
        history: Vec<EpochMetrics>,
        lock: Option<RunLock>,
        nodes: Option<Arc<dyn Nodes>>,
    ) -> Result<Self, TrainError> {
        let config = &built.config;
        let loader = |train: bool| LoaderConfig {
            workers: config.data.workers,
            ..if train {
                LoaderConfig::train(config.batch, config.seed)
            } else {
                LoaderConfig::eval(config.batch)
            }
        };
        let train_loader = Loader::new(
            built.data.train.clone(),
            built.data.train_pipeline.clone(),
            loader(true),
            device.clone(),
        )?;
        let test_loader = test_loader::<B>(&built.data, config, device)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            device: device.clone(),
            devices: None,
            config: built.config,
            plan: built.plan,
            data: built.data,
            trainer: built.trainer,
            train_loader,
            test_loader,
            history,
            nodes,
            _lock: lock,
        })
    }

    /// The processes that train the run together, if several.
    pub fn nodes(&self) -> Option<&Arc<dyn Nodes>> {
        self.nodes.as_ref()
    }

    /// Whether this process writes the run directory: always, but on nodes other than 0.
    pub fn is_writer(&self) -> bool {
        is_writer(self.nodes.as_deref())
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
        self.history.len()
    }

    /// The metrics of every completed epoch.
    pub fn history(&self) -> &[EpochMetrics] {
        &self.history
    }

    /// Trains the remaining epochs; after each one, writes a checkpoint and appends its
    /// metrics. A diverging loss stops the run with [`TrainError::Diverged`], leaving the last
    /// good checkpoint in place.
    pub fn train(&mut self, progress: &mut dyn Progress) -> Result<Vec<EpochMetrics>, TrainError> {
        let mut all = Vec::new();
        while let Some(metrics) = self.train_next(progress)? {
            all.push(metrics);
        }
        Ok(all)
    }

    /// Trains the next epoch (`None` once every epoch is done), then writes its checkpoint and
    /// appends its metrics.
    pub fn train_next(
        &mut self,
        progress: &mut dyn Progress,
    ) -> Result<Option<EpochMetrics>, TrainError> {
        if self.completed() >= self.config.epochs {
            return Ok(None);
        }
        self.train_epoch(self.completed() + 1, progress).map(Some)
    }

    fn train_epoch(
        &mut self,
        epoch: usize,
        progress: &mut dyn Progress,
    ) -> Result<EpochMetrics, TrainError> {
        let lr = self.config.lr_at(epoch);
        let meter = Meter::start();
        let strategy = self.strategy()?;
        let training = self
            .trainer
            .train_epoch_with(&self.train_loader, epoch, lr, &strategy, progress)
            .map_err(|e| self.in_run(e))?;
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
            stage_busy: self
                .config
                .execution
                .strategy
                .stages()
                .map(|_| training.stage_busy),
        };
        self.history.push(metrics.clone());
        if !self.is_writer() {
            return Ok(metrics);
        }
        // The checkpoint first (it holds the metrics too), then the line of metrics.jsonl.
        if let Err(source) = checkpoint::save(
            &self.dir,
            &self.config,
            &self.history,
            &self.trainer,
            &self.device,
        ) {
            self.history.pop();
            return Err(TrainError::CheckpointWrite {
                epoch,
                last_checkpoint: self.last_checkpoint(),
                source: Box::new(source),
            });
        }
        rundir::append_metrics(&self.dir, &metrics)?;
        progress.message(&metrics.summary());
        Ok(metrics)
    }

    /// Places pipeline stage or data-parallel replica `s` on `devices[s]` (by default every
    /// one runs on the run's device); refuses a list that is not one device per stage or
    /// replica of the run's execution.
    pub fn with_devices(mut self, devices: Vec<B::Device>) -> Result<Self, TrainError> {
        let wanted = self.config.execution.strategy.devices();
        if devices.len() != wanted {
            return Err(TrainError::Config(format!(
                "{} devices for {}: give one device per stage or replica",
                devices.len(),
                describe_execution(self.config.execution.strategy)
            )));
        }
        self.devices = Some(devices);
        Ok(self)
    }

    /// Executes the next epochs as `execution` says, each pool with `threads` threads (a
    /// resumed run may change both: the weights are the same, except that data-parallel
    /// replicas normalise BatchNorm over their own shards). Refuses what the plan cannot
    /// execute; records the choice in `config.json`.
    pub fn with_execution(
        mut self,
        execution: Execution,
        threads: Option<usize>,
    ) -> Result<Self, TrainError> {
        let mut config = self.config.clone();
        config.execution.strategy = execution;
        config.execution.threads = threads;
        config.validate()?;
        check_execution(&config, &self.plan)?;
        if self.is_writer() {
            let json = serde_json::to_vec_pretty(&config).map_err(|source| TrainError::Json {
                path: self.dir.join(CONFIG),
                source,
            })?;
            write_atomic(&self.dir.join(CONFIG), &json)?;
        }
        self.config = config;
        self.devices = None;
        Ok(self)
    }

    /// How the next epoch executes: the configuration's [`Execution`] and threads, on the
    /// run's device (or the stages' or replicas' devices).
    pub fn strategy(&self) -> Result<Strategy<B>, TrainError> {
        let strategy = Strategy::new(
            self.config.execution.strategy,
            self.config.execution.threads,
            &self.plan,
            &self.device,
        )?;
        let strategy = match &self.devices {
            Some(devices) => strategy.with_devices(devices.clone())?,
            None => strategy,
        };
        Ok(match (strategy, &self.nodes) {
            (Strategy::DataParallel(dp), Some(nodes)) => {
                Strategy::DataParallel(dp.with_nodes(Arc::clone(nodes)))
            }
            (strategy, _) => strategy,
        })
    }

    /// The last good checkpoint and its epoch, if one was written.
    fn last_checkpoint(&self) -> Option<(PathBuf, usize)> {
        let completed = self.history.len();
        (completed > 0).then(|| {
            let path = self
                .dir
                .join(checkpoint::CHECKPOINTS)
                .join(checkpoint::name(completed));
            (path, completed)
        })
    }

    /// A divergence with what this run adds: its weight decay and its last good checkpoint.
    fn in_run(&self, mut err: TrainError) -> TrainError {
        if let TrainError::Diverged { run, .. } = &mut err {
            *run = Some(DivergedRun {
                weight_decay: self.config.optimizer.weight_decay,
                last_checkpoint: self.last_checkpoint(),
            });
        }
        err
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
}

/// Writes a new run's `config.json`, `plan.json` and empty `metrics.jsonl`, whole or not at
/// all (see [`rundir`]).
fn write_new_run<B: AutodiffBackend>(dir: &Path, built: &Built<B>) -> Result<(), TrainError> {
    let json = |value: serde_json::Result<Vec<u8>>, name: &str| {
        value.map_err(|source| TrainError::Json {
            path: dir.join(name),
            source,
        })
    };
    rundir::write_new(
        dir,
        &json(serde_json::to_vec_pretty(&built.config), CONFIG)?,
        &json(serde_json::to_vec_pretty(&built.plan), PLAN)?,
    )
}

/// Whether this process writes the run directory: node 0, or a process on its own.
fn is_writer(nodes: Option<&dyn Nodes>) -> bool {
    nodes.is_none_or(|n| n.rank() == 0)
}

/// An execution in words, for messages.
fn describe_execution(execution: Execution) -> String {
    match execution {
        Execution::Sequential => "sequential training".into(),
        Execution::Pipelined { stages } => format!("a pipeline of {stages} stage(s)"),
        Execution::DataParallel { replicas } => format!("{replicas} data-parallel replica(s)"),
    }
}
