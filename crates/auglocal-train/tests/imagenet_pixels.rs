//! The whole path on real ImageNet photographs: the 20 ImageNet samples of the foolbox wheel
//! (fetched by scripts/fetch-data.sh, 512x512 JPEGs of 19 classes) laid out as an image folder
//! (`train/<class>/*.JPEG`, the same photographs as `val/`), read by the folder reader, cropped
//! and resized by the ImageNet pipelines to 112x112, and trained by AugLocal on a quarter-width
//! ImageNet ResNet-18 (K = 5, d = 2): every module's loss finite, and the primary loss falling
//! as the network fits the 20 photographs.

mod common;

use std::path::Path;

use auglocal_data::DatasetName;
use auglocal_model::Arch;
use auglocal_plan::Rule;
use auglocal_train::progress::Silent;
use auglocal_train::{Run, Schedule, TrainConfig};
use burn::backend::{Autodiff, Flex};

/// Copies `imagenet_<i>_<label>.jpg` to `<root>/<split>/n<label>/` for both splits.
fn image_folder(samples: &Path, root: &Path) -> usize {
    let mut copied = 0;
    for entry in std::fs::read_dir(samples).expect("foolbox folder") {
        let path = entry.expect("entry").path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(label) = name
            .strip_prefix("imagenet_")
            .and_then(|r| r.strip_suffix(".jpg"))
            .and_then(|r| r.rsplit('_').next())
        else {
            continue;
        };
        for split in ["train", "val"] {
            let class = root.join(split).join(format!("n{label:0>4}"));
            std::fs::create_dir_all(&class).expect("class folder");
            std::fs::copy(&path, class.join(name.replace(".jpg", ".JPEG"))).expect("copy");
        }
        copied += 1;
    }
    copied
}

#[test]
fn resnet18_trains_on_real_imagenet_photographs() {
    let Some(samples) = common::real_data("foolbox") else {
        return;
    };
    let _guard = common::seeded();
    let root = common::fresh("imagenet-pixels");
    assert_eq!(image_folder(&samples, &root.join("imagenet")), 20);
    let config = TrainConfig {
        network: auglocal_train::NetworkSettings {
            arch: Arch::ResNet18,
            width: 0.25,
            image_size: Some(112),
        },
        local: auglocal_train::LocalSettings {
            rule: Rule::AugLocal,
            k: Some(5),
            depth: 2,
            pyramid: None,
            ..Default::default()
        },
        data: auglocal_train::DataSettings {
            dataset: DatasetName::Imagenet,
            data_dir: Some(root.join("imagenet")),
            workers: 1,
            ..Default::default()
        },
        epochs: 8,
        batch: 10,
        lr: 0.05,
        schedule: Schedule::Constant,
        ..TrainConfig::default()
    };
    let out = root.join("run");
    let mut run = Run::<Autodiff<Flex>>::create(config, &out, &Default::default()).expect("run");
    assert_eq!(run.plan().network.input_shape(), [3, 112, 112]);
    assert_eq!(
        (run.plan().network.num_units(), run.plan().num_modules()),
        (9, 5)
    );
    assert_eq!(run.data().num_classes, 19);
    let metrics = run.train(&mut Silent).expect("trains");
    assert_eq!(metrics.len(), 8);
    for m in &metrics {
        assert!(
            m.loss.iter().all(|l| l.is_finite()),
            "epoch {}: {:?}",
            m.epoch,
            m.loss
        );
        assert_eq!((m.train_images, m.test_images), (20, 20));
    }
    let primary = |m: &auglocal_train::EpochMetrics| *m.loss.last().expect("losses");
    let (first, last) = (primary(&metrics[0]), primary(&metrics[7]));
    assert!(
        last < 0.8 * first,
        "the primary loss fell from {first:.3} to only {last:.3}"
    );
    std::fs::remove_dir_all(root).expect("clean up");
}
