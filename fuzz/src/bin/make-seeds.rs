//! Writes small valid inputs per reader into `corpus/parsers/`, `corpus/images/` and
//! `corpus/manifest/`, so that
//! fuzzing starts from files that get past the headers, compressed ones included. Run:
//! `cargo run --manifest-path fuzz/Cargo.toml --bin make-seeds`.

use std::io::Write;
use std::path::Path;

use auglocal_data::formats::mat::{mi, write};
use auglocal_data::{DataConfig, DatasetName};
use auglocal_model::export::{Manifest, Summary, WeightsFile};
use auglocal_model::{Arch, HeadSpec, NetworkConfig, UnitKind, UnitSpec};
use flate2::Compression;
use flate2::write::GzEncoder;

fn gz_with(bytes: &[u8], level: Compression) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), level);
    e.write_all(bytes).expect("in memory");
    e.finish().expect("in memory")
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    // Stored, not compressed: the fuzzer can still see and mutate the IDX structure inside.
    gz_with(bytes, Compression::none())
}

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/parsers");
    std::fs::create_dir_all(&dir).expect("corpus folder");
    let save = |name: &str, selector: u8, body: &[u8]| {
        let mut bytes = vec![selector];
        bytes.extend_from_slice(body);
        std::fs::write(dir.join(name), bytes).expect("write seed");
    };

    let mut cifar10 = vec![3u8];
    cifar10.extend((0..3072).map(|i| i as u8));
    save("cifar10", 0, &cifar10);
    let mut cifar100 = vec![4u8, 21];
    cifar100.extend((0..3072).map(|i| (i / 3) as u8));
    save("cifar100", 1, &cifar100);

    let mut images = vec![0, 0, 8, 3];
    for d in [2u32, 4, 4] {
        images.extend(d.to_be_bytes());
    }
    images.extend(0..32u8);
    let mut labels = vec![0, 0, 8, 1];
    labels.extend(2u32.to_be_bytes());
    labels.extend([1, 9]);
    let cut = |a: &[u8], b: &[u8]| -> Vec<u8> {
        let total = a.len() + b.len();
        let c = (a.len() * 255).div_ceil(total) as u8;
        let mut v = vec![c];
        v.extend_from_slice(a);
        v.extend_from_slice(b);
        v
    };
    save("idx", 2, &cut(&images, &labels));
    save("idx-gz", 2, &cut(&gz(&images), &gz(&labels)));
    // Really compressed: the inflate paths, and a stream longer than its header declares.
    let best = Compression::best();
    save(
        "idx-gz-deflated",
        2,
        &cut(&gz_with(&images, best), &gz_with(&labels, best)),
    );
    let mut padded = images.clone();
    padded.resize(1 << 16, 0);
    save(
        "idx-gz-overlong",
        2,
        &cut(&gz_with(&padded, best), &gz_with(&labels, best)),
    );
    let mut mnist = vec![0, 0, 8, 3];
    for d in [1u32, 28, 28] {
        mnist.extend(d.to_be_bytes());
    }
    mnist.extend((0..784).map(|i| i as u8));
    let mut one = vec![0, 0, 8, 1];
    one.extend(1u32.to_be_bytes());
    one.push(4);
    save("idx-28x28", 6, &cut(&gz_with(&mnist, best), &one));

    let mut svhn = write::header();
    svhn.extend(write::variable(
        "X",
        9,
        &[32, 32, 3, 1],
        mi::UINT8,
        &[7u8; 3072],
    ));
    svhn.extend(write::variable(
        "y",
        6,
        &[1, 1],
        mi::DOUBLE,
        &10.0f64.to_le_bytes(),
    ));
    save("mat", 3, &svhn);
    save("svhn", 4, &svhn);

    let mut stl = vec![0u8; 27648];
    stl[5] = 200;
    let mut files = stl.clone();
    files.push(3);
    let c = ((27648usize * 255).div_ceil(27649)) as u8;
    let mut body = vec![c];
    body.extend(files);
    save("stl10", 5, &body);
    println!("seeds written to {}", dir.display());

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/images");
    std::fs::create_dir_all(&dir).expect("corpus folder");
    let img = image::RgbImage::from_fn(24, 16, |x, y| {
        image::Rgb([(x * 10) as u8, (y * 15) as u8, ((x + y) * 5) as u8])
    });
    for (name, format) in [
        ("rgb.png", image::ImageFormat::Png),
        ("rgb.jpg", image::ImageFormat::Jpeg),
    ] {
        let mut bytes = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut bytes), format)
            .expect("encode");
        std::fs::write(dir.join(name), bytes).expect("write seed");
    }
    let grey = image::GrayImage::from_fn(9, 30, |x, y| image::Luma([(x * y) as u8]));
    let mut bytes = Vec::new();
    grey.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)
        .expect("encode");
    std::fs::write(dir.join("grey.png"), bytes).expect("write seed");
    println!("seeds written to {}", dir.display());

    // An exported model's manifest: ResNet-20 on Fashion-MNIST, and a custom network's.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/manifest");
    std::fs::create_dir_all(&dir).expect("corpus folder");
    let network = NetworkConfig::new(Arch::ResNet20)
        .with_width_multiplier(0.25)
        .spec()
        .expect("a valid network");
    let names = DatasetName::FashionMnist.class_names().expect("names");
    let manifest = Manifest::new(
        WeightsFile::of("model.safetensors", b"weights"),
        network,
        DataConfig::new(DatasetName::FashionMnist, 32).preprocess(),
        Some(names.iter().map(|s| s.to_string()).collect()),
        None,
    );
    std::fs::write(dir.join("resnet20.json"), manifest.to_json()).expect("write seed");
    let mut custom = manifest.network.clone();
    custom.arch = Arch::Custom;
    custom.units = vec![UnitSpec::new(UnitKind::Custom { params: 10 }, 3, 16, 2, 32)];
    custom.head = HeadSpec::Linear {
        width: 16,
        num_classes: 10,
    };
    let custom = Manifest {
        summary: Summary::of(&custom),
        network: custom,
        ..manifest
    };
    Manifest::from_json(&custom.to_json(), Path::new("custom.json")).expect("a valid seed");
    std::fs::write(dir.join("custom.json"), custom.to_json()).expect("write seed");
    println!("seeds written to {}", dir.display());
}
