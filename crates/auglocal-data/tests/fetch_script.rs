//! scripts/fetch-data.sh: its checks and its messages, without reaching any data host.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/fetch-data.sh")
}

/// Runs the script into `dest`, forcing the official download from a closed local port.
fn run_official(dest: &Path) -> Output {
    Command::new("bash")
        .arg(script())
        .arg(dest)
        .env("AUGLOCAL_FETCH_SOURCE", "official")
        .env("AUGLOCAL_FASHION_MNIST_URL", "http://127.0.0.1:9")
        .output()
        .expect("bash runs the script")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn unreachable_official_download_fails_with_a_clear_message() {
    let dest = common::temp_dir("fetch-unreachable");
    let out = run_official(&dest);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("fetch-data: error:"), "{err}");
    assert!(
        err.contains("could not download http://127.0.0.1:9/train-images-idx3-ubyte.gz")
            || err.contains("neither apt-get, curl nor wget"),
        "{err}"
    );
    assert!(
        err.contains(&dest.join("fashion-mnist").display().to_string()),
        "{err}"
    );
    std::fs::remove_dir_all(dest).expect("clean up");
}

#[test]
fn unknown_source_setting_is_refused() {
    let dest = common::temp_dir("fetch-source");
    let out = Command::new("bash")
        .arg(script())
        .arg(&dest)
        .env("AUGLOCAL_FETCH_SOURCE", "mirror")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("must be auto or official"),
        "{}",
        stderr(&out)
    );
    std::fs::remove_dir_all(dest).expect("clean up");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("dir");
    for e in std::fs::read_dir(from).expect("read") {
        let p = e.expect("entry").path();
        std::fs::copy(&p, to.join(p.file_name().expect("name"))).expect("copy");
    }
}

#[test]
fn present_data_is_checked_not_fetched_and_corruption_is_caught() {
    let (Some(fmnist), Some(foolbox)) = (
        common::require("fashion-mnist", "fetch idempotence"),
        common::require("foolbox", "fetch idempotence"),
    ) else {
        return;
    };
    let dest = common::temp_dir("fetch-present");
    copy_dir(&fmnist, &dest.join("fashion-mnist"));
    copy_dir(&foolbox, &dest.join("foolbox"));
    // Everything in place: checked, nothing downloaded (the download address is unreachable).
    let out = run_official(&dest);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        text.contains("fashion-mnist: present") && text.contains("checksums OK"),
        "{text}"
    );
    assert!(text.contains("foolbox samples: present"), "{text}");

    // A corrupted file does not pass the check: the script tries to fetch it again.
    let labels = dest.join("fashion-mnist/t10k-labels-idx1-ubyte.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, b"not the labels").expect("gzip");
    std::fs::write(&labels, gz.finish().expect("gzip")).expect("corrupt");
    let out = run_official(&dest);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    std::fs::remove_dir_all(dest).expect("clean up");
}
