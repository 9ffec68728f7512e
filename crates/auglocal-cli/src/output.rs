//! Files the user asks a command to write (`--save-json`, `--plot`, ...), checked before any
//! work so that a long measurement never ends in "cannot write".

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::exit::usage;

/// An output path that was writable when the command started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputFile {
    path: PathBuf,
}

impl OutputFile {
    /// Checks that `path` can be written: its folder exists and takes a new file, `path`
    /// itself is not a folder, and an existing file is replaced only with `overwrite` (the
    /// command's `--overwrite`) and only if it can be written. Nothing is left behind.
    pub fn check(path: &Path, overwrite: bool) -> Result<Self> {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if !parent.is_dir() {
            return Err(usage(format!(
                "{}: cannot write there: {} is not an existing folder",
                path.display(),
                parent.display()
            )));
        }
        if path.is_dir() {
            return Err(usage(format!(
                "{}: is a folder; name a file to write",
                path.display()
            )));
        }
        if let Some(run) = enclosing_run(parent) {
            return Err(usage(format!(
                "{}: is inside the run directory {}, which only `auglocal train` writes (its \
                 checkpoints and metrics would be lost); write the file elsewhere",
                path.display(),
                run.display()
            )));
        }
        if path.exists() && !path.is_file() {
            return Err(usage(format!(
                "{}: not a regular file (a device, a FIFO or a socket); name a file to write",
                path.display()
            )));
        }
        if path.exists() || path.is_symlink() {
            if !overwrite {
                return Err(usage(format!(
                    "{}: exists; pass --overwrite to replace it, or name another file",
                    path.display()
                )));
            }
            // Opened for writing without truncating: the file stays as it is.
            if let Err(e) = fs::OpenOptions::new().write(true).open(path) {
                return Err(usage(format!(
                    "{}: cannot be replaced: {e}",
                    path.display()
                )));
            }
        }
        probe(path, parent)?;
        Ok(Self {
            path: path.to_path_buf(),
        })
    }

    /// Checks that `dir` can take files a command writes (`data --write-images`): an existing
    /// folder, or a new one in an existing folder, writable, not inside a run directory.
    /// Nothing is left behind.
    pub fn check_folder(dir: &Path) -> Result<()> {
        let existing = if dir.exists() {
            if !dir.is_dir() {
                return Err(usage(format!(
                    "{}: not a folder; name a folder to write into",
                    dir.display()
                )));
            }
            dir
        } else {
            match dir.parent() {
                Some(p) if p.as_os_str().is_empty() => Path::new("."),
                Some(p) if p.is_dir() => p,
                _ => {
                    return Err(usage(format!(
                        "{}: cannot be made: its parent is not an existing folder",
                        dir.display()
                    )));
                }
            }
        };
        if let Some(run) = enclosing_run(existing) {
            return Err(usage(format!(
                "{}: is inside the run directory {}, which only `auglocal train` writes; write \
                 elsewhere",
                dir.display(),
                run.display()
            )));
        }
        probe(dir, existing)
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `contents` (a failure now is an error of the work, exit status 1).
    pub fn write(&self, contents: &[u8]) -> Result<()> {
        fs::write(&self.path, contents).with_context(|| format!("writing {}", self.path.display()))
    }
}

/// Creates and removes a file in `folder`: whether `path` (in it) can be written.
fn probe(path: &Path, folder: &Path) -> Result<()> {
    let probe = folder.join(format!(".auglocal-write-check-{}", std::process::id()));
    match fs::File::create(&probe) {
        Ok(_) => {
            let _ = fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(usage(format!(
            "{}: cannot write into {}: {e}",
            path.display(),
            folder.display()
        ))),
    }
}

/// The run directory (one holding a run's `config.json` and `metrics.jsonl`) that `folder` is
/// or lies in, if any.
fn enclosing_run(folder: &Path) -> Option<PathBuf> {
    let folder = folder.canonicalize().ok()?;
    folder
        .ancestors()
        .find(|dir| {
            let entries = auglocal_train::rundir::run_entries(dir);
            entries.contains(&auglocal_train::rundir::CONFIG)
                && entries.contains(&auglocal_train::rundir::METRICS)
        })
        .map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwritable_places_are_refused_before_any_work() {
        for bad in ["/nonexistent/dir/out.json", "/proc/auglocal.json", "/tmp"] {
            let err = OutputFile::check(Path::new(bad), true).expect_err(bad);
            assert_eq!(crate::exit::status(&err), 2, "{bad}: {err}");
            assert!(err.to_string().contains(bad), "{err}");
        }
        let dir = std::env::temp_dir();
        let ok =
            OutputFile::check(&dir.join("auglocal-output-check.json"), false).expect("writable");
        assert!(!ok.path().exists(), "the check leaves nothing behind");
        assert_eq!(
            fs::read_dir(&dir)
                .expect("list")
                .flatten()
                .filter(|e| e
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".auglocal-write-check"))
                .count(),
            0
        );
        // An existing file: refused without --overwrite, untouched either way.
        let existing = dir.join(format!("auglocal-output-existing-{}", std::process::id()));
        fs::write(&existing, b"kept").expect("write");
        let err = OutputFile::check(&existing, false).expect_err("exists");
        assert_eq!(crate::exit::status(&err), 2);
        assert!(err.to_string().contains("pass --overwrite"), "{err}");
        OutputFile::check(&existing, true).expect("replaceable");
        assert_eq!(fs::read(&existing).expect("read"), b"kept");
        let _ = fs::remove_file(existing);
    }
}
