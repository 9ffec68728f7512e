//! Pipelined training equals sequential training: for every local rule and 2, 3 and one stage
//! per module, N pipelined steps leave the weights, BatchNorm statistics and per-module losses
//! of N sequential steps, bit for bit on the CPU backend. A stage fed the output of its
//! *updated* modules must break that (the test can fail); a slow stage must not.

mod common;

use auglocal_aux::{Plan, Rule, StagePlan};
use auglocal_train::pipeline::{Fault, Pipeline};
use auglocal_train::{StepStats, TrainError, Trainer, sgd_config};
use common::{B, Batch, batches, plan, seeded, tensors};

const STEPS: usize = 3;
const LR: f64 = 0.05;

fn fresh(plan: &Plan) -> Trainer<B> {
    Trainer::init(plan, &sgd_config(0.9, 5e-4), 7, &Default::default())
}

fn sequential(plan: &Plan, data: &[Batch]) -> (Trainer<B>, Vec<StepStats>) {
    let mut trainer = fresh(plan);
    let stats = data
        .iter()
        .map(|(x, t)| trainer.step(x.clone(), t.clone(), LR).expect("step"))
        .collect();
    (trainer, stats)
}

fn pipelined(plan: &Plan, data: &[Batch], pipeline: &Pipeline<B>) -> (Trainer<B>, Vec<StepStats>) {
    let mut trainer = fresh(plan);
    let mut stats = Vec::new();
    let timing = trainer
        .train_pipelined(
            data.iter().cloned().map(Ok),
            LR,
            pipeline,
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
    for (rule, k) in [(Rule::AugLocal, 6), (Rule::Dgl, 4), (Rule::Greedy, 4)] {
        let plan = plan(rule, k);
        let (reference, expected) = sequential(&plan, &data);
        let weights = tensors(reference.network());
        for stages in [2, 3, plan.num_modules()] {
            let (trainer, stats) = pipelined(&plan, &data, &pipeline(&plan, stages));
            assert_eq!(stats, expected, "{rule} with {stages} stages: losses");
            assert!(
                tensors(trainer.network()) == weights,
                "{rule} with {stages} stages: weights differ from sequential training"
            );
        }
    }
}

#[test]
fn feeding_the_updated_output_is_caught_and_a_slow_stage_changes_nothing() {
    let _seed = seeded();
    let data = batches(STEPS, 8);
    let plan = plan(Rule::AugLocal, 6);
    let (reference, expected) = sequential(&plan, &data);
    let weights = tensors(reference.network());

    let wrong = pipeline(&plan, 2).with_fault(Fault::FeedUpdated { stage: 0 });
    let (trainer, stats) = pipelined(&plan, &data, &wrong);
    assert_ne!(stats, expected, "the second stage saw other inputs");
    assert!(tensors(trainer.network()) != weights);

    let slow = pipeline(&plan, 3).with_fault(Fault::Delay {
        stage: 0,
        millis: 40,
    });
    let (trainer, stats) = pipelined(&plan, &data, &slow);
    assert_eq!(stats, expected);
    assert!(tensors(trainer.network()) == weights);
}

#[test]
fn a_step_that_fails_stops_the_pipeline_and_keeps_every_module() {
    let _seed = seeded();
    let data = batches(6, 8);
    let plan = plan(Rule::AugLocal, 6);
    let mut trainer = fresh(&plan);
    let mut seen = 0;
    let err = trainer
        .train_pipelined(
            data.iter().cloned().map(Ok),
            LR,
            &pipeline(&plan, 2),
            &mut |step, _| {
                seen += 1;
                if step == 1 {
                    Err(TrainError::Config("stop here".into()))
                } else {
                    Ok(())
                }
            },
        )
        .expect_err("stopped");
    assert!(err.to_string().contains("stop here"), "{err}");
    assert_eq!(seen, 2, "no step is reported after the failure");
    assert_eq!(trainer.network().modules.len(), plan.num_modules());
    // Still a working trainer.
    let (x, t) = &data[0];
    trainer
        .step(x.clone(), t.clone(), LR)
        .expect("a step after");
}

/// What must not change when the modules are pipelined: everything but the timings.
fn learned(m: &auglocal_train::EpochMetrics) -> impl PartialEq + std::fmt::Debug {
    (
        m.epoch,
        m.loss.clone(),
        m.train_accuracy,
        m.test_accuracy,
        m.aux_train_accuracy.clone(),
        m.aux_test_accuracy.clone(),
    )
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
        pipeline: Some(3),
        threads: Some(1),
        ..config
    };
    {
        let mut run = Run::<B>::create(piped, &pipe_dir, &device).expect("run");
        assert_eq!(
            run.pipeline().expect("valid").map(|p| p.stages().len()),
            Some(3)
        );
        run.train_next(&mut Silent).expect("epoch 1");
        // Killed here: the next process resumes.
    }
    let mut run = Run::<B>::resume(&pipe_dir, &device).expect("resumes");
    run.train(&mut Silent).expect("epoch 2");
    let got = run.history();
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(learned(g), learned(e), "epoch {}", e.epoch);
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
    use auglocal_train::{Run, TrainConfig};
    let device = Default::default();
    let dir = common::fresh("pipe-refused");
    for (rule, stages, needle) in [
        (Rule::Bp, 2, "nothing to pipeline"),
        (Rule::AugLocal, 50, "1 to 4 stages"),
    ] {
        let config = TrainConfig {
            rule,
            pipeline: Some(stages),
            ..common::tiny_run()
        };
        let err = Run::<B>::create(config, &dir, &device)
            .err()
            .expect("refused");
        assert!(err.to_string().contains(needle), "{err}");
        assert!(err.is_bad_input());
        assert!(!dir.join("config.json").exists(), "nothing written");
    }
}
