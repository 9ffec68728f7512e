//! `auglocal bench`: speed and peak training memory of each rule, with ratios to backprop.
//!
//! Each rule is measured in a child process of its own (this binary with `--measure`, the
//! settings of the measurement in the sections of a run's `config.json`), so no
//! rule's allocations, allocator caches or RSS high-water mark can pollute another's. Every
//! rule trains on the same batches: synthetic images of the network's size (32x32 for the
//! CIFAR ResNets, 224x224 for the ImageNet families, or `--image-size`), identical across rules
//! and runs. With `--nodes M`, a rule is also measured data-parallel over M processes: the
//! child is `mpirun -np M` of this binary.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use auglocal_data::{ImageBatcher, ImageSource, Normalize, Synthetic};
use auglocal_kernels::FastOpsAutodiff;
use auglocal_kernels::Kernels;
use auglocal_model::Arch;
use auglocal_plan::{Plan, Rule, StagePlan};
use auglocal_train::data_parallel::DataParallel;
use auglocal_train::footprint;
use auglocal_train::memory::Meter;
use auglocal_train::nodes::Nodes;
use auglocal_train::pipeline::Pipeline;
use auglocal_train::{Execution, StepStats, Strategy, TrainError, Trainer, sgd_config};
use auglocal_train::{ExecutionSettings, LocalSettings, MAX_BATCH, NetworkSettings};
use burn::data::dataloader::batcher::Batcher;
use clap::Args;
use serde::{Deserialize, Serialize};

use crate::args::{ModuleArgs, NetworkArgs};
use crate::device::{BackendJob, Device, DeviceMemory, dispatch};
use crate::exit::usage;
use crate::format::mib;
use crate::output::OutputFile;
use crate::plot;

/// Most measured steps per rule.
const MAX_STEPS: usize = 10_000;
/// Most warm-up steps per rule.
const MAX_WARMUP: usize = 1_000;

/// Flags of `auglocal bench`.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    #[command(flatten)]
    network: NetworkArgs,
    /// Classes of the synthetic images and of the network's heads [default: the family's: 10
    /// for the CIFAR-size ResNets, 1000 for the ImageNet ResNets and VGG].
    #[arg(long)]
    classes: Option<usize>,
    /// Rules to measure, comma-separated; ratios are taken to bp when it is among them.
    #[arg(long, default_value = "bp,greedy,auglocal", value_delimiter = ',')]
    rules: Vec<Rule>,
    #[command(flatten)]
    modules: ModuleArgs,
    /// Images per batch.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Measured steps per rule (images/s is their median).
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// Unmeasured steps first (allocator and optimiser state warm up).
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Where to run: cpu, wgpu or cuda[:N].
    #[arg(long, default_value = "cpu")]
    device: Device,
    /// CPU kernels (convolution and BatchNorm) to measure each rule with, comma-separated: fast
    /// (auglocal's) and/or burn (Burn 0.21's own); ratios to bp are taken within each
    /// (`--conv`, its earlier name, works too).
    #[arg(long, alias = "conv", default_value = "fast", value_delimiter = ',')]
    kernels: Vec<Kernels>,
    /// Threads of each measurement's pool [default: rayon's, RAYON_NUM_THREADS or one per core];
    /// with --pipeline, of each stage's pool [default: the cores divided among the stages].
    #[arg(long)]
    threads: Option<usize>,
    /// Also measure every local rule pipelined in S stages (`train --pipeline S`), next to its
    /// sequential row: images/s over the measured steps' wall time, the speed-up, each stage's
    /// busy fraction, peak memory.
    #[arg(long, value_name = "S")]
    pipeline: Option<usize>,
    /// Also measure every rule with N data-parallel replicas (`train --data-parallel N`), each
    /// on a pool of --threads threads, next to its sequential row: images/s over the measured
    /// steps' wall time, the speed-up, the all-reduce's time per step, peak memory.
    #[arg(long, value_name = "N")]
    data_parallel: Option<usize>,
    /// Also measure every rule data-parallel over M processes (MPI nodes, a binary built with
    /// `--features mpi`), each with --data-parallel replicas (default 1) of --threads threads:
    /// the child is `mpirun -np M [--mpirun-args] auglocal bench ...`. Rows show the speed-up
    /// over one process and the all-reduce's time per step.
    #[arg(long, value_name = "M")]
    nodes: Option<usize>,
    /// Extra arguments of mpirun for --nodes, split at spaces (the transport, say: `--mca btl
    /// self,tcp --mca btl_tcp_if_include lo`).
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    mpirun_args: Option<String>,
    /// Print JSON instead of a Markdown table.
    #[arg(long)]
    json: bool,
    /// Also write the JSON report to this file.
    #[arg(long, value_name = "FILE")]
    save_json: Option<PathBuf>,
    /// Also draw a bar chart of memory and speed per rule into this PNG file.
    #[arg(long, value_name = "FILE.png")]
    plot: Option<PathBuf>,
    /// Replace output files that exist (refused otherwise).
    #[arg(long)]
    overwrite: bool,
    /// Make this measurement (JSON) in this process and print its result as JSON (the
    /// parent process hands each measurement to a child).
    #[arg(long, hide = true, value_name = "JSON", conflicts_with = "rules")]
    measure: Option<String>,
}

impl BenchArgs {
    /// The classes measured: the flag's, else the family's.
    fn classes(&self) -> usize {
        self.classes
            .unwrap_or_else(|| self.network.settings().arch.default_classes())
    }
}

/// One measurement, as the parent hands it to the child process that makes it
/// (`--measure`): the run's settings, in the sections of a run's `config.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Measurement {
    /// The network (its image size set).
    network: NetworkSettings,
    /// Classes of the images and of the heads.
    classes: usize,
    /// The rule and its modules.
    local: LocalSettings,
    /// Images per batch.
    batch: usize,
    /// Measured steps.
    steps: usize,
    /// Unmeasured steps first.
    warmup: usize,
    /// Where to run.
    device: String,
    /// The CPU kernels.
    conv: String,
    /// How the steps run: sequentially, pipelined or data-parallel, on how many threads
    /// and processes.
    execution: ExecutionSettings,
}

impl Measurement {
    /// The side of the images.
    fn image_size(&self) -> usize {
        self.network
            .image_size
            .unwrap_or_else(|| self.network.arch.default_image_size())
    }

    /// The plan measured.
    fn plan(&self) -> Result<Plan> {
        let size = self.image_size();
        let network = self.network.config(self.classes, [3, size, size]).spec()?;
        Ok(Plan::new(&network, &self.local.config(&network))?)
    }
}

/// One rule's measurement.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RuleResult {
    /// The rule.
    pub rule: Rule,
    /// The CPU kernels (convolution, BatchNorm): `fast` or `burn` (see `AUGLOCAL_KERNELS`).
    #[serde(default = "fast")]
    pub conv: String,
    /// K as planned.
    pub k: usize,
    /// Gradient-isolated modules.
    pub modules: usize,
    /// Seconds of each measured step.
    pub step_seconds: Vec<f64>,
    /// Batch size over the median step time.
    pub images_per_second: f64,
    /// Peak live heap bytes over warm-up and measured steps (the counting allocator).
    pub peak_heap_bytes: Option<u64>,
    /// Resident-set high-water mark over the same steps.
    pub peak_rss_bytes: Option<u64>,
    /// GPU backends: bytes CubeCL's memory pools reserved on the device after the steps, the
    /// high-water mark of what they needed (pools keep their reservations; padding included).
    /// `None` on the CPU backend.
    #[serde(default)]
    pub device_memory_bytes: Option<u64>,
    /// Pipelined: the number of stages (`None`: the modules one after the other).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<usize>,
    /// Pipelined: threads of each stage's pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage_threads: Option<usize>,
    /// Pipelined: each stage's time computing over the measured steps' wall time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage_busy: Option<Vec<f64>>,
    /// Pipelined: each stage's predicted busy fraction (its share of the plan's cost).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_busy: Option<Vec<f64>>,
    /// Data-parallel: the number of replicas (`None`: one trainer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_parallel: Option<usize>,
    /// Data-parallel: the replicas' mean time in the gradients' all-reduce per step, waiting
    /// for the slower replica included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reduce_seconds_per_step: Option<f64>,
    /// Data-parallel over processes: the number of nodes (MPI processes), each running
    /// `data_parallel` replicas; node 0's measurement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<usize>,
    /// With `nodes`: the mpirun arguments given (the transport).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mpirun_args: Option<String>,
}

impl RuleResult {
    /// Whether the modules ran one after the other in one trainer (neither pipelined nor
    /// replicated).
    pub fn is_sequential(&self) -> bool {
        self.pipeline.is_none() && self.data_parallel.is_none()
    }
}

/// The whole benchmark.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BenchReport {
    /// Network.
    pub arch: Arch,
    /// Width multiplier.
    pub width: f64,
    /// Side of the images.
    #[serde(default = "cifar_size")]
    pub image_size: usize,
    /// Classes.
    #[serde(default = "ten")]
    pub classes: usize,
    /// Batch size.
    pub batch: usize,
    /// Measured steps per rule.
    pub steps: usize,
    /// Warm-up steps per rule.
    pub warmup: usize,
    /// Device.
    pub device: String,
    /// One entry per rule, in the order asked.
    pub results: Vec<RuleResult>,
    /// Each rule's value over bp's (`images_per_second`, `peak_heap`, `peak_rss`), when bp
    /// was measured.
    pub ratios_to_bp: Vec<Ratios>,
    /// Each pipelined row over the same rule's sequential row.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pipeline_speedups: Vec<PipelineSpeedup>,
    /// Each data-parallel row over the same rule's sequential row.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data_parallel_speedups: Vec<DataParallelSpeedup>,
}

/// A data-parallel measurement over the same rule's sequential one, from the same run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DataParallelSpeedup {
    /// The rule.
    pub rule: Rule,
    /// The CPU kernels of both.
    pub conv: String,
    /// Replicas (in each process).
    pub replicas: usize,
    /// Processes (MPI nodes), if several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<usize>,
    /// Images/s over the sequential row's.
    pub images_per_second: f64,
    /// Peak heap over the sequential row's.
    pub peak_heap: Option<f64>,
}

/// A pipelined measurement over the same rule's sequential one, from the same run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PipelineSpeedup {
    /// The rule.
    pub rule: Rule,
    /// The CPU kernels of both.
    pub conv: String,
    /// Stages.
    pub stages: usize,
    /// Images/s over the sequential row's.
    pub images_per_second: f64,
    /// Peak heap over the sequential row's.
    pub peak_heap: Option<f64>,
}

/// A rule's measurements over bp's with the same convolution kernels, from the same run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ratios {
    /// The rule.
    pub rule: Rule,
    /// The CPU convolution kernels of both.
    #[serde(default = "fast")]
    pub conv: String,
    /// Images/s over bp's.
    pub images_per_second: f64,
    /// Peak heap over bp's.
    pub peak_heap: Option<f64>,
    /// Peak RSS over bp's.
    pub peak_rss: Option<f64>,
    /// Device memory over bp's (GPU backends).
    #[serde(default)]
    pub device_memory: Option<f64>,
}

fn cifar_size() -> usize {
    32
}

fn ten() -> usize {
    10
}

fn fast() -> String {
    Kernels::Fast.name().to_string()
}

/// Refuses steps, warm-up steps or a batch out of their bounds.
fn check_sizes(steps: usize, warmup: usize, batch: usize) -> Result<()> {
    for (flag, value, range) in [
        ("--steps", steps, 1..=MAX_STEPS),
        ("--warmup", warmup, 0..=MAX_WARMUP),
        ("--batch", batch, 1..=MAX_BATCH),
    ] {
        if !range.contains(&value) {
            return Err(usage(format!(
                "{flag} must be in {}..={}, got {value}",
                range.start(),
                range.end()
            )));
        }
    }
    Ok(())
}

/// Runs the benchmark (or, with `--measure`, one measurement of it).
pub fn run(args: &BenchArgs) -> Result<()> {
    if let Some(json) = &args.measure {
        let measurement: Measurement =
            serde_json::from_str(json).map_err(|e| usage(format!("--measure: {e}")))?;
        return measure_here(&measurement);
    }
    check_sizes(args.steps, args.warmup, args.batch)?;
    if args.rules.is_empty() {
        return Err(usage("--rules names no rule"));
    }
    if args.kernels.is_empty() {
        return Err(usage("--kernels names none"));
    }
    if args.threads == Some(0) {
        return Err(usage("--threads must be at least 1"));
    }
    if let Some(replicas) = args.data_parallel {
        let max = auglocal_train::data_parallel::MAX_REPLICAS;
        if !(1..=max).contains(&replicas) || args.batch < replicas {
            return Err(usage(format!(
                "--data-parallel must be in 1..={max} and at most --batch ({}), got {replicas}",
                args.batch
            )));
        }
    }
    if let Some(nodes) = args.nodes {
        let world = nodes.saturating_mul(args.data_parallel.unwrap_or(1));
        if !(1..=auglocal_train::MAX_NODES).contains(&nodes) || args.batch < world {
            return Err(usage(format!(
                "--nodes must be in 1..={} and --nodes x --data-parallel ({world}) at most \
                 --batch ({})",
                auglocal_train::MAX_NODES,
                args.batch
            )));
        }
    }
    if args.mpirun_args.is_some() && args.nodes.is_none() {
        return Err(usage("--mpirun-args applies to --nodes"));
    }
    // Check everything before any measurement: the backend, every plan and its memory, the
    // output paths.
    crate::device::check_compiled(args.device)?;
    for &rule in &args.rules {
        let plan = measurement(args, rule, Kernels::Fast, Execution::Sequential, None).plan()?;
        footprint::check(&plan, args.batch)?;
        if let Some(stages) = args.pipeline
            && rule != Rule::Bp
        {
            StagePlan::balance(&plan, stages)?;
        }
    }
    let save_json = args
        .save_json
        .as_deref()
        .map(|p| OutputFile::check(p, args.overwrite))
        .transpose()?;
    let chart = args
        .plot
        .as_deref()
        .map(|p| OutputFile::check(p, args.overwrite))
        .transpose()?;
    let mut results = Vec::new();
    for &rule in &args.rules {
        for &conv in &args.kernels {
            eprintln!(
                "measuring {rule}, {} convolutions ({} + {} steps of batch {})...",
                conv.name(),
                args.warmup,
                args.steps,
                args.batch
            );
            results.push(child(args, rule, conv, Execution::Sequential)?);
            if let Some(stages) = args.pipeline
                && rule != Rule::Bp
            {
                eprintln!("measuring {rule} pipelined in {stages} stages...");
                results.push(child(args, rule, conv, Execution::Pipelined { stages })?);
            }
            if let Some(replicas) = args.data_parallel {
                eprintln!("measuring {rule} with {replicas} data-parallel replicas...");
                let execution = Execution::DataParallel { replicas };
                results.push(child(args, rule, conv, execution)?);
            }
            if let Some(nodes) = args.nodes {
                let replicas = args.data_parallel.unwrap_or(1);
                eprintln!(
                    "measuring {rule} data-parallel over {nodes} processes (mpirun), {replicas} \
                     replica(s) each..."
                );
                let execution = Execution::DataParallel { replicas };
                results.push(child_on_nodes(args, rule, conv, execution, nodes)?);
            }
        }
    }
    let report = report(args, results);
    let json = serde_json::to_string_pretty(&report)?;
    // The table first: a save that fails cannot lose the measurement.
    if args.json {
        println!("{json}");
    } else {
        print!("{}", markdown(&report));
    }
    if let Some(file) = save_json {
        file.write(json.as_bytes())?;
    }
    if let Some(file) = chart {
        plot::bench_chart(&chart_title(&report), &chart_bars(&report), file.path())
            .with_context(|| format!("drawing {}", file.path().display()))?;
        eprintln!("chart written to {}", file.path().display());
    }
    Ok(())
}

/// The measurement of `rule` with `conv` kernels, executed as `execution` (over `nodes`
/// processes, if given).
fn measurement(
    args: &BenchArgs,
    rule: Rule,
    conv: Kernels,
    execution: Execution,
    nodes: Option<usize>,
) -> Measurement {
    let network = args.network.settings();
    let mut local = LocalSettings {
        rule,
        ..LocalSettings::default()
    };
    args.modules.apply(&mut local);
    Measurement {
        classes: args.classes(),
        network,
        local,
        batch: args.batch,
        steps: args.steps,
        warmup: args.warmup,
        device: args.device.to_string(),
        conv: conv.name().to_string(),
        execution: ExecutionSettings {
            strategy: execution,
            threads: args.threads,
            nodes,
        },
    }
}

/// Makes `measurement` in this process (with the other processes of its MPI job, if it
/// names nodes) and prints its result as JSON (node 0's).
fn measure_here(measurement: &Measurement) -> Result<()> {
    check_sizes(measurement.steps, measurement.warmup, measurement.batch)?;
    let nodes = crate::nodes::join(std::time::Duration::from_secs(60))?;
    if let Some(nodes) = &nodes
        && Some(nodes.size()) != measurement.execution.nodes
    {
        let err = usage(format!(
            "this MPI job has {} processes, but the measurement says {:?}",
            nodes.size(),
            measurement.execution.nodes
        ));
        crate::nodes::leave(nodes.as_ref(), &err, crate::exit::status(&err));
    }
    match single(measurement, nodes.clone()) {
        Ok(result) => {
            // Node 0 reports for the job.
            if nodes.as_ref().is_none_or(|n| n.rank() == 0) {
                println!("{}", serde_json::to_string(&result)?);
            }
            Ok(())
        }
        Err(err) => match &nodes {
            Some(nodes) => crate::nodes::leave(nodes.as_ref(), &err, crate::exit::status(&err)),
            None => Err(err),
        },
    }
}

/// Measures `measurement` in this process (on `nodes` with them, if given).
fn single(measurement: &Measurement, nodes: Option<Arc<dyn Nodes>>) -> Result<RuleResult> {
    let device: Device = measurement
        .device
        .parse()
        .map_err(|e| usage(format!("--measure: {e}")))?;
    let conv: Kernels = measurement
        .conv
        .parse()
        .map_err(|e| usage(format!("--measure: {e}")))?;
    auglocal_kernels::set_kernels(conv);
    let single = Single {
        measurement,
        conv,
        nodes,
    };
    let result = match measurement.execution.threads {
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .context("starting the thread pool")?
            .install(|| dispatch(device, single))?,
        None => dispatch(device, single)?,
    };
    Ok(result)
}

/// Runs this binary for the measurement of one rule and reads its JSON.
fn child(args: &BenchArgs, rule: Rule, conv: Kernels, execution: Execution) -> Result<RuleResult> {
    let exe = std::env::current_exe().context("locating the auglocal binary")?;
    measure(Command::new(exe), args, rule, conv, execution, None)
}

/// Runs `mpirun -np NODES` of this binary for the measurement of one rule and reads node
/// 0's JSON.
fn child_on_nodes(
    args: &BenchArgs,
    rule: Rule,
    conv: Kernels,
    execution: Execution,
    nodes: usize,
) -> Result<RuleResult> {
    let exe = std::env::current_exe().context("locating the auglocal binary")?;
    let mut cmd = Command::new("mpirun");
    cmd.args(["-np", &nodes.to_string()]);
    if let Some(extra) = &args.mpirun_args {
        cmd.args(extra.split_whitespace());
    }
    cmd.arg(exe);
    let mut result = measure(cmd, args, rule, conv, execution, Some(nodes))?;
    result.mpirun_args = args.mpirun_args.clone();
    Ok(result)
}

/// Runs `cmd` (this binary, or `mpirun` of it for `nodes`) for the measurement of one rule
/// and reads its JSON.
fn measure(
    mut cmd: Command,
    args: &BenchArgs,
    rule: Rule,
    conv: Kernels,
    execution: Execution,
    nodes: Option<usize>,
) -> Result<RuleResult> {
    let measurement = measurement(args, rule, conv, execution, nodes);
    cmd.args(["bench", "--measure", &serde_json::to_string(&measurement)?]);
    let out = cmd.output().context("starting the measurement process")?;
    if !out.status.success() {
        bail!(
            "measuring {rule} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    serde_json::from_slice(&out.stdout)
        .with_context(|| format!("reading the measurement of {rule}"))
}

struct Single<'a> {
    measurement: &'a Measurement,
    conv: Kernels,
    /// The other processes of an MPI job that measure with this one.
    nodes: Option<Arc<dyn Nodes>>,
}

impl BackendJob for Single<'_> {
    type Output = RuleResult;

    fn run<B: FastOpsAutodiff>(
        self,
        device: B::Device,
        memory: DeviceMemory,
    ) -> Result<RuleResult> {
        let args = self.measurement;
        let plan = args.plan()?;
        let mut trainer = Trainer::<B>::init(&plan, &sgd_config(0.9, 1e-4), 0, &device);
        // Bounded by `run`: at most 65,536 x 11,000 images, generated one at a time.
        let [_, size, _] = plan.network.input_shape();
        let images = Synthetic::new(
            args.batch * (args.warmup + args.steps),
            args.classes,
            size,
            7,
        );
        let batcher = ImageBatcher {
            normalize: Normalize::HALF,
        };
        // Every step's images are drawn first (u8, a few MiB), so that drawing them takes no
        // core from the measured steps; batching them (to floats) happens per step.
        let drawn = (0..args.batch * (args.warmup + args.steps))
            .map(|i| images.load(i))
            .collect::<Result<Vec<_>, _>>()?;
        let batch = |step: usize| -> Result<_, TrainError> {
            let samples = drawn[step * args.batch..(step + 1) * args.batch].to_vec();
            let batch = Batcher::<B, _, _>::batch(&batcher, samples, &device);
            Ok((batch.images, batch.targets))
        };
        let meter = Meter::start();
        let mut step_seconds = Vec::with_capacity(args.steps);
        let mut pipelined = None;
        let mut reduce_seconds_per_step = None;
        let mut replica_threads = None;
        let threads = args.execution.threads;
        let strategy = match (
            args.execution.strategy.stages(),
            args.execution.strategy.replicas(),
        ) {
            (Some(stages), _) => {
                let pipeline = Pipeline::new(StagePlan::balance(&plan, stages)?, &device);
                Some(Strategy::Pipelined(match threads {
                    Some(n) => pipeline.with_threads(n),
                    None => pipeline,
                }))
            }
            (None, Some(replicas)) => {
                let dp = DataParallel::new(replicas, &device)?;
                let dp = match threads {
                    Some(n) => dp.with_threads(n),
                    None => dp,
                };
                Some(Strategy::DataParallel(match &self.nodes {
                    Some(nodes) => dp.with_nodes(Arc::clone(nodes)),
                    None => dp,
                }))
            }
            (None, None) => None,
        };
        let images_per_second = match &strategy {
            None => {
                for step in 0..args.warmup + args.steps {
                    let (x, targets) = batch(step)?;
                    let start = Instant::now();
                    // The step reads every module's loss, so it returns once the device is done.
                    trainer.step(x, targets, 0.05)?;
                    if step >= args.warmup {
                        step_seconds.push(start.elapsed().as_secs_f64());
                    }
                }
                let mut sorted = step_seconds.clone();
                sorted.sort_by(f64::total_cmp);
                args.batch as f64 / sorted[sorted.len() / 2]
            }
            Some(strategy) => {
                let mut ok = |_: usize, _: &StepStats| Ok(());
                trainer.train_batches((0..args.warmup).map(batch), 0.05, strategy, &mut ok)?;
                // The measured steps in one run of the stages or replicas: their wall time,
                // a pipeline's filling and draining included.
                let timing = trainer.train_batches(
                    (args.warmup..args.warmup + args.steps).map(batch),
                    0.05,
                    strategy,
                    &mut ok,
                )?;
                step_seconds.push(timing.wall_seconds);
                match strategy {
                    Strategy::Pipelined(p) => {
                        pipelined = Some((p.clone(), timing.busy_fractions()))
                    }
                    Strategy::DataParallel(dp) => {
                        replica_threads = Some(dp.threads());
                        reduce_seconds_per_step = Some(timing.reduce_seconds_per_step());
                    }
                    Strategy::Sequential { .. } => {}
                }
                (args.batch * args.steps) as f64 / timing.wall_seconds
            }
        };
        let peak = meter.peak();
        let device_memory_bytes = memory();
        Ok(RuleResult {
            rule: args.local.rule,
            conv: self.conv.name().to_string(),
            k: plan.config.k,
            modules: plan.num_modules(),
            step_seconds,
            images_per_second,
            peak_heap_bytes: peak.heap_bytes,
            peak_rss_bytes: peak.rss_bytes,
            device_memory_bytes,
            pipeline: args.execution.strategy.stages(),
            stage_threads: pipelined
                .as_ref()
                .map(|(p, _)| p.threads())
                .or(replica_threads),
            predicted_busy: pipelined.as_ref().map(|(p, _)| p.stages().predicted_busy()),
            stage_busy: pipelined.map(|(_, busy)| busy),
            data_parallel: args.execution.strategy.replicas(),
            reduce_seconds_per_step,
            nodes: self.nodes.as_ref().map(|n| n.size()),
            mpirun_args: None,
        })
    }
}

fn report(args: &BenchArgs, results: Vec<RuleResult>) -> BenchReport {
    let div = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) if b > 0 => Some(a as f64 / b as f64),
        _ => None,
    };
    let ratios_to_bp = results
        .iter()
        .filter(|r| r.is_sequential())
        .filter_map(|r| {
            let bp = results
                .iter()
                .find(|b| b.rule == Rule::Bp && b.conv == r.conv && b.is_sequential())?;
            Some(Ratios {
                rule: r.rule,
                conv: r.conv.clone(),
                images_per_second: r.images_per_second / bp.images_per_second,
                peak_heap: div(r.peak_heap_bytes, bp.peak_heap_bytes),
                peak_rss: div(r.peak_rss_bytes, bp.peak_rss_bytes),
                device_memory: div(r.device_memory_bytes, bp.device_memory_bytes),
            })
        })
        .collect();
    // A row's images/s and peak heap over the same rule's sequential row.
    let over_sequential = |p: &RuleResult| {
        let seq = results
            .iter()
            .find(|s| s.rule == p.rule && s.conv == p.conv && s.is_sequential())?;
        Some((
            p.images_per_second / seq.images_per_second,
            div(p.peak_heap_bytes, seq.peak_heap_bytes),
        ))
    };
    let pipeline_speedups = results
        .iter()
        .filter_map(|p| {
            let (images_per_second, peak_heap) = over_sequential(p)?;
            Some(PipelineSpeedup {
                rule: p.rule,
                conv: p.conv.clone(),
                stages: p.pipeline?,
                images_per_second,
                peak_heap,
            })
        })
        .collect();
    let data_parallel_speedups = results
        .iter()
        .filter_map(|p| {
            let (images_per_second, peak_heap) = over_sequential(p)?;
            Some(DataParallelSpeedup {
                rule: p.rule,
                conv: p.conv.clone(),
                replicas: p.data_parallel?,
                nodes: p.nodes,
                images_per_second,
                peak_heap,
            })
        })
        .collect();
    let network = args.network.settings();
    BenchReport {
        arch: network.arch,
        width: network.width,
        image_size: network.image_size.unwrap_or_default(),
        classes: args.classes(),
        batch: args.batch,
        steps: args.steps,
        warmup: args.warmup,
        device: args.device.to_string(),
        results,
        ratios_to_bp,
        pipeline_speedups,
        data_parallel_speedups,
    }
}

/// The chart's title: what was measured, where.
fn chart_title(report: &BenchReport) -> String {
    format!(
        "{} batch {} on {}: peak training memory and speed",
        report.arch, report.batch, report.device
    )
}

/// One group of bars per result, labelled by rule (and kernels, where several were measured).
fn chart_bars(report: &BenchReport) -> Vec<plot::Bars> {
    let several = report
        .results
        .iter()
        .any(|r| r.conv != report.results[0].conv);
    let mib = |b: Option<u64>| b.map_or(0.0, |b| b as f64 / 1_048_576.0);
    report
        .results
        .iter()
        .map(|r| plot::Bars {
            label: match several {
                true => format!("{} ({})", r.rule, r.conv),
                false => r.rule.to_string(),
            },
            heap_mib: mib(r.peak_heap_bytes),
            rss_mib: mib(r.peak_rss_bytes),
            images_per_second: r.images_per_second,
        })
        .collect()
}

fn times(r: Option<f64>) -> String {
    r.map_or("".into(), |r| format!("{r:.2}x"))
}

/// The report as a Markdown table.
pub fn markdown(report: &BenchReport) -> String {
    let mut out = format!(
        "{} (width {}, {}x{} images, {} classes), batch {}, median of {} steps after {} warm-up, \
         device {}\n\n",
        report.arch,
        report.width,
        report.image_size,
        report.image_size,
        report.classes,
        report.batch,
        report.steps,
        report.warmup,
        report.device
    );
    let device = report
        .results
        .iter()
        .any(|r| r.device_memory_bytes.is_some());
    out += "| rule | conv | K | modules | images/s | vs bp | peak heap MiB | vs bp | peak RSS MiB | vs bp |";
    out += if device {
        " device MiB | vs bp |\n"
    } else {
        "\n"
    };
    out += "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|";
    out += if device { "---:|---:|\n" } else { "\n" };
    for r in &report.results {
        let ratio = report
            .ratios_to_bp
            .iter()
            .find(|x| x.rule == r.rule && x.conv == r.conv && r.is_sequential());
        out += &format!(
            "| {}{} | {} | {} | {} | {:.1} | {} | {} | {} | {} | {} |",
            r.rule,
            match (r.pipeline, r.data_parallel) {
                (Some(s), _) => format!(", pipeline {s}"),
                (_, Some(n)) => match r.nodes {
                    Some(m) => format!(", {m} nodes x {n} replicas"),
                    None => format!(", {n} replicas"),
                },
                _ => String::new(),
            },
            r.conv,
            if r.rule == Rule::Bp {
                "-".into()
            } else {
                r.k.to_string()
            },
            r.modules,
            r.images_per_second,
            times(ratio.map(|x| x.images_per_second)),
            mib(r.peak_heap_bytes),
            times(ratio.and_then(|x| x.peak_heap)),
            mib(r.peak_rss_bytes),
            times(ratio.and_then(|x| x.peak_rss)),
        );
        if device {
            out += &format!(
                " {} | {} |",
                mib(r.device_memory_bytes),
                times(ratio.and_then(|x| x.device_memory))
            );
        }
        out += "\n";
    }
    if !report.pipeline_speedups.is_empty() {
        out += "\n| rule | stages | threads per stage | images/s vs sequential | peak heap vs sequential | stages busy (measured) | stages busy (predicted) |\n|---|---:|---:|---:|---:|---|---|\n";
        let percents = |v: &Option<Vec<f64>>| {
            v.as_ref().map_or(String::new(), |v| {
                v.iter()
                    .map(|b| format!("{:.0}%", 100.0 * b))
                    .collect::<Vec<_>>()
                    .join(" / ")
            })
        };
        for s in &report.pipeline_speedups {
            let Some(r) = report
                .results
                .iter()
                .find(|r| r.rule == s.rule && r.conv == s.conv && r.pipeline == Some(s.stages))
            else {
                continue;
            };
            out += &format!(
                "| {} | {} | {} | {:.2}x | {} | {} | {} |\n",
                s.rule,
                s.stages,
                r.stage_threads.map_or("-".into(), |t| t.to_string()),
                s.images_per_second,
                times(s.peak_heap),
                percents(&r.stage_busy),
                percents(&r.predicted_busy),
            );
        }
    }
    if !report.data_parallel_speedups.is_empty() {
        out += "\n| rule | nodes x replicas | threads per replica | images/s vs one trainer | all-reduce per step | of a step | peak heap vs one trainer |\n|---|---:|---:|---:|---:|---:|---:|\n";
        for s in &report.data_parallel_speedups {
            let Some(r) = report.results.iter().find(|r| {
                r.rule == s.rule
                    && r.conv == s.conv
                    && r.data_parallel == Some(s.replicas)
                    && r.nodes == s.nodes
            }) else {
                continue;
            };
            let reduce = r.reduce_seconds_per_step.unwrap_or(0.0);
            let step = report.batch as f64 / r.images_per_second;
            let group = format!("{} x {}", s.nodes.unwrap_or(1), s.replicas);
            out += &format!(
                "| {} | {group} | {} | {:.2}x | {:.1} ms | {:.1}% | {} |\n",
                s.rule,
                r.stage_threads.map_or("-".into(), |t| t.to_string()),
                s.images_per_second,
                1e3 * reduce,
                100.0 * reduce / step,
                times(s.peak_heap),
            );
        }
    }
    out
}
