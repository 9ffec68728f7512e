//! The CLI as a hostile or careless user runs it: every argument set and file below must be
//! refused with exit status 2 and a message, never a panic. Add a row whenever a defect is
//! found.
//!
//! `AUGLOCAL_TEST_BIN=/path/to/auglocal` runs the harness against another binary (see
//! `common`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{bin, text};

/// Runs the binary where no data set is found unless a test names its folder.
fn auglocal(args: &[&str]) -> Output {
    common::auglocal_with(args, &[("AUGLOCAL_DATA_DIR", "/nonexistent")])
}

/// An empty folder for the test.
fn temp(name: &str) -> PathBuf {
    let dir = common::temp(&format!("hostile-{name}"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Runs each row, collecting every failure so that one run shows them all.
fn expect_refusals(rows: &[(Vec<String>, &str)]) {
    let mut failures = Vec::new();
    for (args, message) in rows {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = auglocal(&args);
        let err = text(&out.stderr);
        let problem = if err.contains("panicked") {
            Some("panicked".to_string())
        } else if out.status.code() != Some(2) {
            Some(format!("exit status {:?}", out.status.code()))
        } else if !err.contains(message) {
            Some(format!("no '{message}' in the message"))
        } else {
            None
        };
        if let Some(problem) = problem {
            failures.push(format!("{args:?}: {problem}\n  stderr: {}", err.trim()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn row(args: &[&str], message: &'static str) -> (Vec<String>, &'static str) {
    (args.iter().map(|s| s.to_string()).collect(), message)
}

const MAX: &str = "18446744073709551615";
const MAX_1: &str = "18446744073709551614";

#[test]
fn hostile_sizes_are_refused_with_status_2() {
    let dir = temp("sizes");
    let never = dir.join("never");
    let train = |extra: &[&str]| {
        let mut a: Vec<String> = ["train", "--dataset", "synthetic", "--out"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.push(never.to_string_lossy().into_owned());
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let mut rows = vec![
        row(&["plan", "--depth", MAX_1], "d <= 14"),
        row(&["plan", "--depth", MAX], "d <= 14"),
        row(&["plan", "--k", MAX], "larger than the 16 units"),
        row(&["plan", "--width", "1e300"], "width multiplier"),
        row(&["plan", "--width", "inf"], "width multiplier"),
        row(&["plan", "--classes", MAX], "num_classes must be at most"),
        row(&["plan", "--image-size", MAX], "a side of 1 to 4096"),
        row(&["plan", "--image-size", "0"], "a side of 1 to 4096"),
        row(&["bench", "--steps", MAX], "--steps must be in"),
        row(&["bench", "--warmup", MAX], "--warmup must be in"),
        row(&["bench", "--batch", "0"], "--batch must be in"),
        row(&["bench", "--batch", MAX], "--batch must be in"),
        row(&["data", "--image-size", MAX], "--image-size must be in"),
        row(
            &["data", "--dataset", "synthetic", "--image-size", "0"],
            "--image-size",
        ),
    ];
    for (extra, message) in [
        (&["--depth", MAX_1][..], "d <= 14"),
        (&["--width", "1e300"], "width multiplier"),
        (&["--batch", MAX], "batch size must be in"),
        (&["--batch", "0"], "batch size must be in"),
        (&["--epochs", MAX], "epochs must be in"),
        (&["--workers", MAX], "--workers must be at most"),
        (
            &["--epochs", "10", "--warmup", "10"],
            "warm-up epochs leave none",
        ),
        (
            &["--schedule", "constant", "--warmup", "2"],
            "--warmup applies",
        ),
        (&["--width", "64", "--batch", "65536"], "GiB"),
    ] {
        rows.push((train(extra), message));
    }
    expect_refusals(&rows);
    assert!(!never.exists(), "a refused run wrote {}", never.display());
    std::fs::remove_dir_all(dir).expect("clean up");
}

#[test]
fn bad_files_and_run_directories_are_refused_with_status_2() {
    let dir = temp("files");
    let config = dir.join("config.json");
    std::fs::write(&config, "{\"epochs\": 3, \"lr\": ").expect("write");
    let unknown = dir.join("unknown.json");
    std::fs::write(&unknown, "{\"epoch\": 3}").expect("write");
    let run = dir.join("run-with-metrics");
    std::fs::create_dir_all(&run).expect("dir");
    std::fs::write(run.join("metrics.jsonl"), "{}\n").expect("write");
    let s = |p: &Path| p.to_string_lossy().into_owned();
    let rows = vec![
        row(
            &["train", "--config", "/nonexistent/config.json"],
            "/nonexistent/config.json",
        ),
        (
            vec!["train".into(), "--config".into(), s(&config)],
            "not a run configuration",
        ),
        (
            vec!["train".into(), "--config".into(), s(&unknown)],
            "unknown field",
        ),
        row(
            &["train", "--resume", "/nonexistent/run"],
            "/nonexistent/run",
        ),
        (
            vec![
                "train".into(),
                "--dataset".into(),
                "synthetic".into(),
                "--out".into(),
                s(&run),
            ],
            "already holds a run",
        ),
        (
            vec!["train".into(), "--resume".into(), s(&run)],
            "config.json",
        ),
        row(&["eval", "/nonexistent/run"], "/nonexistent/run"),
        (vec!["eval".into(), s(&unknown)], "unknown.json"),
        (
            vec![
                "train".into(),
                "--dataset".into(),
                "synthetic".into(),
                "--out".into(),
                s(&unknown),
            ],
            "is not a directory",
        ),
        row(
            &["bench", "--device", "cuda"],
            "built without the cuda backend",
        ),
        row(
            &["bench", "--device", "wgpu"],
            "built without the wgpu backend",
        ),
        row(
            &["bench", "--save-json", "/nonexistent/dir/r.json"],
            "/nonexistent/dir",
        ),
        row(
            &["bench", "--plot", "/proc/auglocal.png"],
            "/proc/auglocal.png",
        ),
        row(&["bench", "--save-json", "/tmp"], "is a folder"),
        row(&["data", "--dataset", "svhn"], "not found"),
        // STL-10 needs no --image-size: its own 96 is the default.
        row(
            &["data", "--dataset", "stl10"],
            "data set 'stl10' not found",
        ),
    ];
    expect_refusals(&rows);
    // Nothing of the refused runs was written.
    assert_eq!(
        std::fs::read_to_string(run.join("metrics.jsonl")).expect("kept"),
        "{}\n"
    );
    assert!(!run.join("config.json").exists());
    std::fs::remove_dir_all(dir).expect("clean up");
}

/// An IDX file of `count` images of `rows x cols`.
fn idx_images(count: u32, rows: u32, cols: u32) -> Vec<u8> {
    let mut out = vec![0, 0, 8, 3];
    for d in [count, rows, cols] {
        out.extend(d.to_be_bytes());
    }
    out.resize(out.len() + (count * rows * cols) as usize, 7);
    out
}

fn idx_labels(count: u32) -> Vec<u8> {
    let mut out = vec![0, 0, 8, 1];
    out.extend(count.to_be_bytes());
    out.extend((0..count).map(|i| (i % 10) as u8));
    out
}

/// A Fashion-MNIST folder whose training images are `rows x cols`.
fn fashion_mnist(dir: &Path, rows: u32, cols: u32) {
    std::fs::create_dir_all(dir).expect("dir");
    for (prefix, images) in [
        ("train", idx_images(4, rows, cols)),
        ("t10k", idx_images(4, 28, 28)),
    ] {
        std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte")), images).expect("w");
        std::fs::write(
            dir.join(format!("{prefix}-labels-idx1-ubyte")),
            idx_labels(4),
        )
        .expect("w");
    }
}

#[test]
fn malformed_data_sets_are_refused_by_data_and_train() {
    let root = temp("data");
    let mut rows = Vec::new();
    let s = |p: &Path| p.to_string_lossy().into_owned();
    for (rows_, cols, shown) in [(10, 100, "10x100"), (0, 0, "0x0"), (40, 40, "40x40")] {
        let dir = root.join(format!("fmnist-{rows_}x{cols}"));
        fashion_mnist(&dir, rows_, cols);
        for command in ["data", "train"] {
            let mut args = vec![
                command.to_string(),
                "--dataset".into(),
                "fashion-mnist".into(),
                "--data-dir".into(),
                s(&dir),
            ];
            if command == "train" {
                args.extend(["--out".into(), s(&root.join("never"))]);
            }
            rows.push((args, shown));
        }
    }
    // Something else where a data file should be: a folder, /dev/null, a FIFO.
    let weird = [
        ("folder", "a directory"),
        ("devnull", "a character device"),
        ("fifo", "a FIFO"),
    ];
    for (kind, shown) in weird {
        let dir = root.join(format!("fmnist-{kind}"));
        fashion_mnist(&dir, 28, 28);
        let target = dir.join("train-images-idx3-ubyte");
        std::fs::remove_file(&target).expect("rm");
        match kind {
            "folder" => std::fs::create_dir(&target).expect("mkdir"),
            "devnull" => std::os::unix::fs::symlink("/dev/null", &target).expect("ln"),
            _ => {
                let made = Command::new("mkfifo")
                    .arg(&target)
                    .status()
                    .expect("mkfifo");
                assert!(made.success());
            }
        }
        rows.push((
            vec![
                "data".into(),
                "--dataset".into(),
                "fashion-mnist".into(),
                "--data-dir".into(),
                s(&dir),
            ],
            shown,
        ));
    }
    // An image folder whose training split holds a 0-byte JPEG and a truncated PNG among good
    // images: `data` decodes every image and names them, before `train` would meet them
    // mid-epoch.
    let folder = root.join("imagenet");
    let good = auglocal_data::Sample {
        pixels: vec![90; 3 * 24 * 24],
        shape: auglocal_data::ImageShape::new(3, 24, 24),
        label: 0,
    };
    for split in ["train", "val"] {
        for class in ["cat", "dog"] {
            let dir = folder.join(split).join(class);
            std::fs::create_dir_all(&dir).expect("mkdir");
            for i in 0..2 {
                auglocal_data::formats::encode::write_png(&good, &dir.join(format!("{i}.png")))
                    .expect("png");
            }
        }
    }
    let cats = folder.join("train").join("cat");
    std::fs::write(cats.join("empty.jpg"), b"").expect("write");
    let png = std::fs::read(cats.join("0.png")).expect("read");
    std::fs::write(cats.join("truncated.png"), &png[..png.len() / 2]).expect("write");
    let data_args = |dir: &Path| {
        vec![
            "data".to_string(),
            "--dataset".into(),
            "imagenet".into(),
            "--data-dir".into(),
            s(dir),
        ]
    };
    rows.push((data_args(&folder), "2 of 6 train images do not load"));
    rows.push((data_args(&folder), "empty.jpg"));
    rows.push((data_args(&folder), "truncated.png"));
    expect_refusals(&rows);
    assert!(!root.join("never").exists());
    // Without them, the same folder is fine.
    std::fs::remove_file(cats.join("empty.jpg")).expect("rm");
    std::fs::remove_file(cats.join("truncated.png")).expect("rm");
    let out = auglocal(
        &data_args(&folder)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::remove_dir_all(root).expect("clean up");
}

#[test]
fn bad_infopro_weights_are_refused() {
    let plan = |weights: &str| -> Vec<String> {
        [
            "plan",
            "--rule",
            "infopro",
            "--k",
            "4",
            "--infopro-weights",
            weights,
        ]
        .map(String::from)
        .to_vec()
    };
    expect_refusals(&[
        (plan("5,0.05,0.2"), "expected four"),
        (plan("5,0.05,0.2,x"), "expected four numbers"),
        (plan("5,-0.05,0.2,0.5"), "finite and at least 0"),
        (plan("5,0.05,inf,0.5"), "finite and at least 0"),
    ]);
}

#[test]
fn rules_ignore_flags_they_do_not_use_and_say_so() {
    for (args, note) in [
        (
            &["plan", "--rule", "bp", "--k", "999", "--depth", "0"][..],
            "--k, --depth ignored",
        ),
        (
            &["plan", "--rule", "greedy", "--depth", "0"],
            "--depth ignored",
        ),
        (
            &["plan", "--rule", "dgl", "--k", "4", "--pyramid", "7"],
            "--pyramid ignored",
        ),
        (
            &["plan", "--rule", "infopro", "--k", "4", "--depth", "3"],
            "--depth ignored",
        ),
        (
            &["plan", "--rule", "auglocal", "--infopro-weights", "1,1,1,1"],
            "--infopro-weights ignored: only infopro weighs its losses",
        ),
        (
            &["plan", "--rule", "bp", "--infopro-weights", "1,1,1,1"],
            "--infopro-weights ignored: bp trains",
        ),
    ] {
        let out = auglocal(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains(note),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn bench_checks_its_outputs_before_measuring() {
    let out = auglocal(&[
        "bench",
        "--arch",
        "resnet20",
        "--width",
        "0.25",
        "--rules",
        "bp",
        "--batch",
        "2",
        "--steps",
        "1",
        "--save-json",
        "/nonexistent/dir/r.json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        !text(&out.stderr).contains("measuring"),
        "{}",
        text(&out.stderr)
    );
}

/// Runs `script` in a new user and mount namespace (no privileges needed), where a tmpfs can
/// be mounted; `None` where this system forbids it.
fn in_namespace(script: &str) -> Option<Output> {
    let probe = Command::new("unshare")
        .args(["-rm", "true"])
        .output()
        .ok()?;
    if !probe.status.success() {
        return None;
    }
    Command::new("unshare")
        .args(["-rm", "sh", "-c", script])
        .output()
        .ok()
}

/// Runs the shell commands `body(disk)` in a namespace where `disk` is a tmpfs of `size`;
/// `None` (and a loud SKIPPED) where this system forbids user namespaces.
fn on_small_disk(
    name: &str,
    size: &str,
    body: impl FnOnce(&Path) -> String,
) -> Option<(String, String)> {
    let dir = temp(name);
    let disk = dir.join("disk");
    std::fs::create_dir_all(&disk).expect("dir");
    let script = format!(
        "mount -t tmpfs -o size={size} auglocal {m} || {{ echo mount-failed; exit 1; }}\n{}",
        body(&disk),
        m = disk.display(),
    );
    let out = in_namespace(&script).map(|out| {
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert!(
            !stdout.contains("mount-failed"),
            "tmpfs not mounted: {stderr}"
        );
        (stdout, stderr)
    });
    if out.is_none() {
        eprintln!("\n*** SKIPPED full-disk test: this system forbids user namespaces ***\n");
    }
    std::fs::remove_dir_all(dir).expect("clean up");
    out
}

#[test]
fn a_full_disk_while_checkpointing_says_so_and_keeps_the_last_good_checkpoint() {
    // One checkpoint of this network is ~290 KB: the disk holds the run and its first
    // checkpoint, not a second one beside it.
    let Some((stdout, stderr)) = on_small_disk("full-disk", "480k", |disk| {
        format!(
            "{b} train --arch resnet20 --width 0.25 --rule auglocal --k 6 --dataset synthetic \
               --train-limit 32 --test-limit 16 --batch 16 --lr 0.05 --schedule constant \
               --epochs 2 --workers 0 --out {r}
             echo \"train-status=$?\"
             echo \"checkpoints=$(ls {r}/checkpoints | tr '\\n' ' ')\"
             echo \"metrics=$(wc -l < {r}/metrics.jsonl)\"
             {b} eval {r} && echo eval-ok",
            b = bin().display(),
            r = disk.join("run").display(),
        )
    }) else {
        return;
    };
    assert!(stdout.contains("train-status=1"), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("No space left on device")
            && stderr.contains("epoch-0002.tmp")
            && stderr.contains("the last good checkpoint"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stdout.contains("checkpoints=epoch-0001 latest "),
        "{stdout}"
    );
    assert!(stdout.contains("metrics=1"), "{stdout}");
    assert!(stdout.contains("eval-ok"), "{stdout}\n{stderr}");
}

#[test]
fn a_run_that_cannot_be_written_whole_leaves_nothing_behind() {
    // A run directory that cannot be made is a refusal, its OS error said once.
    let out = auglocal(&[
        "train",
        "--dataset",
        "synthetic",
        "--out",
        "/proc/auglocal-run",
    ]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot create the run directory"), "{err}");
    assert_eq!(err.matches("(os error").count(), 1, "{err}");

    // A disk that fills while the run's first files are written (plan.json fits, config.json,
    // written last, does not): the run is not half-made, so the same command succeeds once
    // there is room.
    let Some((stdout, stderr)) = on_small_disk("full-disk-start", "8k", |disk| {
        format!(
            "{b} train --arch resnet20 --width 0.25 --rule auglocal --k 6 --dataset synthetic \
               --train-limit 16 --test-limit 16 --batch 16 --epochs 1 --workers 0 --out {r}
             echo \"train-status=$?\"
             echo \"entries=$(ls -A {d} | tr '\\n' ' ')\"",
            b = bin().display(),
            r = disk.join("run").display(),
            d = disk.display(),
        )
    }) else {
        return;
    };
    assert!(stdout.contains("train-status=1"), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("No space left on device") && stderr.contains("run/config."),
        "{stderr}"
    );
    assert_eq!(stderr.matches("(os error").count(), 1, "{stderr}");
    assert!(
        stdout.contains("entries=\n") || stdout.ends_with("entries="),
        "{stdout}"
    );
}

/// Every file under `dir`, with its bytes (symlinks as their targets' names; large files and
/// FIFOs as their sizes).
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&d)
            .expect("read dir")
            .flatten()
            .map(|e| e.path())
            .collect();
        entries.sort();
        for path in entries {
            let meta = std::fs::symlink_metadata(&path).expect("meta");
            if meta.is_dir() {
                stack.push(path);
            } else if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).expect("link");
                out.push((path, target.to_string_lossy().into_owned().into_bytes()));
            } else if meta.is_file() && meta.len() < (1 << 20) {
                out.push((path.clone(), std::fs::read(&path).expect("read")));
            } else {
                // Large, sparse or not a regular file (a FIFO would block a read): its size.
                out.push((path, meta.len().to_le_bytes().to_vec()));
            }
        }
    }
    out
}

#[test]
fn run_files_that_are_devices_fifos_or_huge_are_refused_and_writers_keep_out_of_runs() {
    let root = temp("small-files");
    let s = |p: &Path| p.to_string_lossy().into_owned();
    let fifo = |path: &Path| {
        let made = Command::new("mkfifo").arg(path).status().expect("mkfifo");
        assert!(made.success());
    };
    // A finished run to break in several ways (each in a copy of its own).
    let run = root.join("run");
    let made = auglocal(&[
        "train",
        "--arch",
        "resnet20",
        "--width",
        "0.25",
        "--k",
        "4",
        "--dataset",
        "synthetic",
        "--train-limit",
        "32",
        "--test-limit",
        "16",
        "--batch",
        "16",
        "--epochs",
        "1",
        "--out",
        &s(&run),
    ]);
    assert!(made.status.success(), "{}", text(&made.stderr));
    let copy = |name: &str| {
        let to = root.join(name);
        let status = Command::new("cp")
            .arg("-a")
            .arg(&run)
            .arg(&to)
            .status()
            .expect("cp");
        assert!(status.success());
        to
    };
    let zero_config = copy("zero-config");
    std::fs::remove_file(zero_config.join("config.json")).expect("rm");
    std::os::unix::fs::symlink("/dev/zero", zero_config.join("config.json")).expect("ln");
    let fifo_latest = copy("fifo-latest");
    std::fs::remove_file(fifo_latest.join("checkpoints/latest")).expect("rm");
    fifo(&fifo_latest.join("checkpoints/latest"));
    let huge_state = copy("huge-state");
    let state = huge_state.join("checkpoints/epoch-0001/state.json");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&state)
        .expect("open")
        .set_len(20 << 30)
        .expect("a sparse 20 GB state.json");
    let huge_metrics = copy("huge-metrics");
    std::fs::OpenOptions::new()
        .append(true)
        .open(huge_metrics.join("metrics.jsonl"))
        .expect("open")
        .set_len(20 << 30)
        .expect("a sparse 20 GB metrics.jsonl");
    let config_fifo = root.join("config-fifo.json");
    fifo(&config_fifo);
    let config_huge = root.join("config-huge.json");
    std::fs::File::create(&config_huge)
        .expect("create")
        .set_len(2 << 20)
        .expect("a sparse 2 MiB config");

    let before: Vec<_> = [&zero_config, &fifo_latest, &huge_state, &huge_metrics, &run]
        .iter()
        .map(|d| snapshot(d))
        .collect();
    let mut rows = vec![
        row(&["train", "--config", "/dev/zero"], "character device"),
        (
            vec!["train".into(), "--config".into(), s(&config_fifo)],
            "FIFO",
        ),
        (
            vec!["train".into(), "--config".into(), s(&config_huge)],
            "larger than",
        ),
    ];
    for (dir, message) in [
        (&zero_config, "character device"),
        (&fifo_latest, "FIFO"),
        (&huge_state, "larger than"),
    ] {
        rows.push((vec!["train".into(), "--resume".into(), s(dir)], message));
        rows.push((vec!["eval".into(), s(dir)], message));
    }
    let zero_model = root.join("zero-model.json");
    std::os::unix::fs::symlink("/dev/zero", &zero_model).expect("ln");
    rows.push((
        vec!["predict".into(), "--model".into(), s(&zero_model), s(&root)],
        "not a regular file",
    ));
    // A device list that does not fit the stages or replicas is refused before the run
    // directory is written.
    let never = root.join("never");
    for execution in [["--pipeline", "2"], ["--data-parallel", "2"]] {
        let mut args: Vec<String> = [
            "train",
            "--dataset",
            "synthetic",
            "--devices",
            "cpu,cpu,cpu",
        ]
        .map(String::from)
        .to_vec();
        args.extend(execution.map(String::from));
        args.extend(["--out".into(), s(&never)]);
        rows.push((args, "3 devices for 2"));
    }
    // `compare` reads metrics.jsonl (a resume rewrites it from the checkpoint instead).
    rows.push((vec!["compare".into(), s(&huge_metrics)], "larger than"));
    // metrics.jsonl emptied while the checkpoint holds the epochs: said so, with the way back.
    let emptied = copy("emptied");
    std::fs::write(emptied.join("metrics.jsonl"), b"").expect("empty");
    rows.push((
        vec!["compare".into(), s(&emptied)],
        "records no epoch, though",
    ));
    // A checkpoint folder replaced by a file: a refusal, not an I/O failure.
    let filed = copy("filed");
    let latest = std::fs::read_to_string(filed.join("checkpoints/latest")).expect("latest");
    let folder = filed.join("checkpoints").join(latest.trim());
    std::fs::remove_dir_all(&folder).expect("rm");
    std::fs::write(&folder, b"not a folder").expect("write");
    for args in [
        vec!["eval".into(), s(&filed)],
        vec!["train".into(), "--resume".into(), s(&filed)],
        vec![
            "export".into(),
            s(&filed),
            "--out".into(),
            s(&root.join("x.safetensors")),
        ],
    ] {
        rows.push((args, "is not a folder, so it holds no checkpoint"));
    }
    // Outputs that are not files, or folders that cannot be written.
    rows.push((
        vec![
            "bench".into(),
            "--save-json".into(),
            "/dev/full".into(),
            "--overwrite".into(),
        ],
        "not a regular file",
    ));
    for (target, message) in [
        ("/proc/auglocal-images", "cannot write into /proc"),
        ("/etc/passwd", "not a folder"),
    ] {
        rows.push((
            vec![
                "data".into(),
                "--dataset".into(),
                "synthetic".into(),
                "--write-images".into(),
                target.into(),
            ],
            message,
        ));
    }
    // No command but `train` writes inside a run directory.
    for target in [
        run.join("metrics.jsonl"),
        run.join("checkpoints/epoch-0001/state.json"),
        run.join("checkpoints/new.json"),
    ] {
        rows.push((
            vec!["eval".into(), s(&run), "--save-json".into(), s(&target)],
            "inside the run directory",
        ));
        rows.push((
            vec!["compare".into(), s(&run), "--json".into(), s(&target)],
            "inside the run directory",
        ));
        rows.push((
            vec!["bench".into(), "--save-json".into(), s(&target)],
            "inside the run directory",
        ));
    }
    // An existing file elsewhere is replaced only with --overwrite.
    let existing = root.join("existing.json");
    std::fs::write(&existing, b"kept").expect("write");
    for args in [
        vec!["eval".into(), s(&run), "--save-json".into(), s(&existing)],
        vec!["compare".into(), s(&run), "--json".into(), s(&existing)],
        vec!["bench".into(), "--save-json".into(), s(&existing)],
    ] {
        rows.push((args, "exists; pass --overwrite to replace it"));
    }
    expect_refusals(&rows);
    assert_eq!(std::fs::read(&existing).expect("read"), b"kept");
    let after: Vec<_> = [&zero_config, &fifo_latest, &huge_state, &huge_metrics, &run]
        .iter()
        .map(|d| snapshot(d))
        .collect();
    assert!(before == after, "a refused command changed a run directory");
    assert!(!never.exists(), "a refused run wrote its directory");
    std::fs::remove_dir_all(root).expect("clean up");
}
