//! Checkpoints: the network, its aux nets and every optimiser's state after an epoch, written
//! so that a run killed at any moment resumes from its last complete epoch.
//!
//! Layout: `checkpoints/epoch-NNNN/{network.mpk, optimizers.mpk, state.json}`. A checkpoint is
//! written into `epoch-NNNN.tmp/`, synced, renamed to `epoch-NNNN/`, and only then named in
//! `checkpoints/latest` (itself replaced atomically); older checkpoints are removed last.

use std::fs;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder, Recorder};
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::local::LocalNetwork;
use crate::trainer::{OptimizerRecord, Trainer};

const CHECKPOINTS: &str = "checkpoints";
const LATEST: &str = "latest";
const STATE: &str = "state.json";
const FORMAT: u32 = 1;

type FileRecorder = NamedMpkFileRecorder<FullPrecisionSettings>;

/// What a checkpoint says besides the weights.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointState {
    /// Layout version.
    pub format: u32,
    /// Epochs completed.
    pub epoch: usize,
    /// The run's seed. Shuffles and augmentations are drawn from (seed, epoch, image), so the
    /// seed and the epoch are the whole random state of the run.
    pub seed: u64,
    /// Gradient-isolated modules (one optimiser each).
    pub modules: usize,
}

/// Writes `contents` to `path` atomically (temporary file, sync, rename).
pub(crate) fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), TrainError> {
    let tmp = path.with_extension("tmp");
    let result = fs::write(&tmp, contents)
        .and_then(|_| fs::File::open(&tmp)?.sync_all())
        .and_then(|_| fs::rename(&tmp, path));
    result.map_err(|e| TrainError::io(path, e))
}

fn sync_files(dir: &Path) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        fs::File::open(entry?.path())?.sync_all()?;
    }
    Ok(())
}

/// Saves the trainer's state after `epoch` into `run_dir/checkpoints/`; returns its folder.
pub fn save<B: AutodiffBackend>(
    run_dir: &Path,
    epoch: usize,
    seed: u64,
    trainer: &Trainer<B>,
) -> Result<PathBuf, TrainError> {
    let root = run_dir.join(CHECKPOINTS);
    let name = format!("epoch-{epoch:04}");
    let tmp = root.join(format!("{name}.tmp"));
    let dir = root.join(&name);
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |e: std::io::Error| TrainError::io(p, e)
    };
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    }
    fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    let recorder = FileRecorder::new();
    recorder
        .record(trainer.network().clone().into_record(), tmp.join("network"))
        .map_err(|e| TrainError::io(tmp.join("network.mpk"), e))?;
    recorder
        .record(trainer.optimizer_records(), tmp.join("optimizers"))
        .map_err(|e| TrainError::io(tmp.join("optimizers.mpk"), e))?;
    let state = CheckpointState {
        format: FORMAT,
        epoch,
        seed,
        modules: trainer.network().modules.len(),
    };
    let json = serde_json::to_vec_pretty(&state).map_err(|e| TrainError::io(tmp.join(STATE), e))?;
    fs::write(tmp.join(STATE), json).map_err(io(&tmp.join(STATE)))?;
    sync_files(&tmp).map_err(io(&tmp))?;
    if dir.exists() {
        fs::remove_dir_all(&dir).map_err(io(&dir))?;
    }
    fs::rename(&tmp, &dir).map_err(io(&dir))?;
    write_atomic(&root.join(LATEST), name.as_bytes())?;
    // Only now is the new checkpoint the latest: older ones can go.
    for entry in fs::read_dir(&root).map_err(io(&root))?.flatten() {
        let path = entry.path();
        let other = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if other.starts_with("epoch-") && other != name {
            let _ = fs::remove_dir_all(&path);
        }
    }
    Ok(dir)
}

fn read_state(dir: &Path) -> Option<CheckpointState> {
    let state: CheckpointState = serde_json::from_slice(&fs::read(dir.join(STATE)).ok()?).ok()?;
    (state.format == FORMAT).then_some(state)
}

/// The latest complete checkpoint of a run, if any: the one `latest` names, or else the
/// highest complete `epoch-NNNN/`.
pub fn latest(run_dir: &Path) -> Option<(PathBuf, CheckpointState)> {
    let root = run_dir.join(CHECKPOINTS);
    if let Ok(name) = fs::read_to_string(root.join(LATEST)) {
        let dir = root.join(name.trim());
        if let Some(state) = read_state(&dir) {
            return Some((dir, state));
        }
    }
    fs::read_dir(&root)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_none())
        .filter_map(|p| read_state(&p).map(|s| (p, s)))
        .max_by_key(|(_, s)| s.epoch)
}

/// Loads a checkpoint folder into `trainer` (whose network must have the same layout).
pub fn load<B: AutodiffBackend>(
    dir: &Path,
    trainer: &mut Trainer<B>,
    device: &B::Device,
) -> Result<CheckpointState, TrainError> {
    let state = read_state(dir).ok_or_else(|| {
        TrainError::io(
            dir.join(STATE),
            format!("not a checkpoint of format {FORMAT}"),
        )
    })?;
    let modules = trainer.network().modules.len();
    if state.modules != modules {
        return Err(TrainError::io(
            dir,
            format!(
                "holds {} modules, the run's plan has {modules}",
                state.modules
            ),
        ));
    }
    let recorder = FileRecorder::new();
    let record = recorder
        .load(dir.join("network"), device)
        .map_err(|e| TrainError::io(dir.join("network.mpk"), e))?;
    let network: LocalNetwork<B> = trainer.network().clone().load_record(record);
    let optimizers: Vec<OptimizerRecord<B>> = recorder
        .load(dir.join("optimizers"), device)
        .map_err(|e| TrainError::io(dir.join("optimizers.mpk"), e))?;
    trainer.restore(network, optimizers);
    Ok(state)
}
