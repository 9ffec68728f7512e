//! The real Fashion-MNIST, as Debian ships it (fetched by scripts/fetch-data.sh).

mod common;

use std::io::Read;

use auglocal_data::formats::idx;
use auglocal_data::{Data, DataConfig, DatasetName, ImageShape};
use md5::{Digest, Md5};

const FILES: [(&str, &str); 4] = [
    (
        "train-images-idx3-ubyte",
        "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    ),
    (
        "train-labels-idx1-ubyte",
        "9018921c3c673c538a1fc5bad174d6f9",
    ),
    ("t10k-images-idx3-ubyte", "8181f5470baa50b63fa0f6fddb340f0a"),
    ("t10k-labels-idx1-ubyte", "15d484375f8d13e6eb1aabb0c3f46965"),
];

#[test]
fn decompressed_files_have_the_official_md5() {
    let Some(dir) = common::require("fashion-mnist", "fashion-mnist md5") else {
        return;
    };
    for (name, md5) in FILES {
        let path = dir.join(format!("{name}.gz"));
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&path).expect("file"))
            .read_to_end(&mut bytes)
            .expect("gzip");
        assert_eq!(
            format!("{:x}", Md5::digest(&bytes)),
            md5,
            "{}",
            path.display()
        );
    }
}

#[test]
fn has_60000_plus_10000_images_and_the_known_first_test_labels() {
    let Some(dir) = common::require("fashion-mnist", "fashion-mnist counts") else {
        return;
    };
    let test = idx::read(
        &dir.join("t10k-images-idx3-ubyte.gz"),
        &dir.join("t10k-labels-idx1-ubyte.gz"),
        10,
        Some((28, 28)),
    )
    .expect("test split");
    assert_eq!(test.len(), 10_000);
    assert_eq!(test.shape(), ImageShape::new(1, 28, 28));
    let first: Vec<usize> = test.labels().take(10).collect();
    assert_eq!(first, vec![9, 2, 1, 1, 6, 1, 4, 6, 5, 7]);

    // Through the registry, as the trainer opens it: 28x28 grey in a 32x32 RGB canvas.
    let mut config = DataConfig::new(DatasetName::FashionMnist, 32);
    config.data_dir = Some(dir);
    let data = Data::open(&config).expect("registry");
    assert_eq!(
        (data.train.len(), data.test.len(), data.num_classes),
        (60_000, 10_000, 10)
    );
    let mut counts = [0usize; 10];
    for i in 0..data.test.len() {
        counts[data.test.load(i).expect("image").label] += 1;
    }
    assert_eq!(counts, [1000; 10], "the official test split is balanced");
    assert_eq!(
        data.test_pipeline.output_shape(ImageShape::new(1, 28, 28)),
        ImageShape::new(3, 32, 32)
    );
}
