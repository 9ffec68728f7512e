//! Joining the other processes of an MPI job (`mpirun -np M auglocal train ...`), and how a
//! node leaves it: a node that fails ends its process at once with a message naming it, so
//! that `mpirun` stops the others instead of leaving them waiting.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use auglocal_train::nodes::{Nodes, launched_by_mpi};

use crate::exit::usage;

/// The longest `--node-timeout`, in seconds (a day).
pub const MAX_NODE_TIMEOUT: u64 = 86_400;

/// The nodes of the MPI job this process was started in, or `None` when it was not started
/// by an MPI launcher. A collective call that waits longer than `timeout` ends the process.
pub fn join(timeout: Duration) -> Result<Option<Arc<dyn Nodes>>> {
    if !launched_by_mpi() {
        return Ok(None);
    }
    if !(1..=MAX_NODE_TIMEOUT).contains(&timeout.as_secs()) {
        return Err(usage(format!(
            "--node-timeout must be in 1..={MAX_NODE_TIMEOUT} seconds, got {}",
            timeout.as_secs()
        )));
    }
    joined(timeout)
}

#[cfg(feature = "mpi")]
fn joined(timeout: Duration) -> Result<Option<Arc<dyn Nodes>>> {
    let words = auglocal_train::mpi::TimeoutWords {
        timeout: "--node-timeout".into(),
        resume: "with --resume".into(),
    };
    let nodes = auglocal_train::mpi::MpiNodes::join_with(timeout, words)?;
    let nodes: Arc<dyn Nodes> = Arc::new(nodes);
    leave_on_panic(nodes.rank(), nodes.size());
    Ok(Some(nodes))
}

#[cfg(not(feature = "mpi"))]
fn joined(_: Duration) -> Result<Option<Arc<dyn Nodes>>> {
    Err(usage(
        "started by mpirun, but this auglocal was built without MPI: build it with \
         `cargo build --release -p auglocal-cli --features mpi` (it needs Open MPI and \
         libclang: Debian's libopenmpi-dev, openmpi-bin and libclang-dev)",
    ))
}

/// A panic anywhere in this process ends it at once (after the usual message): unwinding
/// would finalise MPI, which waits forever for the nodes still in a collective call.
#[cfg(feature = "mpi")]
fn leave_on_panic(rank: usize, size: usize) {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        // One write, so that the nodes' messages do not interleave mid-line.
        let message = format!("error: node {rank} of {size} panicked; stopping the job\n");
        eprint!("{message}");
        auglocal_train::mpi::exit_job(101);
    }));
}

/// Ends this node's process with `status` after printing `err`, without finalising MPI:
/// `mpirun` then ends the other nodes.
pub fn leave(nodes: &dyn Nodes, err: &anyhow::Error, status: u8) -> ! {
    // One write, so that the nodes' messages do not interleave mid-line.
    let message = format!(
        "error: node {} of {}: {}\n",
        nodes.rank(),
        nodes.size(),
        crate::advice::message(err)
    );
    eprint!("{message}");
    #[cfg(feature = "mpi")]
    auglocal_train::mpi::exit_job(i32::from(status));
    #[cfg(not(feature = "mpi"))]
    std::process::exit(i32::from(status))
}

/// Flags of `auglocal nodes`.
#[derive(clap::Args, Debug)]
pub struct NodesArgs {
    /// Rounds of all-reduces (each: a mean of f32 values of the next size in turn, and a sum
    /// of f64 values).
    #[arg(long, default_value_t = 1_000)]
    calls: usize,
    /// A node that waits longer than this in one call ends the job with an error naming it.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    node_timeout: u64,
    /// Rehearse a node's failure, to see that the job ends with a clear error in bounded time
    /// rather than hang: node --drill-rank panics, freezes (sleeps for good) or skips the
    /// remaining calls (leaves as if done) after --drill-after rounds.
    #[arg(long, value_name = "HOW")]
    drill: Option<Drill>,
    /// The node that fails in a drill.
    #[arg(long, value_name = "RANK", default_value_t = 1)]
    drill_rank: usize,
    /// Rounds before the drill's failure.
    #[arg(long, value_name = "N", default_value_t = 10)]
    drill_after: usize,
}

/// How a node fails in `auglocal nodes --drill`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Drill {
    /// It panics.
    Panic,
    /// It stops making progress (sleeps for good).
    Freeze,
    /// It skips the remaining calls and leaves as if its work were done.
    Skip,
}

/// Element counts of the vectors reduced, in turn: from one value to more than a ResNet-32
/// module's packed gradients.
const SIZES: [usize; 8] = [1, 7, 64, 1_000, 4_096, 17, 65_536, 300_000];

/// Most rounds of one check.
const MAX_CALLS: usize = 1_000_000;

/// The values node `rank` contributes to round `call`: small integers, so that every sum is
/// exact whatever order the engine adds them in.
fn values(rank: usize, call: usize, n: usize) -> Vec<f32> {
    (0..n)
        .map(|j| ((rank + 1) * (j % 17) + call % 5) as f32)
        .collect()
}

/// `auglocal nodes`: checks the MPI job this process belongs to with back-to-back all-reduces
/// of varying sizes through the layer `train` averages gradients with, every result checked
/// exactly; prints this node's line (calls, wrong results, time per call).
pub fn run(args: &NodesArgs) -> Result<()> {
    if !(1..=MAX_CALLS).contains(&args.calls) {
        return Err(usage(format!(
            "--calls must be in 1..={MAX_CALLS}, got {}",
            args.calls
        )));
    }
    let Some(nodes) = join(Duration::from_secs(args.node_timeout))? else {
        return Err(usage(
            "`auglocal nodes` checks an MPI job: start it with `mpirun -np M auglocal nodes`",
        ));
    };
    match check(nodes.as_ref(), args) {
        Ok(()) => Ok(()),
        Err(err) => leave(nodes.as_ref(), &err, crate::exit::status(&err)),
    }
}

fn check(nodes: &dyn Nodes, args: &NodesArgs) -> Result<()> {
    let (rank, size) = (nodes.rank(), nodes.size());
    if args.drill.is_some() && args.drill_rank >= size {
        return Err(usage(format!(
            "--drill-rank {} names no node of {size}",
            args.drill_rank
        )));
    }
    let start = std::time::Instant::now();
    let mut wrong = Vec::new();
    for call in 0..args.calls {
        if call == args.drill_after && rank == args.drill_rank {
            match args.drill {
                Some(Drill::Panic) => panic!("node {rank}: the drill's panic after {call} rounds"),
                Some(Drill::Freeze) => loop {
                    std::thread::sleep(Duration::from_secs(3_600));
                },
                Some(Drill::Skip) => {
                    println!("node {rank} of {size}: skipped the calls after round {call}");
                    return Ok(());
                }
                None => {}
            }
        }
        nodes.at_step(Some(call));
        let n = SIZES[call % SIZES.len()];
        let mean = nodes.mean(1, values(rank, call, n))?;
        let all: Vec<Vec<f32>> = (0..size).map(|r| values(r, call, n)).collect();
        let expected: Vec<f32> = (0..n)
            .map(|j| all.iter().map(|v| v[j]).sum::<f32>() / size as f32)
            .collect();
        let sum = nodes.sum(vec![rank as f64 + 0.5, call as f64])?;
        let expected_sum = [(size * size) as f64 / 2.0, (call * size) as f64];
        if mean != expected || sum != expected_sum {
            wrong.push(call);
        }
    }
    nodes.at_step(None);
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "node {rank} of {size}: {} all-reduces of 1 to {} values, {} wrong, {:.3} ms per call",
        2 * args.calls,
        SIZES.iter().max().unwrap_or(&0),
        wrong.len(),
        1e3 * seconds / (2 * args.calls) as f64
    );
    if let Some(first) = wrong.first() {
        anyhow::bail!(
            "{} of {} rounds gave a wrong result (the first: round {first})",
            wrong.len(),
            args.calls
        );
    }
    Ok(())
}
