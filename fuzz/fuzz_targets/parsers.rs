//! Fuzzes the byte-level readers: CIFAR-10/100, IDX (plain and gzipped, with and without an
//! expected image shape), MAT v5 (zlib-compressed elements included), SVHN and STL-10. The
//! first byte picks the reader; none may panic, whatever the bytes, and none may allocate
//! more than the input can justify (run with `-rss_limit_mb=512`).

#![no_main]

use std::path::Path;

use auglocal_data::formats::cifar::{self, Cifar};
use auglocal_data::formats::{idx, mat, stl10, svhn};
use libfuzzer_sys::fuzz_target;

/// The second byte says where the first file ends and the second begins.
fn split(rest: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&cut, files) = rest.split_first()?;
    let mid = files.len() * cut as usize / 255;
    Some(files.split_at(mid))
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let path = Path::new("fuzz-input");
    match selector % 7 {
        0 => drop(cifar::parse(rest, path, Cifar::Ten)),
        1 => drop(cifar::parse(rest, path, Cifar::Hundred)),
        2 => {
            if let Some((images, labels)) = split(rest) {
                drop(idx::parse(images, path, labels, path, 10, None));
            }
        }
        3 => drop(mat::parse(rest, path)),
        4 => drop(svhn::parse(rest, path)),
        5 => {
            if let Some((x, y)) = split(rest) {
                drop(stl10::parse(x.to_vec(), path, y, path));
            }
        }
        _ => {
            if let Some((images, labels)) = split(rest) {
                drop(idx::parse(images, path, labels, path, 10, Some((28, 28))));
            }
        }
    }
});
