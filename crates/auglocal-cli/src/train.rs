//! `auglocal train` and `auglocal eval`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use auglocal_aux::{LossWeights, Rule};
use auglocal_data::DatasetName;
use auglocal_kernels::FastOpsAutodiff;
use auglocal_model::Arch;
use auglocal_train::bounded::{MAX_CONFIG_BYTES, read_bounded};
use auglocal_train::nodes::{Nodes, local_processes};
use auglocal_train::progress::{Console, Silent};
use auglocal_train::rundir::run_entries;
use auglocal_train::{Execution, Keep, Run, Schedule, Strategy, TrainConfig, evaluate_run};
use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::args::{Given, Pyramid, ignored_flags};
use crate::device::{BackendJob, Device, DeviceMemory, dispatch, dispatch_on};
use crate::exit::{self, usage};
use crate::format::{ratio, thousands};
use crate::output::OutputFile;

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
    #[arg(long, conflicts_with = "devices")]
    device: Option<Device>,

    /// Pipelined or data-parallel training: one device per stage or replica, comma-separated
    /// (cpu,cpu or cuda:0,cuda:1 or wgpu,wgpu), one backend for all; without --data-parallel
    /// it implies --pipeline with as many stages [default: all on --device].
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    devices: Option<Vec<Device>>,

    /// Run directory [default: runs/<arch>-<rule>-<dataset>, numbered if it holds a run].
    /// A directory that holds a run is refused unless --overwrite is given.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,

    /// Replace the run that --out holds (its config, plan, metrics and checkpoints; other
    /// files stay). Refused while another process trains it.
    #[arg(long, conflicts_with = "resume")]
    overwrite: bool,

    /// The primary network [default: resnet32].
    #[arg(long)]
    arch: Option<Arch>,
    /// Width multiplier of the network [default: 1].
    #[arg(long)]
    width: Option<f64>,
    /// Side of the square images the data pipeline makes and the network takes [default: the
    /// data set's for fixed-size data sets (32 for CIFAR and Fashion-MNIST, 96 for STL-10);
    /// else the network's (224 for the ImageNet ResNets and VGG)].
    #[arg(long)]
    image_size: Option<usize>,
    /// The learning rule: bp, greedy, dgl, predsim or auglocal [default: auglocal].
    #[arg(long)]
    rule: Option<Rule>,
    /// K, the number of gradient-isolated local modules [default: the number of units].
    #[arg(long, short = 'k')]
    k: Option<usize>,
    /// d, the depth of the auxiliary networks (auglocal) [default: 2].
    #[arg(long, short = 'd')]
    depth: Option<usize>,
    /// InfoPro's loss weights R1,C1,R2,C2 (infopro): reconstruction and classification at
    /// the first isolation point, then at the last [default: the reference's for the
    /// network].
    #[arg(long, value_name = "R1,C1,R2,C2")]
    infopro_weights: Option<LossWeights>,
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
    /// Warm-up epochs of the cosine schedule, fewer than --epochs [default: scaled to the run
    /// as the reference's 10 of 400 epochs: epochs / 40, at most 10; none below 40 epochs].
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
    /// Checkpoints kept besides the last: none (last), the best test accuracy's (best), or
    /// every epoch's (all); `auglocal export --epoch N / --best` reads them [default: last].
    #[arg(long, value_name = "WHICH")]
    keep_checkpoints: Option<KeepArg>,
    /// Train the modules as a pipeline of S stages, one thread (and device) each, balanced by
    /// the plan's cost: the same weights as training them one after the other, sooner
    /// (`auglocal plan --pipeline S` shows the stages) [default: no pipeline].
    #[arg(long, value_name = "S")]
    pipeline: Option<usize>,
    /// Data-parallel training: N replicas of the network, each on a thread (and device) of its
    /// own and a contiguous 1/N share of every batch (the batch stays --batch), gradients
    /// averaged across them before each module's step (see docs/scaling.md, "Data-parallel
    /// training") [default: one replica]. Not with --pipeline.
    #[arg(long, value_name = "N", conflicts_with = "pipeline")]
    data_parallel: Option<usize>,
    /// Threads of each pipeline stage's or replica's pool (of the one pool otherwise)
    /// [default: the cores divided among the stages or replicas].
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Under mpirun: a node that waits longer than this in one collective call (for a node
    /// that died, hangs or skipped it) ends the job with an error naming it (see
    /// docs/scaling.md, "Several machines") [default: 60].
    #[arg(long, value_name = "SECONDS")]
    node_timeout: Option<u64>,
}

/// `--node-timeout`'s default, in seconds.
const NODE_TIMEOUT: u64 = 60;

/// `--keep-checkpoints` on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KeepArg {
    /// The last checkpoint only.
    Last,
    /// The last and the best test accuracy's.
    Best,
    /// Every epoch's.
    All,
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
                let bytes = read_bounded(path, MAX_CONFIG_BYTES, "a run configuration")
                    .map_err(|e| usage(format!("--config: {e}")))?
                    .ok_or_else(|| usage(format!("--config {}: no such file", path.display())))?;
                serde_json::from_slice(&bytes).map_err(|e| {
                    usage(format!(
                        "--config {}: not a run configuration ({e}); the field names are those \
                         of a run's config.json",
                        path.display()
                    ))
                })?
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
        if self.image_size.is_some() {
            c.image_size = self.image_size;
        }
        if let Some(p) = self.pyramid {
            c.pyramid = p.0;
        }
        if self.infopro_weights.is_some() {
            c.infopro_weights = self.infopro_weights;
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
            (Some(ScheduleKind::Constant), None, _) => Schedule::Constant,
            (Some(ScheduleKind::Constant), Some(_), _) | (None, Some(_), Schedule::Constant) => {
                return Err(usage(
                    "--warmup applies to the cosine schedule; the constant schedule has none",
                ));
            }
            (Some(ScheduleKind::Cosine), w, Schedule::Cosine { warmup })
            | (None, w @ Some(_), Schedule::Cosine { warmup }) => Schedule::Cosine {
                warmup: w.or(warmup),
            },
            (Some(ScheduleKind::Cosine), w, Schedule::Constant) => Schedule::Cosine { warmup: w },
            (None, None, s) => s,
        };
        c.aux_accuracy |= self.aux_accuracy;
        if let Some(stages) = self.pipeline {
            c.execution = Execution::Pipelined { stages };
        }
        if let Some(replicas) = self.data_parallel {
            c.execution = Execution::DataParallel { replicas };
        }
        if self.threads.is_some() {
            c.threads = self.threads;
        }
        if let Some(devices) = &self.devices
            && c.execution.is_sequential()
            && devices.len() > 1
        {
            c.execution = Execution::Pipelined {
                stages: devices.len(),
            };
        }
        if let Some(keep) = self.keep_checkpoints {
            c.keep_checkpoints = match keep {
                KeepArg::Last => Keep::Last,
                KeepArg::Best => Keep::Best,
                KeepArg::All => Keep::All,
            };
        }
        Ok(c)
    }
}

/// The short demo `auglocal train` runs without flags: ResNet-32 with AugLocal (K = 16, d = 2,
/// pyramid 0.5) at quarter width, on 2,000 Fashion-MNIST images for 3 epochs (a few minutes on
/// two cores). The schedule is the reference's cosine without warm-up, whose last epoch runs at
/// lr 0 and so refreshes BatchNorm's running statistics before the final evaluation. It keeps
/// the best epoch's checkpoint besides the last.
pub fn demo_config() -> TrainConfig {
    TrainConfig {
        width: 0.25,
        train_limit: Some(2_000),
        test_limit: Some(1_000),
        epochs: 3,
        batch: 16,
        lr: 0.04,
        schedule: Schedule::Cosine { warmup: Some(0) },
        // `auglocal export runs/demo --best` then works.
        keep_checkpoints: Keep::Best,
        ..TrainConfig::default()
    }
}

/// `base`, or `base-2`, `base-3`, ... : the first that holds no run (never an existing one).
fn numbered(base: &str) -> PathBuf {
    (1..)
        .map(|i| match i {
            1 => PathBuf::from(base),
            i => PathBuf::from(format!("{base}-{i}")),
        })
        .find(|p| run_entries(p).is_empty())
        .unwrap_or_else(|| PathBuf::from(base))
}

/// Trains, or resumes, on the device `--device` names (or the stages' `--devices`); under
/// `mpirun`, as one node of the job (a node that fails ends its process at once, so that
/// `mpirun` stops the others).
pub fn run(args: &TrainArgs) -> Result<()> {
    let timeout = Duration::from_secs(args.node_timeout.unwrap_or(NODE_TIMEOUT));
    let nodes = crate::nodes::join(timeout)?;
    let job = TrainJob {
        args,
        nodes: nodes.clone(),
    };
    let result = match &args.devices {
        Some(devices) => dispatch_on(devices, job),
        None => dispatch(args.device.unwrap_or_default(), job),
    };
    match (result, nodes) {
        (Err(err), Some(nodes)) => crate::nodes::leave(nodes.as_ref(), &err, exit::status(&err)),
        (result, _) => result,
    }
}

struct TrainJob<'a> {
    args: &'a TrainArgs,
    nodes: Option<Arc<dyn Nodes>>,
}

impl BackendJob for TrainJob<'_> {
    type Output = ();

    fn run<B: FastOpsAutodiff>(self, device: B::Device, _: DeviceMemory) -> Result<()> {
        train_on::<B>(self.args, &device, None, self.nodes)
    }

    fn run_on<B: FastOpsAutodiff>(
        self,
        mut devices: Vec<B::Device>,
        _: DeviceMemory,
    ) -> Result<()> {
        let device = devices[0].clone();
        let placed = (self.args.devices.is_some()).then(|| std::mem::take(&mut devices));
        train_on::<B>(self.args, &device, placed, self.nodes)
    }
}

fn train_on<B: FastOpsAutodiff>(
    args: &TrainArgs,
    device: &B::Device,
    devices: Option<Vec<B::Device>>,
    nodes: Option<Arc<dyn Nodes>>,
) -> Result<()> {
    let run = if let Some(dir) = &args.resume {
        let only_resume = TrainArgs {
            resume: args.resume.clone(),
            device: args.device,
            devices: args.devices.clone(),
            pipeline: args.pipeline,
            data_parallel: args.data_parallel,
            threads: args.threads,
            node_timeout: args.node_timeout,
            ..TrainArgs::default()
        };
        if *args != only_resume {
            return Err(usage(
                "--resume takes no other flag but --device, --devices, --pipeline, \
                 --data-parallel, --threads and --node-timeout: the run continues with its own \
                 config.json",
            ));
        }
        let mut run = match &nodes {
            Some(nodes) => Run::<B>::resume_on_nodes(dir, device, Arc::clone(nodes))?,
            None => Run::<B>::resume(dir, device)?,
        };
        if args.pipeline.is_some() || args.data_parallel.is_some() || args.threads.is_some() {
            let execution = match (args.pipeline, args.data_parallel) {
                (Some(stages), _) => Execution::Pipelined { stages },
                (_, Some(replicas)) => Execution::DataParallel { replicas },
                (None, None) => run.config().execution,
            };
            let threads = args.threads.or(run.config().threads);
            run = run.with_execution(execution, threads)?;
        }
        if run.is_writer() {
            eprintln!(
                "Resuming {} after epoch {} of {}",
                dir.display(),
                run.completed(),
                run.config().epochs
            );
        }
        run
    } else {
        let demo = args.is_empty();
        let mut config = if demo { demo_config() } else { args.config()? };
        if let Some(nodes) = &nodes {
            config.execution = match config.execution {
                Execution::Sequential => Execution::DataParallel { replicas: 1 },
                Execution::Pipelined { .. } => {
                    return Err(usage(format!(
                        "{} nodes under mpirun train data-parallel replicas: give \
                         --data-parallel N, not --pipeline",
                        nodes.size()
                    )));
                }
                data_parallel => data_parallel,
            };
            // The machine's cores are shared by this job's processes on it (a launcher that
            // binds each process to its cores has already narrowed what this one sees).
            if config.threads.is_none() {
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                let replicas = config.execution.replicas().unwrap_or(1);
                config.threads = Some((cores / (replicas * local_processes())).max(1));
            }
        }
        let writer = nodes.as_ref().is_none_or(|n| n.rank() == 0);
        if demo && writer {
            eprintln!(
                "No flags given: running a short demo (see `auglocal train --help` to choose). \
                 Fashion-MNIST stands in for CIFAR-10 here."
            );
        }
        if let Some(note) = ignored_flags(
            config.rule,
            Given {
                k: args.k.is_some(),
                depth: args.depth.is_some(),
                pyramid: args.pyramid.is_some(),
                infopro_weights: args.infopro_weights.is_some(),
            },
        ) && writer
        {
            eprintln!("note: {note}");
        }
        let out = args.out.clone().unwrap_or_else(|| {
            numbered(&if demo {
                "runs/demo".to_string()
            } else {
                format!("runs/{}-{}-{}", config.arch, config.rule, config.dataset)
            })
        });
        if let Some(devices) = &devices
            && devices.len() != config.execution.devices()
        {
            return Err(usage(format!(
                "{} devices for {} stage(s) or replica(s): give one device per pipeline stage \
                 or data-parallel replica",
                devices.len(),
                config.execution.devices()
            )));
        }
        match (&nodes, args.overwrite) {
            (Some(nodes), overwrite) => {
                Run::<B>::create_on_nodes(config, &out, device, overwrite, Arc::clone(nodes))?
            }
            (None, true) => Run::<B>::overwrite(config, &out, device)?,
            (None, false) => Run::<B>::create(config, &out, device)?,
        }
    };
    let mut run = match devices {
        Some(devices) => run.with_devices(devices)?,
        None => run,
    };
    if !run.is_writer() {
        // Node 0 reports for the job.
        run.train(&mut Silent)?;
        return Ok(());
    }
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

fn describe<B: FastOpsAutodiff>(run: &Run<B>) {
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
            Schedule::Cosine { .. } => format!(
                "cosine, {} warm-up epochs",
                c.schedule.warmup_epochs(c.epochs)
            ),
        },
        c.momentum,
        c.weight_decay,
        c.seed,
        run.dir().display()
    );
    match run.strategy() {
        Ok(Strategy::Pipelined(p)) => eprintln!(
            "Pipeline: {}, {} thread(s) per stage",
            crate::plan::stages_line(plan, p.stages()),
            p.threads()
        ),
        Ok(Strategy::DataParallel(dp)) => match dp.nodes() {
            Some(nodes) => eprintln!(
                "Data-parallel over {} nodes (MPI): {} replica(s) on each, {} thread(s) each, a \
                 1/{} share of every batch per replica",
                nodes.size(),
                dp.replicas(),
                dp.threads(),
                dp.world()
            ),
            None => eprintln!(
                "Data-parallel: {} replicas, {} thread(s) each, a 1/{} share of every batch",
                dp.replicas(),
                dp.threads(),
                dp.replicas()
            ),
        },
        Ok(Strategy::Sequential { threads: Some(n) }) => eprintln!("Threads: {n}"),
        _ => {}
    }
}

/// Flags of `auglocal eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// The run directory (only read: eval never writes into it).
    run_dir: PathBuf,
    /// Where to evaluate: cpu, wgpu or cuda[:N] [default: cpu].
    #[arg(long, default_value = "cpu")]
    device: Device,
    /// Also report every aux head's test accuracy (always, for runs trained with
    /// --aux-accuracy).
    #[arg(long)]
    aux_accuracy: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Also write the JSON to this file (outside the run directory, which only `train`
    /// writes).
    #[arg(long, value_name = "FILE")]
    save_json: Option<PathBuf>,
    /// Replace the --save-json file if it exists (refused otherwise).
    #[arg(long)]
    overwrite: bool,
}

/// What `auglocal eval` reports.
#[derive(Debug, Serialize)]
struct EvalReport {
    run: PathBuf,
    checkpoint: PathBuf,
    epoch: usize,
    test_images: usize,
    test_accuracy: f64,
    aux_test_accuracy: Vec<f64>,
}

/// Evaluates a run's latest checkpoint on its test set.
pub fn eval(args: &EvalArgs) -> Result<()> {
    let save = args
        .save_json
        .as_deref()
        .map(|p| OutputFile::check(p, args.overwrite))
        .transpose()?;
    let report = dispatch(args.device, EvalJob(args))?;
    let json = serde_json::to_string_pretty(&report)?;
    if args.json {
        println!("{json}");
    } else {
        println!(
            "{}: epoch {}, test accuracy {:.2}% on {} images",
            args.run_dir.display(),
            report.epoch,
            100.0 * report.test_accuracy,
            thousands(report.test_images as u64)
        );
        for (k, a) in report.aux_test_accuracy.iter().enumerate() {
            println!("  aux head of module {k:2}: {:.2}%", 100.0 * a);
        }
    }
    if let Some(file) = save {
        file.write(json.as_bytes())?;
    }
    Ok(())
}

struct EvalJob<'a>(&'a EvalArgs);

impl BackendJob for EvalJob<'_> {
    type Output = EvalReport;

    fn run<B: FastOpsAutodiff>(self, device: B::Device, _: DeviceMemory) -> Result<EvalReport> {
        let args = self.0;
        let result = evaluate_run::<B>(&args.run_dir, &device, args.aux_accuracy)?;
        Ok(EvalReport {
            run: args.run_dir.clone(),
            checkpoint: result.checkpoint,
            epoch: result.epoch,
            test_images: result.evaluation.images,
            test_accuracy: result.evaluation.accuracy,
            aux_test_accuracy: result.evaluation.aux_accuracy,
        })
    }
}
