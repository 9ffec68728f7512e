//! IDX files (MNIST, Fashion-MNIST), plain or gzipped.
//!
//! A big-endian u32 magic `0x0000_08NN` (u8 data, NN dimensions), one big-endian u32 per
//! dimension, then the row-major u8 data. Images are `0x0803` (count, rows, cols), labels
//! `0x0801` (count).
//!
//! Memory is bounded by what the header declares: the header is read and checked first (the
//! magic, the dimensions, the image shape the caller expects, the label count), and the data is
//! then read up to exactly the declared size. A plain file's length must match the header
//! (checked from its metadata); a gzip stream that holds more or less data than declared is an
//! error, and decompression stops at the first byte past the declared size, so a decompression
//! bomb cannot inflate beyond the header's promise.

use std::io::{BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use super::thousands;
use crate::error::regular_file;
use crate::{DataError, ImageSet, ImageShape};

/// Deflate expands data by at most about 1,032 times: a gzip stream of `n` bytes holds at most
/// this many bytes per compressed byte (plus its header).
const MAX_INFLATE_RATIO: u64 = 1_032;
/// Largest IDX data this reader accepts (MNIST-8M's images are 6.3 GB).
pub const MAX_IDX_BYTES: u64 = 16 << 30;

/// The dimensions and data of one IDX file.
struct Idx {
    dims: Vec<usize>,
    data: Vec<u8>,
}

/// An IDX stream: plain bytes, or a gzip stream (detected by its magic bytes).
struct Stream<R> {
    reader: R,
    /// Whether the bytes are decompressed from gzip.
    gzip: bool,
    /// Bytes of the stream as stored (the file's length).
    stored: u64,
}

impl<R: Read> Stream<R> {
    /// At most how many data bytes the stream can hold after a header of `header` bytes.
    fn capacity(&self, header: u64) -> u64 {
        if self.gzip {
            self.stored.saturating_mul(MAX_INFLATE_RATIO)
        } else {
            self.stored.saturating_sub(header)
        }
    }
}

fn stream_of(bytes: &[u8]) -> Stream<Box<dyn Read + '_>> {
    let gzip = bytes.starts_with(&[0x1f, 0x8b]);
    Stream {
        reader: if gzip {
            Box::new(MultiGzDecoder::new(bytes))
        } else {
            Box::new(bytes)
        },
        gzip,
        stored: bytes.len() as u64,
    }
}

fn open(path: &Path) -> Result<Stream<Box<dyn Read>>, DataError> {
    let stored = regular_file(path)?;
    let mut file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut magic = [0u8; 2];
    let n = read_full(&mut file, &mut magic).map_err(|e| DataError::io(path, e))?;
    let gzip = n == 2 && magic == [0x1f, 0x8b];
    let head = std::io::Cursor::new(magic[..n].to_vec());
    let reader = BufReader::new(head.chain(file));
    Ok(Stream {
        reader: if gzip {
            Box::new(MultiGzDecoder::new(reader))
        } else {
            Box::new(reader)
        },
        gzip,
        stored,
    })
}

/// Reads into `buf` until it is full or the stream ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Reads an IDX stream of u8 data with `rank` dimensions; `check` sees the dimensions before
/// any data is read.
fn read_idx<R: Read>(
    mut stream: Stream<R>,
    path: &Path,
    rank: u8,
    check: impl FnOnce(&[usize]) -> Result<(), DataError>,
) -> Result<Idx, DataError> {
    let bad_stream = |e: std::io::Error| {
        if stream_gzip_error(&e) {
            DataError::format(path, "a valid gzip stream", e.to_string())
        } else {
            DataError::io(path, e)
        }
    };
    let header_len = 4 + 4 * rank as usize;
    let mut header = vec![0u8; header_len];
    let got = read_full(&mut stream.reader, &mut header).map_err(bad_stream)?;
    let magic = [0, 0, 0x08, rank];
    if got < 4 || header[..4] != magic {
        return Err(DataError::format(
            path,
            format!("IDX magic number 0x0000080{rank}"),
            if got >= 4 {
                format!(
                    "0x{:02x}{:02x}{:02x}{:02x}",
                    header[0], header[1], header[2], header[3]
                )
            } else {
                format!("{got} bytes")
            },
        ));
    }
    if got < header_len {
        return Err(DataError::format(
            path,
            format!("a {header_len}-byte header"),
            format!("{got} bytes"),
        ));
    }
    let dims: Vec<usize> = header[4..]
        .chunks_exact(4)
        .map(|d| u32::from_be_bytes([d[0], d[1], d[2], d[3]]) as usize)
        .collect();
    check(&dims)?;
    let declared = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .filter(|&n| n <= MAX_IDX_BYTES);
    let capacity = stream.capacity(header_len as u64);
    let Some(declared) = declared.filter(|&n| n <= capacity) else {
        return Err(DataError::format(
            path,
            format!(
                "{} bytes of data for dimensions {dims:?}",
                match declared {
                    Some(n) => thousands(n as usize),
                    None => "an impossible number of".into(),
                }
            ),
            if stream.gzip {
                format!(
                    "a gzip file of {} bytes, which cannot hold more than {}",
                    thousands(stream.stored as usize),
                    thousands(capacity as usize)
                )
            } else {
                format!("{} bytes", thousands(stream.stored as usize))
            },
        ));
    };
    if !stream.gzip && declared != capacity {
        return Err(DataError::format(
            path,
            format!(
                "{} bytes for dimensions {dims:?}",
                thousands((declared + header_len as u64) as usize)
            ),
            format!("{} bytes", thousands(stream.stored as usize)),
        ));
    }
    // The declared size, no more: `capacity` bounds it by the stored bytes.
    let mut data = Vec::with_capacity(declared as usize);
    (&mut stream.reader)
        .take(declared)
        .read_to_end(&mut data)
        .map_err(bad_stream)?;
    if (data.len() as u64) < declared {
        return Err(DataError::format(
            path,
            format!(
                "{} bytes of data for dimensions {dims:?}",
                thousands(declared as usize)
            ),
            format!("the data ends after {} bytes", thousands(data.len())),
        ));
    }
    let mut extra = [0u8; 1];
    if read_full(&mut stream.reader, &mut extra).map_err(bad_stream)? > 0 {
        return Err(DataError::format(
            path,
            format!(
                "{} bytes of data for dimensions {dims:?}",
                thousands(declared as usize)
            ),
            "more data than the header declares".to_string(),
        ));
    }
    Ok(Idx { dims, data })
}

/// Whether an I/O error came from the gzip decoder (corrupt data), not from the file.
fn stream_gzip_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::InvalidInput
            | std::io::ErrorKind::InvalidData
            | std::io::ErrorKind::UnexpectedEof
    )
}

/// Reads images then labels, checking the label count and the image shape (`rows x cols` if
/// given) from the headers before any data is read.
fn read_pair<R1: Read, R2: Read>(
    images: Stream<R1>,
    images_path: &Path,
    labels: Stream<R2>,
    labels_path: &Path,
    num_classes: usize,
    shape: Option<(usize, usize)>,
) -> Result<ImageSet, DataError> {
    let labels = read_idx(labels, labels_path, 1, |dims| {
        if dims[0] == 0 {
            return Err(DataError::format(
                labels_path,
                "at least one label",
                "0 labels",
            ));
        }
        Ok(())
    })?;
    let count = labels.dims[0];
    let images = read_idx(images, images_path, 3, |dims| {
        if dims[0] != count {
            return Err(DataError::format(
                labels_path,
                format!(
                    "{} labels, one per image of {}",
                    dims[0],
                    images_path.display()
                ),
                format!("{count} labels"),
            ));
        }
        match shape {
            Some((rows, cols)) if (dims[1], dims[2]) != (rows, cols) => Err(DataError::format(
                images_path,
                format!("{rows}x{cols} images"),
                format!("{}x{} images", dims[1], dims[2]),
            )),
            _ if dims[1] == 0 || dims[2] == 0 => Err(DataError::format(
                images_path,
                "images of at least 1x1 pixel",
                format!("{}x{} images", dims[1], dims[2]),
            )),
            _ => Ok(()),
        }
    })?;
    if let Some((index, &label)) = labels
        .data
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
    let (rows, cols) = (images.dims[1], images.dims[2]);
    let labels = labels.data.iter().map(|&l| l as u16).collect();
    Ok(ImageSet::new(
        images.data,
        labels,
        ImageShape::new(1, rows, cols),
        num_classes,
    ))
}

/// Parses IDX images and labels (each plain or gzipped) into a set with `num_classes`
/// classes; `shape` (rows, cols), if given, is the image shape the data set must have.
pub fn parse(
    images: &[u8],
    images_path: &Path,
    labels: &[u8],
    labels_path: &Path,
    num_classes: usize,
    shape: Option<(usize, usize)>,
) -> Result<ImageSet, DataError> {
    read_pair(
        stream_of(images),
        images_path,
        stream_of(labels),
        labels_path,
        num_classes,
        shape,
    )
}

/// Reads an images file and a labels file (each plain or `.gz`); `shape` (rows, cols), if
/// given, is the image shape the data set must have (28x28 for MNIST and Fashion-MNIST).
pub fn read(
    images: &Path,
    labels: &Path,
    num_classes: usize,
    shape: Option<(usize, usize)>,
) -> Result<ImageSet, DataError> {
    read_pair(
        open(images)?,
        images,
        open(labels)?,
        labels,
        num_classes,
        shape,
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
        let plain = parse(&images, ip, &labels, lp, 10, None).expect("plain");
        let zipped = parse(&gz(&images), ip, &gz(&labels), lp, 10, None).expect("gz");
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
        let err = parse(
            &images,
            Path::new("i"),
            &bad,
            Path::new("labels.idx"),
            10,
            None,
        )
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
        assert!(parse(&short, ip, &labels, lp, 10, None).is_err());
        let images = idx(3, &[2, 2, 2], &[0; 8]);
        let err = parse(&images, ip, &idx(1, &[2], &[0, 10]), lp, 10, None).expect_err("label");
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
        let err = parse(&images, ip, &idx(1, &[1], &[0]), lp, 10, None).expect_err("count");
        assert!(err.to_string().contains("2 labels"), "{err}");
        let huge = idx(3, &[2, u32::MAX, u32::MAX], &[]);
        assert!(parse(&huge, ip, &labels, lp, 10, None).is_err());
        assert!(parse(&[0x1f, 0x8b, 1, 2], ip, &labels, lp, 10, None).is_err());
    }

    #[test]
    fn images_of_another_shape_than_expected_are_refused_from_the_header() {
        let (ip, lp) = (Path::new("images"), Path::new("l"));
        let labels = idx(1, &[1], &[0]);
        for (rows, cols) in [(10, 100), (0, 0), (40, 40)] {
            let images = idx(3, &[1, rows, cols], &vec![0; (rows * cols) as usize]);
            let err = parse(&images, ip, &labels, lp, 10, Some((28, 28))).expect_err("shape");
            assert!(err.to_string().contains(&format!("{rows}x{cols}")), "{err}");
        }
        let err = parse(&idx(3, &[1, 0, 0], &[]), ip, &labels, lp, 10, None).expect_err("0x0");
        assert!(err.to_string().contains("at least 1x1"), "{err}");
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_declared_size() {
        let (ip, lp) = (Path::new("images.gz"), Path::new("l"));
        let labels = idx(1, &[1], &[0]);
        // A valid header for one 2x2 image, then 64 MB of zeros: 64 KB compressed.
        let mut bomb = idx(3, &[1, 2, 2], &[0; 4]);
        bomb.resize(64 << 20, 0);
        let mut e = GzEncoder::new(Vec::new(), Compression::best());
        e.write_all(&bomb).expect("write");
        let compressed = e.finish().expect("finish");
        assert!(compressed.len() < 100_000, "{}", compressed.len());
        let err = parse(&compressed, ip, &labels, lp, 10, None).expect_err("extra data");
        assert!(
            err.to_string()
                .contains("more data than the header declares"),
            "{err}"
        );
        // A header declaring more than the compressed bytes can hold.
        let liar = gz(&idx(3, &[1, 60_000, 60_000], &[0; 16]));
        let err = parse(&liar, ip, &labels, lp, 10, None).expect_err("impossible");
        assert!(err.to_string().contains("cannot hold more than"), "{err}");
    }

    #[test]
    fn a_plain_file_of_the_wrong_length_is_not_read() {
        let dir = std::env::temp_dir().join(format!("auglocal-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let (ip, lp) = (dir.join("images"), dir.join("labels"));
        let mut images = idx(3, &[1, 28, 28], &[]);
        images.resize(1 << 20, 0);
        std::fs::write(&ip, &images).expect("write");
        std::fs::write(&lp, idx(1, &[1], &[3])).expect("write");
        let err = read(&ip, &lp, 10, Some((28, 28))).expect_err("length");
        assert!(err.to_string().contains("1,048,576 bytes"), "{err}");
        let err = read(&dir, &lp, 10, None).expect_err("folder");
        assert!(err.to_string().contains("a directory"), "{err}");
        std::fs::remove_dir_all(dir).expect("clean up");
    }
}
