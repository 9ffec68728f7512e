//! Errors of training runs.

use std::path::PathBuf;

use auglocal_aux::PlanError;
use auglocal_data::DataError;
use auglocal_model::ModelError;

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
    /// The data could not be read.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A loss became NaN or infinite.
    #[error(
        "training diverged: the loss of module {module} became {loss} at step {step} of epoch \
         {epoch} (lr {lr}); the last good checkpoint is kept{hint}"
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
        /// Where it is, or that there is none yet.
        hint: String,
    },
    /// A file of the run directory could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

impl TrainError {
    /// A [`TrainError::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, message: impl ToString) -> Self {
        TrainError::Io {
            path: path.into(),
            message: message.to_string(),
        }
    }

    /// Whether the error is the user's input (configuration, network, plan), not the run.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            TrainError::Config(_) | TrainError::Model(_) | TrainError::Plan(_)
        )
    }
}
