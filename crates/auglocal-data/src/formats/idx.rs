//! IDX files (MNIST, Fashion-MNIST), plain or gzipped.
//!
//! A big-endian u32 magic `0x0000_08NN` (u8 data, NN dimensions), one big-endian u32 per
//! dimension, then the row-major u8 data. Images are `0x0803` (count, rows, cols), labels
//! `0x0801` (count).

use std::borrow::Cow;
use std::io::Read;
use std::path::Path;

use flate2::read::MultiGzDecoder;

use super::thousands;
use crate::error::read_file;
use crate::{DataError, ImageSet, ImageShape};

/// Decompresses gzip data (detected by its magic bytes), or passes plain bytes through.
pub fn maybe_gunzip<'a>(bytes: &'a [u8], path: &Path) -> Result<Cow<'a, [u8]>, DataError> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(Cow::Borrowed(bytes));
    }
    let mut out = Vec::new();
    MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| DataError::format(path, "a valid gzip stream", format!("{e}")))?;
    Ok(Cow::Owned(out))
}

/// The dimensions of an IDX file of u8 data with `rank` dimensions, and where its data starts.
fn header(bytes: &[u8], path: &Path, rank: u8) -> Result<(Vec<usize>, usize), DataError> {
    let magic = [0, 0, 0x08, rank];
    if bytes.len() < 4 || bytes[..4] != magic {
        return Err(DataError::format(
            path,
            format!("IDX magic number 0x0000080{rank}"),
            match bytes.get(..4) {
                Some(m) => format!("0x{:02x}{:02x}{:02x}{:02x}", m[0], m[1], m[2], m[3]),
                None => format!("{} bytes", bytes.len()),
            },
        ));
    }
    let start = 4 + 4 * rank as usize;
    if bytes.len() < start {
        return Err(DataError::format(
            path,
            format!("a {start}-byte header"),
            format!("{} bytes", bytes.len()),
        ));
    }
    let dims: Vec<usize> = bytes[4..start]
        .chunks_exact(4)
        .map(|d| u32::from_be_bytes([d[0], d[1], d[2], d[3]]) as usize)
        .collect();
    let data_len = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let total = data_len.and_then(|n| n.checked_add(start));
    if total != Some(bytes.len()) {
        return Err(DataError::format(
            path,
            format!(
                "{} bytes for dimensions {dims:?}",
                total.map_or("an impossible number of".into(), thousands)
            ),
            format!("{} bytes", thousands(bytes.len())),
        ));
    }
    Ok((dims, start))
}

/// Parses IDX images and labels into a set with `num_classes` classes.
pub fn parse(
    images: &[u8],
    images_path: &Path,
    labels: &[u8],
    labels_path: &Path,
    num_classes: usize,
) -> Result<ImageSet, DataError> {
    let images = maybe_gunzip(images, images_path)?;
    let labels = maybe_gunzip(labels, labels_path)?;
    let (dims, start) = header(&images, images_path, 3)?;
    let (count, rows, cols) = (dims[0], dims[1], dims[2]);
    let (ldims, lstart) = header(&labels, labels_path, 1)?;
    if ldims[0] != count {
        return Err(DataError::format(
            labels_path,
            format!("{count} labels, one per image of {}", images_path.display()),
            format!("{} labels", ldims[0]),
        ));
    }
    let label_bytes = &labels[lstart..];
    if let Some((index, &label)) = label_bytes
        .iter()
        .enumerate()
        .find(|(_, l)| **l as usize >= num_classes)
    {
        return Err(DataError::Label {
            path: labels_path.to_path_buf(),
            index,
            label: label as i64,
            expected: format!("0..={}", num_classes - 1),
        });
    }
    let pixels = match images {
        Cow::Owned(mut v) => {
            v.drain(..start);
            v
        }
        Cow::Borrowed(b) => b[start..].to_vec(),
    };
    let labels = label_bytes.iter().map(|&l| l as u16).collect();
    Ok(ImageSet::new(
        pixels,
        labels,
        ImageShape::new(1, rows, cols),
        num_classes,
    ))
}

/// Reads an images file and a labels file (each plain or `.gz`).
pub fn read(images: &Path, labels: &Path, num_classes: usize) -> Result<ImageSet, DataError> {
    parse(
        &read_file(images)?,
        images,
        &read_file(labels)?,
        labels,
        num_classes,
    )
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;

    pub(crate) fn idx(magic_rank: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut out = vec![0, 0, 8, magic_rank];
        for d in dims {
            out.extend(d.to_be_bytes());
        }
        out.extend_from_slice(data);
        out
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(bytes).expect("write");
        e.finish().expect("finish")
    }

    #[test]
    fn parses_plain_and_gzipped() {
        let pixels: Vec<u8> = (0..2 * 3 * 4).map(|i| i as u8).collect();
        let images = idx(3, &[2, 3, 4], &pixels);
        let labels = idx(1, &[2], &[7, 1]);
        let (ip, lp) = (Path::new("i"), Path::new("l"));
        let plain = parse(&images, ip, &labels, lp, 10).expect("plain");
        let zipped = parse(&gz(&images), ip, &gz(&labels), lp, 10).expect("gz");
        assert_eq!(plain, zipped);
        assert_eq!(plain.shape(), ImageShape::new(1, 3, 4));
        assert_eq!(plain.pixels(1), &pixels[12..]);
        assert_eq!(plain.label(0), 7);
    }

    #[test]
    fn wrong_magic_is_named() {
        let images = idx(3, &[1, 1, 1], &[0]);
        let mut bad = idx(1, &[1], &[0]);
        bad[2] = 9;
        let err = parse(&images, Path::new("i"), &bad, Path::new("labels.idx"), 10)
            .expect_err("bad magic");
        let msg = err.to_string();
        assert!(
            msg.contains("labels.idx") && msg.contains("0x00000801"),
            "{msg}"
        );
        assert!(msg.contains("0x00000901"), "{msg}");
    }

    #[test]
    fn size_mismatch_label_range_and_count_are_errors() {
        let (ip, lp) = (Path::new("i"), Path::new("l"));
        let short = idx(3, &[2, 2, 2], &[0; 7]);
        let labels = idx(1, &[2], &[0, 1]);
        assert!(parse(&short, ip, &labels, lp, 10).is_err());
        let images = idx(3, &[2, 2, 2], &[0; 8]);
        let err = parse(&images, ip, &idx(1, &[2], &[0, 10]), lp, 10).expect_err("label");
        assert!(
            matches!(
                err,
                DataError::Label {
                    index: 1,
                    label: 10,
                    ..
                }
            ),
            "{err}"
        );
        let err = parse(&images, ip, &idx(1, &[1], &[0]), lp, 10).expect_err("count");
        assert!(err.to_string().contains("2 labels"), "{err}");
        let huge = idx(3, &[u32::MAX, u32::MAX, u32::MAX], &[]);
        assert!(parse(&huge, ip, &labels, lp, 10).is_err());
        assert!(parse(&[0x1f, 0x8b, 1, 2], ip, &labels, lp, 10).is_err());
    }
}
