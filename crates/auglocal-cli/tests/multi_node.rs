//! Several processes training one run over MPI (`--features mpi`; Open MPI's `mpirun`, on the
//! loopback interface only: `lo`, 127.0.0.1). Back-to-back all-reduces are exact over shared
//! memory and TCP; two processes train the weights and metrics of two replicas in one; a
//! killed, frozen, panicking or skipping node ends the job within a bounded time; a stopped
//! run resumes to the metrics of an uninterrupted one.
//!
//! Every job runs under `timeout -k` (an `mpirun` can outlive its ranks) and is waited for with
//! a deadline of its own.

#![cfg(feature = "mpi")]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{auglocal, bin, stderr, temp};

/// A quarter-width ResNet-20 with AugLocal (K = 6) on synthetic images, one thread per
/// replica.
const RUN: &[&str] = &[
    "--arch",
    "resnet20",
    "--width",
    "0.25",
    "--rule",
    "auglocal",
    "--k",
    "6",
    "--dataset",
    "synthetic",
    "--test-limit",
    "32",
    "--batch",
    "15",
    "--lr",
    "0.05",
    "--schedule",
    "constant",
    "--threads",
    "1",
    "--aux-accuracy",
];

/// How the processes of a job talk: shared memory or TCP, both on this machine only.
#[derive(Clone, Copy, Debug)]
enum Transport {
    SharedMemory,
    Tcp,
}

/// The most a job may take before the test fails (and `timeout` ends `mpirun`).
const JOB_LIMIT: Duration = Duration::from_secs(240);

/// `timeout -k 10 T mpirun -np NP auglocal ARGS [: -np NP auglocal ARGS ...]`, one app
/// context per entry of `apps`, confined to the loopback interface.
fn mpirun(transport: Transport, apps: &[(usize, &[&str])]) -> Command {
    let mut cmd = Command::new("timeout");
    cmd.args(["-k", "10", &JOB_LIMIT.as_secs().to_string(), "mpirun"])
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .args(["--oversubscribe", "--mca", "oob_tcp_if_include", "lo"]);
    match transport {
        Transport::SharedMemory => cmd.args(["--mca", "btl", "self,vader"]),
        Transport::Tcp => cmd.args([
            "--mca",
            "btl",
            "self,tcp",
            "--mca",
            "btl_tcp_if_include",
            "lo",
        ]),
    };
    for (i, (np, args)) in apps.iter().enumerate() {
        if i > 0 {
            cmd.arg(":");
        }
        cmd.args(["-np", &np.to_string()]).arg(bin()).args(*args);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// A running job whose output lines are collected as they come.
struct Job {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Job {
    fn start(np: usize, transport: Transport, args: &[&str]) -> Self {
        Self::start_apps(transport, &[(np, args)])
    }

    /// A job of several app contexts (`mpirun ... : ...`): different arguments per node.
    fn start_apps(transport: Transport, apps: &[(usize, &[&str])]) -> Self {
        let mut child = mpirun(transport, apps).spawn().expect("mpirun runs");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let streams: [Option<Box<dyn Read + Send>>; 2] = [
            child.stderr.take().map(|s| Box::new(s) as _),
            child.stdout.take().map(|s| Box::new(s) as _),
        ];
        for stream in streams.into_iter().flatten() {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    lines.lock().expect("lines").push(line);
                }
            });
        }
        Self { child, lines }
    }

    fn text(&self) -> String {
        self.lines.lock().expect("lines").join("\n")
    }

    /// Waits for the job to end, at most `limit` (then kills it and fails).
    fn wait(&mut self, limit: Duration) -> (ExitStatus, Duration) {
        let start = Instant::now();
        match wait_for(limit, || self.child.try_wait().expect("wait")) {
            Some(status) => {
                // The reader threads finish with the pipes.
                std::thread::sleep(Duration::from_millis(300));
                (status, start.elapsed())
            }
            None => {
                let _ = self.child.kill();
                panic!("the job still runs after {limit:?}:\n{}", self.text());
            }
        }
    }
}

fn wait_for<T>(limit: Duration, mut ready: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(value) = ready() {
            return Some(value);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// A job to its end.
fn run_mpi(np: usize, transport: Transport, args: &[&str]) -> (ExitStatus, String) {
    let mut job = Job::start(np, transport, args);
    let (status, _) = job.wait(JOB_LIMIT + Duration::from_secs(20));
    (status, job.text())
}

/// The pids of the processes running `auglocal` with `marker` among their arguments.
fn pids_with(marker: &str) -> Vec<u32> {
    let out = Command::new("pgrep")
        .args(["-f", marker])
        .output()
        .expect("pgrep runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .filter(|&pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let c = String::from_utf8_lossy(&c);
                // The ranks themselves, not `timeout` or `mpirun`.
                c.starts_with(&*bin().to_string_lossy())
            })
        })
        .collect()
}

fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([signal, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

fn metrics(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// What a run learned, epoch by epoch: everything but timings and memory.
fn learned(dir: &Path) -> Vec<Vec<serde_json::Value>> {
    metrics(dir)
        .iter()
        .map(|m| {
            [
                "epoch",
                "loss",
                "train_accuracy",
                "test_accuracy",
                "aux_train_accuracy",
                "aux_test_accuracy",
                "train_images",
            ]
            .iter()
            .map(|k| m[*k].clone())
            .collect()
        })
        .collect()
}

fn train_args<'a>(extra: &[&'a str], out: &'a str) -> Vec<&'a str> {
    let mut args = vec!["train", "--out", out];
    args.extend_from_slice(RUN);
    args.extend_from_slice(extra);
    args
}

/// The run's last network, exported: each tensor's name and bytes (the file's header lists
/// them in no fixed order).
fn exported(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let file = dir.with_extension("safetensors");
    let out = auglocal(&[
        "export",
        dir.to_str().expect("utf-8"),
        "--out",
        file.to_str().expect("utf-8"),
        "--overwrite",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let bytes = std::fs::read(&file).expect("exported");
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_file(file.with_extension("safetensors.json"));
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + n]).expect("a safetensors header");
    let data = &bytes[8 + n..];
    header
        .into_iter()
        .filter(|(name, _)| name != "__metadata__")
        .map(|(name, info)| {
            let at = |i: usize| info["data_offsets"][i].as_u64().expect("offset") as usize;
            (name, data[at(0)..at(1)].to_vec())
        })
        .collect()
}

#[test]
fn all_reduces_are_exact_back_to_back_over_shared_memory_and_tcp() {
    for transport in [Transport::SharedMemory, Transport::Tcp] {
        for np in [2, 3] {
            let (status, text) = run_mpi(np, transport, &["nodes", "--calls", "1000"]);
            assert!(status.success(), "{np} nodes, {transport:?}:\n{text}");
            assert_eq!(
                text.matches("2000 all-reduces of 1 to 300000 values, 0 wrong")
                    .count(),
                np,
                "{np} nodes, {transport:?}:\n{text}"
            );
        }
    }
}

#[test]
fn two_nodes_train_the_weights_and_metrics_of_two_replicas_in_one_process() {
    let (one, two) = (temp("mpi-one"), temp("mpi-two"));
    // Batches of 15: shards of 8 and 7 images, weighted by their sizes.
    let limit = ["--train-limit", "90", "--epochs", "2"];
    let replicas = [&limit[..], &["--data-parallel", "2"]].concat();
    let out = auglocal(&train_args(&replicas, one.to_str().expect("utf-8")));
    assert!(out.status.success(), "{}", stderr(&out));
    let nodes = [&limit[..], &["--data-parallel", "1"]].concat();
    let (status, text) = run_mpi(
        2,
        Transport::SharedMemory,
        &train_args(&nodes, two.to_str().expect("utf-8")),
    );
    assert!(status.success(), "{text}");
    assert!(
        text.contains("Data-parallel over 2 nodes (MPI): 1 replica(s) on each"),
        "{text}"
    );
    // Node 0 alone reports and writes.
    assert_eq!(text.matches("Done: test accuracy").count(), 1, "{text}");
    assert_eq!(learned(&one).len(), 2);
    assert_eq!(learned(&two), learned(&one));
    let weights = exported(&two);
    assert!(weights.len() > 50, "{} tensors", weights.len());
    assert!(weights == exported(&one), "the same weights, bit for bit");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(two.join("config.json")).expect("config"))
            .expect("json");
    assert_eq!(config["execution"]["nodes"], 2);

    // A run of two processes resumes only with two.
    let dir = two.to_str().expect("utf-8");
    let alone = auglocal(&["train", "--resume", dir]);
    assert_eq!(alone.status.code(), Some(2), "{}", stderr(&alone));
    assert!(
        stderr(&alone).contains(&format!(
            "resume it with `mpirun -np 2 auglocal train --resume {dir}`"
        )),
        "{}",
        stderr(&alone)
    );
    let (status, text) = run_mpi(3, Transport::SharedMemory, &["train", "--resume", dir]);
    assert_eq!(status.code(), Some(2), "{text}");
    assert!(text.contains("but this MPI job has 3"), "{text}");
    // Nodes that would train different runs are refused before anything is written.
    let never = temp("mpi-never");
    let (status, text) = run_mpi(
        2,
        Transport::SharedMemory,
        &train_args(&["--pipeline", "2"], never.to_str().expect("utf-8")),
    );
    assert_eq!(status.code(), Some(2), "{text}");
    assert!(
        text.contains("give --data-parallel N, not --pipeline"),
        "{text}"
    );
    assert!(!never.exists());
    let name = never.to_str().expect("utf-8");
    let (first, second) = (
        train_args(&["--seed", "1"], name),
        train_args(&["--seed", "2"], name),
    );
    let mut job = Job::start_apps(Transport::SharedMemory, &[(1, &first), (1, &second)]);
    let (status, _) = job.wait(JOB_LIMIT);
    let text = job.text();
    assert_eq!(status.code(), Some(2), "{text}");
    assert!(
        text.contains("the 2 nodes disagree on the run they start"),
        "{text}"
    );
    assert!(!never.exists());
    assert_eq!(learned(&two), learned(&one), "the refusals changed nothing");
    for dir in [one, two] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn a_killed_or_frozen_node_ends_the_job_and_the_run_resumes_to_the_same_metrics() {
    let straight = temp("mpi-straight");
    let limit = ["--train-limit", "900", "--epochs", "3"];
    let replicas = [&limit[..], &["--data-parallel", "2"]].concat();
    let out = auglocal(&train_args(&replicas, straight.to_str().expect("utf-8")));
    assert!(out.status.success(), "{}", stderr(&out));
    let expected = learned(&straight);
    assert_eq!(expected.len(), 3);

    for (how, signal_name) in [("killed", "-KILL"), ("frozen", "-STOP")] {
        let dir = temp(&format!("mpi-{how}"));
        let name = dir.to_str().expect("utf-8").to_string();
        let args = [&limit[..], &["--data-parallel", "1", "--node-timeout", "5"]].concat();
        let mut job = Job::start(2, Transport::Tcp, &train_args(&args, &name));
        wait_for(JOB_LIMIT, || (!metrics(&dir).is_empty()).then_some(()))
            .unwrap_or_else(|| panic!("epoch 1 is never written:\n{}", job.text()));
        let pids = pids_with(&name);
        assert_eq!(pids.len(), 2, "two ranks: {pids:?}");
        let victim = *pids.iter().max().expect("a rank");
        signal(victim, signal_name);
        let (status, took) = job.wait(Duration::from_secs(60));
        // Whatever happened, the stopped process does not outlive the test.
        signal(victim, "-KILL");
        let text = job.text();
        assert!(!status.success(), "{how}: {text}");
        assert!(
            took < Duration::from_secs(30),
            "{how}: the job took {took:?}:\n{text}"
        );
        if how == "frozen" {
            assert!(
                text.contains("has waited 5 s for the other nodes (--node-timeout)"),
                "{text}"
            );
        } else {
            assert!(text.contains("exited on signal 9"), "{text}");
        }
        let kept = metrics(&dir).len();
        assert!((1..3).contains(&kept), "{how}: {kept} epochs kept");

        let (status, text) = run_mpi(2, Transport::Tcp, &["train", "--resume", &name]);
        assert!(status.success(), "{how}: {text}");
        assert_eq!(learned(&dir), expected, "{how}");
        let _ = std::fs::remove_dir_all(dir);
    }
    let _ = std::fs::remove_dir_all(straight);
}

#[test]
fn a_node_that_panics_freezes_or_skips_calls_ends_the_job_within_the_timeout() {
    for drill in ["panic", "freeze", "skip"] {
        let start = Instant::now();
        let (status, text) = run_mpi(
            2,
            Transport::SharedMemory,
            &[
                "nodes",
                "--calls",
                "1000",
                "--drill",
                drill,
                "--drill-after",
                "20",
                "--node-timeout",
                "3",
            ],
        );
        let took = start.elapsed();
        assert!(!status.success(), "{drill}: {text}");
        assert!(took < Duration::from_secs(30), "{drill}: {took:?}\n{text}");
        let expected = match drill {
            "panic" => "error: node 1 of 2 panicked; stopping the job",
            _ => "error: node 0 of 2: the gradients' all-reduce (in step 21",
        };
        assert!(text.contains(expected), "{drill}:\n{text}");
    }
}
