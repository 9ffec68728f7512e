//! `auglocal train` and `auglocal eval`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use auglocal_aux::Rule;
use auglocal_data::DatasetName;
use auglocal_model::Arch;
use auglocal_train::progress::Console;
use auglocal_train::{Run, Schedule, TrainConfig};
use burn::tensor::backend::AutodiffBackend;
use clap::{Args, ValueEnum};

use crate::args::Pyramid;
use crate::device::{BackendJob, Device, DeviceMemory, dispatch};
use crate::format::{ratio, thousands};

/// Flags of `auglocal train`. Each overrides the value of `--config FILE`, which overrides the
/// defaults shown.
#[derive(Args, Debug, Default, PartialEq)]
pub struct TrainArgs {
    /// Continue the run in this directory from its last complete epoch (no other flag).
    #[arg(long, value_name = "RUN_DIR", conflicts_with = "config")]
    resume: Option<PathBuf>,

    /// A JSON file with any of the run's settings (the names of config.json in a run
    /// directory).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Where to train: cpu, wgpu, or cuda[:N] (GPU backends need the matching cargo feature)
    /// [default: cpu].
    #[arg(long)]
    device: Option<Device>,

    /// Run directory [default: runs/<arch>-<rule>-<dataset>, numbered if it exists].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,

    /// The primary network [default: resnet32].
    #[arg(long)]
    arch: Option<Arch>,
    /// Width multiplier of the network [default: 1].
    #[arg(long)]
    width: Option<f64>,
    /// The learning rule: bp, greedy, dgl or auglocal [default: auglocal].
    #[arg(long)]
    rule: Option<Rule>,
    /// K, the number of gradient-isolated local modules [default: the number of units].
    #[arg(long, short = 'k')]
    k: Option<usize>,
    /// d, the depth of the auxiliary networks (auglocal) [default: 2].
    #[arg(long, short = 'd')]
    depth: Option<usize>,
    /// c, the pyramidal depth coefficient, or "none" [default: 0.5].
    #[arg(long, allow_negative_numbers = true)]
    pyramid: Option<Pyramid>,
    /// The data set (see `auglocal data --help`) [default: fashion-mnist].
    #[arg(long)]
    dataset: Option<DatasetName>,
    /// Folder holding the data set's files [default: the usual places].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Train on the first N training images only (quick runs).
    #[arg(long, value_name = "N")]
    train_limit: Option<usize>,
    /// Evaluate on the first N test images only.
    #[arg(long, value_name = "N")]
    test_limit: Option<usize>,
    /// Epochs [default: 10].
    #[arg(long)]
    epochs: Option<usize>,
    /// Images per batch [default: 128; the paper: 1024 on CIFAR-10 and SVHN, 128 on STL-10].
    #[arg(long)]
    batch: Option<usize>,
    /// Base learning rate [default: 0.1; the paper: 0.8 at batch 1024].
    #[arg(long, allow_negative_numbers = true)]
    lr: Option<f64>,
    /// Learning-rate schedule: cosine (with --warmup epochs of linear warm-up, the reference)
    /// or constant [default: cosine].
    #[arg(long)]
    schedule: Option<ScheduleKind>,
    /// Warm-up epochs of the cosine schedule [default: 10, as the reference].
    #[arg(long)]
    warmup: Option<usize>,
    /// SGD momentum (Nesterov) [default: 0.9].
    #[arg(long)]
    momentum: Option<f64>,
    /// Weight decay on every parameter [default: 1e-4].
    #[arg(long)]
    weight_decay: Option<f64>,
    /// Seed of the initialisation, shuffles and augmentations [default: 0].
    #[arg(long)]
    seed: Option<u64>,
    /// Data-loading threads [default: 2].
    #[arg(long)]
    workers: Option<usize>,
    /// Also measure every aux head's train and test accuracy each epoch.
    #[arg(long)]
    aux_accuracy: bool,
}

/// The schedule's name on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ScheduleKind {
    /// Cosine with linear warm-up (the reference).
    Cosine,
    /// Constant learning rate.
    Constant,
}

impl TrainArgs {
    /// No flag but perhaps `--device`: the demo.
    fn is_empty(&self) -> bool {
        *self
            == TrainArgs {
                device: self.device,
                ..TrainArgs::default()
            }
    }

    /// The configuration: defaults, then `--config`, then each flag given.
    fn config(&self) -> Result<TrainConfig> {
        let mut c = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                serde_json::from_str(&text)
                    .with_context(|| format!("parsing {}", path.display()))?
            }
            None => TrainConfig::default(),
        };
        macro_rules! set {
            ($($field:ident),*) => {$( if let Some(v) = &self.$field { c.$field = v.clone(); } )*};
        }
        set!(
            arch,
            width,
            rule,
            depth,
            dataset,
            epochs,
            batch,
            lr,
            momentum,
            weight_decay,
            seed,
            workers
        );
        if self.k.is_some() {
            c.k = self.k;
        }
        if let Some(p) = self.pyramid {
            c.pyramid = p.0;
        }
        if self.data_dir.is_some() {
            c.data_dir = self.data_dir.clone();
        }
        if self.train_limit.is_some() {
            c.train_limit = self.train_limit;
        }
        if self.test_limit.is_some() {
            c.test_limit = self.test_limit;
        }
        c.schedule = match (self.schedule, self.warmup, c.schedule) {
            (Some(ScheduleKind::Constant), _, _) => Schedule::Constant,
            (Some(ScheduleKind::Cosine), w, Schedule::Cosine { warmup })
            | (None, w @ Some(_), Schedule::Cosine { warmup }) => Schedule::Cosine {
                warmup: w.unwrap_or(warmup),
            },
            (Some(ScheduleKind::Cosine), w, Schedule::Constant) => Schedule::Cosine {
                warmup: w.unwrap_or(auglocal_train::WARMUP_EPOCHS),
            },
            (None, _, s) => s,
        };
        c.aux_accuracy |= self.aux_accuracy;
        Ok(c)
    }
}

/// The short demo `auglocal train` runs without flags: ResNet-32 with AugLocal (K = 16, d = 2,
/// pyramid 0.5) at quarter width, on 2,000 Fashion-MNIST images for 3 epochs (a few minutes on
/// two cores). The schedule is the reference's cosine without warm-up, whose last epoch runs at
/// lr 0 and so refreshes BatchNorm's running statistics before the final evaluation.
pub fn demo_config() -> TrainConfig {
    TrainConfig {
        width: 0.25,
        train_limit: Some(2_000),
        test_limit: Some(1_000),
        epochs: 3,
        batch: 16,
        lr: 0.04,
        schedule: Schedule::Cosine { warmup: 0 },
        ..TrainConfig::default()
    }
}

fn default_out(c: &TrainConfig) -> PathBuf {
    let base = format!("runs/{}-{}-{}", c.arch, c.rule, c.dataset);
    (1..)
        .map(|i| {
            PathBuf::from(if i == 1 {
                base.clone()
            } else {
                format!("{base}-{i}")
            })
        })
        .find(|p| !p.join("config.json").exists())
        .unwrap_or_else(|| PathBuf::from(base))
}

/// Trains, or resumes, on the device `--device` names.
pub fn run(args: &TrainArgs) -> Result<()> {
    dispatch(args.device.unwrap_or_default(), TrainJob(args))
}

struct TrainJob<'a>(&'a TrainArgs);

impl BackendJob for TrainJob<'_> {
    type Output = ();

    fn run<B: AutodiffBackend>(self, device: B::Device, _: DeviceMemory) -> Result<()> {
        train_on::<B>(self.0, &device)
    }
}

fn train_on<B: AutodiffBackend>(args: &TrainArgs, device: &B::Device) -> Result<()> {
    let mut run = if let Some(dir) = &args.resume {
        let only_resume = TrainArgs {
            resume: args.resume.clone(),
            device: args.device,
            ..TrainArgs::default()
        };
        if *args != only_resume {
            bail!(auglocal_train::TrainError::Config(
                "--resume takes no other flag but --device: the run continues with its own \
                 config.json"
                    .into()
            ));
        }
        let run = Run::<B>::resume(dir, device)?;
        eprintln!(
            "Resuming {} after epoch {} of {}",
            dir.display(),
            run.completed(),
            run.config().epochs
        );
        run
    } else {
        let demo = args.is_empty();
        let config = if demo { demo_config() } else { args.config()? };
        if demo {
            eprintln!(
                "No flags given: running a short demo (see `auglocal train --help` to choose). \
                 Fashion-MNIST stands in for CIFAR-10 here."
            );
        }
        let out = args.out.clone().unwrap_or_else(|| {
            if demo {
                PathBuf::from("runs/demo")
            } else {
                default_out(&config)
            }
        });
        Run::<B>::create(config, &out, device)?
    };
    describe(&run);
    let metrics = run.train(&mut Console::default())?;
    match metrics.last() {
        Some(m) => println!(
            "Done: test accuracy {:.2}% after {} epochs. Metrics: {}, checkpoint: {}",
            100.0 * m.test_accuracy,
            m.epoch,
            run.dir().join("metrics.jsonl").display(),
            run.dir().join("checkpoints").display()
        ),
        None => println!(
            "Nothing to do: {} already completed {} epochs.",
            run.dir().display(),
            run.completed()
        ),
    }
    Ok(())
}

fn describe<B: AutodiffBackend>(run: &Run<B>) {
    let c = run.config();
    let plan = run.plan();
    let net = &plan.network;
    let rule = match c.rule {
        Rule::Bp => "backprop (one module)".to_string(),
        Rule::AugLocal => format!(
            "auglocal, K = {}, d = {}, pyramid {}: {} gradient-isolated modules",
            plan.config.k,
            c.depth,
            c.pyramid.map_or("none".into(), |p| p.to_string()),
            plan.num_modules()
        ),
        rule => format!(
            "{rule}, K = {}: {} gradient-isolated modules",
            plan.config.k,
            plan.num_modules()
        ),
    };
    eprintln!(
        "Network: {} at width {} ({} params; aux nets {} more), {rule}",
        net.arch,
        c.width,
        thousands(plan.totals.backbone.params),
        ratio(plan.totals.aux_param_ratio)
    );
    let data = run.data();
    eprintln!(
        "Data: {} from {}: {} training and {} test images, {} classes",
        data.dataset,
        data.location
            .as_deref()
            .map_or("the generator".into(), |p: &Path| p.display().to_string()),
        thousands(data.train.len() as u64),
        thousands(data.test.len() as u64),
        data.num_classes
    );
    eprintln!(
        "Training: {} epochs of batch {}, lr {} ({}), SGD momentum {} (Nesterov), weight decay {}, seed {}; run directory {}",
        c.epochs,
        c.batch,
        c.lr,
        match c.schedule {
            Schedule::Constant => "constant".to_string(),
            Schedule::Cosine { warmup } => format!("cosine, {warmup} warm-up epochs"),
        },
        c.momentum,
        c.weight_decay,
        c.seed,
        run.dir().display()
    );
}

/// Flags of `auglocal eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// The run directory.
    run_dir: PathBuf,
    /// Where to evaluate: cpu, wgpu or cuda[:N] [default: cpu].
    #[arg(long, default_value = "cpu")]
    device: Device,
    /// Also report every aux head's test accuracy.
    #[arg(long)]
    aux_accuracy: bool,
}

/// Evaluates a run's latest checkpoint on its test set.
pub fn eval(args: &EvalArgs) -> Result<()> {
    dispatch(args.device, EvalJob(args))
}

struct EvalJob<'a>(&'a EvalArgs);

impl BackendJob for EvalJob<'_> {
    type Output = ();

    fn run<B: AutodiffBackend>(self, device: B::Device, _: DeviceMemory) -> Result<()> {
        eval_on::<B>(self.0, &device)
    }
}

fn eval_on<B: AutodiffBackend>(args: &EvalArgs, device: &B::Device) -> Result<()> {
    let run = Run::<B>::resume(&args.run_dir, device)?;
    if run.completed() == 0 {
        bail!("{} has no checkpoint yet", args.run_dir.display());
    }
    let eval = run.evaluate_with(args.aux_accuracy || run.config().aux_accuracy)?;
    println!(
        "{}: epoch {}, test accuracy {:.2}% on {} images",
        args.run_dir.display(),
        run.completed(),
        100.0 * eval.accuracy,
        thousands(eval.images as u64)
    );
    for (k, a) in eval.aux_accuracy.iter().enumerate() {
        println!("  aux head of module {k:2}: {:.2}%", 100.0 * a);
    }
    Ok(())
}
