//! Helpers shared by the trainer's tests.

#![allow(dead_code)]

use std::sync::{Mutex, MutexGuard};

use std::path::PathBuf;

use auglocal_data::DatasetName;
use auglocal_model::{Arch, NetworkConfig};
use auglocal_plan::{LocalConfig, Plan, Rule};
use auglocal_train::{Schedule, TrainConfig};
use burn::backend::Autodiff;
use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Int, Tensor, TensorData};

/// The backend under test, with autodiff: the CPU one, or WGPU with `--features wgpu`.
#[cfg(not(feature = "wgpu"))]
pub type B = Autodiff<burn::backend::Flex>;
/// The backend under test, with autodiff: the CPU one, or WGPU with `--features wgpu`.
#[cfg(feature = "wgpu")]
pub type B = Autodiff<burn::backend::Wgpu>;

static SEEDED: Mutex<()> = Mutex::new(());

/// Burn's CPU backend has one random generator per process: tests that seed it and rely on
/// the draws hold this lock, and so does every test that draws from it at all (a network's
/// fresh weights): its draws, made between another test's seeding and that test's draws,
/// would change that test's weights.
pub fn seeded() -> MutexGuard<'static, ()> {
    SEEDED.lock().unwrap_or_else(|e| e.into_inner())
}

/// A run of seconds: quarter-width ResNet-20, AugLocal K = 6, 96 + 64 synthetic images,
/// 2 epochs of batch 16 at a constant lr 0.05, with the aux heads' accuracies.
pub fn tiny_run() -> TrainConfig {
    TrainConfig {
        network: auglocal_train::NetworkSettings {
            arch: Arch::ResNet20,
            width: 0.25,
            ..Default::default()
        },
        local: auglocal_train::LocalSettings {
            rule: Rule::AugLocal,
            k: Some(6),
            ..Default::default()
        },
        data: auglocal_train::DataSettings {
            dataset: DatasetName::Synthetic,
            train_limit: Some(96),
            test_limit: Some(64),
            ..Default::default()
        },
        epochs: 2,
        batch: 16,
        lr: 0.05,
        schedule: Schedule::Constant,
        aux_accuracy: true,
        ..TrainConfig::default()
    }
}

/// `data/<name>` (or `$AUGLOCAL_DATA_DIR/<name>`), fetched by scripts/fetch-data.sh; `None`
/// with a note when it is missing, a panic when `AUGLOCAL_REQUIRE_DATA=1` (CI).
pub fn real_data(name: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("AUGLOCAL_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data"))
        .join(name);
    if dir.is_dir() {
        return Some(dir);
    }
    let message = format!("{} is missing: run scripts/fetch-data.sh", dir.display());
    if std::env::var("AUGLOCAL_REQUIRE_DATA").is_ok_and(|v| v == "1") {
        panic!("{message} (AUGLOCAL_REQUIRE_DATA=1)");
    }
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED test on real data: {message} ***\n"
    );
    None
}

/// A path under the temporary folder, named for the test and this process, with nothing in
/// it.
pub fn fresh(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("auglocal-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A quarter-width ResNet-20 plan for 32x32 images.
pub fn plan(rule: Rule, k: usize) -> Plan {
    let network = NetworkConfig::new(Arch::ResNet20)
        .with_width_multiplier(0.25)
        .spec()
        .expect("valid network");
    Plan::new(&network, &LocalConfig::new(rule, k)).expect("valid plan")
}

/// Images and targets.
pub type Batch = (Tensor<B, 4>, Tensor<B, 1, Int>);

/// `n` deterministic batches of `batch` random images with labels 0..9.
pub fn batches(n: usize, batch: usize) -> Vec<Batch> {
    let device = Default::default();
    <B as Backend>::seed(&device, 1234);
    (0..n)
        .map(|i| {
            let images =
                Tensor::random([batch, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
            let labels: Vec<i64> = (0..batch).map(|j| ((i * 7 + j * 3) % 10) as i64).collect();
            (
                images,
                Tensor::from_data(TensorData::new(labels, [batch]), &device),
            )
        })
        .collect()
}

struct Collect(Vec<Vec<f32>>, bool);

impl<BB: Backend> ModuleVisitor<BB> for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<BB, D>>) {
        if self.1 && !param.is_require_grad() {
            return;
        }
        self.0.push(
            param
                .val()
                .into_data()
                .convert::<f32>()
                .to_vec()
                .expect("f32"),
        );
    }
}

/// Every float tensor of a module (parameters and BatchNorm statistics), in visit order.
pub fn tensors<BB: Backend, M: Module<BB>>(module: &M) -> Vec<Vec<f32>> {
    let mut c = Collect(Vec::new(), false);
    module.visit(&mut c);
    c.0
}

/// Every trainable tensor of a module (BatchNorm statistics left out), in visit order.
pub fn trainable<BB: Backend, M: Module<BB>>(module: &M) -> Vec<Vec<f32>> {
    let mut c = Collect(Vec::new(), true);
    module.visit(&mut c);
    c.0
}

/// Trains `data` as `strategy` says with an `on_step` that fails at step 1 (from 0): the run
/// stops with that error after exactly two reported steps, and the trainer keeps its
/// `modules` modules.
pub fn assert_a_failing_step_stops<U: auglocal_train::TrainUnit<B>>(
    trainer: &mut auglocal_train::Trainer<B, U>,
    data: &[Batch],
    strategy: &auglocal_train::Strategy<B>,
    modules: usize,
) {
    let mut seen = 0;
    let err = trainer
        .train_batches(
            data.iter().cloned().map(Ok),
            0.05,
            strategy,
            &mut |step, _| {
                seen += 1;
                if step == 1 {
                    Err(auglocal_train::TrainError::Config("stop here".into()))
                } else {
                    Ok(())
                }
            },
        )
        .expect_err("stopped");
    assert!(err.to_string().contains("stop here"), "{err}");
    assert_eq!(seen, 2, "no step is reported after the failure");
    assert_eq!(trainer.network().modules.len(), modules);
}

struct Trainable(usize);

impl ModuleVisitor<B> for Trainable {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.0 += param.is_require_grad() as usize;
    }
}

/// Number of trainable tensors of a module (BatchNorm statistics excluded).
pub fn trainable_tensors<M: Module<B>>(module: &M) -> usize {
    let mut c = Trainable(0);
    module.visit(&mut c);
    c.0
}

/// Largest absolute difference between two tensor lists of the same layout.
pub fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len(), "same number of tensors");
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            assert_eq!(x.len(), y.len(), "same tensor sizes");
            x.iter()
                .zip(y)
                .map(|(p, q)| (p - q).abs())
                .fold(0.0, f32::max)
        })
        .fold(0.0, f32::max)
}

/// Asserts that `network`'s modules hold exactly the trainable parameters `plan` counts
/// (backbone and aux nets).
pub fn assert_counts_match_plan<U: Module<B> + burn::module::ModuleDisplay>(
    network: &auglocal_train::LocalNetwork<B, U>,
    plan: &Plan,
    what: &str,
) {
    let counted: usize = network
        .modules
        .iter()
        .map(auglocal_model::nn::num_trainable_params)
        .sum();
    assert_eq!(
        counted as u64,
        plan.totals.backbone.params + plan.totals.aux.params,
        "{what}: the plan counts what was built"
    );
}

/// A deadline for a test that starts threads: if the guard is still alive after `seconds`,
/// the test process says so and aborts, so a deadlock fails in minutes instead of hanging.
pub fn deadline(what: &'static str, seconds: u64) -> Deadline {
    let (done, wait) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
            wait.recv_timeout(std::time::Duration::from_secs(seconds))
        {
            eprintln!("DEADLINE: {what} still running after {seconds} s: aborting");
            std::process::abort();
        }
    });
    Deadline(done)
}

/// Ends a [`deadline`] when dropped.
pub struct Deadline(std::sync::mpsc::Sender<()>);

/// What must not change when the steps execute another way: everything but the timings.
pub fn learned(m: &auglocal_train::EpochMetrics) -> impl PartialEq + std::fmt::Debug + use<> {
    (
        m.epoch,
        m.loss.clone(),
        m.train_accuracy,
        m.test_accuracy,
        m.aux_train_accuracy.clone(),
        m.aux_test_accuracy.clone(),
    )
}

/// Asserts that `config` is refused as bad input with a message holding `needle`, before
/// anything is written to `dir`.
pub fn assert_refused(config: TrainConfig, dir: &std::path::Path, needle: &str) {
    let err = auglocal_train::Run::<B>::create(config, dir, &Default::default())
        .err()
        .expect("refused");
    assert!(err.to_string().contains(needle), "{err}");
    assert!(err.is_bad_input());
    assert!(!dir.join("config.json").exists(), "nothing written");
}
