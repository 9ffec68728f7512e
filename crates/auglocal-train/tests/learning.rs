//! Learning on real images: Fashion-MNIST (fetched by scripts/fetch-data.sh), a quarter-width
//! ResNet-20, 2,000 training images, 3 epochs of batch 16, 500 test images. Chance is 10%.
//!
//! The schedule is the reference's cosine without warm-up: lr 0.03, 0.01, then 0 in the last
//! epoch, as the reference's own last epoch (cosine at e = E). That last epoch matters at this
//! budget: BatchNorm's running statistics lag the fast-changing weights (method doc, section 6).
//! With a constant lr 0.02 for 2 epochs instead, AugLocal's inference-mode test accuracy was
//! 15.6%, 46.4% and 34.8% for seeds 0-2 at 45-52% train accuracy. With this setting: AugLocal
//! (K = 8, d = 2) 58.8% and 64.6% for seeds 0 and 1, backprop 67.0% and 61.2%, PredSim (K = 8)
//! 49.4%, 59.0% and 45.8% for seeds 0-2, InfoPro (K = 8) 64.4% for seed 0. The bar, 40%, is
//! four times chance.

mod common;

use auglocal_data::DatasetName;
use auglocal_model::Arch;
use auglocal_plan::Rule;
use auglocal_train::progress::Silent;
use auglocal_train::{Run, Schedule, TrainConfig};
use burn::backend::{Autodiff, Flex};

const BAR: f64 = 0.40;

fn learns(rule: Rule, k: Option<usize>) {
    let Some(data_dir) = common::real_data("fashion-mnist") else {
        return;
    };
    let _guard = common::seeded();
    let out = std::env::temp_dir().join(format!("auglocal-learning-{rule}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let config = TrainConfig {
        network: auglocal_train::NetworkSettings {
            arch: Arch::ResNet20,
            width: 0.25,
            ..Default::default()
        },
        local: auglocal_train::LocalSettings {
            rule,
            k,
            depth: 2,
            ..Default::default()
        },
        data: auglocal_train::DataSettings {
            dataset: DatasetName::FashionMnist,
            data_dir: Some(data_dir),
            train_limit: Some(2_000),
            test_limit: Some(500),
            ..Default::default()
        },
        epochs: 3,
        batch: 16,
        lr: 0.04,
        schedule: Schedule::Cosine { warmup: Some(0) },
        ..TrainConfig::default()
    };
    let mut run = Run::<Autodiff<Flex>>::create(config, &out, &Default::default()).expect("run");
    let metrics = run.train(&mut Silent).expect("trains");
    let last = metrics.last().expect("two epochs");
    assert_eq!((last.epoch, last.test_images), (3, 500));
    assert!(
        last.test_accuracy > BAR,
        "{rule}: test accuracy {:.1}% is not above {:.0}%",
        100.0 * last.test_accuracy,
        100.0 * BAR
    );
    assert!(last.loss.iter().all(|l| l.is_finite()));
    std::fs::remove_dir_all(out).expect("clean up");
}

#[test]
fn auglocal_learns_fashion_mnist() {
    learns(Rule::AugLocal, Some(8));
}

#[test]
fn infopro_learns_fashion_mnist() {
    learns(Rule::InfoPro, Some(8));
}

#[test]
fn predsim_learns_fashion_mnist() {
    learns(Rule::PredSim, Some(8));
}

#[test]
fn backprop_learns_fashion_mnist() {
    learns(Rule::Bp, None);
}
