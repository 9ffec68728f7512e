//! A run stopped after its first epoch and resumed ends exactly where an uninterrupted run
//! ends; a diverging run stops with an error and keeps its last good checkpoint.

mod common;

use std::path::Path;

use auglocal_plan::Rule;
use auglocal_train::progress::Silent;
use auglocal_train::{EpochMetrics, Run, Schedule, TrainConfig, TrainError, read_metrics};
use common::{B, fresh, tiny_run as config};

/// Everything but the timings and memory, which differ from run to run.
fn comparable(m: &EpochMetrics) -> String {
    format!(
        "{} {:?} {} {} {:?} {:?} {}",
        m.lr,
        m.loss,
        m.train_accuracy,
        m.test_accuracy,
        m.aux_train_accuracy,
        m.aux_test_accuracy,
        m.train_images
    )
}

fn train_all(dir: &Path) -> Vec<EpochMetrics> {
    let mut run = Run::<B>::create(config(), dir, &Default::default()).expect("run");
    run.train(&mut Silent).expect("trains")
}

#[test]
fn resuming_after_epoch_1_gives_the_uninterrupted_epoch_2() {
    let _guard = common::seeded();
    let (a, b) = (fresh("resume-a"), fresh("resume-b"));
    let whole = train_all(&a);

    let mut run = Run::<B>::create(config(), &b, &Default::default()).expect("run");
    run.train_next(&mut Silent).expect("epoch 1");
    drop(run); // as if killed after epoch 1's checkpoint
    let mut resumed = Run::<B>::resume(&b, &Default::default()).expect("resume");
    assert_eq!(resumed.completed(), 1);
    let rest = resumed.train(&mut Silent).expect("epoch 2");
    assert_eq!(rest.len(), 1);
    assert_eq!(comparable(&rest[0]), comparable(&whole[1]));
    let lines = read_metrics(&b).expect("metrics");
    assert_eq!(
        lines.iter().map(|m| m.epoch).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(comparable(&lines[0]), comparable(&whole[0]));
    assert!(
        Run::<B>::create(config(), &b, &Default::default()).is_err(),
        "a directory holding a run is not overwritten"
    );
    for dir in [a, b] {
        std::fs::remove_dir_all(dir).expect("clean up");
    }
}

#[test]
fn metrics_written_after_the_last_checkpoint_are_measured_again() {
    let _guard = common::seeded();
    let dir = fresh("resume-metrics");
    let mut run = Run::<B>::create(config(), &dir, &Default::default()).expect("run");
    run.train_next(&mut Silent).expect("epoch 1");
    drop(run);
    // A run killed between writing epoch 2's metrics and its checkpoint.
    let mut line = read_metrics(&dir).expect("metrics").remove(0);
    line.epoch = 2;
    let text = std::fs::read_to_string(dir.join("metrics.jsonl")).expect("read");
    let extra = serde_json::to_string(&line).expect("json");
    std::fs::write(dir.join("metrics.jsonl"), format!("{text}{extra}\n")).expect("write");
    let resumed = Run::<B>::resume(&dir, &Default::default()).expect("resume");
    assert_eq!(resumed.completed(), 1);
    assert_eq!(read_metrics(&dir).expect("metrics").len(), 1);
    std::fs::remove_dir_all(dir).expect("clean up");
}

#[test]
fn a_huge_learning_rate_stops_the_run_and_keeps_the_last_good_checkpoint() {
    let _guard = common::seeded();
    let dir = fresh("diverge");
    // The reference schedule starts warm-up at 0.01 whatever the base rate, so epoch 1 trains
    // and is checkpointed; epoch 2 jumps to about 1e7 and diverges.
    let config = TrainConfig {
        lr: 1e8,
        epochs: 20,
        schedule: Schedule::REFERENCE,
        ..config()
    };
    let mut run = Run::<B>::create(config, &dir, &Default::default()).expect("run");
    let err = run.train(&mut Silent).expect_err("diverges");
    match &err {
        TrainError::Diverged { epoch, module, .. } => {
            assert_eq!(*epoch, 2, "{err}");
            assert!(*module < run.plan().num_modules());
        }
        other => panic!("expected divergence, got {other}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("epoch 2") && msg.contains("epoch-0001"),
        "{msg}"
    );
    drop(run);
    assert!(msg.contains("lower `config.lr`"), "{msg}");
    let resumed = Run::<B>::resume(&dir, &Default::default()).expect("the checkpoint loads");
    assert_eq!(resumed.completed(), 1);
    let eval = resumed.evaluate().expect("evaluates");
    assert!(eval.accuracy.is_finite() && eval.images == 64);
    std::fs::remove_dir_all(dir).expect("clean up");
}

#[test]
fn a_divergence_from_weight_decay_names_it() {
    let _guard = common::seeded();
    let dir = fresh("decay");
    // lr x weight decay = 500: each step multiplies the weights by about -500, until they
    // overflow.
    let config = TrainConfig {
        optimizer: auglocal_train::SgdSettings {
            weight_decay: 1e4,
            ..config().optimizer
        },
        epochs: 4,
        ..config()
    };
    let mut run = Run::<B>::create(config, &dir, &Default::default()).expect("run");
    let err = run.train(&mut Silent).expect_err("diverges");
    let msg = err.to_string();
    assert!(
        matches!(err, TrainError::Diverged { .. })
            && msg.contains("lower `config.optimizer.weight_decay`"),
        "{msg}"
    );
    drop(run);
    std::fs::remove_dir_all(dir).expect("clean up");
}

#[test]
fn a_checkpoint_of_another_module_count_is_not_restored() {
    let _guard = common::seeded();
    let plan = common::plan(Rule::AugLocal, 6);
    let device = Default::default();
    let sgd = auglocal_train::sgd_config(0.9, 1e-4);
    let mut trainer = auglocal_train::Trainer::<B>::init(&plan, &sgd, 0, &device);
    let other =
        auglocal_train::Trainer::<B>::init(&common::plan(Rule::Greedy, 5), &sgd, 0, &device);
    let err = trainer
        .restore(other.network().clone(), other.optimizer_records())
        .expect_err("5 modules into 4");
    assert!(err.to_string().contains("cannot be restored"), "{err}");
    // The module count of the records is checked too, not zipped away.
    let mut records = trainer.optimizer_records();
    records.pop();
    let network = trainer.network().clone();
    assert!(trainer.restore(network, records).is_err());
}
