//! Errors of exporting and loading models.

use std::path::{Path, PathBuf};

/// Why a model could not be exported or loaded. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The manifest is not JSON of the manifest's shape.
    #[error("{path}: not an auglocal model manifest: {source}")]
    Json {
        /// The manifest.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// The manifest's parts disagree, or a value is out of range.
    #[error("{path}: {message}")]
    Invalid {
        /// The manifest.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The weights file is not the one the manifest was written for (changed, truncated, or
    /// another model's).
    #[error(
        "{path}: {found}, but its manifest was written for {expected}: the file was changed, \
         truncated or replaced; export it again"
    )]
    Checksum {
        /// The weights file.
        path: PathBuf,
        /// What the manifest recorded (bytes and SHA-256).
        expected: String,
        /// What the file holds.
        found: String,
    },
    /// The weights do not fit the network the manifest describes (another architecture,
    /// missing or extra tensors, other shapes), or are not safetensors.
    #[error("{path}: {message}")]
    Weights {
        /// The weights file.
        path: PathBuf,
        /// What does not fit.
        message: String,
    },
    /// An image that cannot be read or decoded (the message names it).
    #[error(transparent)]
    Image(#[from] auglocal_data::DataError),
}

impl ExportError {
    /// Whether the error is in what the user gave (a file that is missing, changed, of
    /// another network, or not an image), not a failure while writing (a full disk).
    pub fn is_bad_input(&self) -> bool {
        match self {
            ExportError::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::NotFound
                    | std::io::ErrorKind::PermissionDenied
                    | std::io::ErrorKind::IsADirectory
                    | std::io::ErrorKind::NotADirectory
                    | std::io::ErrorKind::InvalidInput
            ),
            _ => true,
        }
    }

    pub(crate) fn invalid(path: &Path, message: impl Into<String>) -> Self {
        Self::Invalid {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }

    #[cfg(feature = "burn")]
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
