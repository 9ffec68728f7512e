//! Writing and loading exported models with Burn (see [`super`]).

use std::fs;
use std::path::{Path, PathBuf};

use auglocal_data::{Preprocess, Sample};
use burn::module::{Module, ModuleDisplay};
use burn::tensor::activation::softmax;
use burn::tensor::{Tensor, TensorData, backend::Backend};
use burn_store::{ApplyResult, ModuleSnapshot, SafetensorsStore};

use super::{ExportError, Manifest, Provenance, WeightsFile};
use crate::nn::{Network, Unit};
use crate::{Arch, LocalUnit, NetworkSpec};

/// A loaded model: the network on its device, and its manifest.
#[derive(Debug)]
pub struct Exported<B: Backend, U: Module<B> = Unit<B>> {
    /// The network, for inference (BatchNorm on its running statistics).
    pub network: Network<B, U>,
    /// What the manifest says about it.
    pub manifest: Manifest,
    /// The device it is on.
    pub device: B::Device,
}

/// The classes of one image, most probable first.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// The predicted class (the largest logit).
    pub label: usize,
    /// The `top` most probable classes and their softmax probabilities, descending.
    pub top: Vec<(usize, f32)>,
}

/// An image made ready for the network ([`Exported::prepare`]): its input floats,
/// `[channels, height, width]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Prepared(Vec<f32>);

/// Reads and decodes a PNG or JPEG file (any size, grey or colour) for
/// [`Exported::predict`]; a file that does not decode is an error naming it.
pub fn read_image(path: &Path) -> Result<Sample, ExportError> {
    auglocal_data::formats::decode::read(path, 0).map_err(ExportError::from)
}

fn weights_error(path: &Path, message: impl Into<String>) -> ExportError {
    ExportError::Weights {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Writes `bytes` to `path` through a temporary file beside it (synced, renamed over `path`).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let result = fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|_| f.sync_all()))
        .and_then(|_| fs::rename(&tmp, path));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(|e| ExportError::io(path, e))
}

/// Loads `bytes` (safetensors) into `network`: every tensor of the module must be in the file
/// with its shape and dtype, and the file must hold nothing else.
fn apply<B: Backend, U: Module<B> + ModuleDisplay>(
    mut network: Network<B, U>,
    bytes: Vec<u8>,
    path: &Path,
) -> Result<Network<B, U>, ExportError> {
    let mut store = SafetensorsStore::from_bytes(Some(bytes))
        .validate(false)
        .allow_partial(true);
    let result: ApplyResult = network
        .load_from(&mut store)
        .map_err(|e| weights_error(path, format!("not a safetensors file: {e}")))?;
    let first = |names: &mut dyn Iterator<Item = String>| names.take(3).collect::<Vec<_>>();
    if let Some(e) = result.errors.first() {
        return Err(weights_error(
            path,
            format!(
                "{} tensors do not fit the network its manifest describes (it holds another \
                 network), e.g. {e}",
                result.errors.len()
            ),
        ));
    }
    if !result.missing.is_empty() {
        return Err(weights_error(
            path,
            format!(
                "lacks {} tensors of the network its manifest describes (e.g. {:?}): it holds \
                 another network",
                result.missing.len(),
                first(&mut result.missing.iter().map(|(p, _)| p.clone()))
            ),
        ));
    }
    if !result.unused.is_empty() {
        return Err(weights_error(
            path,
            format!(
                "holds {} tensors the network its manifest describes lacks (e.g. {:?}): it \
                 holds another network",
                result.unused.len(),
                first(&mut result.unused.iter().cloned())
            ),
        ));
    }
    Ok(network)
}

/// Most bytes of a manifest: a network description and at most a few thousand class names.
const MAX_MANIFEST_BYTES: u64 = 16 << 20;

/// Where the weights and the manifest of `path` are: `path` may name either.
fn locate(path: &Path) -> Result<(PathBuf, Manifest), ExportError> {
    let names_manifest = path.extension().is_some_and(|e| e == "json");
    let manifest_path = if names_manifest {
        path.to_path_buf()
    } else {
        super::manifest_path(path)
    };
    // A device, FIFO or huge file in place of the manifest is refused before it is read.
    if let Ok(meta) = fs::metadata(&manifest_path) {
        if !meta.is_file() {
            return Err(ExportError::invalid(
                &manifest_path,
                "is not a regular file; a model's manifest is the JSON file auglocal export \
                 writes",
            ));
        }
        if meta.len() > MAX_MANIFEST_BYTES {
            return Err(ExportError::invalid(
                &manifest_path,
                format!(
                    "is {} bytes, more than a manifest ever holds ({MAX_MANIFEST_BYTES})",
                    meta.len()
                ),
            ));
        }
    }
    let bytes = match fs::read(&manifest_path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ExportError::invalid(
                &manifest_path,
                format!(
                    "missing: an exported model is NAME.safetensors with its manifest \
                     NAME.json beside it (auglocal export writes both); {} has none",
                    path.display()
                ),
            ));
        }
        Err(e) => return Err(ExportError::io(&manifest_path, e)),
    };
    let manifest = Manifest::from_json(&bytes, &manifest_path)?;
    let weights = if names_manifest {
        manifest_path
            .parent()
            .unwrap_or(Path::new(""))
            .join(&manifest.weights.file)
    } else {
        path.to_path_buf()
    };
    Ok((weights, manifest))
}

/// The weights' bytes, checked against the manifest's size and SHA-256.
fn read_checked(weights: &Path, manifest: &Manifest) -> Result<Vec<u8>, ExportError> {
    let expected = &manifest.weights;
    let describe = |w: &WeightsFile| format!("{} bytes with SHA-256 {}", w.bytes, w.sha256);
    let len = fs::metadata(weights)
        .map_err(|e| ExportError::io(weights, e))?
        .len();
    if len != expected.bytes {
        return Err(ExportError::Checksum {
            path: weights.to_path_buf(),
            expected: describe(expected),
            found: format!("it has {len} bytes"),
        });
    }
    let bytes = fs::read(weights).map_err(|e| ExportError::io(weights, e))?;
    let found = WeightsFile::of(expected.file.clone(), &bytes);
    if found.sha256 != expected.sha256 {
        return Err(ExportError::Checksum {
            path: weights.to_path_buf(),
            expected: describe(expected),
            found: format!("its SHA-256 is {}", found.sha256),
        });
    }
    Ok(bytes)
}

/// Loads an exported auglocal network (`path`: the `.safetensors` file or its `.json`
/// manifest) onto `device`: the manifest is checked, the network rebuilt from it, the weights
/// checked against the manifest's checksum and loaded.
///
/// A library user's own network needs its units: [`load_custom`].
pub fn load<B: Backend>(path: &Path, device: &B::Device) -> Result<Exported<B>, ExportError> {
    let (weights, manifest) = locate(path)?;
    if manifest.network.arch == Arch::Custom {
        return Err(ExportError::invalid(
            &super::manifest_path(&weights),
            "describes a custom network: load it with export::load_custom and freshly built \
             units of its type",
        ));
    }
    let bytes = read_checked(&weights, &manifest)?;
    let network = apply(manifest.network.init::<B>(device), bytes, &weights)?;
    Ok(Exported {
        network,
        manifest,
        device: device.clone(),
    })
}

/// Loads an exported network of a library user's own units: `units` are freshly built ones of
/// the exported network's type (their weights are replaced); the head is rebuilt from the
/// manifest.
pub fn load_custom<B: Backend, U: Module<B> + ModuleDisplay>(
    path: &Path,
    units: Vec<U>,
    device: &B::Device,
) -> Result<Exported<B, U>, ExportError> {
    let (weights, manifest) = locate(path)?;
    if units.len() != manifest.network.num_units() {
        return Err(weights_error(
            &weights,
            format!(
                "its manifest describes {} units, {} were given",
                manifest.network.num_units(),
                units.len()
            ),
        ));
    }
    let bytes = read_checked(&weights, &manifest)?;
    let head = crate::nn::Head::init(&manifest.network.head, device);
    let network = apply(Network { units, head }, bytes, &weights)?;
    Ok(Exported {
        network,
        manifest,
        device: device.clone(),
    })
}

/// Writes `network` (described by `spec`) to `path` as safetensors, and its manifest beside it
/// (`path` with `.json`), both atomically; returns the manifest. The weights are read back
/// and checked before the manifest is written.
///
/// The manifest is checked before anything is written; that the weights fit the description
/// is checked by loading them ([`load`] or [`load_custom`]).
pub fn save<B: Backend, U: Module<B> + ModuleDisplay>(
    network: &Network<B, U>,
    spec: &NetworkSpec,
    preprocess: &Preprocess,
    classes: Option<Vec<String>>,
    trained: Option<Provenance>,
    path: &Path,
) -> Result<Manifest, ExportError> {
    let manifest_path = super::manifest_path(path);
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if manifest_path == path || file.is_empty() {
        return Err(ExportError::invalid(
            path,
            "the weights need a file name of their own, e.g. model.safetensors (the manifest \
             goes beside it as model.json)",
        ));
    }
    // One metadata entry: Burn's default three sit in a HashMap, whose order (and so the
    // file's bytes) varies from one save to the next.
    let mut store = SafetensorsStore::from_bytes(None)
        .clear_metadata()
        .metadata("producer", concat!("auglocal ", env!("CARGO_PKG_VERSION")));
    network
        .save_into(&mut store)
        .map_err(|e| weights_error(path, e.to_string()))?;
    let bytes = store
        .get_bytes()
        .map_err(|e| weights_error(path, e.to_string()))?;
    let manifest = Manifest::new(
        WeightsFile::of(file, &bytes),
        spec.clone(),
        preprocess.clone(),
        classes,
        trained,
    );
    manifest.validate(&manifest_path)?;
    write_atomic(path, &bytes)?;
    let written = read_checked(path, &manifest)?;
    apply(network.clone(), written, path)?;
    write_atomic(&manifest_path, &manifest.to_json())?;
    Ok(manifest)
}

impl<B: auglocal_kernels::FastOps, U: LocalUnit<B>> Exported<B, U> {
    /// Classifies `images` (any size, grey or colour; [`Preprocess::apply`] brings them to the
    /// network's input) in one batch.
    pub fn predict(&self, images: Vec<Sample>, top: usize) -> Vec<Prediction> {
        let prepared = images.into_iter().map(|s| self.prepare(s)).collect();
        self.predict_prepared(prepared, top)
    }

    /// One image (any size, grey or colour) brought to the network's input by
    /// [`Preprocess::apply`], for [`Exported::predict_prepared`]: preparing each image as it
    /// is decoded holds one decoded image at a time, whatever the batch.
    pub fn prepare(&self, image: Sample) -> Prepared {
        Prepared(self.manifest.preprocess.floats(image))
    }

    /// Classifies prepared images in one batch.
    pub fn predict_prepared(&self, images: Vec<Prepared>, top: usize) -> Vec<Prediction> {
        let n = images.len();
        if n == 0 {
            return Vec::new();
        }
        let shape = self.manifest.preprocess.output_shape();
        let floats: Vec<f32> = images.into_iter().flat_map(|p| p.0).collect();
        let x = Tensor::<B, 4>::from_data(
            TensorData::new(floats, [n, shape.channels, shape.height, shape.width]),
            &self.device,
        );
        let logits = self.network.forward(x);
        let classes = logits.dims()[1];
        let probs: Vec<f32> = softmax(logits.clone(), 1)
            .into_data()
            .to_vec()
            .unwrap_or_default();
        let logits: Vec<f32> = logits.into_data().to_vec().unwrap_or_default();
        logits
            .chunks_exact(classes)
            .zip(probs.chunks_exact(classes))
            .map(|(z, p)| {
                let label = z
                    .iter()
                    .enumerate()
                    .fold(0, |best, (i, &v)| if v > z[best] { i } else { best });
                let mut ranked: Vec<(usize, f32)> = p.iter().copied().enumerate().collect();
                ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                ranked.truncate(top.max(1));
                Prediction { label, top: ranked }
            })
            .collect()
    }

    /// The name of class `label`, or its number where the data set has no names.
    pub fn class_name(&self, label: usize) -> String {
        self.manifest
            .classes
            .as_ref()
            .and_then(|names| names.get(label).cloned())
            .unwrap_or_else(|| label.to_string())
    }
}
