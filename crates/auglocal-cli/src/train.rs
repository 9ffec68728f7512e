//! `auglocal train` and `auglocal eval`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use auglocal_kernels::FastOpsAutodiff;
use auglocal_plan::Rule;
use auglocal_train::bounded::{MAX_CONFIG_BYTES, read_bounded};
use auglocal_train::nodes::{Nodes, local_processes};
use auglocal_train::progress::{Console, Silent};
use auglocal_train::rundir::run_entries;
use auglocal_train::{Execution, Keep, Run, Schedule, Strategy, TrainConfig, evaluate_run};
use clap::Args;
use serde::Serialize;

use crate::args::{DataArgs, ExecutionArgs, LocalArgs, NetworkArgs, TrainingArgs};
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

    #[command(flatten, next_help_heading = "Network")]
    network: NetworkArgs,
    #[command(flatten, next_help_heading = "Local learning")]
    local: LocalArgs,
    #[command(flatten, next_help_heading = "Data")]
    data: DataArgs,
    #[command(flatten, next_help_heading = "Training")]
    training: TrainingArgs,
    #[command(flatten, next_help_heading = "Execution")]
    execution: ExecutionArgs,
    /// Under mpirun: a node that waits longer than this in one collective call (for a node
    /// that died, hangs or skipped it) ends the job with an error naming it (see
    /// docs/scaling.md, "Several machines") [default: 60].
    #[arg(long, value_name = "SECONDS")]
    node_timeout: Option<u64>,
}

/// `--node-timeout`'s default, in seconds.
const NODE_TIMEOUT: u64 = 60;

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
        self.network.apply(&mut c.network);
        self.local.apply(&mut c.local);
        self.data.apply(&mut c.data);
        self.training.apply(&mut c)?;
        self.execution.apply(&mut c.execution);
        if let Some(devices) = &self.devices
            && c.execution.strategy.is_sequential()
            && devices.len() > 1
        {
            c.execution.strategy = Execution::Pipelined {
                stages: devices.len(),
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
        network: auglocal_train::NetworkSettings {
            width: 0.25,
            ..Default::default()
        },
        data: auglocal_train::DataSettings {
            train_limit: Some(2_000),
            test_limit: Some(1_000),
            ..Default::default()
        },
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
            execution: args.execution.clone(),
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
        if args.execution.any() {
            let mut execution = run.config().execution.clone();
            args.execution.apply(&mut execution);
            run = run.with_execution(execution.strategy, execution.threads)?;
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
            config.execution.strategy = match config.execution.strategy {
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
            if config.execution.threads.is_none() {
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                let replicas = config.execution.strategy.replicas().unwrap_or(1);
                config.execution.threads = Some((cores / (replicas * local_processes())).max(1));
            }
        }
        let writer = nodes.as_ref().is_none_or(|n| n.rank() == 0);
        if demo && writer {
            eprintln!(
                "No flags given: running a short demo (see `auglocal train --help` to choose). \
                 Fashion-MNIST stands in for CIFAR-10 here."
            );
        }
        if let Some(note) = args.local.note(config.local.rule)
            && writer
        {
            eprintln!("note: {note}");
        }
        let out = args.out.clone().unwrap_or_else(|| {
            numbered(&if demo {
                "runs/demo".to_string()
            } else {
                format!(
                    "runs/{}-{}-{}",
                    config.network.arch, config.local.rule, config.data.dataset
                )
            })
        });
        if let Some(devices) = &devices
            && devices.len() != config.execution.strategy.devices()
        {
            return Err(usage(format!(
                "{} devices for {} stage(s) or replica(s): give one device per pipeline stage \
                 or data-parallel replica",
                devices.len(),
                config.execution.strategy.devices()
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
    let rule = match c.local.rule {
        Rule::Bp => "backprop (one module)".to_string(),
        Rule::AugLocal => format!(
            "auglocal, K = {}, d = {}, pyramid {}: {} gradient-isolated modules",
            plan.config.k,
            c.local.depth,
            c.local.pyramid.map_or("none".into(), |p| p.to_string()),
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
        c.network.width,
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
        c.optimizer.momentum,
        c.optimizer.weight_decay,
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
