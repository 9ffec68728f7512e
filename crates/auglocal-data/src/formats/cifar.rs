//! CIFAR-10 and CIFAR-100 binary batches.
//!
//! CIFAR-10 (`cifar-10-batches-bin/`): records of 3,073 bytes: a label byte (0..9), then 1,024
//! R, 1,024 G and 1,024 B bytes, each plane row-major 32x32. CIFAR-100 (`cifar-100-binary/`):
//! records of 3,074 bytes: coarse label (0..19), fine label (0..99), then the same pixels; the
//! fine label is the class.

use std::path::{Path, PathBuf};

use super::thousands;
use crate::error::{read_file, regular_file};
use crate::{DataError, ImageSet, ImageShape};

/// Shape of a CIFAR image.
pub const CIFAR_SHAPE: ImageShape = ImageShape::new(3, 32, 32);

/// Which CIFAR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cifar {
    /// 10 classes, one label byte.
    Ten,
    /// 100 fine classes (20 coarse), two label bytes.
    Hundred,
}

impl Cifar {
    /// Bytes per record.
    pub const fn record_len(self) -> usize {
        match self {
            Cifar::Ten => 1 + 3072,
            Cifar::Hundred => 2 + 3072,
        }
    }

    /// Number of classes.
    pub const fn num_classes(self) -> usize {
        match self {
            Cifar::Ten => 10,
            Cifar::Hundred => 100,
        }
    }
}

/// Checks that a batch file of `len` bytes holds whole records (before reading it).
fn check_len(len: usize, path: &Path, cifar: Cifar) -> Result<(), DataError> {
    let record = cifar.record_len();
    if len == 0 || !len.is_multiple_of(record) {
        return Err(DataError::format(
            path,
            format!(
                "a whole number of {}-byte records (an official batch is 10,000 records, {} bytes)",
                thousands(record),
                thousands(10_000 * record)
            ),
            format!(
                "{} bytes ({} whole records and {} bytes more)",
                thousands(len),
                len / record,
                len % record
            ),
        ));
    }
    Ok(())
}

/// Parses one batch file's bytes, appending its images and labels.
pub fn parse_into(
    bytes: &[u8],
    path: &Path,
    cifar: Cifar,
    pixels: &mut Vec<u8>,
    labels: &mut Vec<u16>,
) -> Result<(), DataError> {
    let record = cifar.record_len();
    check_len(bytes.len(), path, cifar)?;
    let first = labels.len();
    for (i, rec) in bytes.chunks_exact(record).enumerate() {
        let (label, coarse) = match cifar {
            Cifar::Ten => (rec[0], None),
            Cifar::Hundred => (rec[1], Some(rec[0])),
        };
        if let Some(coarse) = coarse.filter(|&c| c >= 20) {
            return Err(DataError::Label {
                path: path.to_path_buf(),
                index: i,
                label: coarse as i64,
                expected: "a coarse label in 0..=19".into(),
            });
        }
        if label as usize >= cifar.num_classes() {
            return Err(DataError::Label {
                path: path.to_path_buf(),
                index: i,
                label: label as i64,
                expected: format!("0..={}", cifar.num_classes() - 1),
            });
        }
        labels.push(label as u16);
        pixels.extend_from_slice(&rec[record - 3072..]);
    }
    debug_assert_eq!(labels.len() - first, bytes.len() / record);
    Ok(())
}

/// Parses one batch file's bytes into a set.
pub fn parse(bytes: &[u8], path: &Path, cifar: Cifar) -> Result<ImageSet, DataError> {
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    parse_into(bytes, path, cifar, &mut pixels, &mut labels)?;
    Ok(ImageSet::new(
        pixels,
        labels,
        CIFAR_SHAPE,
        cifar.num_classes(),
    ))
}

/// Reads batch files in order into one set (one buffer, sized from the files up front).
/// Every file's length is checked from its metadata before any file is read.
pub fn read(paths: &[PathBuf], cifar: Cifar) -> Result<ImageSet, DataError> {
    let mut total = 0usize;
    for path in paths {
        let len = usize::try_from(regular_file(path)?).unwrap_or(usize::MAX);
        check_len(len, path, cifar)?;
        total = total.saturating_add(len / cifar.record_len());
    }
    let mut pixels = Vec::with_capacity(total * 3072);
    let mut labels = Vec::with_capacity(total);
    for path in paths {
        parse_into(&read_file(path)?, path, cifar, &mut pixels, &mut labels)?;
    }
    Ok(ImageSet::new(
        pixels,
        labels,
        CIFAR_SHAPE,
        cifar.num_classes(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(label: u8, fill: u8) -> Vec<u8> {
        let mut r = vec![label];
        r.extend(std::iter::repeat_n(fill, 3072));
        r
    }

    #[test]
    fn parses_records_in_order() {
        let mut bytes = record(3, 7);
        bytes.extend(record(9, 200));
        let set = parse(&bytes, Path::new("b.bin"), Cifar::Ten).expect("valid");
        assert_eq!(set.len(), 2);
        assert_eq!((set.label(0), set.label(1)), (3, 9));
        assert!(set.pixels(1).iter().all(|&p| p == 200));
    }

    #[test]
    fn truncated_batch_names_file_and_sizes() {
        let bytes = vec![0u8; 3073 + 100];
        let err = parse(&bytes, Path::new("data_batch_1.bin"), Cifar::Ten).expect_err("truncated");
        let msg = err.to_string();
        assert!(msg.contains("data_batch_1.bin"), "{msg}");
        assert!(msg.contains("3,073-byte records"), "{msg}");
        assert!(
            msg.contains("3,173 bytes (1 whole records and 100 bytes more)"),
            "{msg}"
        );
    }

    #[test]
    fn label_out_of_range_is_an_error() {
        let err = parse(&record(10, 0), Path::new("t.bin"), Cifar::Ten).expect_err("label 10");
        assert!(
            matches!(
                err,
                DataError::Label {
                    label: 10,
                    index: 0,
                    ..
                }
            ),
            "{err}"
        );
        let mut rec = vec![20u8, 5];
        rec.extend([0; 3072]);
        let err = parse(&rec, Path::new("train.bin"), Cifar::Hundred).expect_err("coarse 20");
        assert!(err.to_string().contains("coarse label"), "{err}");
    }

    #[test]
    fn a_wrong_length_file_is_refused_from_its_metadata_without_reading_it() {
        let dir = std::env::temp_dir().join(format!("auglocal-cifar-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("data_batch_1.bin");
        // 2 GB of holes: reading it whole would take 2 GB of memory.
        let file = std::fs::File::create(&path).expect("create");
        file.set_len(2_000_000_001).expect("sparse");
        let err = read(std::slice::from_ref(&path), Cifar::Ten).expect_err("wrong length");
        assert!(err.to_string().contains("2,000,000,001 bytes"), "{err}");
        let err = read(std::slice::from_ref(&dir), Cifar::Ten).expect_err("a folder");
        assert!(err.to_string().contains("a directory"), "{err}");
        let err = read(&[PathBuf::from("/dev/null")], Cifar::Ten).expect_err("a device");
        assert!(err.to_string().contains("/dev/null"), "{err}");
        std::fs::remove_dir_all(dir).expect("clean up");
    }

    #[test]
    fn missing_file_is_an_io_error_naming_it() {
        let err =
            read(&[PathBuf::from("/nonexistent/test_batch.bin")], Cifar::Ten).expect_err("missing");
        assert!(
            err.to_string().contains("/nonexistent/test_batch.bin"),
            "{err}"
        );
    }
}
