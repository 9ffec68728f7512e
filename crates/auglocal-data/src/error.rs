//! Errors of data sets: every one names the file, what was expected and what was found.

use std::path::{Path, PathBuf};

/// Why data could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not what the format says (size, magic number, header, element).
    #[error("{path}: expected {expected}, found {found}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What the format requires.
        expected: String,
        /// What the file holds.
        found: String,
    },
    /// A label outside the format's range.
    #[error("{path}: label of image {index} is {label}, expected {expected}")]
    Label {
        /// The file.
        path: PathBuf,
        /// The image's position in the file.
        index: usize,
        /// The label found.
        label: i64,
        /// The valid range, in the file's own convention.
        expected: String,
    },
    /// A label stored as a number that is not a valid label (a fraction, NaN, out of range).
    #[error("{path}: label of image {index} is {value}, expected {expected}")]
    LabelValue {
        /// The file.
        path: PathBuf,
        /// The image's position in the file.
        index: usize,
        /// The value found, as stored.
        value: f64,
        /// The valid labels, in the file's own convention.
        expected: String,
    },
    /// An image file that does not decode.
    #[error("{path}: cannot decode image: {message}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// The decoder's message.
        message: String,
    },
    /// No directory holds the data set.
    #[error("data set '{name}' not found; looked in: {searched}. {hint}")]
    NotFound {
        /// The data set.
        name: String,
        /// The places searched, comma-separated.
        searched: String,
        /// How to get the data.
        hint: String,
    },
    /// The data set name is not in the registry.
    #[error("unknown data set '{name}'; known: {known}")]
    UnknownDataset {
        /// The name given.
        name: String,
        /// The known names, comma-separated.
        known: String,
    },
    /// A configuration that cannot work (zero batch size, a split the data set lacks, ...).
    #[error("{0}")]
    Config(String),
}

impl DataError {
    /// A [`DataError::Format`] for `path`.
    pub fn format(path: &Path, expected: impl Into<String>, found: impl Into<String>) -> Self {
        DataError::Format {
            path: path.to_path_buf(),
            expected: expected.into(),
            found: found.into(),
        }
    }

    /// A [`DataError::Io`] for `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The size of `path`, which must be a regular file (after symlinks): a folder, a FIFO, a
/// device such as `/dev/null` or a symlink loop in place of a data file is an error naming it,
/// found before anything is opened (a FIFO would block the reader).
pub(crate) fn regular_file(path: &Path) -> Result<u64, DataError> {
    let meta = std::fs::metadata(path).map_err(|e| DataError::io(path, e))?;
    if meta.is_file() {
        return Ok(meta.len());
    }
    Err(DataError::format(
        path,
        "a regular file",
        kind_of(&meta.file_type()),
    ))
}

/// What a non-regular file is, in words.
fn kind_of(ty: &std::fs::FileType) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ty.is_fifo() {
            return "a FIFO (named pipe)".into();
        }
        if ty.is_char_device() {
            return "a character device (such as /dev/null)".into();
        }
        if ty.is_block_device() {
            return "a block device".into();
        }
        if ty.is_socket() {
            return "a socket".into();
        }
    }
    if ty.is_dir() {
        "a directory".into()
    } else {
        "not a regular file".into()
    }
}

/// Reads a whole regular file, naming it in the error.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, DataError> {
    regular_file(path)?;
    std::fs::read(path).map_err(|e| DataError::io(path, e))
}
