//! Readers for the official files. Each parses bytes (so it can be fuzzed) and validates what
//! it reads; the `read_*` functions add the file system, refusing anything but a regular file
//! and checking lengths from the metadata before reading.

pub mod cifar;
pub mod decode;
pub mod encode;
pub mod folder;
pub mod idx;
pub mod mat;
pub mod stl10;
pub mod svhn;

/// Transposes every `side x side` plane of `data` in place (column-major planes to row-major,
/// or back).
pub(crate) fn transpose_planes(data: &mut [u8], side: usize) {
    for plane in data.chunks_exact_mut(side * side) {
        for r in 0..side {
            for c in r + 1..side {
                plane.swap(r * side + c, c * side + r);
            }
        }
    }
}

/// Groups digits: `30730000` -> `30,730,000`.
pub(crate) fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}
