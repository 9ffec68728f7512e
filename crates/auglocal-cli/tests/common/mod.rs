//! Running the `auglocal` binary as a user runs it, for the CLI's tests.
//!
//! `AUGLOCAL_TEST_BIN=/path/to/auglocal` runs the tests against another binary (an earlier
//! release, say, to see which rows of the hostile harness it fails).

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// The binary under test.
pub fn bin() -> PathBuf {
    std::env::var_os("AUGLOCAL_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_auglocal")))
}

/// Runs the binary with `args`; see [`auglocal_with`].
pub fn auglocal(args: &[&str]) -> Output {
    auglocal_with(args, &[])
}

/// Runs the binary with `args` and extra environment variables; one that has not finished
/// after two minutes (a reader blocked on a FIFO, say) is killed; its status is then `None`.
pub fn auglocal_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = Command::new(bin())
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the auglocal binary runs");
    let pipe = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let out = pipe(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = pipe(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().expect("wait");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// Bytes as text, lossily.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Standard output as text.
pub fn stdout(out: &Output) -> String {
    text(&out.stdout)
}

/// Standard error as text.
pub fn stderr(out: &Output) -> String {
    text(&out.stderr)
}

/// A path under the temporary folder, named for the test and this process, with nothing in
/// it.
pub fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("auglocal-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}
