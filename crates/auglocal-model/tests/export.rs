//! Exported models: the primary network alone round-trips through safetensors bit for bit, on
//! auglocal's own networks and on a user's own units; a changed, truncated, misplaced or
//! mismatched file is an error naming it.

use std::path::{Path, PathBuf};

use auglocal_data::{DataConfig, DatasetName, ImageShape, Sample};
use auglocal_model::export::{self, ExportError, Manifest, WeightsFile};
use auglocal_model::nn::{BatchNorm, BatchNormConfig, Network};
use auglocal_model::{Arch, CustomNetworkConfig, LocalUnit, NetworkConfig, NetworkSpec};
use burn::backend::{Autodiff, Flex};
use burn::module::{AutodiffModule, Module};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};

type B = Flex;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("auglocal-export-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

fn spec(arch: Arch) -> NetworkSpec {
    NetworkConfig::new(arch)
        .with_width_multiplier(0.25)
        .spec()
        .expect("valid")
}

fn fashion() -> auglocal_data::Preprocess {
    DataConfig::new(DatasetName::FashionMnist, 32).preprocess()
}

/// A network whose BatchNorm running statistics moved away from 0 and 1, as after training.
fn trained(spec: &NetworkSpec) -> Network<B> {
    let device = Default::default();
    let net = spec.init::<Autodiff<B>>(&device);
    let x = Tensor::random([4, 3, 32, 32], Distribution::Default, &device);
    let _ = net.forward(x);
    net.valid()
}

fn save(net: &Network<B>, spec: &NetworkSpec, path: &Path) -> Manifest {
    export::save(net, spec, &fashion(), None, None, path).expect("saved")
}

#[test]
fn a_network_round_trips_bit_for_bit_and_holds_nothing_else() {
    let dir = scratch("round-trip");
    let spec = spec(Arch::ResNet20);
    let net = trained(&spec);
    let path = dir.join("model.safetensors");
    let manifest = save(&net, &spec, &path);
    assert!(dir.join("model.json").is_file());

    let loaded = export::load::<B>(&path, &Default::default()).expect("loads");
    assert_eq!(loaded.manifest, manifest);
    let x = Tensor::<B, 4>::random([3, 3, 32, 32], Distribution::Default, &Default::default());
    loaded
        .network
        .forward(x.clone())
        .into_data()
        .assert_eq(&net.forward(x).into_data(), true);
    // The manifest may be named instead of the weights.
    export::load::<B>(&dir.join("model.json"), &Default::default()).expect("by its manifest");
    // The same network gives the same bytes, every time (the header's metadata once came from
    // a HashMap whose order varies from map to map).
    let first = std::fs::read(&path).expect("written");
    for i in 0..4 {
        let again = dir.join(format!("again-{i}.safetensors"));
        save(&net, &spec, &again);
        assert!(
            std::fs::read(&again).expect("written") == first,
            "save {i} differs"
        );
    }

    // f32 tensors: the parameters and two running statistics per BatchNorm channel, plus a
    // header of names and shapes; an aux net or an optimiser state would add megabytes.
    let floats = net.num_params() as u64;
    let bytes = std::fs::metadata(&path).expect("written").len();
    assert_eq!(bytes, manifest.weights.bytes);
    assert!(
        bytes >= 4 * floats && bytes < 4 * floats + 16 * 1024,
        "{bytes} bytes for {floats} floats"
    );
}

fn expect_err(result: Result<impl std::fmt::Debug, ExportError>, needle: &str) -> String {
    let message = result.expect_err(needle).to_string();
    assert!(message.contains(needle), "{needle:?} not in: {message}");
    message
}

#[test]
fn changed_truncated_missing_and_mismatched_files_are_errors() {
    let dir = scratch("errors");
    let small = spec(Arch::ResNet20);
    let path = dir.join("model.safetensors");
    save(&trained(&small), &small, &path);
    let bytes = std::fs::read(&path).expect("written");
    let device = Default::default();

    // One byte changed: same size, another checksum.
    let mut changed = bytes.clone();
    changed[bytes.len() / 2] ^= 1;
    std::fs::write(&path, &changed).expect("write");
    expect_err(export::load::<B>(&path, &device), "SHA-256");
    // Truncated.
    std::fs::write(&path, &bytes[..bytes.len() - 100]).expect("write");
    expect_err(
        export::load::<B>(&path, &device),
        "was changed, truncated or replaced",
    );
    std::fs::write(&path, &bytes).expect("write");
    export::load::<B>(&path, &device).expect("restored");

    // No manifest beside the weights.
    let alone = dir.join("alone.safetensors");
    std::fs::write(&alone, &bytes).expect("write");
    expect_err(export::load::<B>(&alone, &device), "alone.json");

    // A manifest of another architecture with this file's checksum: the tensors do not fit.
    let big = spec(Arch::ResNet32);
    let manifest = Manifest {
        weights: WeightsFile::of("model.safetensors", &bytes),
        ..save(&trained(&big), &big, &dir.join("big.safetensors"))
    };
    std::fs::write(dir.join("model.json"), manifest.to_json()).expect("write");
    expect_err(export::load::<B>(&path, &device), "do not fit");

    // Not safetensors at all, with a matching manifest.
    let junk = b"not a tensor file".to_vec();
    let manifest = Manifest {
        weights: WeightsFile::of("model.safetensors", &junk),
        ..manifest
    };
    std::fs::write(&path, &junk).expect("write");
    std::fs::write(dir.join("model.json"), manifest.to_json()).expect("write");
    expect_err(export::load::<B>(&path, &device), "not a safetensors file");

    // A corrupt image.
    let image = dir.join("broken.png");
    std::fs::write(&image, b"\x89PNG\r\n\x1a\nbroken").expect("write");
    expect_err(export::read_image(&image), "broken.png");
}

#[derive(Module, Debug)]
struct MyUnit<B: Backend> {
    conv: Conv2d<B>,
    norm: BatchNorm<B>,
}

impl<B: auglocal_kernels::FastOps> LocalUnit<B> for MyUnit<B> {
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        relu(self.norm.forward(self.conv.forward(x)))
    }
}

fn my_units<B: Backend>(device: &B::Device) -> Vec<MyUnit<B>> {
    [[3, 8, 2], [8, 16, 2]]
        .iter()
        .map(|&[i, o, s]| MyUnit {
            conv: Conv2dConfig::new([i, o], [3, 3])
                .with_stride([s, s])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device),
            norm: BatchNormConfig::new(o).init(device),
        })
        .collect()
}

#[test]
fn a_users_own_units_come_back_as_their_type() {
    let dir = scratch("custom");
    let device = Default::default();
    let units = my_units::<Autodiff<B>>(&device);
    let spec = CustomNetworkConfig::new([3, 32, 32], 10)
        .spec::<Autodiff<B>, _>(&units, &device)
        .expect("described");
    let head = auglocal_model::nn::Head::init(&spec.head, &device);
    let net = Network { units, head }.valid();
    let path = dir.join("mine.safetensors");
    export::save(&net, &spec, &fashion(), None, None, &path).expect("saved");

    expect_err(export::load::<B>(&path, &device), "load_custom");
    let fresh = my_units::<B>(&device);
    let loaded = export::load_custom(&path, fresh, &device).expect("loads into fresh units");
    let x = Tensor::<B, 4>::random([2, 3, 32, 32], Distribution::Default, &device);
    loaded
        .network
        .forward(x.clone())
        .into_data()
        .assert_eq(&net.forward(x).into_data(), true);
    expect_err(
        export::load_custom(&path, my_units::<B>(&device)[..1].to_vec(), &device),
        "2 units, 1 were given",
    );

    // Predictions: grey 28x28 images of any value, top-3 descending, labels the largest logit.
    let image = |v: u8| Sample {
        pixels: vec![v; 28 * 28],
        shape: ImageShape::new(1, 28, 28),
        label: 0,
    };
    let predictions = loaded.predict(vec![image(0), image(200)], 3);
    assert_eq!(predictions.len(), 2);
    for p in &predictions {
        assert_eq!(p.top.len(), 3);
        assert_eq!(p.top[0].0, p.label);
        assert!(p.top[0].1 >= p.top[1].1 && p.top[1].1 >= p.top[2].1);
    }
}
