//! The manifest beside an exported model's weights: everything needed to rebuild the network
//! and feed it, read and checked without Burn.

use std::path::{Path, PathBuf};

use auglocal_data::Preprocess;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ExportError;
use crate::spec::check_classes;
use crate::{
    Arch, Family, HeadSpec, MAX_CHANNELS, MAX_IMAGE_SIZE, NetworkConfig, NetworkSpec, UnitKind,
};

/// The manifest format this release writes and reads.
pub const MANIFEST_FORMAT: u32 = 1;
/// Most units a custom network's manifest may describe.
pub const MAX_UNITS: usize = 10_000;
/// Longest class name, in bytes.
pub const MAX_CLASS_NAME: usize = 1_000;
/// Widest unit of a custom network's manifest.
const MAX_UNIT_WIDTH: usize = 1 << 16;

/// The weights file a manifest describes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightsFile {
    /// Its name, in the manifest's folder (a name, never a path).
    pub file: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its SHA-256, lowercase hex.
    pub sha256: String,
}

impl WeightsFile {
    /// The size and SHA-256 of `bytes`, saved as `file`.
    pub fn of(file: impl Into<String>, bytes: &[u8]) -> Self {
        let sha256 = Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Self {
            file: file.into(),
            bytes: bytes.len() as u64,
            sha256,
        }
    }
}

/// The network at a glance, for people reading the manifest; checked against `network` when
/// read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    /// Its family.
    pub family: Family,
    /// Its architecture.
    pub arch: Arch,
    /// Units (what local learning cut after).
    pub units: usize,
    /// Output channels of every unit.
    pub widths: Vec<usize>,
    /// Classes.
    pub num_classes: usize,
    /// Side of the square input.
    pub image_size: usize,
    /// Channels of the input.
    pub in_channels: usize,
}

impl Summary {
    /// The summary of `spec`.
    pub fn of(spec: &NetworkSpec) -> Self {
        Self {
            family: spec.arch.family(),
            arch: spec.arch,
            units: spec.num_units(),
            widths: spec.widths(),
            num_classes: spec.num_classes,
            image_size: spec.image_size,
            in_channels: spec.in_channels,
        }
    }
}

/// Where the weights came from (written by `auglocal export`; optional for a library user's
/// own export).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// The data set it was trained on.
    pub dataset: String,
    /// The local-learning rule, with its K (e.g. `auglocal K=16 d=2 pyramid 0.5`).
    pub rule: String,
    /// The epoch whose weights these are.
    pub epoch: usize,
    /// Epochs the run was configured for.
    pub epochs: usize,
    /// Test accuracy at that epoch, as the run measured it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_accuracy: Option<f64>,
    /// The run's seed.
    pub seed: u64,
}

/// What a manifest says: the weights, the network, its input and its classes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub format: u32,
    /// The auglocal release that wrote it.
    pub release: String,
    /// The weights file (safetensors) and its checksum.
    pub weights: WeightsFile,
    /// The network at a glance.
    pub summary: Summary,
    /// The full description the network is rebuilt from.
    pub network: NetworkSpec,
    /// How an image file becomes the network's input.
    pub preprocess: Preprocess,
    /// Class names by label, where the data set has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<String>>,
    /// Where the weights came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trained: Option<Provenance>,
}

/// The manifest's path for a weights file: the same name with `.json`.
pub fn manifest_path(weights: &Path) -> PathBuf {
    weights.with_extension("json")
}

impl Manifest {
    /// The manifest of `weights` holding `network`, written by this release (not checked:
    /// see [`Manifest::validate`]).
    pub fn new(
        weights: WeightsFile,
        network: NetworkSpec,
        preprocess: Preprocess,
        classes: Option<Vec<String>>,
        trained: Option<Provenance>,
    ) -> Self {
        Self {
            format: MANIFEST_FORMAT,
            release: env!("CARGO_PKG_VERSION").to_string(),
            weights,
            summary: Summary::of(&network),
            network,
            preprocess,
            classes,
            trained,
        }
    }

    /// Parses and checks a manifest (`path` names it in errors). Never panics, whatever the
    /// bytes.
    pub fn from_json(bytes: &[u8], path: &Path) -> Result<Self, ExportError> {
        #[derive(Deserialize)]
        struct Version {
            format: u32,
            #[serde(default)]
            release: Option<String>,
        }
        let json = |source| ExportError::Json {
            path: path.to_path_buf(),
            source,
        };
        let version: Version = serde_json::from_slice(bytes).map_err(json)?;
        if version.format != MANIFEST_FORMAT {
            return Err(ExportError::invalid(
                path,
                format!(
                    "manifest format {} (written by auglocal {}); this release reads format \
                     {MANIFEST_FORMAT}",
                    version.format,
                    version.release.as_deref().unwrap_or("unknown")
                ),
            ));
        }
        let manifest: Manifest = serde_json::from_slice(bytes).map_err(json)?;
        manifest.validate(path)?;
        Ok(manifest)
    }

    /// The manifest as pretty JSON.
    pub fn to_json(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    /// Checks that the parts agree: a weights file name, a network that its architecture
    /// lays out (or a well-formed custom network), a summary of that network, a preprocessing
    /// that makes its input, one name per class.
    pub fn validate(&self, path: &Path) -> Result<(), ExportError> {
        let bad = |message: String| ExportError::invalid(path, message);
        let file = &self.weights.file;
        if file.is_empty() || file.contains(['/', '\\']) || file == "." || file == ".." {
            return Err(bad(format!(
                "weights.file must be a file name beside the manifest, got {file:?}"
            )));
        }
        let hex = &self.weights.sha256;
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(bad(format!(
                "weights.sha256 must be 64 lowercase hex digits, got {hex:?}"
            )));
        }
        let network = &self.network;
        if network.arch == Arch::Custom {
            check_custom(network).map_err(bad)?;
        } else {
            let laid_out = NetworkConfig {
                arch: network.arch,
                num_classes: network.num_classes,
                width_multiplier: network.width_multiplier,
                in_channels: network.in_channels,
                image_size: network.image_size,
            }
            .spec()
            .map_err(|e| bad(format!("network: {e}")))?;
            if laid_out.units != network.units || laid_out.head != network.head {
                return Err(bad(format!(
                    "network: its units or head are not what {} at width {} lays out for \
                     {} classes of {}x{}x{}",
                    network.arch,
                    network.width_multiplier,
                    network.num_classes,
                    network.in_channels,
                    network.image_size,
                    network.image_size
                )));
            }
        }
        if Summary::of(network) != self.summary {
            return Err(bad(
                "summary does not describe the network it is written beside".into(),
            ));
        }
        self.preprocess
            .validate()
            .map_err(|e| bad(format!("preprocess: {e}")))?;
        let input = self.preprocess.output_shape();
        if (input.channels, input.height) != (network.in_channels, network.image_size) {
            return Err(bad(format!(
                "preprocess makes {}x{}x{} images, but the network takes {}x{}x{}",
                input.channels,
                input.height,
                input.width,
                network.in_channels,
                network.image_size,
                network.image_size
            )));
        }
        if let Some(names) = &self.classes {
            if names.len() != network.num_classes {
                return Err(bad(format!(
                    "{} class names for {} classes",
                    names.len(),
                    network.num_classes
                )));
            }
            if let Some(long) = names.iter().find(|n| n.len() > MAX_CLASS_NAME) {
                return Err(bad(format!(
                    "a class name of {} bytes (at most {MAX_CLASS_NAME})",
                    long.len()
                )));
            }
        }
        if let Some(acc) = self.trained.as_ref().and_then(|t| t.test_accuracy)
            && !(0.0..=1.0).contains(&acc)
        {
            return Err(bad(format!(
                "trained.test_accuracy must be in [0, 1], got {acc}"
            )));
        }
        Ok(())
    }
}

/// A custom network's description: chained units of custom kind, auglocal's linear head.
fn check_custom(network: &NetworkSpec) -> Result<(), String> {
    check_classes(network.num_classes).map_err(|e| format!("network: {e}"))?;
    let n = network.num_units();
    if n == 0 || n > MAX_UNITS {
        return Err(format!("network: 1 to {MAX_UNITS} units, got {n}"));
    }
    if !(1..=MAX_CHANNELS).contains(&network.in_channels)
        || !(1..=MAX_IMAGE_SIZE).contains(&network.image_size)
    {
        return Err(format!(
            "network: input of {} channels of {}x{} is out of range",
            network.in_channels, network.image_size, network.image_size
        ));
    }
    let (mut width, mut size) = (network.in_channels, network.image_size);
    for (i, unit) in network.units.iter().enumerate() {
        if !matches!(unit.kind, UnitKind::Custom { .. }) {
            return Err(format!(
                "network: unit {i} of a custom network is {:?}, not a custom unit",
                unit.kind
            ));
        }
        if (unit.in_width, unit.in_size) != (width, size) {
            return Err(format!(
                "network: unit {i} reads {}x{}x{}, but its input is {width}x{size}x{size}",
                unit.in_width, unit.in_size, unit.in_size
            ));
        }
        if !(1..=MAX_UNIT_WIDTH).contains(&unit.out_width) || !(1..=size).contains(&unit.out_size) {
            return Err(format!(
                "network: unit {i} writes {}x{}x{} from a {size}x{size} input",
                unit.out_width, unit.out_size, unit.out_size
            ));
        }
        (width, size) = (unit.out_width, unit.out_size);
    }
    match network.head {
        HeadSpec::Linear {
            width: w,
            num_classes,
        } if w == width && num_classes == network.num_classes => Ok(()),
        ref head => Err(format!(
            "network: a custom network's head is Linear({width} -> {}), got {head:?}",
            network.num_classes
        )),
    }
}

#[cfg(test)]
mod tests {
    use auglocal_data::{DataConfig, DatasetName};

    use super::*;

    fn manifest() -> Manifest {
        let network = NetworkConfig::new(Arch::ResNet20)
            .with_width_multiplier(0.25)
            .spec()
            .expect("valid");
        let names = DatasetName::FashionMnist.class_names().expect("names");
        Manifest::new(
            WeightsFile::of("model.safetensors", b"abc"),
            network,
            DataConfig::new(DatasetName::FashionMnist, 32).preprocess(),
            Some(names.iter().map(|s| s.to_string()).collect()),
            None,
        )
    }

    fn check(m: &Manifest) -> Result<Manifest, ExportError> {
        Manifest::from_json(&m.to_json(), Path::new("model.json"))
    }

    #[test]
    fn a_manifest_round_trips_and_its_checksum_is_sha256() {
        let m = manifest();
        assert_eq!(check(&m).expect("valid"), m);
        // printf abc | sha256sum
        assert_eq!(
            m.weights.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            manifest_path(Path::new("out/m.safetensors")),
            Path::new("out/m.json")
        );
    }

    #[test]
    fn parts_that_disagree_are_refused_naming_the_field() {
        type Change = fn(&mut Manifest);
        let cases: [(&str, Change); 8] = [
            ("weights.file", |m| {
                m.weights.file = "../model.safetensors".into()
            }),
            ("sha256", |m| m.weights.sha256 = "ABC".into()),
            ("lays out", |m| m.network.units.truncate(3)),
            ("summary", |m| m.summary.units += 1),
            ("class names", |m| {
                m.classes.as_mut().expect("names").pop();
            }),
            ("preprocess makes", |m| m.preprocess.image_size = 28),
            ("network:", |m| m.network.num_classes = 1),
            ("test_accuracy", |m| {
                m.trained = Some(Provenance {
                    dataset: "x".into(),
                    rule: "bp".into(),
                    epoch: 1,
                    epochs: 1,
                    test_accuracy: Some(1.5),
                    seed: 0,
                })
            }),
        ];
        for (needle, change) in cases {
            let mut m = manifest();
            change(&mut m);
            let err = check(&m).expect_err(needle).to_string();
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }

    #[test]
    fn other_formats_and_bad_json_are_errors() {
        let mut m = manifest();
        m.format = 9;
        let err = check(&m).expect_err("format 9").to_string();
        assert!(err.contains("format 9"), "{err}");
        for bytes in [&b""[..], b"{", b"[]", b"{\"format\": 1}", b"\xff\xfe"] {
            assert!(Manifest::from_json(bytes, Path::new("m.json")).is_err());
        }
    }
}
