//! Checkpoints: the network, its aux nets and every optimiser's state after an epoch, with
//! the configuration and the metrics of every epoch so far, written so that a run killed at
//! any moment resumes from its last complete epoch.
//!
//! Layout: `checkpoints/epoch-NNNN/{network.mpk, optimizers.mpk, state.json}`. A checkpoint
//! is encoded in memory, written into `epoch-NNNN.tmp/` (each file synced), read back and
//! checked (sizes, MD5s, every tensor's shape), renamed to `epoch-NNNN/`, and only then named
//! in `checkpoints/latest` (itself replaced atomically). Older checkpoints are removed last,
//! and only those of earlier epochs that the run does not keep ([`crate::Keep`]). A write that fails (a full disk) removes its `.tmp`
//! folder and leaves the last good checkpoint in place.
//!
//! `state.json` carries a `format` number: 3 is written by this release; format 2 (before
//! network families: aux nets of BasicBlocks, a GAP + Linear head) and format 1 (before
//! checkpoints recorded their configuration and metrics) are read and migrated; any other is
//! refused with the release that wrote it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use auglocal_kernels::FastOpsAutodiff;
use burn::module::Module;
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use crate::bounded::{MAX_LATEST_BYTES, read_bounded};
use crate::metrics::EpochMetrics;
use crate::trainer::Trainer;
use crate::{TrainConfig, TrainError};

mod legacy;
mod read;

pub use read::{Loaded, read, read_state};

/// Folder of a run directory that holds the checkpoints.
pub const CHECKPOINTS: &str = "checkpoints";
const LATEST: &str = "latest";
pub(crate) const STATE: &str = "state.json";
pub(crate) const NETWORK: &str = "network.mpk";
pub(crate) const OPTIMIZERS: &str = "optimizers.mpk";
const TMP_SUFFIX: &str = ".tmp";

/// The checkpoint format this release writes.
pub const FORMAT: u32 = 3;
/// The release of auglocal that writes checkpoints.
pub const RELEASE: &str = env!("CARGO_PKG_VERSION");

pub(crate) type BytesRecorder = NamedMpkBytesRecorder<FullPrecisionSettings>;

/// Size and MD5 of one file of a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    /// Bytes.
    pub bytes: u64,
    /// MD5, lowercase hex.
    pub md5: String,
}

impl FileDigest {
    /// The size and MD5 of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        let md5 = Md5::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Self {
            bytes: bytes.len() as u64,
            md5,
        }
    }
}

/// What a checkpoint says besides the weights (`state.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    /// Layout version ([`FORMAT`] for checkpoints of this release).
    pub format: u32,
    /// The auglocal release that wrote it (absent in format 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// Epochs completed.
    pub epoch: usize,
    /// The run's seed. Shuffles and augmentations are drawn from (seed, epoch, image), so the
    /// seed and the epoch are the whole random state of the run.
    pub seed: u64,
    /// Gradient-isolated modules (one optimiser each).
    pub modules: usize,
    /// The configuration the run was trained with (format 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<TrainConfig>,
    /// The metrics of epochs `1..=epoch` (format 2): the truth from which `metrics.jsonl` is
    /// rebuilt on resume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<EpochMetrics>>,
    /// Size and MD5 of each weight file (format 2).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, FileDigest>,
}

/// Just the version fields, read first so that another format is refused by name.
#[derive(Deserialize)]
pub(crate) struct Version {
    pub(crate) format: u32,
    #[serde(default)]
    pub(crate) release: Option<String>,
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |e| TrainError::io(path, e)
}

/// Writes `contents` to `path` and syncs it.
fn write_synced(path: &Path, contents: &[u8]) -> Result<(), TrainError> {
    use std::io::Write;
    let mut file = fs::File::create(path).map_err(io(path))?;
    file.write_all(contents)
        .and_then(|_| file.sync_all())
        .map_err(io(path))
}

/// Syncs a directory, so that renames inside it survive a crash.
fn sync_dir(dir: &Path) -> Result<(), TrainError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

/// Writes `contents` to `path` atomically: a temporary file beside it, synced, renamed over
/// `path`. A failure removes the temporary file and leaves `path` as it was.
pub(crate) fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), TrainError> {
    let tmp = path.with_extension("tmp");
    let result =
        write_synced(&tmp, contents).and_then(|_| fs::rename(&tmp, path).map_err(io(path)));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The folder name of the checkpoint after `epoch`.
pub fn name(epoch: usize) -> String {
    format!("epoch-{epoch:04}")
}

/// The epoch of a checkpoint folder name (`epoch-0007` -> 7); `None` for anything else,
/// paths and `.tmp` folders included.
pub fn parse_name(name: &str) -> Option<usize> {
    let digits = name.strip_prefix("epoch-")?;
    if digits.len() < 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Saves the trainer's state after `epoch` into `run_dir/checkpoints/`, with the run's
/// configuration and the metrics of epochs `1..=epoch`; returns the checkpoint's folder.
///
/// The new checkpoint is read back and checked before it is named latest and before any
/// older checkpoint is removed. On failure its temporary folder is removed and the previous
/// checkpoint is untouched.
pub fn save<B: FastOpsAutodiff>(
    run_dir: &Path,
    config: &TrainConfig,
    history: &[EpochMetrics],
    trainer: &Trainer<B>,
    device: &B::Device,
) -> Result<PathBuf, TrainError> {
    let epoch = history.len();
    let root = run_dir.join(CHECKPOINTS);
    let name = name(epoch);
    let tmp = root.join(format!("{name}{TMP_SUFFIX}"));
    let dir = root.join(&name);
    let recorder = BytesRecorder::new();
    let network = Recorder::<B>::record(&recorder, trainer.network().clone().into_record(), ())
        .map_err(|source| TrainError::Record {
            path: tmp.join(NETWORK),
            source,
        })?;
    let optimizers =
        Recorder::<B>::record(&recorder, trainer.optimizer_records(), ()).map_err(|source| {
            TrainError::Record {
                path: tmp.join(OPTIMIZERS),
                source,
            }
        })?;
    let state = CheckpointState {
        format: FORMAT,
        release: Some(RELEASE.to_string()),
        epoch,
        seed: config.seed,
        modules: trainer.network().modules.len(),
        config: Some(config.clone()),
        history: Some(history.to_vec()),
        files: BTreeMap::from([
            (NETWORK.to_string(), FileDigest::of(&network)),
            (OPTIMIZERS.to_string(), FileDigest::of(&optimizers)),
        ]),
    };
    let state_json = serde_json::to_vec_pretty(&state).map_err(|source| TrainError::Json {
        path: tmp.join(STATE),
        source,
    })?;

    fs::create_dir_all(&root).map_err(io(&root))?;
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    }
    let written = (|| {
        fs::create_dir(&tmp).map_err(io(&tmp))?;
        write_synced(&tmp.join(NETWORK), &network)?;
        write_synced(&tmp.join(OPTIMIZERS), &optimizers)?;
        // state.json last: a folder with it holds everything.
        write_synced(&tmp.join(STATE), &state_json)?;
        sync_dir(&tmp)?;
        // Read back what is on disk before it replaces anything.
        read(&tmp, trainer.network().clone(), device)?;
        Ok(())
    })();
    if let Err(e) = written {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    drop((network, optimizers));
    if dir.exists() {
        // A checkpoint of this epoch that `latest` does not name (a run killed between the
        // rename and `latest`, then resumed from the epoch before): replaced by the new one.
        fs::remove_dir_all(&dir).map_err(io(&dir))?;
    }
    fs::rename(&tmp, &dir).map_err(io(&dir))?;
    sync_dir(&root)?;
    write_atomic(&root.join(LATEST), name.as_bytes())?;
    sync_dir(&root)?;
    // Only now is the new checkpoint the latest: checkpoints of earlier epochs can go, but
    // those the run keeps (`keep_checkpoints`).
    for entry in fs::read_dir(&root).map_err(io(&root))?.flatten() {
        let file_name = entry.file_name();
        let Some(other) = file_name.to_str() else {
            continue;
        };
        let stale_tmp = other
            .strip_suffix(TMP_SUFFIX)
            .and_then(parse_name)
            .is_some();
        let dropped = parse_name(other)
            .is_some_and(|e| e < epoch && !config.keep_checkpoints.keeps(e, history));
        if dropped || stale_tmp {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
    Ok(dir)
}

/// The epochs whose checkpoints are complete (a `state.json` in `epoch-NNNN/`), ascending.
pub fn complete_epochs(run_dir: &Path) -> Vec<usize> {
    let root = run_dir.join(CHECKPOINTS);
    let mut epochs: Vec<usize> = fs::read_dir(&root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let epoch = parse_name(e.file_name().to_str()?)?;
            e.path().join(STATE).is_file().then_some(epoch)
        })
        .collect();
    epochs.sort_unstable();
    epochs
}

/// The checkpoint a resume starts from: the folder `checkpoints/latest` names, or, without
/// `latest`, the highest `epoch-NNNN/`. `None` when the run has no checkpoint folder at all.
///
/// `latest` must hold a folder name (`epoch-NNNN`), never a path; what it names, if it exists,
/// must be a folder (a refusal otherwise).
pub fn find(run_dir: &Path) -> Result<Option<PathBuf>, TrainError> {
    let found = locate(run_dir)?;
    if let Some(path) = &found
        && path.exists()
        && !path.is_dir()
    {
        return Err(TrainError::refused(
            path,
            "is not a folder, so it holds no checkpoint; restore the checkpoint folder, or \
             remove this and write the name of an earlier epoch-NNNN folder into \
             checkpoints/latest",
        ));
    }
    Ok(found)
}

/// Where [`find`] looks: `latest`'s folder or the highest `epoch-NNNN`.
fn locate(run_dir: &Path) -> Result<Option<PathBuf>, TrainError> {
    let root = run_dir.join(CHECKPOINTS);
    if !root.exists() {
        return Ok(None);
    }
    let latest = root.join(LATEST);
    match read_bounded(&latest, MAX_LATEST_BYTES, "a checkpoint's `latest`") {
        Ok(Some(bytes)) => {
            let text = String::from_utf8_lossy(&bytes);
            let name = text.trim();
            return match parse_name(name) {
                Some(_) => Ok(Some(root.join(name))),
                None => Err(TrainError::refused(
                    &latest,
                    format!(
                        "names {name:?}, which is not a checkpoint folder of this run \
                         (epoch-NNNN); write the name of one of its epoch-NNNN folders into it"
                    ),
                )),
            };
        }
        Ok(None) => {}
        Err(e) => return Err(e),
    }
    let highest = fs::read_dir(&root)
        .map_err(io(&root))?
        .flatten()
        .filter_map(|e| {
            let epoch = parse_name(e.file_name().to_str()?)?;
            Some((epoch, e.path()))
        })
        .max_by_key(|(epoch, _)| *epoch);
    Ok(highest.map(|(_, path)| path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_folder_names_never_paths() {
        assert_eq!(name(7), "epoch-0007");
        assert_eq!(parse_name("epoch-0007"), Some(7));
        assert_eq!(parse_name("epoch-12345"), Some(12345));
        for bad in [
            "../../other/checkpoints/epoch-0001",
            "epoch-0001/..",
            "epoch-0001.tmp",
            "epoch-1",
            "epoch--001",
            "/etc",
            "",
        ] {
            assert_eq!(parse_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn digests_are_md5() {
        // echo -n abc | md5sum
        assert_eq!(
            FileDigest::of(b"abc").md5,
            "900150983cd24fb0d6963f7d28e17f72"
        );
    }
}
