//! Fuzzes the byte-level readers: CIFAR-10/100, IDX (plain and gzipped), MAT v5, SVHN and
//! STL-10. The first byte picks the reader; none may panic, whatever the bytes.

#![no_main]

use std::path::Path;

use auglocal_data::formats::cifar::{self, Cifar};
use auglocal_data::formats::{idx, mat, stl10, svhn};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let path = Path::new("fuzz-input");
    match selector % 6 {
        0 => drop(cifar::parse(rest, path, Cifar::Ten)),
        1 => drop(cifar::parse(rest, path, Cifar::Hundred)),
        2 => {
            // The second byte says where the images file ends and the labels file begins.
            let Some((&cut, files)) = rest.split_first() else {
                return;
            };
            let mid = files.len() * cut as usize / 255;
            drop(idx::parse(&files[..mid], path, &files[mid..], path, 10));
        }
        3 => drop(mat::parse(rest, path)),
        4 => drop(svhn::parse(rest, path)),
        _ => {
            let Some((&cut, files)) = rest.split_first() else {
                return;
            };
            let mid = files.len() * cut as usize / 255;
            drop(stl10::parse(
                files[..mid].to_vec(),
                path,
                &files[mid..],
                path,
            ));
        }
    }
});
