//! Data-parallel replicas inside one process: the all-reduce averages exactly what it should.
//! Replicas fed identical shards train to the weights of one trainer on that shard, bit for
//! bit; replicas fed different shards take, in one plain-SGD step, the mean of the updates
//! that each shard alone gives, weighted by the shards' sizes (computed here without the
//! collective); every replica holds replica 0's weights after every step (the strategy
//! checks it at the end of every run of steps); runs resume exactly. Every test carries a
//! deadline: a deadlock fails it in minutes.

mod common;

use std::ops::Range;

use auglocal_plan::{Plan, Rule};
use auglocal_train::data_parallel::{DataParallel, MAX_REPLICAS};
use auglocal_train::{Execution, StepStats, Strategy, TrainUnit, Trainer, sgd_config};
use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use common::{
    B, Batch, assert_a_failing_step_stops, batches, deadline, learned, max_diff, plan, seeded,
    tensors, trainable,
};

const LR: f64 = 0.05;

/// Seconds a test may take before its deadline aborts it (each takes a few here).
const DEADLINE: u64 = 300;

fn fresh(plan: &Plan, momentum: f64, decay: f64) -> Trainer<B> {
    Trainer::init(plan, &sgd_config(momentum, decay), 7, &Default::default())
}

fn parallel(replicas: usize) -> Strategy<B> {
    Strategy::DataParallel(
        DataParallel::new(replicas, &Default::default())
            .expect("replicas")
            .with_threads(1),
    )
}

/// Trains `data` data-parallel, returning every step's stats.
fn train<U: TrainUnit<B>>(
    trainer: &mut Trainer<B, U>,
    data: &[Batch],
    strategy: &Strategy<B>,
) -> Vec<StepStats> {
    let mut stats = Vec::new();
    let timing = trainer
        .train_batches(
            data.iter().cloned().map(Ok),
            LR,
            strategy,
            &mut |step, s| {
                assert_eq!(step, stats.len(), "steps arrive in order");
                stats.push(s.clone());
                Ok(())
            },
        )
        .expect("trains");
    assert_eq!(timing.steps, stats.len());
    let Strategy::DataParallel(dp) = strategy else {
        panic!("data-parallel")
    };
    assert_eq!(timing.reduce_seconds.len(), dp.replicas());
    assert!(
        timing
            .reduce_seconds
            .iter()
            .all(|&r| r <= timing.wall_seconds)
    );
    stats
}

#[test]
fn replicas_fed_identical_shards_train_as_one_trainer_bit_for_bit() {
    let _deadline = deadline("identical shards", DEADLINE);
    let _seed = seeded();
    let shards = batches(3, 4);
    for (rule, k) in [(Rule::AugLocal, 6), (Rule::Bp, 1), (Rule::InfoPro, 4)] {
        let plan = plan(rule, k);
        let mut one = fresh(&plan, 0.9, 5e-4);
        let expected: Vec<StepStats> = shards
            .iter()
            .map(|(x, t)| one.step(x.clone(), t.clone(), LR).expect("step"))
            .collect();
        // Powers of two: the mean of n copies of a float is that float exactly then (3g / 3
        // may round, off by one ulp).
        for replicas in [2, 4] {
            // Each batch: the same shard once per replica.
            let repeated: Vec<Batch> = shards
                .iter()
                .map(|(x, t)| {
                    (
                        Tensor::cat(vec![x.clone(); replicas], 0),
                        Tensor::cat(vec![t.clone(); replicas], 0),
                    )
                })
                .collect();
            let mut trainer = fresh(&plan, 0.9, 5e-4);
            let stats = train(&mut trainer, &repeated, &parallel(replicas));
            let what = format!("{rule}, {replicas} replicas");
            assert_eq!(
                max_diff(&tensors(trainer.network()), &tensors(one.network())),
                0.0,
                "{what}: weights and BatchNorm statistics"
            );
            for (got, want) in stats.iter().zip(&expected) {
                assert_eq!(got.batch, replicas * want.batch, "{what}");
                assert_eq!(got.losses, want.losses, "{what}");
                let scaled: Vec<usize> = want.correct.iter().map(|c| c * replicas).collect();
                assert_eq!(got.correct, scaled, "{what}");
            }
        }
    }
}

/// `sum_r weights[r] * each[r]`, tensor by tensor.
fn weighted(each: &[Vec<Vec<f32>>], weights: &[f32]) -> Vec<Vec<f32>> {
    (0..each[0].len())
        .map(|i| {
            (0..each[0][i].len())
                .map(|j| each.iter().zip(weights).map(|(e, w)| w * e[i][j]).sum())
                .collect()
        })
        .collect()
}

/// A conv3x3 + ReLU unit: a network of these and the primary head (GAP + Linear) has no
/// BatchNorm, so each shard's gradient does not depend on the other shard.
#[derive(Module, Debug)]
struct PlainConv<B: Backend> {
    conv: burn::nn::conv::Conv2d<B>,
}

impl<B: auglocal_kernels::FastOps> auglocal_model::LocalUnit<B> for PlainConv<B> {
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        burn::tensor::activation::relu(self.conv.forward(x))
    }
}

/// Three plain units, drawn from a fixed seed.
fn plain_units() -> Vec<PlainConv<B>> {
    let device = Default::default();
    B::seed(&device, 11);
    [[3, 8, 1], [8, 16, 2], [16, 16, 2]]
        .iter()
        .map(|&[c_in, c_out, stride]| PlainConv {
            conv: burn::nn::conv::Conv2dConfig::new([c_in, c_out], [3, 3])
                .with_stride([stride, stride])
                .with_padding(burn::nn::PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(&device),
        })
        .collect()
}

/// Trains one batch on two replicas with plain SGD (no momentum, no decay), against the
/// same trainer stepped on each shard alone by hand (no collective). Plain SGD is linear in
/// the gradient, so a step on the size-weighted mean of the shards' gradients is the
/// size-weighted mean of the one-shard weights. Shards of 4 + 4 (equal weights) and 4 + 3 (a
/// batch of 7: weights 4/7 and 3/7).
fn assert_the_weighted_mean_update<U: TrainUnit<B>>(what: &str, make: impl Fn() -> Trainer<B, U>) {
    for (batch, shards, weights) in [
        (8, vec![0..4, 4..8], vec![0.5, 0.5]),
        (7, vec![0..4, 4..7], vec![4.0 / 7.0, 3.0 / 7.0]),
    ] {
        let data = batches(1, batch);
        let (x, t) = &data[0];
        let each: Vec<_> = shards
            .iter()
            .map(|range: &Range<usize>| {
                let mut one = make();
                one.step(
                    x.clone().slice([range.clone()]),
                    t.clone().slice([range.clone()]),
                    LR,
                )
                .expect("step");
                trainable(one.network())
            })
            .collect();
        let mean = weighted(&each, &weights);
        let mut trainer = make();
        train(&mut trainer, &data, &parallel(2));
        let got = trainable(trainer.network());
        let drift = max_diff(&got, &mean);
        eprintln!("{what}, batch {batch}: the weighted mean update, drift {drift:e}");
        assert!(
            drift <= 1e-6,
            "{what}, batch {batch}: not the mean update: {drift:e}"
        );
        // Neither shard's update alone, nor (for 4 + 3) the unweighted mean: the test can fail.
        for alone in &each {
            assert!(max_diff(&got, alone) > 1e3 * drift.max(1e-7), "{what}");
        }
        if batch == 7 {
            let unweighted = weighted(&each, &[0.5, 0.5]);
            assert!(
                max_diff(&got, &unweighted) > 10.0 * drift.max(1e-7),
                "{what}"
            );
        }
    }
}

#[test]
fn different_shards_take_the_size_weighted_mean_update_and_replicas_stay_identical() {
    let _deadline = deadline("different shards", DEADLINE);
    let _seed = seeded();
    let device = Default::default();
    // A network without BatchNorm, trained end to end (one module).
    let network = auglocal_model::CustomNetworkConfig::new([3, 32, 32], 10)
        .spec::<B, _>(&plain_units(), &device)
        .expect("plannable");
    let plain = Plan::new(&network, &auglocal_plan::LocalConfig::new(Rule::Bp, 1)).expect("plan");
    assert_the_weighted_mean_update("no BatchNorm, bp", || {
        Trainer::from_units(plain_units(), &plain, &sgd_config(0.0, 0.0), 7, &device)
            .expect("units")
    });
    // AugLocal on a ResNet: BatchNorm normalises each shard apart, in the replicas as in the
    // one-shard steps by hand, so the same holds.
    let plan = plan(Rule::AugLocal, 6);
    assert_the_weighted_mean_update("ResNet-20, AugLocal", || fresh(&plan, 0.0, 0.0));

    // Momentum and weight decay on, one step per run: the strategy checks at the end of each
    // run that every replica holds replica 0's weights (an error otherwise).
    let mut trainer = fresh(&plan, 0.9, 5e-4);
    for batch in batches(3, 7) {
        train(&mut trainer, &[batch], &parallel(2));
    }
}

#[test]
fn a_failing_step_stops_every_replica_with_the_error() {
    let _deadline = deadline("a failing step", DEADLINE);
    let _seed = seeded();
    let plan = plan(Rule::AugLocal, 6);
    let data = batches(4, 8);
    let mut trainer = fresh(&plan, 0.9, 5e-4);
    assert_a_failing_step_stops(&mut trainer, &data, &parallel(2), plan.num_modules());
    // The collective is free again: another data-parallel run trains.
    let stats = train(&mut trainer, &data[..1], &parallel(2));
    assert_eq!(stats.len(), 1);
}

#[test]
fn batches_smaller_than_the_replicas_are_skipped_and_bad_counts_refused() {
    let _deadline = deadline("small batches", DEADLINE);
    let _seed = seeded();
    let plan = plan(Rule::Dgl, 4);
    let mut trainer = fresh(&plan, 0.9, 5e-4);
    let mut data = batches(1, 7);
    data.extend(batches(1, 2));
    let stats = train(&mut trainer, &data, &parallel(3));
    assert_eq!(
        stats.len(),
        1,
        "the batch of 2 images is not split across 3 replicas"
    );
    // 7 images in shards of 3, 2 and 2: the step's metrics are the whole batch's.
    assert_eq!(stats[0].batch, 7);
    for n in [0, MAX_REPLICAS + 1] {
        let err = DataParallel::<B>::new(n, &Default::default()).expect_err("refused");
        assert!(err.to_string().contains("replicas"), "{err}");
    }
}

#[test]
fn a_data_parallel_run_resumes_exactly_and_one_replica_is_sequential_training() {
    use auglocal_train::progress::Silent;
    use auglocal_train::{Run, TrainConfig};
    let _deadline = deadline("data-parallel runs", DEADLINE);
    let _seed = seeded();
    let device = Default::default();
    let dirs = [
        "dp-seq",
        "dp-one",
        "dp-straight",
        "dp-resumed",
        "dp-changed",
    ]
    .map(common::fresh);
    let config = common::tiny_run();
    let train = |config: TrainConfig, dir| {
        let mut run = Run::<B>::create(config, dir, &device).expect("run");
        run.train(&mut Silent).expect("trains")
    };
    // One replica: the sequential step on a thread of its own, an all-reduce of one peer.
    let sequential = train(config.clone(), &dirs[0]);
    let one = TrainConfig {
        execution: auglocal_train::ExecutionSettings {
            strategy: Execution::DataParallel { replicas: 1 },
            ..config.clone().execution
        },
        ..config.clone()
    };
    let got = train(one, &dirs[1]);
    for (g, e) in got.iter().zip(&sequential) {
        assert_eq!(learned(g), learned(e), "epoch {}", e.epoch);
    }

    let two = TrainConfig {
        execution: auglocal_train::ExecutionSettings {
            strategy: Execution::DataParallel { replicas: 2 },
            threads: Some(1),
            ..config.execution.clone()
        },
        ..config
    };
    let straight = train(two.clone(), &dirs[2]);
    // Shards normalise with their own BatchNorm statistics: not the one-replica run.
    assert_ne!(learned(&straight[0]), learned(&sequential[0]));
    for (dir, changed) in [(&dirs[3], false), (&dirs[4], true)] {
        {
            let mut run = Run::<B>::create(two.clone(), dir, &device).expect("run");
            match run.strategy().expect("valid") {
                Strategy::DataParallel(d) => assert_eq!((d.replicas(), d.threads()), (2, 1)),
                other => panic!("data-parallel, got {other:?}"),
            }
            run.train_next(&mut Silent).expect("epoch 1");
            // Killed here: the next process resumes.
        }
        let mut run = Run::<B>::resume(dir, &device).expect("resumes");
        if changed {
            // Resumed with one replica instead of two.
            run = run
                .with_execution(Execution::DataParallel { replicas: 1 }, None)
                .expect("another replica count");
            let recorded = auglocal_train::read_config(dir).expect("config.json");
            assert_eq!(
                recorded.execution.strategy,
                Execution::DataParallel { replicas: 1 }
            );
        }
        run.train(&mut Silent).expect("epoch 2");
        let history = run.history();
        assert_eq!(history.len(), straight.len());
        assert_eq!(learned(&history[0]), learned(&straight[0]));
        if changed {
            // Epoch 2 on the whole batch: the one-replica metrics differ from two replicas'.
            assert_ne!(learned(&history[1]), learned(&straight[1]));
        } else {
            assert_eq!(learned(&history[1]), learned(&straight[1]), "resumed");
        }
    }
    for dir in dirs {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn data_parallel_runs_that_cannot_be_shared_are_refused() {
    use auglocal_train::TrainConfig;
    let dir = common::fresh("dp-refused");
    for (replicas, batch, needle) in [(4, 3, "cannot be shared"), (0, 16, "give 1 to")] {
        let config = TrainConfig {
            execution: auglocal_train::ExecutionSettings {
                strategy: Execution::DataParallel { replicas },
                ..common::tiny_run().execution
            },
            batch,
            ..common::tiny_run()
        };
        common::assert_refused(config, &dir, needle);
    }
}

/// Set by the test below: a unit on replica 1's threads panics in its forward pass.
static PANIC_ON_REPLICA_1: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// A unit of auglocal's that panics on replica 1's threads while [`PANIC_ON_REPLICA_1`] is set.
#[derive(Module, Debug)]
struct Fragile<B: Backend> {
    unit: auglocal_model::nn::Unit<B>,
}

impl<B: auglocal_kernels::FastOps> auglocal_model::LocalUnit<B> for Fragile<B> {
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let replica1 = std::thread::current()
            .name()
            .is_some_and(|n| n.starts_with("auglocal-replica1-"));
        if replica1 && PANIC_ON_REPLICA_1.load(std::sync::atomic::Ordering::SeqCst) {
            panic!("injected fault on replica 1");
        }
        self.unit.forward(x)
    }
}

#[test]
fn a_replica_that_panics_mid_step_stops_the_others_waiting_in_the_all_reduce() {
    let _deadline = deadline("a panicking replica", 120);
    let _seed = seeded();
    let plan = plan(Rule::AugLocal, 6);
    let device = Default::default();
    let units = plan.network.init::<B>(&device).units;
    let units = units.into_iter().map(|unit| Fragile { unit }).collect();
    let mut trainer =
        Trainer::from_units(units, &plan, &sgd_config(0.9, 5e-4), 7, &device).expect("units");
    let strategy = parallel(2);
    let data = batches(3, 8);
    let mut ok = |_: usize, _: &StepStats| Ok(());
    trainer
        .train_batches(data[..1].iter().cloned().map(Ok), LR, &strategy, &mut ok)
        .expect("a step before the fault");
    // Replica 1 panics in its first unit; replica 0 goes on to module 0's all-reduce and
    // waits there for replica 1, until the collective is reset.
    PANIC_ON_REPLICA_1.store(true, std::sync::atomic::Ordering::SeqCst);
    let err = trainer
        .train_batches(data[1..].iter().cloned().map(Ok), LR, &strategy, &mut ok)
        .expect_err("the panic stops the run");
    PANIC_ON_REPLICA_1.store(false, std::sync::atomic::Ordering::SeqCst);
    let text = err.to_string();
    assert!(
        text.contains("replica 1") && text.contains("injected fault"),
        "{text}"
    );
    assert_eq!(trainer.network().modules.len(), plan.num_modules());
    // The collective is usable again.
    trainer
        .train_batches(data[..1].iter().cloned().map(Ok), LR, &strategy, &mut ok)
        .expect("a step after the fault");
}
