//! Where the real data is, and what to do when it is missing.

#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;

/// The data folder: `$AUGLOCAL_DATA_DIR` or the workspace's `data/`.
pub fn data_dir() -> PathBuf {
    std::env::var_os("AUGLOCAL_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data"))
}

/// `data/<name>` if it exists. Otherwise fails when `AUGLOCAL_REQUIRE_DATA=1` (CI), and else
/// says loudly that the test is skipped and how to get the data.
pub fn require(name: &str, test: &str) -> Option<PathBuf> {
    let dir = data_dir().join(name);
    if dir.is_dir() {
        return Some(dir);
    }
    let message = format!(
        "{} is missing: run scripts/fetch-data.sh to fetch the real data",
        dir.display()
    );
    if std::env::var("AUGLOCAL_REQUIRE_DATA").is_ok_and(|v| v == "1") {
        panic!("{message} (AUGLOCAL_REQUIRE_DATA=1)");
    }
    // Straight to the stderr handle: the test harness captures eprintln! of passing tests.
    let _ = writeln!(std::io::stderr(), "\n*** SKIPPED {test}: {message} ***\n");
    None
}

/// A fresh temporary folder for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("auglocal-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temporary folder");
    dir
}
