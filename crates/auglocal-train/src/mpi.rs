//! [`Nodes`] on MPI (the `mpi` feature): the processes of the MPI job this process was started
//! in (`mpirun -np M auglocal train ...`), one node per MPI rank.
//!
//! All MPI calls run on one service thread, which initialises MPI
//! (`MPI_THREAD_FUNNELED`): the replicas hand it their packed, in-process-averaged gradients
//! and wait for the nodes' mean. A watchdog ends the process (status [`EXIT_TIMEOUT`]) with a
//! message naming the rank, the step and the call when one collective call has waited longer
//! than the timeout (a node died, hangs, or skipped the call), so that no node waits forever;
//! `mpirun` then stops the others.
//!
//! A node that fails must end its process without finalising MPI (`MPI_Finalize` waits for the
//! others, which wait in a collective call for it): [`exit_job`]. Only a node whose work is
//! done drops its [`MpiNodes`], which finalises MPI.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mpi::collective::SystemOperation;
use mpi::traits::{Communicator, CommunicatorCollectives};

use crate::TrainError;
use crate::nodes::Nodes;

/// The exit status of a process whose collective call waited too long.
pub const EXIT_TIMEOUT: i32 = 1;

/// Ends this process at once with `code`, without finalising MPI, after flushing stdout and
/// stderr: how a failed node leaves the job (`mpirun` then ends the other nodes).
pub fn exit_job(code: i32) -> ! {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    std::process::exit(code)
}

/// One request to the MPI service thread.
enum Request {
    /// One local replica's values; reduced once `local` replicas have sent theirs.
    Mean {
        local: usize,
        values: Vec<f32>,
        reply: mpsc::Sender<Vec<f32>>,
    },
    Sum {
        values: Vec<f64>,
        reply: mpsc::Sender<Vec<f64>>,
    },
    Agree {
        value: u64,
        reply: mpsc::Sender<bool>,
    },
}

/// The nodes of the MPI job this process belongs to.
pub struct MpiNodes {
    rank: usize,
    size: usize,
    /// The current training step plus one (0: outside a step), for the watchdog's message.
    step: Arc<AtomicUsize>,
    requests: Mutex<Option<mpsc::Sender<Request>>>,
    service: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for MpiNodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MpiNodes {{ rank: {}, size: {} }}", self.rank, self.size)
    }
}

/// How the message of a node that waited too long names the timeout and the way to continue:
/// in the library's words by default; a command line names its flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeoutWords {
    /// What bounds the wait.
    pub timeout: String,
    /// How the run continues from its last complete epoch.
    pub resume: String,
}

impl Default for TimeoutWords {
    fn default() -> Self {
        Self {
            timeout: "the nodes' timeout".into(),
            resume: "once resumed (`Run::resume_on_nodes`)".into(),
        }
    }
}

impl MpiNodes {
    /// Initialises MPI on a service thread of its own and joins the job's world; a collective
    /// call that waits longer than `timeout` ends this process (status [`EXIT_TIMEOUT`]) with a
    /// message saying so.
    pub fn join(timeout: Duration) -> Result<Self, TrainError> {
        Self::join_with(timeout, TimeoutWords::default())
    }

    /// [`MpiNodes::join`], the timeout's message in `words`.
    pub fn join_with(timeout: Duration, words: TimeoutWords) -> Result<Self, TrainError> {
        let (requests, incoming) = mpsc::channel::<Request>();
        let (ready, started) = mpsc::channel::<Result<(usize, usize), String>>();
        let step = Arc::new(AtomicUsize::new(0));
        let watched = Arc::clone(&step);
        let failed = |m: String| TrainError::Nodes {
            rank: 0,
            message: m,
        };
        let service = std::thread::Builder::new()
            .name("auglocal-mpi".into())
            .spawn(move || serve(incoming, ready, timeout, words, watched))
            .map_err(|e| failed(format!("the MPI thread could not start: {e}")))?;
        let (rank, size) = started
            .recv()
            .map_err(|_| failed("the MPI thread stopped while starting".into()))?
            .map_err(failed)?;
        Ok(Self {
            rank,
            size,
            step,
            requests: Mutex::new(Some(requests)),
            service: Mutex::new(Some(service)),
        })
    }

    fn send<T>(&self, request: impl FnOnce(mpsc::Sender<T>) -> Request) -> Result<T, TrainError> {
        let (reply, answer) = mpsc::channel();
        let gone = || TrainError::Nodes {
            rank: self.rank,
            message: "the MPI thread has stopped".into(),
        };
        self.requests
            .lock()
            .map_err(|_| gone())?
            .as_ref()
            .ok_or_else(gone)?
            .send(request(reply))
            .map_err(|_| gone())?;
        answer.recv().map_err(|_| gone())
    }
}

impl Drop for MpiNodes {
    /// Stops the service thread, which finalises MPI: every node must get here (a node that
    /// fails leaves with [`exit_job`] instead).
    fn drop(&mut self) {
        if let Ok(mut requests) = self.requests.lock() {
            requests.take();
        }
        if let Ok(mut service) = self.service.lock()
            && let Some(service) = service.take()
        {
            let _ = service.join();
        }
    }
}

impl Nodes for MpiNodes {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn mean(&self, local: usize, values: Vec<f32>) -> Result<Vec<f32>, TrainError> {
        self.send(|reply| Request::Mean {
            local,
            values,
            reply,
        })
    }

    fn sum(&self, values: Vec<f64>) -> Result<Vec<f64>, TrainError> {
        self.send(|reply| Request::Sum { values, reply })
    }

    fn agree(&self, value: u64) -> Result<bool, TrainError> {
        self.send(|reply| Request::Agree { value, reply })
    }

    fn at_step(&self, step: Option<usize>) {
        self.step
            .store(step.map_or(0, |s| s.saturating_add(1)), Ordering::Relaxed);
    }
}

/// The service thread: initialises MPI, answers requests in order, finalises MPI when the
/// requests end.
fn serve(
    incoming: mpsc::Receiver<Request>,
    ready: mpsc::Sender<Result<(usize, usize), String>>,
    timeout: Duration,
    words: TimeoutWords,
    step: Arc<AtomicUsize>,
) {
    let Some((universe, _)) = mpi::initialize_with_threading(mpi::Threading::Funneled) else {
        let _ = ready.send(Err("MPI was already initialised in this process".into()));
        return;
    };
    let world = universe.world();
    let (rank, size) = (world.rank() as usize, world.size() as usize);
    if ready.send(Ok((rank, size))).is_err() {
        return;
    }
    // When the current collective call started and what it is (none: idle).
    let busy: Arc<Mutex<Option<(Instant, &'static str)>>> = Arc::new(Mutex::new(None));
    let watched = Arc::clone(&busy);
    std::thread::Builder::new()
        .name("auglocal-mpi-watchdog".into())
        .spawn(move || {
            watchdog(&watched, &step, (timeout, &words), rank, size);
        })
        .ok();
    let timed = |what: &'static str, call: &mut dyn FnMut()| {
        if let Ok(mut state) = busy.lock() {
            *state = Some((Instant::now(), what));
        }
        call();
        if let Ok(mut state) = busy.lock() {
            *state = None;
        }
    };
    let mut waiting: Vec<mpsc::Sender<Vec<f32>>> = Vec::new();
    let mut round: Option<Vec<f32>> = None;
    for request in incoming {
        match request {
            Request::Mean {
                local,
                values,
                reply,
            } => {
                // Each local replica sends one request per round and waits for its answer, so
                // the next `local` requests are this round's; their values are identical.
                round.get_or_insert(values);
                waiting.push(reply);
                if waiting.len() < local {
                    continue;
                }
                let send = round.take().unwrap_or_default();
                let mut mean = vec![0f32; send.len()];
                timed("gradients' all-reduce", &mut || {
                    world.all_reduce_into(&send[..], &mut mean[..], SystemOperation::sum())
                });
                let nodes = size as f32;
                for m in &mut mean {
                    *m /= nodes;
                }
                for reply in waiting.drain(..) {
                    let _ = reply.send(mean.clone());
                }
            }
            Request::Sum { values, reply } => {
                let mut sum = vec![0f64; values.len()];
                timed("losses' all-reduce", &mut || {
                    world.all_reduce_into(&values[..], &mut sum[..], SystemOperation::sum())
                });
                let _ = reply.send(sum);
            }
            Request::Agree { value, reply } => {
                let (mut low, mut high) = (0u64, 0u64);
                timed("check that the nodes train the same run", &mut || {
                    world.all_reduce_into(&value, &mut low, SystemOperation::min());
                    world.all_reduce_into(&value, &mut high, SystemOperation::max());
                });
                let _ = reply.send(low == high);
            }
        }
    }
    drop(universe);
}

/// Ends the process when a collective call has waited longer than `timeout`.
fn watchdog(
    busy: &Mutex<Option<(Instant, &'static str)>>,
    step: &AtomicUsize,
    (timeout, words): (Duration, &TimeoutWords),
    rank: usize,
    size: usize,
) {
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let Ok(state) = busy.lock() else { return };
        if let Some((since, what)) = *state
            && since.elapsed() > timeout
        {
            let at = match step.load(Ordering::Relaxed) {
                0 => "outside a training step".to_string(),
                s => format!("in step {s} of the epoch"),
            };
            // One write, so that the nodes' messages do not interleave mid-line.
            let message = format!(
                "error: node {rank} of {size}: the {what} ({at}) has waited {} s for the other \
                 nodes ({}): a node died, hangs or stopped early. Stopping this node; the run \
                 continues from its last complete epoch {}.\n",
                timeout.as_secs(),
                words.timeout,
                words.resume
            );
            eprint!("{message}");
            exit_job(EXIT_TIMEOUT);
        }
    }
}
