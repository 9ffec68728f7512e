//! What a run directory guarantees: resume continues exactly or refuses and changes nothing,
//! evaluation only reads, a run is never overwritten behind the user's back, one process
//! writes it, and a checkpoint format change is migrated or refused by name.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use auglocal_train::checkpoint::FileDigest;
use auglocal_train::progress::Silent;
use auglocal_train::{Run, TrainConfig, TrainError, evaluate_run, read_metrics};
use common::B;

/// The tiny run on fewer images, without aux-head accuracies, on the calling thread.
fn config() -> TrainConfig {
    TrainConfig {
        data: auglocal_train::DataSettings {
            train_limit: Some(32),
            test_limit: Some(16),
            workers: 0,
            ..common::tiny_run().data
        },
        aux_accuracy: false,
        ..common::tiny_run()
    }
}

fn fresh(name: &str) -> PathBuf {
    common::fresh(&format!("rundir-{name}"))
}

/// A run directory after its first epoch.
fn one_epoch(name: &str) -> PathBuf {
    let dir = fresh(name);
    let mut run = Run::<B>::create(config(), &dir, &Default::default()).expect("run");
    run.train_next(&mut Silent).expect("epoch 1");
    dir
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).expect("list").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.insert(path.clone(), fs::read(&path).unwrap_or_default());
            }
        }
    }
    files
}

fn ckpt(dir: &Path) -> PathBuf {
    dir.join("checkpoints/epoch-0001")
}

/// Resume must refuse with a bad-input error naming `names`, and change nothing.
fn assert_refused(dir: &Path, names: &str) -> TrainError {
    let before = snapshot(dir);
    let err = Run::<B>::resume(dir, &Default::default())
        .err()
        .expect("resume must refuse");
    assert!(err.is_bad_input(), "{err}");
    assert!(
        err.to_string().contains(names),
        "expected '{names}' in: {err}"
    );
    assert_eq!(
        snapshot(dir),
        before,
        "a refused resume changed the run: {err}"
    );
    // Evaluation refuses it too, and only reads.
    assert!(evaluate_run::<B>(dir, &Default::default(), false).is_err());
    assert_eq!(snapshot(dir), before);
    err
}

/// A way to damage a run directory.
type Damage<'a> = &'a dyn Fn(&Path);

#[test]
fn resume_refuses_a_run_whose_checkpoint_does_not_load_and_changes_nothing() {
    let _guard = common::seeded();
    let cases: [(&str, Damage, &str); 8] = [
        (
            "unreadable-state",
            &|d| fs::write(ckpt(d).join("state.json"), "{ not json").expect("w"),
            "state.json",
        ),
        (
            "other-format",
            &|d| {
                let path = ckpt(d).join("state.json");
                let text = fs::read_to_string(&path).expect("r");
                let text = text.replacen("\"format\": 3", "\"format\": 99", 1);
                let text = text.replacen(
                    &format!("\"release\": \"{}\"", env!("CARGO_PKG_VERSION")),
                    "\"release\": \"9.9.9\"",
                    1,
                );
                fs::write(path, text).expect("w");
            },
            "checkpoint format 99 written by auglocal 9.9.9",
        ),
        (
            "missing-state",
            &|d| fs::remove_file(ckpt(d).join("state.json")).expect("rm"),
            "state.json",
        ),
        (
            "no-checkpoints",
            &|d| fs::remove_dir_all(d.join("checkpoints")).expect("rm"),
            "metrics.jsonl records trained epochs",
        ),
        (
            "corrupt-weights",
            &|d| {
                let path = ckpt(d).join("network.mpk");
                let mut bytes = fs::read(&path).expect("r");
                let mid = bytes.len() / 2;
                bytes[mid] ^= 0x55;
                fs::write(path, bytes).expect("w");
            },
            "network.mpk: corrupt",
        ),
        (
            // Damaged, with a state.json that records the damaged bytes: the decoder itself
            // refuses, in auglocal's words rather than Burn's advice about old records.
            "truncated-weights-matching-digest",
            &|d| {
                let path = ckpt(d).join("network.mpk");
                let mut bytes = fs::read(&path).expect("r");
                bytes.truncate(bytes.len() / 2);
                fs::write(&path, &bytes).expect("w");
                let state_path = ckpt(d).join("state.json");
                let mut state: serde_json::Value =
                    serde_json::from_slice(&fs::read(&state_path).expect("r")).expect("json");
                state["files"]["network.mpk"] =
                    serde_json::to_value(FileDigest::of(&bytes)).expect("digest");
                fs::write(state_path, serde_json::to_vec_pretty(&state).expect("json")).expect("w");
            },
            "network.mpk: not a record of this network: its bytes do not decode",
        ),
        (
            "latest-is-a-path",
            &|d| {
                fs::write(
                    d.join("checkpoints/latest"),
                    "../../other-run/checkpoints/epoch-0001",
                )
                .expect("w")
            },
            "not a checkpoint folder of this run",
        ),
        (
            "latest-names-nothing",
            &|d| fs::write(d.join("checkpoints/latest"), "epoch-0007").expect("w"),
            "epoch-0007",
        ),
    ];
    for (name, damage, expected) in cases {
        let dir = one_epoch(name);
        damage(&dir);
        let err = assert_refused(&dir, expected);
        assert!(!err.to_string().contains("backward-compat"), "{err}");
        fs::remove_dir_all(dir).expect("clean up");
    }
}

#[test]
fn an_edited_config_or_plan_is_refused_naming_the_field() {
    let _guard = common::seeded();
    let dir = one_epoch("edited");
    let config_path = dir.join("config.json");
    let original = fs::read_to_string(&config_path).expect("config");
    for (from, to, field) in [
        ("\"width\": 0.25", "\"width\": 0.5", "`network.width`"),
        (
            "\"rule\": \"auglocal\"",
            "\"rule\": \"dgl\"",
            "`local.rule`",
        ),
        ("\"k\": 6", "\"k\": 5", "`local.k`"),
        ("\"seed\": 0", "\"seed\": 7", "`seed`"),
        ("\"epochs\": 2", "\"epochs\": 3", "`epochs`"),
    ] {
        assert!(original.contains(from), "{from} in {original}");
        fs::write(&config_path, original.replacen(from, to, 1)).expect("edit");
        assert_refused(&dir, field);
    }
    // The data may move and the loader's threads may change.
    fs::write(
        &config_path,
        original.replacen("\"workers\": 0", "\"workers\": 1", 1),
    )
    .expect("edit");
    drop(Run::<B>::resume(&dir, &Default::default()).expect("workers may change"));
    fs::write(&config_path, &original).expect("restore");
    let plan_path = dir.join("plan.json");
    let plan = fs::read_to_string(&plan_path).expect("plan");
    fs::write(
        &plan_path,
        plan.replacen("\"num_classes\": 10", "\"num_classes\": 11", 1),
    )
    .expect("edit");
    assert_refused(&dir, "plan.json");
    fs::remove_dir_all(dir).expect("clean up");
}

#[test]
fn a_torn_last_metrics_line_does_not_block_resume_and_the_checkpoint_is_the_truth() {
    let _guard = common::seeded();
    let dir = one_epoch("torn");
    let path = dir.join("metrics.jsonl");
    let good = fs::read_to_string(&path).expect("metrics");
    fs::write(&path, format!("{good}{{\"epoch\": 2, \"lr\": 0.0")).expect("torn");
    let err = read_metrics(&dir).expect_err("strict readers see the torn line");
    let cause = std::error::Error::source(&err).map(ToString::to_string);
    assert!(
        cause.as_deref().unwrap_or("").contains("line 2"),
        "{cause:?}"
    );
    let mut run = Run::<B>::resume(&dir, &Default::default()).expect("resumes");
    assert_eq!(run.completed(), 1);
    assert_eq!(fs::read_to_string(&path).expect("metrics"), good);
    // A line lost after its checkpoint (killed between the two) comes back from it.
    fs::write(&path, "").expect("empty");
    drop(run);
    run = Run::<B>::resume(&dir, &Default::default()).expect("resumes");
    assert_eq!(fs::read_to_string(&path).expect("metrics"), good);
    run.train(&mut Silent).expect("epoch 2");
    assert_eq!(read_metrics(&dir).expect("metrics").len(), 2);
    let entries: Vec<String> = fs::read_dir(dir.join("checkpoints"))
        .expect("list")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let mut entries = entries;
    entries.sort();
    assert_eq!(entries, ["epoch-0002", "latest"], "only the newest stays");
    drop(run);
    fs::remove_dir_all(dir).expect("clean up");
}

#[test]
fn format_1_checkpoints_are_migrated() {
    let _guard = common::seeded();
    let dir = one_epoch("format1");
    let modules = auglocal_train::read_plan(&dir).expect("plan").num_modules();
    // What auglocal 0.1.0 wrote before checkpoints recorded their configuration and metrics.
    fs::write(
        ckpt(&dir).join("state.json"),
        format!("{{\"format\": 1, \"epoch\": 1, \"seed\": 0, \"modules\": {modules}}}"),
    )
    .expect("format 1");
    let mut run = Run::<B>::resume(&dir, &Default::default()).expect("migrates");
    assert_eq!(run.completed(), 1);
    run.train(&mut Silent).expect("epoch 2");
    let state = fs::read_to_string(dir.join("checkpoints/epoch-0002/state.json")).expect("state");
    assert!(state.contains("\"format\": 3"), "{state}");
    drop(run);
    fs::remove_dir_all(dir).expect("clean up");
}

#[test]
fn evaluation_only_reads() {
    let _guard = common::seeded();
    let dir = one_epoch("eval");
    let before = snapshot(&dir);
    let result = evaluate_run::<B>(&dir, &Default::default(), true).expect("evaluates");
    assert_eq!((result.epoch, result.evaluation.images), (1, 16));
    assert!(result.checkpoint.ends_with("checkpoints/epoch-0001"));
    assert_eq!(snapshot(&dir), before, "eval wrote into the run");
    fs::remove_dir_all(dir).expect("clean up");
}

#[test]
fn a_directory_holding_any_part_of_a_run_is_never_overwritten_without_asking() {
    let _guard = common::seeded();
    for part in ["metrics.jsonl", "plan.json", "checkpoints"] {
        let dir = fresh(&format!("part-{part}"));
        fs::create_dir_all(&dir).expect("dir");
        if part == "checkpoints" {
            fs::create_dir_all(dir.join(part).join("epoch-0003")).expect("dir");
        } else {
            fs::write(dir.join(part), "precious").expect("write");
        }
        fs::write(dir.join("notes.txt"), "mine").expect("write");
        let before = snapshot(&dir);
        let err = Run::<B>::create(config(), &dir, &Default::default())
            .err()
            .expect("refused");
        assert!(
            err.is_bad_input() && err.to_string().contains("`Run::overwrite`"),
            "{err}"
        );
        assert_eq!(snapshot(&dir), before);
        let run = Run::<B>::overwrite(config(), &dir, &Default::default()).expect("overwrite");
        assert_eq!(
            fs::read_to_string(dir.join("notes.txt")).expect("kept"),
            "mine"
        );
        assert!(!dir.join("checkpoints/epoch-0003").exists());
        assert_eq!(fs::read(dir.join("metrics.jsonl")).expect("metrics"), b"");
        drop(run);
        fs::remove_dir_all(dir).expect("clean up");
    }
}

#[test]
fn a_creation_killed_midway_leaves_no_run_and_the_same_command_starts_it() {
    let _guard = common::seeded();
    // The files of a whole run, for the states a kill -9 leaves at each point of a creation.
    let whole = fresh("whole");
    drop(Run::<B>::create(config(), &whole, &Default::default()).expect("run"));
    let config_json = fs::read(whole.join("config.json")).expect("config");
    let plan_json = fs::read(whole.join("plan.json")).expect("plan");
    let half = |bytes: &[u8]| bytes[..bytes.len() / 2].to_vec();
    let states: [&[(&str, Vec<u8>)]; 5] = [
        &[("creating", vec![])],
        &[("creating", vec![]), ("plan.tmp", half(&plan_json))],
        &[("creating", vec![]), ("plan.json", plan_json.clone())],
        &[
            ("creating", vec![]),
            ("plan.json", plan_json.clone()),
            ("metrics.jsonl", vec![]),
        ],
        &[
            ("creating", vec![]),
            ("plan.json", plan_json.clone()),
            ("metrics.jsonl", vec![]),
            ("config.tmp", half(&config_json)),
        ],
    ];
    for (i, files) in states.into_iter().enumerate() {
        let dir = fresh(&format!("killed-{i}"));
        fs::create_dir_all(&dir).expect("dir");
        for (name, bytes) in files
            .iter()
            .chain(&[("lock", vec![]), ("notes.txt", vec![1])])
        {
            fs::write(dir.join(name), bytes).expect("write");
        }
        let err = assert_refused(&dir, "interrupted");
        assert!(err.to_string().contains("start the run again"), "{err}");
        drop(Run::<B>::create(config(), &dir, &Default::default()).expect("starts again"));
        let mut names: Vec<_> = fs::read_dir(&dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name().into_string().expect("name"))
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "config.json",
                "lock",
                "metrics.jsonl",
                "notes.txt",
                "plan.json"
            ],
            "state {i}"
        );
        assert_eq!(fs::read(dir.join("plan.json")).expect("plan"), plan_json);
        assert_eq!(
            fs::read(dir.join("config.json")).expect("config"),
            config_json
        );
        fs::remove_dir_all(dir).expect("clean up");
    }
    // Killed after config.json, before the marker went: the run is whole, and resumes.
    fs::write(whole.join("creating"), "").expect("marker");
    let err = Run::<B>::create(config(), &whole, &Default::default())
        .err()
        .expect("a whole run is never started over");
    assert!(err.to_string().contains("already holds a run"), "{err}");
    drop(Run::<B>::resume(&whole, &Default::default()).expect("resumes"));
    assert!(!whole.join("creating").exists());
    fs::remove_dir_all(whole).expect("clean up");
}

#[test]
fn one_process_writes_a_run() {
    let _guard = common::seeded();
    let dir = fresh("locked");
    let run = Run::<B>::create(config(), &dir, &Default::default()).expect("run");
    let before = snapshot(&dir);
    for err in [
        Run::<B>::resume(&dir, &Default::default()).err(),
        Run::<B>::overwrite(config(), &dir, &Default::default()).err(),
    ] {
        let err = err.expect("refused while held");
        assert!(
            err.to_string().contains("another auglocal process"),
            "{err}"
        );
    }
    assert_eq!(snapshot(&dir), before);
    drop(run);
    drop(Run::<B>::resume(&dir, &Default::default()).expect("free again"));
    fs::remove_dir_all(dir).expect("clean up");
}
