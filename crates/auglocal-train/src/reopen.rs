//! Reopening a run directory, with every check and without writing anything: what
//! [`Run::resume`](crate::Run::resume) continues and [`evaluate_run`] evaluates.

use std::path::{Path, PathBuf};

use auglocal_kernels::FastOpsAutodiff;
use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;

use crate::built::{Built, test_loader};
use crate::checkpoint::{self, CheckpointState};
use crate::metrics::EpochMetrics;
use crate::rundir::{self, CONFIG, METRICS, PLAN, first_difference};
use crate::trainer::{Evaluation, evaluate};
use crate::{TrainConfig, TrainError};

/// A run directory read and checked: what `resume` continues and `eval` evaluates.
pub(crate) struct Opened<B: AutodiffBackend> {
    pub(crate) built: Built<B>,
    /// The checkpoint loaded, if the run has one.
    pub(crate) checkpoint: Option<PathBuf>,
    pub(crate) history: Vec<EpochMetrics>,
}
/// Refuses `ours` unless it equals `theirs` (as JSON), naming the first field that differs.
fn same_as(
    ours: &serde_json::Value,
    theirs: &serde_json::Value,
    path: &Path,
    what: &str,
) -> Result<(), TrainError> {
    match first_difference(ours, theirs) {
        None => Ok(()),
        Some((field, a, b)) => Err(TrainError::refused(
            path,
            format!(
                "field `{field}` is {a}, but {what} {b}; restore it, or start a new run in \
                 another directory (or over this one, `Run::overwrite`)"
            ),
        )),
    }
}

fn to_json<T: serde::Serialize>(value: &T, path: &Path) -> Result<serde_json::Value, TrainError> {
    serde_json::to_value(value).map_err(|source| TrainError::Json {
        path: path.to_path_buf(),
        source,
    })
}

impl<B: FastOpsAutodiff> Opened<B> {
    /// Reads a run directory and its last checkpoint, with every check; writes nothing.
    pub(crate) fn read(dir: &Path, device: &B::Device) -> Result<Self, TrainError> {
        let config = rundir::read_config(dir)?;
        config.validate()?;
        let found = checkpoint::find(dir)?;
        let state = found.as_deref().map(checkpoint::read_state).transpose()?;
        if state.is_none() && rundir::has_metrics(dir)? {
            return Err(TrainError::refused(
                dir.join(checkpoint::CHECKPOINTS),
                format!(
                    "{} records trained epochs, but the run has no checkpoint of them: their \
                     weights are gone, so it cannot be resumed; start it again (`Run::overwrite`)",
                    dir.join(METRICS).display()
                ),
            ));
        }
        let config_path = dir.join(CONFIG);
        if let Some(state) = &state {
            if let Some(recorded) = &state.config {
                // The data may move; the loader's threads, the checkpoints kept and how the modules
                // are executed (execution, threads) may change; nothing else may.
                let comparable = |c: &TrainConfig| {
                    let mut c = c.clone();
                    c.data.data_dir = None;
                    c.data.workers = 0;
                    c.keep_checkpoints = crate::Keep::Last;
                    c.execution.strategy = crate::Execution::Sequential;
                    c.execution.threads = None;
                    c
                };
                same_as(
                    &to_json(&comparable(&config), &config_path)?,
                    &to_json(&comparable(recorded), &config_path)?,
                    &config_path,
                    "the checkpoint was trained with",
                )?;
            }
            if state.seed != config.seed {
                return Err(TrainError::refused(
                    &config_path,
                    format!(
                        "field `seed` is {}, but the checkpoint was trained with seed {}",
                        config.seed, state.seed
                    ),
                ));
            }
        }
        let mut built = Built::new(config, device)?;
        let plan_path = dir.join(PLAN);
        let recorded = rundir::read_plan_json(dir)?;
        let planned = to_json(&built.plan, &plan_path)?;
        if serde_json::from_value::<auglocal_plan::Plan>(recorded.clone()).is_ok() {
            same_as(&recorded, &planned, &plan_path, "config.json plans")?;
        } else {
            // A plan.json of an earlier layout (before network families): its partition, aux
            // nets and costs must still be what config.json plans now.
            same_as(
                &rundir::plan_digest(&recorded),
                &rundir::plan_digest(&planned),
                &plan_path,
                "config.json plans",
            )?;
        }
        let (Some(ckpt), Some(state)) = (found, state) else {
            return Ok(Self {
                built,
                checkpoint: None,
                history: Vec::new(),
            });
        };
        let history = history(dir, &state)?;
        let loaded = checkpoint::read(&ckpt, built.trainer.network().clone(), device)?;
        built.trainer.restore(loaded.network, loaded.optimizers)?;
        Ok(Self {
            built,
            checkpoint: Some(ckpt),
            history,
        })
    }
}

/// The metrics of epochs `1..=state.epoch`: the checkpoint's own (format 2), or, for format-1
/// checkpoints, the matching lines of `metrics.jsonl`.
fn history(dir: &Path, state: &CheckpointState) -> Result<Vec<EpochMetrics>, TrainError> {
    let (history, path) = match &state.history {
        Some(h) => (h.clone(), dir.join(checkpoint::CHECKPOINTS)),
        None => {
            let (mut lines, _torn) = rundir::read_metrics_tolerant(dir)?;
            lines.retain(|m| m.epoch <= state.epoch);
            (lines, dir.join(METRICS))
        }
    };
    let epochs: Vec<usize> = history.iter().map(|m| m.epoch).collect();
    if epochs != (1..=state.epoch).collect::<Vec<_>>() {
        return Err(TrainError::refused(
            path,
            format!(
                "holds the metrics of epochs {epochs:?}, but a checkpoint of epoch {} must hold \
                 those of epochs 1 to {}: the checkpoint's state.json was altered or is damaged",
                state.epoch, state.epoch
            ),
        ));
    }
    Ok(history)
}

/// What [`evaluate_run`] measured.
#[derive(Clone, Debug, PartialEq)]
pub struct RunEvaluation {
    /// The checkpoint evaluated.
    pub checkpoint: PathBuf,
    /// Its epoch.
    pub epoch: usize,
    /// Test accuracy.
    pub evaluation: Evaluation,
}

/// Evaluates the last checkpoint of the run in `dir` on its test set, with the same checks as
/// [`Run::resume`](crate::Run::resume); every aux head too if `aux` or if the run measured
/// them (`aux_accuracy` in its configuration). Reads only: nothing in `dir` is written, not
/// even a lock.
pub fn evaluate_run<B: FastOpsAutodiff>(
    dir: &Path,
    device: &B::Device,
    aux: bool,
) -> Result<RunEvaluation, TrainError> {
    let opened = Opened::<B>::read(dir, device)?;
    let Some(checkpoint) = opened.checkpoint else {
        return Err(TrainError::refused(
            dir,
            "has no checkpoint yet: train at least one epoch",
        ));
    };
    let built = &opened.built;
    let loader = test_loader::<B>(&built.data, &built.config, device)?;
    let aux = aux || built.config.aux_accuracy;
    let evaluation = evaluate(&built.trainer.network().valid(), loader.epoch(0), aux)?;
    Ok(RunEvaluation {
        checkpoint,
        epoch: opened.history.len(),
        evaluation,
    })
}
