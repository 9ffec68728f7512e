//! Errors of training runs.
//!
//! Each variant is one kind of failure and keeps its cause as a `#[source]`.
//! [`TrainError::is_bad_input`] splits them into refusals (the input or the run directory is
//! wrong; nothing was done) and failures during the work.

use std::path::PathBuf;

use auglocal_data::DataError;
use auglocal_model::ModelError;
use auglocal_plan::PlanError;
use burn::record::RecorderError;

/// Why a run could not start, continue or finish.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A configuration that cannot work; found before any work starts.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The network description is invalid.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The local-learning configuration is invalid for the network.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The data could not be opened (files missing, malformed, of the wrong shape).
    #[error(transparent)]
    Data(#[from] DataError),
    /// An exported model could not be written or read back.
    #[error(transparent)]
    Export(#[from] auglocal_model::export::ExportError),
    /// A batch's images are not of the shape the network was built for.
    #[error(
        "the network was built for {expected} images (channels x height x width), but a batch \
         holds {got} images; build the network from the data set's shape"
    )]
    InputShape {
        /// What the network takes, `CxHxW`.
        expected: String,
        /// What the batch holds, `CxHxW`.
        got: String,
    },
    /// A batch could not be made during the work.
    #[error("a batch of {stage} could not be loaded")]
    Batch {
        /// Which pass: `epoch N` or `the test set`.
        stage: String,
        /// What went wrong.
        #[source]
        source: DataError,
    },
    /// The run would need more memory than the machine has.
    #[error(
        "this run needs about {needed_gib:.1} GiB ({what}), more than the {available_gib:.1} GiB \
         of memory this machine has; use a smaller `config.batch`, `config.network.width` or \
         `config.network.image_size`"
    )]
    TooLarge {
        /// What the estimate covers.
        what: String,
        /// Estimated GiB.
        needed_gib: f64,
        /// GiB of memory of the machine.
        available_gib: f64,
    },
    /// The run directory's state forbids the operation; nothing was changed.
    #[error("{path}: {reason}")]
    Refused {
        /// The file or folder at fault.
        path: PathBuf,
        /// Why, and what to do.
        reason: String,
    },
    /// A file or folder could not be read or written. The message names the path; the OS
    /// error is its source (`{:#}` with anyhow prints both, once each).
    #[error("{path}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON file of the run directory does not parse.
    #[error("{path}: not valid JSON for this file")]
    Json {
        /// The file (with the line, for `metrics.jsonl`).
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// Burn's recorder could not encode a checkpoint.
    #[error("{path}: cannot encode the record: {source}")]
    Record {
        /// The file it was meant for.
        path: PathBuf,
        /// The recorder's error.
        #[source]
        source: RecorderError,
    },
    /// The checkpoint of an epoch could not be written (its partial folder was removed).
    #[error(
        "writing the checkpoint of epoch {epoch} failed; {}",
        kept_words(last_checkpoint.as_ref())
    )]
    CheckpointWrite {
        /// The epoch trained.
        epoch: usize,
        /// The last good checkpoint and its epoch, which are kept; `None` when none was
        /// written yet.
        last_checkpoint: Option<(PathBuf, usize)>,
        /// What went wrong (a full disk: the file and "No space left on device").
        #[source]
        source: Box<TrainError>,
    },
    /// A tensor could not be read back from the device.
    #[error("reading {what} back from the device: {message}")]
    ReadBack {
        /// Which values.
        what: &'static str,
        /// The backend's message.
        message: String,
    },
    /// A loss became NaN or infinite.
    #[error(
        "training diverged: the loss of module {module} became {loss} at step {step} of epoch \
         {epoch} (lr {lr}); {}",
        divergence_advice(*lr, run.as_ref())
    )]
    Diverged {
        /// The module whose loss diverged.
        module: usize,
        /// Epoch, from 1.
        epoch: usize,
        /// Step within the epoch, from 1.
        step: usize,
        /// The loss value.
        loss: f32,
        /// The learning rate of the epoch.
        lr: f64,
        /// What the run adds, where a [`crate::Run`] trained (`None` for a bare trainer).
        run: Option<DivergedRun>,
    },

    /// A data-parallel replica failed: its thread pool, or the collective that averages the
    /// replicas' gradients.
    #[error("data-parallel replica {replica}: {message}")]
    Replica {
        /// The replica, from 0.
        replica: usize,
        /// What failed.
        message: String,
    },

    /// Data-parallel replicas ended a run with different weights: the all-reduce did not give
    /// every replica the same gradients.
    #[error(
        "data-parallel replica {replica} ended with weights up to {difference:e} away from \
         replica 0's; every replica must apply the same averaged gradients"
    )]
    ReplicasDiverged {
        /// The replica, from 1.
        replica: usize,
        /// The largest absolute difference of a parameter.
        difference: f32,
    },

    /// A node of a multi-process run (an MPI job) failed or found the nodes out of step.
    #[error("node {rank}: {message}")]
    Nodes {
        /// This process's rank, from 0.
        rank: usize,
        /// What failed.
        message: String,
    },

    /// A run trained by `trained_by` processes, opened by a job of `world`: it resumes only
    /// with as many ([`crate::Run::resume_on_nodes`]); nothing was changed.
    #[error(
        "{path}: the run is trained by {trained_by} process(es) (field `execution.nodes`), but \
         {}; resume it with as many (`Run::resume_on_nodes`)",
        match world { 1 => "this is one process alone".to_string(), n => format!("this job has {n}") }
    )]
    NodeCount {
        /// The run's `config.json`.
        path: PathBuf,
        /// The processes that train the run.
        trained_by: usize,
        /// The processes of this job.
        world: usize,
    },
    /// The nodes of a multi-process run would not train the same run (their flags, data or
    /// run directories differ): refused before anything is written.
    #[error(
        "the {nodes} nodes disagree on {what}; every node must run the same auglocal with the \
         same settings on the same data (and see the same run directory)"
    )]
    NodesDisagree {
        /// The node count.
        nodes: usize,
        /// What they disagree on.
        what: String,
    },
}

/// What a [`crate::Run`] knows of a divergence beyond the trainer: the weight decay it trained
/// with and the last good checkpoint it keeps.
#[derive(Clone, Debug, PartialEq)]
pub struct DivergedRun {
    /// The optimiser's weight decay (`config.optimizer.weight_decay`).
    pub weight_decay: f64,
    /// The last good checkpoint and its epoch; `None` when none was written yet.
    pub last_checkpoint: Option<(PathBuf, usize)>,
}

/// What to change after a divergence at `lr`, and where the last good checkpoint is.
fn divergence_advice(lr: f64, run: Option<&DivergedRun>) -> String {
    let Some(run) = run else {
        return "lower the learning rate".into();
    };
    let decay = run.weight_decay;
    // The reference uses 1e-4 (5e-4 is common): 100 times that is the likely culprit.
    let cause = if decay >= 1e-2 {
        format!(
            "weight decay {decay} is far above the usual 1e-4 to 5e-4 (lr x weight decay is {}): \
             lower `config.optimizer.weight_decay`",
            lr * decay
        )
    } else {
        "lower `config.lr`".to_string()
    };
    format!("{cause}; {}", kept_words(run.last_checkpoint.as_ref()))
}

/// Where the last good checkpoint is (and its epoch), in words.
fn kept_words(last_checkpoint: Option<&(PathBuf, usize)>) -> String {
    match last_checkpoint {
        None => "no checkpoint was written yet".to_string(),
        Some((path, epoch)) => format!(
            "the last good checkpoint, {} (epoch {epoch}), is kept",
            path.display()
        ),
    }
}

impl TrainError {
    /// A [`TrainError::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TrainError::Io {
            path: path.into(),
            source,
        }
    }

    /// A [`TrainError::Refused`] for `path`.
    pub fn refused(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        TrainError::Refused {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// Whether the error is a refusal: the user's input (configuration, network, plan, data
    /// files, run directory) is wrong and nothing was done. The other errors are failures
    /// during the work (I/O, divergence, the device).
    pub fn is_bad_input(&self) -> bool {
        if let TrainError::Export(e) = self {
            return e.is_bad_input();
        }
        matches!(
            self,
            TrainError::Config(_)
                | TrainError::Model(_)
                | TrainError::Plan(_)
                | TrainError::Data(_)
                | TrainError::InputShape { .. }
                | TrainError::TooLarge { .. }
                | TrainError::Refused { .. }
                | TrainError::Json { .. }
                | TrainError::NodesDisagree { .. }
                | TrainError::NodeCount { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error;

    use super::*;

    #[test]
    fn causes_are_kept_as_sources_of_their_own_kind() {
        let disk = std::io::Error::from(std::io::ErrorKind::StorageFull);
        let err = TrainError::io("run/checkpoints/epoch-0002.tmp/network.mpk", disk);
        let source = err.source().expect("the io::Error");
        assert!(source.downcast_ref::<std::io::Error>().is_some());
        assert!(
            err.to_string().contains("epoch-0002.tmp/network.mpk"),
            "{err}"
        );
        let json = serde_json::from_str::<u32>("x").expect_err("not JSON");
        let err = TrainError::Json {
            path: "config.json".into(),
            source: json,
        };
        assert!(err.source().is_some_and(|s| s.is::<serde_json::Error>()));
        assert!(err.is_bad_input());
        let wrapped = TrainError::CheckpointWrite {
            epoch: 2,
            last_checkpoint: None,
            source: Box::new(TrainError::io("x", std::io::Error::other("full"))),
        };
        assert!(!wrapped.is_bad_input());
        let io = wrapped.source().expect("the I/O failure");
        assert_eq!(
            io.to_string(),
            "x",
            "the path, its OS error once, as the next source"
        );
        assert_eq!(
            io.source().map(ToString::to_string).as_deref(),
            Some("full")
        );
    }
}
