//! The `auglocal` binary, run as a user runs it.

mod common;

use std::process::Command;

use common::{auglocal, auglocal_with, stderr, stdout, temp};

#[test]
fn plan_prints_the_resnet32_table() {
    let out = auglocal(&[
        "plan",
        "--arch",
        "resnet32",
        "--rule",
        "auglocal",
        "--k",
        "16",
        "--depth",
        "2",
        "--pyramid",
        "0.5",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("14 gradient-isolated modules"), "{text}");
    assert!(
        text.contains("| 0      | 0     |         2 | 8, 15"),
        "{text}"
    );
    assert!(text.contains("| 13     | 13-15 |"), "{text}");
    assert!(text.contains("466,906 params"), "{text}");
}

#[test]
fn plan_works_for_every_architecture_and_rule() {
    for arch in ["resnet20", "resnet32", "resnet44", "resnet56", "resnet110"] {
        for rule in ["bp", "greedy", "dgl", "auglocal"] {
            let out = auglocal(&["plan", "--arch", arch, "--rule", rule]);
            assert!(out.status.success(), "{arch} {rule}: {}", stderr(&out));
        }
    }
}

#[test]
fn plan_takes_the_classes_of_the_family_unless_told() {
    for (args, header) in [
        (
            &["--arch", "resnet34"][..],
            "resnet34 (17 units, 1000 classes, 224x224 input)",
        ),
        (
            &["--arch", "vgg11"][..],
            "vgg11 (8 units, 1000 classes, 224x224 input)",
        ),
        (
            &["--arch", "resnet32"][..],
            "resnet32 (16 units, 10 classes, 32x32 input)",
        ),
        (
            &["--arch", "resnet34", "--classes", "100"][..],
            "resnet34 (17 units, 100 classes",
        ),
    ] {
        let out = auglocal(&[&["plan"][..], args].concat());
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let text = stdout(&out);
        assert!(text.starts_with(header), "{args:?}: {text}");
    }
}

#[test]
fn plan_json_holds_modules_and_totals() {
    let out = auglocal(&[
        "plan",
        "--arch",
        "resnet110",
        "--k",
        "55",
        "--depth",
        "3",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    let modules = plan["modules"].as_array().expect("modules");
    assert_eq!(modules.len(), 52);
    assert_eq!(
        modules[0]["aux"]["selected_units"],
        serde_json::json!([18, 36, 54])
    );
    assert_eq!(modules[0]["aux"]["blocks"][1]["stride"], 2);
    assert!(modules[51]["aux"].is_null());
    assert_eq!(plan["totals"]["backbone"]["params"], 1_730_714);
    assert_eq!(plan["config"]["rule"], "auglocal");
}

#[test]
fn bad_input_is_a_clear_error_with_exit_code_2() {
    let cases: &[(&[&str], &str)] = &[
        (&["--k", "17"], "K = 17 is larger than the 16 units"),
        (&["--k", "0"], "must be at least 1"),
        (&["--depth", "0"], "aux depth d must be at least 1"),
        (
            &["--pyramid", "1.5"],
            "pyramid coefficient must be in [0, 1]",
        ),
        (
            &["--pyramid", "-0.5"],
            "pyramid coefficient must be in [0, 1]",
        ),
        (
            &["--pyramid", "lots"],
            "expected a coefficient in [0, 1] or 'none'",
        ),
        (&["--arch", "resnet33"], "unknown architecture 'resnet33'"),
        (&["--rule", "hebbian"], "unknown rule 'hebbian'"),
        (&["--k", "3", "--depth", "2"], "use K in 4..=16"),
        (&["--depth", "15"], "d <= 14"),
        (&["--classes", "1"], "at least 2"),
        (&["--width", "0"], "width multiplier"),
    ];
    for (args, message) in cases {
        let mut full = vec!["plan"];
        full.extend_from_slice(args);
        let out = auglocal(&full);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(message),
            "{args:?}: expected '{message}' in: {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn plan_help_explains_each_flag() {
    let out = auglocal(&["plan", "--help"]);
    assert!(out.status.success());
    let text = stdout(&out);
    for phrase in [
        "--arch",
        "gradient-isolated local modules",
        "uniformly sampled from the subsequent layers",
        "pyramidal depth coefficient",
        "--json",
    ] {
        assert!(text.contains(phrase), "missing '{phrase}' in:\n{text}");
    }
}

#[test]
fn data_reads_the_synthetic_set_and_explains_missing_files() {
    let out = auglocal(&["data", "--dataset", "synthetic"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("5,000 images") && text.contains("10 classes"),
        "{text}"
    );

    let out = auglocal(&[
        "data",
        "--dataset",
        "svhn",
        "--data-dir",
        "/nonexistent/data",
    ]);
    // Missing data is the user's to fix: a refusal, exit status 2.
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("/nonexistent/data/svhn") && err.contains("train_32x32.mat"),
        "{err}"
    );

    // A misspelt kernel choice is refused, not taken as the default.
    let out = auglocal_with(&["plan"], &[("AUGLOCAL_CONV_BACKWARD", "Burn")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("AUGLOCAL_CONV_BACKWARD=\"Burn\": expected `fast` or `burn`"),
        "{}",
        stderr(&out)
    );
    // Under today's name too, which wins over the earlier one.
    let out = auglocal_with(
        &["plan"],
        &[
            ("AUGLOCAL_KERNELS", "gemm"),
            ("AUGLOCAL_CONV_BACKWARD", "burn"),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("AUGLOCAL_KERNELS=\"gemm\": expected `fast` or `burn`"),
        "{}",
        stderr(&out)
    );

    let out = auglocal(&["data", "--dataset", "imagenet21k"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown data set 'imagenet21k'"),
        "{}",
        stderr(&out)
    );
}

/// 32 synthetic training and 16 test images, batch 16.
const TINY_SYNTHETIC: &[&str] = &[
    "--dataset",
    "synthetic",
    "--train-limit",
    "32",
    "--test-limit",
    "16",
    "--batch",
    "16",
];

const QUICK: &[&str] = &[
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
    "--train-limit",
    "64",
    "--test-limit",
    "32",
    "--batch",
    "16",
    "--lr",
    "0.05",
    "--schedule",
    "constant",
];

#[test]
fn train_writes_a_run_directory_that_resumes_and_evaluates() {
    let out = temp("train");
    let dir = out.to_str().expect("utf-8 path");
    let mut args = vec!["train", "--epochs", "2", "--out", dir];
    args.extend_from_slice(QUICK);
    let run = auglocal(&args);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(
        stdout(&run).contains("Done: test accuracy"),
        "{}",
        stdout(&run)
    );
    let err = stderr(&run);
    assert!(
        err.contains("gradient-isolated modules") && err.contains("epoch 2:"),
        "{err}"
    );
    for file in [
        "config.json",
        "plan.json",
        "metrics.jsonl",
        "checkpoints/latest",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).expect("metrics");
    assert_eq!(metrics.lines().count(), 2);
    let first: serde_json::Value =
        serde_json::from_str(metrics.lines().next().expect("line")).expect("JSON line");
    assert!(
        first["peak_memory"]["heap_bytes"]
            .as_u64()
            .is_some_and(|b| b > 0),
        "{first}"
    );
    assert_eq!(first["loss"].as_array().map(Vec::len), Some(4));

    let again = auglocal(&["train", "--resume", dir]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stdout(&again).contains("already completed 2 epochs"),
        "{}",
        stdout(&again)
    );

    let eval = auglocal(&["eval", dir, "--aux-accuracy"]);
    assert!(eval.status.success(), "{}", stderr(&eval));
    let text = stdout(&eval);
    assert!(
        text.contains("epoch 2, test accuracy") && text.contains("aux head of module  2"),
        "{text}"
    );
    // JSON for scripts, on stdout or in a file the user names; the run is not touched.
    let metrics_before = std::fs::read(out.join("metrics.jsonl")).expect("metrics");
    let saved = temp("eval-json").with_extension("json");
    let saved_str = saved.to_str().expect("utf-8 path");
    let eval = auglocal(&["eval", dir, "--json", "--save-json", saved_str]);
    assert!(eval.status.success(), "{}", stderr(&eval));
    let report: serde_json::Value = serde_json::from_slice(&eval.stdout).expect("JSON");
    assert_eq!(report["epoch"], 2);
    assert!(report["test_accuracy"].as_f64().is_some(), "{report}");
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&saved).expect("saved")).expect("JSON");
    assert_eq!(file, report);
    assert_eq!(
        std::fs::read(out.join("metrics.jsonl")).expect("metrics"),
        metrics_before
    );
    std::fs::remove_file(saved).expect("clean up");
    std::fs::remove_dir_all(out).expect("clean up");
}

#[test]
fn train_data_parallel_records_its_replicas_and_resumes_with_another_count() {
    let out = temp("train-dp");
    let dir = out.to_str().expect("utf-8 path");
    let mut args = vec![
        "train",
        "--epochs",
        "1",
        "--out",
        dir,
        "--data-parallel",
        "2",
        "--devices",
        "cpu,cpu",
        "--threads",
        "1",
    ];
    args.extend_from_slice(QUICK);
    let config = |out: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).expect("read"))
            .expect("json")
    };
    let run = auglocal(&args);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(
        stderr(&run).contains("Data-parallel: 2 replicas, 1 thread(s) each"),
        "{}",
        stderr(&run)
    );
    assert_eq!(
        config(&out)["execution"]["strategy"],
        serde_json::json!({"data_parallel": {"replicas": 2}})
    );
    // Resumed with another replica count (the run is complete, so nothing trains; the
    // library's tests resume unfinished runs).
    let again = auglocal(&["train", "--resume", dir, "--data-parallel", "1"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(
        config(&out)["execution"]["strategy"],
        serde_json::json!({"data_parallel": {"replicas": 1}})
    );
    std::fs::remove_dir_all(out).expect("clean up");

    for (extra, message) in [
        (
            &["--pipeline", "2", "--data-parallel", "2"][..],
            "cannot be used with",
        ),
        (
            &["--data-parallel", "0"][..],
            "data-parallel replicas: give 1 to",
        ),
        (
            &["--data-parallel", "3", "--devices", "cpu,cpu"][..],
            "2 devices for 3",
        ),
    ] {
        let mut full = vec!["train", "--out", "/nonexistent/never-written"];
        full.extend_from_slice(QUICK);
        full.extend_from_slice(extra);
        let out = auglocal(&full);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(message),
            "{extra:?}: {}",
            stderr(&out)
        );
    }
    assert!(!std::path::Path::new("/nonexistent/never-written").exists());
}

#[test]
fn train_settings_come_from_a_config_file_and_flags_override_them() {
    let out = temp("config");
    std::fs::create_dir_all(&out).expect("dir");
    let file = out.join("settings.json");
    std::fs::write(
        &file,
        r#"{"epochs": 1, "rule": "greedy", "k": 3, "batch": 32}"#,
    )
    .expect("w");
    let run_dir = out.join("run");
    let mut args = vec![
        "train",
        "--config",
        file.to_str().expect("utf-8"),
        "--out",
        run_dir.to_str().expect("utf-8"),
    ];
    args.extend_from_slice(&QUICK[..4]); // --arch, --width
    args.extend_from_slice(TINY_SYNTHETIC);
    let run = auglocal(&args);
    assert!(run.status.success(), "{}", stderr(&run));
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("config.json")).expect("read"))
            .expect("json");
    assert_eq!(config["format"], 2);
    assert_eq!(config["local"]["rule"], "greedy");
    assert_eq!(config["local"]["k"], 3);
    assert_eq!(config["batch"], 16, "the flag overrides the file");
    assert_eq!(config["epochs"], 1);

    // The sections of a run's config.json, as a file: the same run.
    std::fs::write(
        &file,
        r#"{"format": 2, "epochs": 1, "local": {"rule": "greedy", "k": 3}, "batch": 32}"#,
    )
    .expect("w");
    args.insert(5, "--overwrite");
    let again = auglocal(&args);
    assert!(again.status.success(), "{}", stderr(&again));
    let nested: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("config.json")).expect("read"))
            .expect("json");
    assert_eq!(nested, config);
    std::fs::remove_dir_all(out).expect("clean up");
}

#[test]
fn train_refuses_bad_configurations_before_any_work() {
    let cases: &[(&[&str], &str)] = &[
        (&["--epochs", "0"], "epochs must be in 1..="),
        (&["--lr", "-1"], "learning rate"),
        (&["--k", "40"], "larger than the 16 units"),
        (&["--rule", "auglocal", "--k", "3"], "K - d"),
    ];
    for (args, message) in cases {
        let mut full = vec![
            "train",
            "--dataset",
            "synthetic",
            "--out",
            "/nonexistent/never-written",
        ];
        full.extend_from_slice(args);
        let out = auglocal(&full);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(message), "{args:?}: {}", stderr(&out));
    }
    assert!(!std::path::Path::new("/nonexistent/never-written").exists());
    let out = auglocal(&["train", "--resume", "/nonexistent/run", "--epochs", "3"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--resume takes no other flag"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bench_measures_each_rule_apart_and_draws_a_chart() {
    let dir = temp("bench");
    std::fs::create_dir_all(&dir).expect("dir");
    let (json, png) = (dir.join("bench.json"), dir.join("bench.png"));
    let out = auglocal(&[
        "bench",
        "--arch",
        "resnet20",
        "--width",
        "0.25",
        "--rules",
        "bp,auglocal",
        "--k",
        "6",
        "--batch",
        "8",
        "--steps",
        "2",
        "--conv",
        "burn,fast",
        "--threads",
        "1",
        "--save-json",
        json.to_str().expect("utf-8"),
        "--plot",
        png.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    // Each rule with each kernel, side by side, each kernel's ratios to bp with the same one.
    for row in [
        "| bp | burn | - | 1 |",
        "| bp | fast | - | 1 |",
        "| auglocal | burn | 6 | 4 |",
    ] {
        assert!(table.contains(row), "{row} in {table}");
    }
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("parse");
    let results = report["results"].as_array().expect("results");
    let convs: Vec<_> = results
        .iter()
        .map(|r| (r["rule"].clone(), r["conv"].clone()))
        .collect();
    assert_eq!(
        convs,
        [
            ("bp", "burn"),
            ("bp", "fast"),
            ("auglocal", "burn"),
            ("auglocal", "fast")
        ]
        .map(|(r, c)| (serde_json::json!(r), serde_json::json!(c)))
    );
    for r in results {
        assert!(r["peak_heap_bytes"].as_u64().is_some_and(|b| b > 0), "{r}");
        assert_eq!(r["step_seconds"].as_array().map(Vec::len), Some(2));
    }
    let ratios = report["ratios_to_bp"].as_array().expect("ratios");
    assert_eq!(ratios.len(), 4);
    for (i, conv) in [(0, "burn"), (1, "fast")] {
        assert_eq!(ratios[i]["conv"], conv);
        assert_eq!(ratios[i]["images_per_second"], 1.0, "bp over bp, {conv}");
    }
    let bytes = std::fs::read(&png).expect("chart");
    assert!(bytes.starts_with(b"\x89PNG"), "a PNG file");
    std::fs::remove_dir_all(dir).expect("clean up");
}

#[test]
fn gpu_script_runs_end_to_end_on_the_cpu_with_tiny_settings() {
    let dir = temp("gpu-script");
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/gpu-bench.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg(&dir)
        .env("AUGLOCAL_BIN", env!("CARGO_BIN_EXE_auglocal"))
        .env("AUGLOCAL_DEVICE", "cpu")
        .env("AUGLOCAL_BATCH", "4")
        .env("AUGLOCAL_STEPS", "1")
        .env("AUGLOCAL_WIDTH", "0.125")
        .output()
        .expect("bash runs the script");
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = std::fs::read_to_string(dir.join("README.md")).expect("summary");
    for name in ["resnet32", "resnet110"] {
        assert!(summary.contains(&format!("## {name}")), "{summary}");
        let report: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("{name}.json"))).expect("json"),
        )
        .expect("parse");
        assert_eq!(report["results"][1]["rule"], "auglocal");
    }
    assert!(
        summary.contains("| auglocal | fast | 55 | 52 |"),
        "{summary}"
    );
    std::fs::remove_dir_all(dir).expect("clean up");
}

#[test]
fn compare_summarises_runs_in_a_table_json_and_charts() {
    let dir = temp("compare");
    let mut runs = Vec::new();
    for rule in ["bp", "auglocal"] {
        let out = dir.join(rule);
        let out_str = out.to_str().expect("utf-8").to_string();
        let mut args = vec![
            "train",
            "--epochs",
            "1",
            "--aux-accuracy",
            "--out",
            &out_str,
        ];
        args.extend_from_slice(&QUICK[..4]);
        args.extend_from_slice(&["--rule", rule, "--k", "6"]);
        args.extend_from_slice(TINY_SYNTHETIC);
        let run = auglocal(&args);
        assert!(run.status.success(), "{}", stderr(&run));
        runs.push(out_str);
    }
    let json = dir.join("cmp.json");
    let (budget, heads) = (dir.join("budget.png"), dir.join("heads.png"));
    let mut args = vec!["compare"];
    args.extend(runs.iter().map(String::as_str));
    args.extend([
        "--json",
        json.to_str().expect("utf-8"),
        "--plot-budget",
        budget.to_str().expect("utf-8"),
        "--plot-heads",
        heads.to_str().expect("utf-8"),
    ]);
    let out = auglocal(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    assert!(
        table.contains("| bp | - | 1 | 32 x 1 |")
            && table.contains("| auglocal | 6 | 4 | 32 x 1 |"),
        "{table}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("parse");
    let rows = summary.as_array().expect("an array of runs");
    assert_eq!(rows.len(), 2);
    let aux = rows
        .iter()
        .find(|r| r["rule"] == "auglocal")
        .expect("the auglocal run");
    assert_eq!(aux["budget"], 32);
    assert_eq!(aux["aux_test_accuracy"].as_array().map(Vec::len), Some(3));
    assert_eq!(aux["aux_units"], serde_json::json!([0, 1, 2]));
    assert!(
        aux["command"]
            .as_str()
            .is_some_and(|c| c.contains("config.json"))
    );
    for png in [budget, heads] {
        assert!(std::fs::read(&png).expect("chart").starts_with(b"\x89PNG"));
    }
    std::fs::remove_dir_all(dir).expect("clean up");
}

/// The repository's Fashion-MNIST, or `None` (with a loud note) when it was not fetched; with
/// `AUGLOCAL_REQUIRE_DATA=1` (CI) a missing data set fails the test.
fn fashion_mnist_fetched() -> bool {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/fashion-mnist");
    if dir.is_dir() {
        return true;
    }
    let message = format!("{} is missing: run scripts/fetch-data.sh", dir.display());
    if std::env::var("AUGLOCAL_REQUIRE_DATA").is_ok_and(|v| v == "1") {
        panic!("{message} (AUGLOCAL_REQUIRE_DATA=1)");
    }
    eprintln!("\n*** SKIPPED compare-rules script test: {message} ***\n");
    false
}

#[test]
fn compare_script_trains_every_rule_at_every_budget_and_resumes() {
    if !fashion_mnist_fetched() {
        return;
    }
    let dir = temp("compare-script");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let run_script = || {
        let out = Command::new("bash")
            .arg(root.join("scripts/compare-rules.sh"))
            .arg(dir.join("runs"))
            .current_dir(&root)
            .env("AUGLOCAL_BIN", env!("CARGO_BIN_EXE_auglocal"))
            .env("AUGLOCAL_BUDGETS", "32x1 64x1")
            .env("AUGLOCAL_TEST_LIMIT", "48")
            .env("AUGLOCAL_WIDTH", "0.125")
            .env("AUGLOCAL_RESULTS", dir.join("results"))
            .output()
            .expect("bash runs the script");
        assert!(out.status.success(), "{}", stderr(&out));
        stderr(&out)
    };
    let first = run_script();
    let json = dir.join("results/fashion-mnist-resnet32.json");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("parse");
    let rows = summary.as_array().expect("an array of runs");
    let got: Vec<(String, u64)> = rows
        .iter()
        .map(|r| {
            assert_eq!(r["test_images"], 48);
            (
                r["rule"].as_str().expect("rule").into(),
                r["budget"].as_u64().expect("budget"),
            )
        })
        .collect();
    let want: Vec<(String, u64)> = [32, 64]
        .into_iter()
        .flat_map(|b| {
            ["bp", "greedy", "dgl", "infopro", "predsim", "auglocal"].map(|r| (r.to_string(), b))
        })
        .collect();
    assert_eq!(got, want, "{first}");
    let table = std::fs::read_to_string(dir.join("results/fashion-mnist-resnet32.md")).expect("md");
    assert!(table.contains("| auglocal | 16 | 14 | 64 x 1 |"), "{table}");
    for png in ["budget", "heads"] {
        let path = dir.join(format!("results/fashion-mnist-resnet32-{png}.png"));
        assert!(std::fs::read(&path).expect("chart").starts_with(b"\x89PNG"));
    }
    // A second call trains nothing and rewrites the same figures.
    let second = run_script();
    assert_eq!(second.matches("resuming").count(), 12, "{second}");
    assert!(!second.contains("epoch 1:"), "{second}");
    let again: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("parse");
    assert_eq!(again, summary);
    std::fs::remove_dir_all(dir).expect("clean up");
}

/// A binary built without the `mpi` feature, started by an MPI launcher, refuses to train
/// rather than train one separate run per process.
#[cfg(not(feature = "mpi"))]
#[test]
fn under_mpirun_a_build_without_mpi_refuses_to_train() {
    let dir = temp("no-mpi");
    let out = auglocal_with(
        &[
            "train",
            "--dataset",
            "synthetic",
            "--out",
            dir.to_str().expect("utf-8"),
        ],
        &[("OMPI_COMM_WORLD_SIZE", "2"), ("OMPI_COMM_WORLD_RANK", "0")],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("started by mpirun, but this auglocal was built without MPI"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.exists());
    let out = auglocal_with(&["nodes"], &[("PMI_SIZE", "2")]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = auglocal(&["nodes"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("start it with `mpirun -np M auglocal nodes`"),
        "{}",
        stderr(&out)
    );
}
