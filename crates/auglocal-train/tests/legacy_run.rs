//! A run written before network families (checkpoint format 2: aux nets of BasicBlocks, a
//! GAP + Linear head, plan.json without unit kinds) resumes, and its next epoch is the one
//! recorded beside it (below), bit for bit.
//!
//! `fixtures/format2-run` is a quarter-sixteenth-width ResNet-20 (AugLocal, K = 6) on the
//! synthetic set, 2 epochs of 3,000 images at a constant lr 0.05, stopped after epoch 1 by
//! the release before this layout (commit 9304a05):
//!
//!     auglocal train --arch resnet20 --width 0.0625 --dataset synthetic --train-limit 3000 \
//!       --test-limit 32 --epochs 2 --batch 16 -k 6 --schedule constant --lr 0.05 \
//!       --aux-accuracy --workers 1 --out format2-run     # killed once epoch 1 was saved
//!
//! and `fixtures/format2-run-epoch-2.json` is the epoch 2 trained on resuming it: the one that
//! release trained, until the direct 3x3 convolution kernels changed the order in which a
//! convolution's products are summed (last bits, then the epoch's metrics); since then, the
//! epoch those kernels train, rewritten by the commit that brought them and again by the one
//! that ran the stride-2 convolutions on them.

use std::path::{Path, PathBuf};

use auglocal_train::progress::Silent;
use auglocal_train::{EpochMetrics, Run, read_plan};
use burn::backend::{Autodiff, Flex};

type B = Autodiff<Flex>;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read fixture") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

#[test]
fn a_format_2_run_resumes_into_the_epoch_its_release_trained() {
    let dir = std::env::temp_dir().join(format!("auglocal-legacy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&fixture("format2-run"), &dir);
    assert!(
        read_plan(&dir).is_err(),
        "the fixture's plan.json is of the old layout"
    );

    let mut run = Run::<B>::resume(&dir, &Default::default()).expect("resumes");
    assert_eq!(run.completed(), 1);
    let rest = run.train(&mut Silent).expect("epoch 2");
    let expected: EpochMetrics = serde_json::from_str(
        &std::fs::read_to_string(fixture("format2-run-epoch-2.json")).expect("expected epoch"),
    )
    .expect("metrics");
    let got = &rest[0];
    assert_eq!(got.epoch, 2);
    assert_eq!(got.loss, expected.loss, "every module's loss, bit for bit");
    assert_eq!(got.train_accuracy, expected.train_accuracy);
    assert_eq!(got.test_accuracy, expected.test_accuracy);
    assert_eq!(got.aux_train_accuracy, expected.aux_train_accuracy);
    assert_eq!(got.aux_test_accuracy, expected.aux_test_accuracy);
    // Resuming rewrote plan.json in today's layout, the same plan.
    assert_eq!(&read_plan(&dir).expect("today's layout"), run.plan());
    std::fs::remove_dir_all(&dir).expect("clean up");
}
