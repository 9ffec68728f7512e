//! The files of a run directory, their readers, and its lock.
//!
//! ```text
//! RUN/config.json      the configuration (written once, at creation)
//! RUN/plan.json        the plan (written once)
//! RUN/metrics.jsonl    one line per completed epoch (appended after its checkpoint)
//! RUN/checkpoints/     see `checkpoint`
//! RUN/lock             held by the process that trains the run
//! RUN/creating         present only while the run is being created
//! ```
//!
//! A run exists whole or not at all. Its creation writes `creating`, then `plan.json`, the
//! empty `metrics.jsonl` and, last, `config.json`, and then removes `creating`. A directory
//! with `creating` but no `config.json` is what an interrupted creation left (a process killed
//! mid-way): it holds no run, and the next creation removes those files.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use auglocal_plan::Plan;
use serde::de::DeserializeOwned;

use crate::bounded::{MAX_CONFIG_BYTES, MAX_METRICS_BYTES, MAX_PLAN_BYTES, read_bounded};
use crate::checkpoint::{CHECKPOINTS, write_atomic};
use crate::metrics::EpochMetrics;
use crate::{TrainConfig, TrainError};

/// The run's configuration.
pub const CONFIG: &str = "config.json";
/// The run's plan.
pub const PLAN: &str = "plan.json";
/// The run's metrics, one line per epoch.
pub const METRICS: &str = "metrics.jsonl";
/// The lock file held by the process that trains the run.
pub const LOCK: &str = "lock";
/// The marker of a run being created (see the module's documentation).
pub const CREATING: &str = "creating";

fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

/// Whether `dir` holds what an interrupted creation left, and no run.
pub fn is_unfinished(dir: &Path) -> bool {
    exists(&dir.join(CREATING)) && !exists(&dir.join(CONFIG)) && !exists(&dir.join(CHECKPOINTS))
}

/// The entries of `dir` that belong to a run (config, plan, metrics, checkpoints): empty if
/// `dir` holds no run (the lock file alone is not a run, nor what an interrupted creation
/// left).
pub fn run_entries(dir: &Path) -> Vec<&'static str> {
    if is_unfinished(dir) {
        return Vec::new();
    }
    [CONFIG, PLAN, METRICS, CHECKPOINTS]
        .into_iter()
        .filter(|name| exists(&dir.join(name)))
        .collect()
}

fn remove(path: &Path) -> Result<(), TrainError> {
    let result = if path.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    match result {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(TrainError::io(path, e)),
        _ => Ok(()),
    }
}

/// Removes the entries of a run from `dir` (for `--overwrite`), leaving other files alone.
pub(crate) fn remove_run(dir: &Path) -> Result<(), TrainError> {
    for name in run_entries(dir) {
        remove(&dir.join(name))?;
    }
    remove_unfinished(dir)
}

/// Removes what an interrupted creation left in `dir`, if it holds that and no run: the
/// files a creation writes, their temporary files, and the marker last.
pub(crate) fn remove_unfinished(dir: &Path) -> Result<(), TrainError> {
    if !is_unfinished(dir) {
        return Ok(());
    }
    for name in [PLAN, METRICS, CONFIG] {
        remove(&dir.join(name))?;
        remove(&dir.join(name).with_extension("tmp"))?;
    }
    remove(&dir.join(CREATING))
}

/// Writes a new run's files in `dir` (which holds no run) in the order that keeps a run whole
/// or absent: `creating`, `plan.json`, `metrics.jsonl`, `config.json`, then `creating` is
/// removed. `config` and `plan` are the JSON texts.
pub(crate) fn write_new(dir: &Path, config: &[u8], plan: &[u8]) -> Result<(), TrainError> {
    write_atomic(&dir.join(CREATING), b"")?;
    write_atomic(&dir.join(PLAN), plan)?;
    write_atomic(&dir.join(METRICS), b"")?;
    write_atomic(&dir.join(CONFIG), config)?;
    finish_creation(dir)
}

/// Removes the marker of a creation from a run whose `config.json` is written.
pub(crate) fn finish_creation(dir: &Path) -> Result<(), TrainError> {
    remove(&dir.join(CREATING))
}

/// The lock of a run directory: while it is held, no other auglocal process trains, resumes
/// or overwrites the run. The operating system releases it when the process ends, however it
/// ends; the (empty) file stays.
#[derive(Debug)]
pub struct RunLock {
    _file: fs::File,
}

impl RunLock {
    /// Takes the lock of `dir`, creating the lock file if needed; refuses if another process
    /// holds it.
    pub fn acquire(dir: &Path) -> Result<Self, TrainError> {
        let path = dir.join(LOCK);
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| {
                TrainError::refused(
                    &path,
                    format!(
                        "cannot be created ({e}): {} must be a folder auglocal can write in",
                        dir.display()
                    ),
                )
            })?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(fs::TryLockError::WouldBlock) => Err(TrainError::refused(
                &path,
                format!(
                    "another auglocal process is training {} (it holds this lock); wait for it \
                     to finish or stop it",
                    dir.display()
                ),
            )),
            Err(fs::TryLockError::Error(e)) => Err(TrainError::io(&path, e)),
        }
    }
}

/// A JSON file of a run directory of at most `limit` bytes; a missing, oversized or malformed
/// file is a refusal naming it.
fn read_json<T: DeserializeOwned>(dir: &Path, name: &str, limit: u64) -> Result<T, TrainError> {
    let path = dir.join(name);
    let missing = || {
        let why = if is_unfinished(dir) {
            "missing: the creation of this run was interrupted before it finished, and \
             nothing was trained; start the run again"
                .to_string()
        } else {
            format!(
                "missing; is {} a run directory (written by `auglocal train`)?",
                dir.display()
            )
        };
        TrainError::refused(&path, why)
    };
    let bytes = match read_bounded(&path, limit, &format!("a run's {name}")) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Err(missing()),
        Err(TrainError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotADirectory =>
        {
            return Err(missing());
        }
        Err(e) => return Err(e),
    };
    serde_json::from_slice(&bytes).map_err(|source| TrainError::Json { path, source })
}

/// The configuration of a run directory (`config.json`), not yet validated.
pub fn read_config(dir: &Path) -> Result<TrainConfig, TrainError> {
    read_json(dir, CONFIG, MAX_CONFIG_BYTES)
}

/// The plan of a run directory (`plan.json`).
pub fn read_plan(dir: &Path) -> Result<Plan, TrainError> {
    read_json(dir, PLAN, MAX_PLAN_BYTES)
}

/// `plan.json` as JSON, of any layout.
pub(crate) fn read_plan_json(dir: &Path) -> Result<serde_json::Value, TrainError> {
    read_json(dir, PLAN, MAX_PLAN_BYTES)
}

/// What every layout of `plan.json` records alike: the network's name, classes, width, image
/// size and unit count, each module's units and backbone cost, each aux net's isolation point,
/// depth, selected units and cost, and the totals. Comparing digests checks that a plan
/// written before the unit descriptions changed is the plan of today's configuration.
pub(crate) fn plan_digest(plan: &serde_json::Value) -> serde_json::Value {
    use serde_json::{Map, Value};
    fn pick(value: &Value, keys: &[&str]) -> Value {
        let mut out = Map::new();
        for key in keys {
            out.insert(
                (*key).to_string(),
                value.get(key).cloned().unwrap_or(Value::Null),
            );
        }
        Value::Object(out)
    }
    let network = &plan["network"];
    let mut net = pick(
        network,
        &["arch", "num_classes", "width_multiplier", "image_size"],
    );
    net["units"] = network["units"]
        .as_array()
        .map_or(Value::Null, |u| Value::from(u.len()));
    let modules: Vec<Value> = plan["modules"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .map(|m| {
                    let mut digest = pick(m, &["index", "first_unit", "last_unit", "backbone"]);
                    digest["aux"] = match m.get("aux") {
                        Some(aux) if !aux.is_null() => {
                            pick(aux, &["isolation_point", "depth", "selected_units", "cost"])
                        }
                        _ => Value::Null,
                    };
                    digest
                })
                .collect()
        })
        .unwrap_or_default();
    serde_json::json!({
        "network": net,
        "config": plan["config"],
        "modules": modules,
        "totals": plan["totals"],
    })
}

/// The metrics of a run directory, one per line of `metrics.jsonl` (none if it is missing).
/// An error names the file and the line, counted from the start of the file.
pub fn read_metrics(dir: &Path) -> Result<Vec<EpochMetrics>, TrainError> {
    let path = dir.join(METRICS);
    let (metrics, torn) = read_metrics_tolerant(dir)?;
    match torn {
        Some(source) => Err(TrainError::Json { path, source }),
        None => Ok(metrics),
    }
}

/// The metrics up to the first line that does not parse, and that line's error (a run killed
/// while appending leaves a torn last line).
pub(crate) fn read_metrics_tolerant(
    dir: &Path,
) -> Result<(Vec<EpochMetrics>, Option<serde_json::Error>), TrainError> {
    let path = dir.join(METRICS);
    let Some(bytes) = read_bounded(&path, MAX_METRICS_BYTES, "a run's metrics.jsonl")? else {
        return Ok((Vec::new(), None));
    };
    let text = String::from_utf8(bytes).map_err(|e| {
        TrainError::io(
            &path,
            std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        )
    })?;
    // One stream over the whole file, so that errors carry the file's own line numbers.
    let mut metrics = Vec::new();
    for item in serde_json::Deserializer::from_str(&text).into_iter::<EpochMetrics>() {
        match item {
            Ok(m) => metrics.push(m),
            Err(e) => return Ok((metrics, Some(e))),
        }
    }
    Ok((metrics, None))
}

/// Whether `metrics.jsonl` records anything (a non-blank line, parsable or not).
pub(crate) fn has_metrics(dir: &Path) -> Result<bool, TrainError> {
    let path = dir.join(METRICS);
    Ok(
        read_bounded(&path, MAX_METRICS_BYTES, "a run's metrics.jsonl")?
            .is_some_and(|bytes| bytes.iter().any(|b| !b.is_ascii_whitespace())),
    )
}

/// `metrics.jsonl` as it should read for `history`.
pub(crate) fn metrics_text(history: &[EpochMetrics]) -> Result<String, TrainError> {
    let mut text = String::new();
    for m in history {
        let line = serde_json::to_string(m).map_err(|source| TrainError::Json {
            path: PathBuf::from(METRICS),
            source,
        })?;
        text.push_str(&line);
        text.push('\n');
    }
    Ok(text)
}

/// Rewrites `metrics.jsonl` to hold exactly `history`, unless it already does.
pub(crate) fn write_metrics(dir: &Path, history: &[EpochMetrics]) -> Result<(), TrainError> {
    let path = dir.join(METRICS);
    let text = metrics_text(history)?;
    let current = read_bounded(&path, MAX_METRICS_BYTES, "a run's metrics.jsonl");
    if current.is_ok_and(|current| current.as_deref() == Some(text.as_bytes())) {
        return Ok(());
    }
    write_atomic(&path, text.as_bytes())
}

/// Appends one epoch's line to `metrics.jsonl` and syncs it.
pub(crate) fn append_metrics(dir: &Path, metrics: &EpochMetrics) -> Result<(), TrainError> {
    let path = dir.join(METRICS);
    let text = metrics_text(std::slice::from_ref(metrics))?;
    let mut file = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .map_err(|e| TrainError::io(&path, e))?;
    file.write_all(text.as_bytes())
        .and_then(|_| file.sync_data())
        .map_err(|e| TrainError::io(&path, e))
}

/// The first place where two JSON values differ: its path (`modules[3].aux.depth`) and both
/// values, shortened.
pub fn first_difference(
    a: &serde_json::Value,
    b: &serde_json::Value,
) -> Option<(String, String, String)> {
    use serde_json::Value;
    fn short(v: Option<&Value>) -> String {
        let text = v.map_or("absent".to_string(), Value::to_string);
        if text.chars().count() > 60 {
            format!("{}...", text.chars().take(57).collect::<String>())
        } else {
            text
        }
    }
    fn walk(a: &Value, b: &Value, path: &str) -> Option<(String, String, String)> {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
                keys.sort();
                keys.dedup();
                keys.into_iter().find_map(|k| {
                    let sub = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    match (x.get(k), y.get(k)) {
                        (Some(p), Some(q)) => walk(p, q, &sub),
                        (p, q) => Some((sub, short(p), short(q))),
                    }
                })
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
                .iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (p, q))| walk(p, q, &format!("{path}[{i}]"))),
            _ if a == b => None,
            _ => Some((path.to_string(), short(Some(a)), short(Some(b)))),
        }
    }
    walk(a, b, "")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn differences_are_named_by_their_path() {
        let a = json!({"width": 0.25, "rule": "auglocal", "modules": [{"d": 2}, {"d": 2}]});
        let b = json!({"width": 0.25, "rule": "auglocal", "modules": [{"d": 2}, {"d": 3}]});
        assert_eq!(
            first_difference(&a, &b),
            Some(("modules[1].d".into(), "2".into(), "3".into()))
        );
        assert_eq!(first_difference(&a, &a), None);
        let c = json!({"width": 0.5});
        assert_eq!(
            first_difference(&json!({}), &c),
            Some(("width".into(), "absent".into(), "0.5".into()))
        );
    }

    #[test]
    fn a_second_lock_on_a_run_is_refused_and_released_with_the_first() {
        let dir = std::env::temp_dir().join(format!("auglocal-lock-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("dir");
        let first = RunLock::acquire(&dir).expect("free");
        let err = RunLock::acquire(&dir).expect_err("held");
        assert!(
            err.is_bad_input() && err.to_string().contains("another auglocal"),
            "{err}"
        );
        drop(first);
        RunLock::acquire(&dir).expect("released");
        fs::remove_dir_all(dir).expect("clean up");
    }

    #[test]
    fn metrics_errors_name_the_line_of_the_file() {
        let dir = std::env::temp_dir().join(format!("auglocal-metrics-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("dir");
        fs::write(dir.join(METRICS), "\n\n{\"epoch\": \n").expect("write");
        let err = read_metrics(&dir).expect_err("torn");
        let source = std::error::Error::source(&err).map(ToString::to_string);
        assert!(
            source.as_deref().unwrap_or("").contains("line 4"),
            "{source:?}"
        );
        fs::remove_dir_all(dir).expect("clean up");
    }
}
