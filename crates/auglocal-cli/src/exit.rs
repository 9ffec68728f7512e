//! Exit statuses, one convention for every command:
//!
//! - `0`: done;
//! - `2`: refused before any work, because something the user gave is wrong: a flag, a
//!   `--config` file, a data set's files, a run directory's state, an output path, a backend
//!   this binary was built without (nothing was changed);
//! - `1`: the work started and failed: an I/O error (a full disk), a diverging loss, a batch
//!   that could not be loaded, the device.
//!
//! The first error of the chain that says which it is decides.

use std::process::ExitCode;

use auglocal_data::DataError;
use auglocal_model::ModelError;
use auglocal_model::export::ExportError;
use auglocal_plan::PlanError;
use auglocal_train::TrainError;

/// Something the user gave on the command line, or a file they named, is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// A [`UsageError`] as an `anyhow::Error`, for `bail!`-like returns.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

/// The status of a failed command.
pub fn status(err: &anyhow::Error) -> u8 {
    for e in err.chain() {
        if let Some(train) = e.downcast_ref::<TrainError>() {
            return if train.is_bad_input() { 2 } else { 1 };
        }
        if let Some(export) = e.downcast_ref::<ExportError>() {
            return if export.is_bad_input() { 2 } else { 1 };
        }
        if e.is::<UsageError>()
            || e.is::<PlanError>()
            || e.is::<ModelError>()
            || e.is::<DataError>()
        {
            return 2;
        }
    }
    1
}

/// [`status`] as an [`ExitCode`].
pub fn code(err: &anyhow::Error) -> ExitCode {
    ExitCode::from(status(err))
}

#[cfg(test)]
mod tests {
    use anyhow::Context;

    use super::*;

    #[test]
    fn the_outermost_typed_error_decides() {
        let refused = anyhow::Error::from(TrainError::refused("run", "holds a run"));
        assert_eq!(status(&refused.context("training")), 2);
        // A batch that fails mid-epoch is a failure during the work, though its cause is a
        // data error.
        let during = TrainError::Batch {
            stage: "epoch 3".into(),
            source: DataError::Config("broken".into()),
        };
        assert_eq!(status(&anyhow::Error::from(during)), 1);
        let disk = TrainError::io("x", std::io::Error::other("No space left on device"));
        assert_eq!(status(&anyhow::Error::from(disk)), 1);
        let config: Result<(), _> = Err(usage("bad --config")).context("reading settings");
        assert_eq!(status(&config.expect_err("error")), 2);
        assert_eq!(status(&anyhow::anyhow!("plain")), 1);
    }
}
