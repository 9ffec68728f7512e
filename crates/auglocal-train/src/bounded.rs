//! Reading the small files of a run (and a `--config` file) with a bound on their size: a
//! device (`/dev/zero`), a FIFO or a huge (or sparse) file in place of `config.json` is
//! refused before anything is read, instead of growing the process's memory or blocking it.

use std::fs;
use std::io::Read;
use std::path::Path;

use crate::TrainError;

/// Most bytes of a configuration (`config.json`, `--config`): a few KiB in practice.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// Most bytes of `checkpoints/latest` (a folder name).
pub const MAX_LATEST_BYTES: u64 = 4 << 10;
/// Most bytes of `plan.json`: ResNet-110 with 55 modules writes about 0.2 MiB.
pub const MAX_PLAN_BYTES: u64 = 64 << 20;
/// Most bytes of `metrics.jsonl` and of a checkpoint's `state.json` (which holds the metrics
/// of every epoch): a line per epoch, a few KiB each with every aux head's accuracies.
pub const MAX_METRICS_BYTES: u64 = 512 << 20;

/// The bytes of `path`, which must be a regular file (after symlinks) of at most `limit`
/// bytes; `Ok(None)` when it does not exist. A folder, FIFO, device or socket, or a larger
/// file, is refused (bad input) naming the file, what it holds and the bound.
pub fn read_bounded(path: &Path, limit: u64, what: &str) -> Result<Option<Vec<u8>>, TrainError> {
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(TrainError::io(path, e)),
    };
    if !meta.is_file() {
        return Err(TrainError::refused(
            path,
            format!(
                "is {}, not a regular file; {what} must be a file",
                kind_of(&meta.file_type())
            ),
        ));
    }
    if meta.len() > limit {
        return Err(too_large(path, what, limit));
    }
    let file = fs::File::open(path).map_err(|e| TrainError::io(path, e))?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // A file that grows while it is read stops at the bound too.
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| TrainError::io(path, e))?;
    if bytes.len() as u64 > limit {
        return Err(too_large(path, what, limit));
    }
    Ok(Some(bytes))
}

fn too_large(path: &Path, what: &str, limit: u64) -> TrainError {
    TrainError::refused(
        path,
        format!(
            "is larger than {} MiB, more than {what} ever holds; it is not one of auglocal's \
             files",
            limit as f64 / (1 << 20) as f64
        ),
    )
}

/// What a non-regular file is, in words.
fn kind_of(ty: &fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ty.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if ty.is_char_device() {
            return "a character device (such as /dev/zero)";
        }
        if ty.is_block_device() {
            return "a block device";
        }
        if ty.is_socket() {
            return "a socket";
        }
    }
    if ty.is_dir() {
        "a folder"
    } else {
        "not a regular file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_folders_and_large_files_are_refused_small_files_read() {
        let dir = std::env::temp_dir().join(format!("auglocal-bounded-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("dir");
        let small = dir.join("small.json");
        fs::write(&small, b"{}").expect("write");
        assert_eq!(
            read_bounded(&small, 16, "a test file").expect("reads"),
            Some(b"{}".to_vec())
        );
        assert_eq!(
            read_bounded(&dir.join("absent"), 16, "x").expect("absent"),
            None
        );
        let large = dir.join("large.json");
        fs::write(&large, [b' '; 17]).expect("write");
        for (path, needle) in [
            (large.as_path(), "larger than"),
            (dir.as_path(), "a folder"),
            (Path::new("/dev/zero"), "character device"),
        ] {
            let err = read_bounded(path, 16, "a test file").expect_err("refused");
            assert!(err.to_string().contains(needle), "{err}");
            assert!(err.is_bad_input(), "{err}");
        }
        fs::remove_dir_all(dir).expect("clean up");
    }
}
