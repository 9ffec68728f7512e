//! Pipelined training equals sequential training: for every local rule and 2, 3 and one stage
//! per module, N pipelined steps leave the weights, BatchNorm statistics and per-module losses
//! of N sequential steps, bit for bit on the CPU backend, and so do several epochs with no
//! evaluation between them. A pipeline whose second stage is fed the output of the first
//! stage's *updated* modules must break that (the test can fail); a slow stage must not.

mod common;

use std::sync::Arc;
use std::time::Duration;

use auglocal_kernels::FastOps;
use auglocal_model::LocalUnit;
use auglocal_model::nn::Unit;
use auglocal_plan::{Plan, Rule, StagePlan};
use auglocal_train::pipeline::Pipeline;
use auglocal_train::{Execution, StepStats, Strategy, Trainer, sgd_config};
use burn::module::{AutodiffModule, Module};
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use common::{
    B, Batch, assert_a_failing_step_stops, batches, learned, max_diff, plan, seeded, tensors,
};

const STEPS: usize = 3;
const LR: f64 = 0.05;

/// How far pipelined training may drift from sequential training: nothing on the CPU backend.
/// On WGPU (lavapipe), with two test threads, 2 of 5 runs of this file showed the slowed-stage
/// check off by up to 2.6e-4 (relative, losses) and 3.1e-3 (absolute, weights) after three
/// steps; 27 runs with one test thread or in isolation, and the same runs' other checks, were
/// exact. The source is not found: this build has neither CubeCL's autotune nor its fusion, and
/// the same order of pipelined and sequential runs repeated in one process is exact. Bit for
/// bit is the CPU backend's promise; CI runs this file on WGPU with one test thread.
#[cfg(not(feature = "wgpu"))]
const BOUND: f32 = 0.0;
#[cfg(feature = "wgpu")]
const BOUND: f32 = 1e-3;

/// How far the weights may drift (absolute): nothing on the CPU backend, see [`BOUND`].
#[cfg(not(feature = "wgpu"))]
const WEIGHT_BOUND: f32 = 0.0;
#[cfg(feature = "wgpu")]
const WEIGHT_BOUND: f32 = 1e-2;

/// How far the weights and BatchNorm statistics may drift after the three epochs (nine steps)
/// of the epochs test: nothing on the CPU backend. On WGPU (lavapipe) the drift of
/// [`WEIGHT_BOUND`] compounds over the steps: one CI run in many (one test thread) ended
/// 1.8e-2 apart. Skipping the BatchNorm settling that the test checks drifts by 0.28 (CPU),
/// well above this bound.
#[cfg(not(feature = "wgpu"))]
const EPOCHS_WEIGHT_BOUND: f32 = 0.0;
#[cfg(feature = "wgpu")]
const EPOCHS_WEIGHT_BOUND: f32 = 5e-2;

/// Stage counts of the exactness test (`usize::MAX`: one stage per module). On WGPU (lavapipe,
/// in CI) two stages only: each count costs half a minute there.
#[cfg(not(feature = "wgpu"))]
const STAGE_COUNTS: &[usize] = &[2, 3, usize::MAX];
#[cfg(feature = "wgpu")]
const STAGE_COUNTS: &[usize] = &[2];

/// Largest relative difference between two runs' per-module losses.
fn loss_drift(a: &[StepStats], b: &[StepStats]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| x.losses.iter().zip(&y.losses))
        .map(|(p, q)| (p - q).abs() / q.abs().max(1e-6))
        .fold(0.0, f32::max)
}

/// Asserts that a pipelined run is sequential training (within [`BOUND`]).
fn assert_same(
    what: &str,
    (trainer, stats): &(Trainer<B>, Vec<StepStats>),
    expected: &[StepStats],
    weights: &[Vec<f32>],
) {
    let drift = loss_drift(stats, expected);
    let moved = max_diff(&tensors(trainer.network()), weights);
    eprintln!("{what}: loss drift {drift:e}, weight drift {moved:e}");
    assert!(drift <= BOUND, "{what}: losses differ by {drift:e}");
    assert!(moved <= WEIGHT_BOUND, "{what}: weights differ by {moved:e}");
    if BOUND == 0.0 {
        assert_eq!(stats, expected, "{what}: counts");
    }
}

fn fresh(plan: &Plan) -> Trainer<B> {
    Trainer::init(plan, &sgd_config(0.9, 5e-4), 7, &Default::default())
}

/// A unit of auglocal's that sleeps before each forward pass on the threads of pipeline stage
/// 0's pool: a slow device. Elsewhere (sequential training on the test's thread) it does not.
#[derive(Module, Debug)]
struct SlowOnStage0<B: Backend> {
    unit: Unit<B>,
}

impl<B: FastOps> LocalUnit<B> for SlowOnStage0<B> {
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let stage0 = std::thread::current()
            .name()
            .is_some_and(|n| n.starts_with("auglocal-stage0-"));
        if stage0 {
            std::thread::sleep(Duration::from_millis(40));
        }
        self.unit.forward(x)
    }
}

/// [`fresh`]'s network with every unit slow on stage 0.
fn fresh_slow(plan: &Plan) -> Trainer<B, SlowOnStage0<B>> {
    let device = Default::default();
    B::seed(&device, 7);
    let units = plan.network.init::<B>(&device).units;
    let units = units
        .into_iter()
        .map(|unit| SlowOnStage0 { unit })
        .collect();
    Trainer::from_units(units, plan, &sgd_config(0.9, 5e-4), 7, &device).expect("units")
}

/// What a wrong pipeline of two stages computes: the modules before `cut` step on each batch
/// and hand on the output of their *updated* weights (recomputed after the step) instead of
/// the output their step was taken on.
fn fed_updated(plan: &Plan, data: &[Batch], cut: usize, lr: f64) -> Vec<StepStats> {
    let mut modules = fresh(plan).into_network().modules;
    let sgd = sgd_config(0.9, 5e-4);
    let mut optimizers: Vec<_> = modules.iter().map(|_| sgd.init()).collect();
    data.iter()
        .map(|(images, targets)| {
            let mut losses = Vec::new();
            let mut x = images.clone();
            let mut stepped = Vec::new();
            for (k, (module, optimizer)) in std::mem::take(&mut modules)
                .into_iter()
                .zip(&mut optimizers)
                .enumerate()
            {
                let (h, _, value) = module.forward_loss(x.clone(), targets.clone(), None);
                losses.push(value.clone().into_scalar());
                let grads = GradientsParams::from_grads(value.backward(), &module);
                let module = optimizer.step(lr, module, grads);
                x = if k + 1 == cut {
                    // The fault: the first stage's output recomputed with its updated modules.
                    stepped[..]
                        .iter()
                        .chain(std::iter::once(&module))
                        .fold(images.clone(), |x, m: &auglocal_train::LocalModule<B>| {
                            m.forward_units(x)
                        })
                        .detach()
                } else {
                    h.detach()
                };
                stepped.push(module);
            }
            modules = stepped;
            StepStats {
                batch: targets.dims()[0],
                correct: vec![0; losses.len()],
                losses,
            }
        })
        .collect()
}

fn sequential(plan: &Plan, data: &[Batch]) -> (Trainer<B>, Vec<StepStats>) {
    sequential_at(plan, data, LR)
}

fn sequential_at(plan: &Plan, data: &[Batch], lr: f64) -> (Trainer<B>, Vec<StepStats>) {
    let mut trainer = fresh(plan);
    let stats = data
        .iter()
        .map(|(x, t)| trainer.step(x.clone(), t.clone(), lr).expect("step"))
        .collect();
    (trainer, stats)
}

fn pipelined(plan: &Plan, data: &[Batch], pipeline: &Pipeline<B>) -> (Trainer<B>, Vec<StepStats>) {
    pipelined_on(fresh(plan), data, pipeline)
}

fn pipelined_on<U: auglocal_train::TrainUnit<B>>(
    mut trainer: Trainer<B, U>,
    data: &[Batch],
    pipeline: &Pipeline<B>,
) -> (Trainer<B, U>, Vec<StepStats>) {
    let mut stats = Vec::new();
    let timing = trainer
        .train_batches(
            data.iter().cloned().map(Ok),
            LR,
            &Strategy::Pipelined(pipeline.clone()),
            &mut |step, s| {
                assert_eq!(step, stats.len(), "steps arrive in order");
                stats.push(s.clone());
                Ok(())
            },
        )
        .expect("pipelined");
    assert_eq!(timing.busy_seconds.len(), pipeline.stages().len());
    assert!(timing.busy_fractions().iter().all(|&b| b > 0.0 && b <= 1.0));
    (trainer, stats)
}

fn pipeline(plan: &Plan, stages: usize) -> Pipeline<B> {
    let stages = StagePlan::balance(plan, stages).expect("stages");
    Pipeline::new(stages, &Default::default()).with_threads(1)
}

#[test]
fn pipelined_steps_equal_sequential_steps_bit_for_bit() {
    let _seed = seeded();
    let data = batches(STEPS, 8);
    // InfoPro's later stages reconstruct the batch's images, which travel along the pipeline.
    for (rule, k) in [
        (Rule::AugLocal, 6),
        (Rule::Dgl, 4),
        (Rule::Greedy, 4),
        (Rule::InfoPro, 4),
    ] {
        let plan = plan(rule, k);
        let (reference, expected) = sequential(&plan, &data);
        let weights = tensors(reference.network());
        for &stages in STAGE_COUNTS {
            let stages = stages.min(plan.num_modules());
            let run = pipelined(&plan, &data, &pipeline(&plan, stages));
            assert_same(
                &format!("{rule}, {stages} stages"),
                &run,
                &expected,
                &weights,
            );
        }
    }
}

#[test]
fn feeding_the_updated_output_is_caught_and_a_slow_stage_changes_nothing() {
    let _seed = seeded();
    let data = batches(STEPS, 8);
    let plan = plan(Rule::AugLocal, 6);

    // At a larger learning rate the updated weights are far from the old ones, so the fault
    // shows well above the bound of any backend. The right pipeline is exact at that rate.
    let lr = 0.5;
    let (_, at_lr) = sequential_at(&plan, &data, lr);
    let cut = StagePlan::balance(&plan, 2).expect("stages").stages[0]
        .modules()
        .end;
    let stats = fed_updated(&plan, &data, cut, lr);
    let drift = loss_drift(&stats, &at_lr);
    eprintln!("fed the updated output: loss drift {drift:e}");
    assert!(
        drift > 5.0 * BOUND.max(1e-6),
        "the second stage saw other inputs, yet its losses moved by {drift:e} only"
    );

    // Stage 0 of three sleeps 40 ms in every unit's forward pass.
    let mut reference = fresh_slow(&plan);
    let expected: Vec<StepStats> = data
        .iter()
        .map(|(x, t)| reference.step(x.clone(), t.clone(), LR).expect("step"))
        .collect();
    let weights = tensors(reference.network());
    let (trainer, stats) = pipelined_on(fresh_slow(&plan), &data, &pipeline(&plan, 3));
    let drift = loss_drift(&stats, &expected);
    let moved = max_diff(&tensors(trainer.network()), &weights);
    eprintln!("a slow stage: loss drift {drift:e}, weight drift {moved:e}");
    assert!(drift <= BOUND, "a slow stage: losses differ by {drift:e}");
    assert!(
        moved <= WEIGHT_BOUND,
        "a slow stage: weights differ by {moved:e}"
    );
}

/// Epochs of `loader` trained as `strategy` says, with no evaluation (nothing that syncs
/// BatchNorm's running statistics) between them.
fn epochs_without_evaluation(
    plan: &Plan,
    loader: &auglocal_data::Loader<B>,
    strategy: &Strategy<B>,
) -> Trainer<B> {
    use auglocal_train::progress::Silent;
    let mut trainer = fresh(plan);
    for epoch in 1..=3 {
        trainer
            .train_epoch_with(loader, epoch, LR, strategy, &mut Silent)
            .expect("epoch");
    }
    trainer
}

#[test]
fn several_epochs_without_evaluation_keep_the_batchnorm_statistics_of_sequential_training() {
    use auglocal_data::{Data, DataConfig, DatasetName, Loader, LoaderConfig};
    let _seed = seeded();
    let device = Default::default();
    let data = Data::open(&DataConfig::new(DatasetName::Synthetic, 32))
        .expect("synthetic data")
        .limit(Some(48), Some(16));
    let loader = Loader::<B>::new(
        Arc::clone(&data.train),
        data.train_pipeline.clone(),
        LoaderConfig::train(16, 0),
        device,
    )
    .expect("loader");
    let plan = plan(Rule::AugLocal, 6);
    let sequential = epochs_without_evaluation(&plan, &loader, &Strategy::default());
    // Synced as evaluation and checkpoints sync them: every thread's pending update applied.
    let expected = tensors(&sequential.network().valid());
    for (what, strategy) in [
        (
            "pipelined, 2 stages",
            Strategy::Pipelined(pipeline(&plan, 2)),
        ),
        (
            "sequential on a pool",
            Strategy::Sequential { threads: Some(1) },
        ),
    ] {
        let trainer = epochs_without_evaluation(&plan, &loader, &strategy);
        let moved = max_diff(&tensors(&trainer.network().valid()), &expected);
        eprintln!("{what}: weight and statistics drift {moved:e} after 3 epochs");
        assert!(moved <= EPOCHS_WEIGHT_BOUND, "{what}: differ by {moved:e}");
    }
}

#[test]
fn a_step_that_fails_stops_the_pipeline_and_keeps_every_module() {
    let _seed = seeded();
    let data = batches(6, 8);
    let plan = plan(Rule::AugLocal, 6);
    let mut trainer = fresh(&plan);
    let strategy = Strategy::Pipelined(pipeline(&plan, 2));
    assert_a_failing_step_stops(&mut trainer, &data, &strategy, plan.num_modules());
    // Still a working trainer.
    let (x, t) = &data[0];
    trainer
        .step(x.clone(), t.clone(), LR)
        .expect("a step after");
}

#[test]
fn a_pipelined_run_trains_and_resumes_to_the_sequential_metrics() {
    use auglocal_train::progress::Silent;
    use auglocal_train::{Run, TrainConfig};
    let _seed = seeded();
    let device = Default::default();
    let (seq_dir, pipe_dir) = (common::fresh("pipe-seq"), common::fresh("pipe-run"));
    let config = common::tiny_run();
    let mut sequential = Run::<B>::create(config.clone(), &seq_dir, &device).expect("run");
    let expected = sequential.train(&mut Silent).expect("trains");
    drop(sequential);

    let piped = TrainConfig {
        execution: auglocal_train::ExecutionSettings {
            strategy: Execution::Pipelined { stages: 3 },
            threads: Some(1),
            ..config.execution.clone()
        },
        ..config
    };
    {
        let mut run = Run::<B>::create(piped, &pipe_dir, &device).expect("run");
        assert!(matches!(
            run.strategy().expect("valid"),
            Strategy::Pipelined(p) if p.stages().len() == 3
        ));
        run.train_next(&mut Silent).expect("epoch 1");
        // Killed here: the next process resumes.
    }
    let mut run = Run::<B>::resume(&pipe_dir, &device).expect("resumes");
    run.train(&mut Silent).expect("epoch 2");
    let got = run.history();
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        if BOUND == 0.0 {
            assert_eq!(learned(g), learned(e), "epoch {}", e.epoch);
        } else {
            for (p, q) in g.loss.iter().zip(&e.loss) {
                assert!(
                    ((p - q) / q).abs() <= BOUND as f64,
                    "epoch {}: {p} vs {q}",
                    e.epoch
                );
            }
        }
        let busy = g
            .stage_busy
            .as_ref()
            .expect("pipelined runs record busy fractions");
        assert_eq!(busy.len(), 3);
        assert!(e.stage_busy.is_none());
    }
    for dir in [seq_dir, pipe_dir] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn pipelines_that_cannot_be_cut_are_refused() {
    use auglocal_train::TrainConfig;
    let dir = common::fresh("pipe-refused");
    for (rule, stages, needle) in [
        (Rule::Bp, 2, "nothing to pipeline"),
        (Rule::AugLocal, 50, "1 to 4 stages"),
    ] {
        let config = TrainConfig {
            local: auglocal_train::LocalSettings {
                rule,
                ..common::tiny_run().local
            },
            execution: auglocal_train::ExecutionSettings {
                strategy: Execution::Pipelined { stages },
                ..common::tiny_run().execution
            },
            ..common::tiny_run()
        };
        common::assert_refused(config, &dir, needle);
    }
}
