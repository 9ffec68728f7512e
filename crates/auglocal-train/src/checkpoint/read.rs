//! Reading a checkpoint back, with every check: its format, its files' sizes and MD5s, its
//! module count and every tensor's shape.

use std::fs;
use std::path::Path;

use auglocal_kernels::FastOpsAutodiff;
use burn::module::{Module, ModuleVisitor, Param};
use burn::record::{Recorder, RecorderError};
use burn::tensor::Tensor;
use burn::tensor::backend::{AutodiffBackend, Backend};

use super::{
    BytesRecorder, CheckpointState, FORMAT, FileDigest, NETWORK, OPTIMIZERS, RELEASE, STATE,
    Version,
};
use crate::TrainError;
use crate::bounded::{MAX_METRICS_BYTES, read_bounded};
use crate::local::LocalNetwork;
use crate::step::OptimizerRecord;

/// A checkpoint read back: its state, the network with its weights, the optimisers' states.
pub struct Loaded<B: AutodiffBackend> {
    /// `state.json`.
    pub state: CheckpointState,
    /// The network (and aux nets) with the checkpoint's weights and statistics.
    pub network: LocalNetwork<B>,
    /// One optimiser state per module.
    pub optimizers: Vec<OptimizerRecord<B>>,
}

/// Reads and checks `state.json` of a checkpoint folder.
pub fn read_state(dir: &Path) -> Result<CheckpointState, TrainError> {
    let path = dir.join(STATE);
    let Some(bytes) = read_bounded(&path, MAX_METRICS_BYTES, "a checkpoint's state.json")? else {
        return Err(TrainError::refused(
            &path,
            if dir.exists() {
                "missing: the checkpoint is incomplete"
            } else {
                "missing: the checkpoint folder does not exist"
            },
        ));
    };
    let version: Version = serde_json::from_slice(&bytes)
        .map_err(|e| TrainError::refused(&path, format!("unreadable checkpoint state ({e})")))?;
    if !(1..=FORMAT).contains(&version.format) {
        return Err(TrainError::refused(
            &path,
            format!(
                "checkpoint format {} written by auglocal {}; this auglocal ({RELEASE}) reads \
                 formats 1 to {FORMAT}: resume it with the release that wrote it",
                version.format,
                version
                    .release
                    .as_deref()
                    .unwrap_or("of an unknown release"),
            ),
        ));
    }
    let state: CheckpointState = serde_json::from_slice(&bytes).map_err(|e| {
        TrainError::refused(
            &path,
            format!(
                "unreadable checkpoint state of format {} ({e})",
                version.format
            ),
        )
    })?;
    if state.format >= 2
        && (state.config.is_none() || state.history.is_none() || state.files.is_empty())
    {
        return Err(TrainError::refused(
            &path,
            format!(
                "a format-{} checkpoint state without its configuration, metrics or file digests",
                state.format
            ),
        ));
    }
    Ok(state)
}

/// Reads a weight file, checking it against its digest (format 2).
fn read_checked(dir: &Path, name: &str, state: &CheckpointState) -> Result<Vec<u8>, TrainError> {
    let path = dir.join(name);
    let bytes = fs::read(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            TrainError::refused(&path, "missing: the checkpoint is incomplete")
        } else {
            TrainError::io(&path, e)
        }
    })?;
    if let Some(expected) = state.files.get(name) {
        let found = FileDigest::of(&bytes);
        if found != *expected {
            return Err(TrainError::refused(
                &path,
                format!(
                    "corrupt: {} bytes with MD5 {}, but the checkpoint recorded {} bytes with \
                     MD5 {}",
                    found.bytes, found.md5, expected.bytes, expected.md5
                ),
            ));
        }
    } else if state.format >= 2 {
        return Err(TrainError::refused(
            &path,
            "not listed in the checkpoint's state.json",
        ));
    }
    Ok(bytes)
}

/// Why Burn could not decode a record, in one line: Burn's own text names its error variant
/// and may append advice about its `record-backward-compat` feature, which concerns records
/// of Burn 0.14 and is no help to someone whose checkpoint is damaged.
fn decode_failure(e: &RecorderError) -> String {
    let (RecorderError::FileNotFound(text)
    | RecorderError::DeserializeError(text)
    | RecorderError::Unknown(text)) = e;
    let first = text.lines().next().unwrap_or_default().trim();
    format!("its bytes do not decode ({first}); the checkpoint is damaged or of another run")
}

/// Shapes of every tensor of a module (parameters and running statistics), in visit order.
struct Shapes(Vec<Vec<usize>>);

impl<B: Backend> ModuleVisitor<B> for Shapes {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.0.push(param.val().dims().to_vec());
    }
}

fn shapes<B: Backend, M: Module<B>>(module: &M) -> Vec<Vec<usize>> {
    let mut s = Shapes(Vec::new());
    module.visit(&mut s);
    s.0
}

/// Reads a checkpoint folder into a network laid out as `template` (the run's network, whose
/// weights are replaced), with every check: the format, the files' sizes and MD5s, the module
/// count, every tensor's shape.
pub fn read<B: FastOpsAutodiff>(
    dir: &Path,
    template: LocalNetwork<B>,
    device: &B::Device,
) -> Result<Loaded<B>, TrainError> {
    let state = read_state(dir)?;
    let modules = template.modules.len();
    if state.modules != modules {
        return Err(TrainError::refused(
            dir.join(STATE),
            format!(
                "the checkpoint holds {} modules, the run's plan has {modules}",
                state.modules
            ),
        ));
    }
    let recorder = BytesRecorder::new();
    let network_path = dir.join(NETWORK);
    let bytes = read_checked(dir, NETWORK, &state)?;
    let not_ours = |e: RecorderError| {
        TrainError::refused(
            &network_path,
            format!("not a record of this network: {}", decode_failure(&e)),
        )
    };
    // Formats 1 and 2 were written before network families, in the older nesting; a
    // checkpoint of those formats whose record has today's nesting loads as it is.
    let record = match Recorder::<B>::load(&recorder, bytes.clone(), device) {
        Ok(record) => record,
        Err(e) if state.format >= 3 => return Err(not_ours(e)),
        Err(e) => super::legacy::upgrade(
            Recorder::<B>::load(&recorder, bytes, device).map_err(|_| not_ours(e))?,
        ),
    };
    let expected = shapes(&template);
    let network: LocalNetwork<B> = template.load_record(record);
    let found = shapes(&network);
    if found != expected {
        let at = found
            .iter()
            .zip(&expected)
            .position(|(a, b)| a != b)
            .unwrap_or(found.len().min(expected.len()));
        return Err(TrainError::refused(
            &network_path,
            format!(
                "tensor {at} has shape {:?}, the run's network needs {:?} ({} tensors found, \
                 {} needed): the checkpoint is of another network",
                found.get(at).map(Vec::as_slice).unwrap_or_default(),
                expected.get(at).map(Vec::as_slice).unwrap_or_default(),
                found.len(),
                expected.len()
            ),
        ));
    }
    let optimizers_path = dir.join(OPTIMIZERS);
    let bytes = read_checked(dir, OPTIMIZERS, &state)?;
    let optimizers: Vec<OptimizerRecord<B>> = Recorder::<B>::load(&recorder, bytes, device)
        .map_err(|e| {
            TrainError::refused(
                &optimizers_path,
                format!(
                    "not the optimiser states of this run: {}",
                    decode_failure(&e)
                ),
            )
        })?;
    if optimizers.len() != modules {
        return Err(TrainError::refused(
            &optimizers_path,
            format!(
                "holds {} optimiser states for {modules} modules",
                optimizers.len()
            ),
        ));
    }
    Ok(Loaded {
        state,
        network,
        optimizers,
    })
}
