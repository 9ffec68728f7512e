//! MATLAB v5 MAT-files: the part of the format that SVHN's format 2 (`*_32x32.mat`) uses.
//!
//! A 128-byte header, then data elements, each an 8-byte tag (type, size) or a 4-byte "small
//! element" tag, padded to 8 bytes. Variables are miMATRIX elements (type 14) holding array
//! flags, dimensions, a name and the real part, usually inside zlib-compressed elements (type
//! 15). The real part may be stored in a smaller type than the array's class; we dispatch on
//! the element's own type tag. MATLAB v7.3 files are HDF5 and are not read here.

use std::io::Read;
use std::ops::Range;
use std::path::Path;

use flate2::read::ZlibDecoder;

use crate::DataError;

/// Data element types (`miINT8` ...).
pub mod mi {
    /// `miINT8`.
    pub const INT8: u32 = 1;
    /// `miUINT8`.
    pub const UINT8: u32 = 2;
    /// `miINT16`.
    pub const INT16: u32 = 3;
    /// `miUINT16`.
    pub const UINT16: u32 = 4;
    /// `miINT32`.
    pub const INT32: u32 = 5;
    /// `miUINT32`.
    pub const UINT32: u32 = 6;
    /// `miSINGLE`.
    pub const SINGLE: u32 = 7;
    /// `miDOUBLE`.
    pub const DOUBLE: u32 = 9;
    /// `miINT64`.
    pub const INT64: u32 = 12;
    /// `miUINT64`.
    pub const UINT64: u32 = 13;
    /// `miMATRIX`.
    pub const MATRIX: u32 = 14;
    /// `miCOMPRESSED`.
    pub const COMPRESSED: u32 = 15;
    /// `miUTF8`.
    pub const UTF8: u32 = 16;
}

/// Array classes `mxDOUBLE_CLASS` (6) to `mxUINT64_CLASS` (15) are numeric.
const NUMERIC_CLASSES: Range<u8> = 6..16;
const COMPLEX_FLAG: u32 = 0x0800;
/// zlib cannot expand data by more than about 1,032 times.
const MAX_INFLATE_RATIO: usize = 1100;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endian {
    Little,
    Big,
}

impl Endian {
    fn u32(self, b: &[u8]) -> u32 {
        let b = [b[0], b[1], b[2], b[3]];
        match self {
            Endian::Little => u32::from_le_bytes(b),
            Endian::Big => u32::from_be_bytes(b),
        }
    }
}

/// A numeric MATLAB array: its name, class, dimensions (column-major) and real part.
#[derive(Debug, Clone, PartialEq)]
pub struct MatArray {
    /// Variable name.
    pub name: String,
    /// `mxCLASS` of the array (9 is `mxUINT8_CLASS`, 6 `mxDOUBLE_CLASS`).
    pub class: u8,
    /// Dimensions, MATLAB order.
    pub dims: Vec<usize>,
    /// The real part as stored.
    pub data: MatData,
}

/// The real part of an array: raw bytes of one element type.
#[derive(Debug, Clone, PartialEq)]
pub struct MatData {
    ty: u32,
    bytes: Vec<u8>,
    endian: Endian,
}

fn element_size(ty: u32) -> Option<usize> {
    match ty {
        mi::INT8 | mi::UINT8 => Some(1),
        mi::INT16 | mi::UINT16 => Some(2),
        mi::INT32 | mi::UINT32 | mi::SINGLE => Some(4),
        mi::DOUBLE | mi::INT64 | mi::UINT64 => Some(8),
        _ => None,
    }
}

impl MatData {
    /// The element type tag (`mi::UINT8`, `mi::DOUBLE`, ...).
    pub fn element_type(&self) -> u32 {
        self.ty
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.bytes.len() / element_size(self.ty).unwrap_or(1)
    }

    /// Whether there is no element.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Element `i` as f64.
    fn value(&self, i: usize) -> f64 {
        let size = element_size(self.ty).unwrap_or(1);
        let mut b = [0u8; 8];
        b[..size].copy_from_slice(&self.bytes[i * size..(i + 1) * size]);
        if self.endian == Endian::Big {
            b[..size].reverse();
        }
        let [b0, b1, b2, b3, ..] = b;
        match self.ty {
            mi::INT8 => b0 as i8 as f64,
            mi::UINT8 => b0 as f64,
            mi::INT16 => i16::from_le_bytes([b0, b1]) as f64,
            mi::UINT16 => u16::from_le_bytes([b0, b1]) as f64,
            mi::INT32 => i32::from_le_bytes([b0, b1, b2, b3]) as f64,
            mi::UINT32 => u32::from_le_bytes([b0, b1, b2, b3]) as f64,
            mi::SINGLE => f32::from_le_bytes([b0, b1, b2, b3]) as f64,
            mi::INT64 => i64::from_le_bytes(b) as f64,
            mi::UINT64 => u64::from_le_bytes(b) as f64,
            _ => f64::from_le_bytes(b),
        }
    }

    /// Every element as f64.
    pub fn to_f64(&self) -> Vec<f64> {
        (0..self.len()).map(|i| self.value(i)).collect()
    }

    /// The elements as bytes: moved out when stored as `miUINT8`, else converted, each value
    /// having to be an integer in 0..=255.
    pub fn into_u8(self, path: &Path, what: &str) -> Result<Vec<u8>, DataError> {
        if self.ty == mi::UINT8 {
            return Ok(self.bytes);
        }
        (0..self.len())
            .map(|i| {
                let v = self.value(i);
                if v.fract() == 0.0 && (0.0..=255.0).contains(&v) {
                    Ok(v as u8)
                } else {
                    Err(DataError::format(
                        path,
                        format!("{what} to hold integers in 0..=255"),
                        format!("{v} at element {i}"),
                    ))
                }
            })
            .collect()
    }
}

/// A data element: its type, where its data lies, where the next element starts.
struct Element {
    ty: u32,
    data: Range<usize>,
    next: usize,
}

fn element(bytes: &[u8], pos: usize, endian: Endian, path: &Path) -> Result<Element, DataError> {
    let truncated = |need: String| {
        DataError::format(
            path,
            need,
            format!(
                "the data ends at byte {} of the element at {pos}",
                bytes.len()
            ),
        )
    };
    let tag = bytes
        .get(pos..pos + 4)
        .ok_or_else(|| truncated("a data element tag".into()))?;
    let first = endian.u32(tag);
    if first >> 16 != 0 {
        // Small data element: type and size in one u32, up to 4 bytes of data.
        let (ty, n) = (first & 0xffff, (first >> 16) as usize);
        if n > 4 || bytes.len() < pos + 8 {
            return Err(truncated(format!(
                "a small data element of at most 4 bytes, got {n}"
            )));
        }
        return Ok(Element {
            ty,
            data: pos + 4..pos + 4 + n,
            next: pos + 8,
        });
    }
    let size = bytes
        .get(pos + 4..pos + 8)
        .ok_or_else(|| truncated("an 8-byte data element tag".into()))?;
    let n = endian.u32(size) as usize;
    let end = (pos + 8)
        .checked_add(n)
        .filter(|&end| end <= bytes.len())
        .ok_or_else(|| truncated(format!("{n} bytes of element data")))?;
    let next = if first == mi::COMPRESSED {
        end
    } else {
        end.next_multiple_of(8).min(bytes.len())
    };
    Ok(Element {
        ty: first,
        data: pos + 8..end,
        next,
    })
}

/// Parses the header and every numeric variable of a MAT-file; other variables are skipped.
pub fn parse(bytes: &[u8], path: &Path) -> Result<Vec<MatArray>, DataError> {
    let header_ok = bytes.len() >= 128 && bytes.starts_with(b"MATLAB 5.0 MAT-file");
    let endian = match bytes.get(126..128) {
        Some(b"IM") if header_ok => Endian::Little,
        Some(b"MI") if header_ok => Endian::Big,
        _ => {
            return Err(DataError::format(
                path,
                "a MATLAB 5.0 MAT-file header (128 bytes ending in 'IM' or 'MI'; v7.3/HDF5 \
                 files are not supported)",
                format!(
                    "{:?}",
                    String::from_utf8_lossy(&bytes[..bytes.len().min(19)])
                ),
            ));
        }
    };
    let mut arrays = Vec::new();
    let mut pos = 128;
    while pos < bytes.len() {
        let el = element(bytes, pos, endian, path)?;
        let array = match el.ty {
            mi::COMPRESSED => {
                let inner = inflate(&bytes[el.data.clone()], endian, path)?;
                let m = element(&inner, 0, endian, path)?;
                if m.ty != mi::MATRIX {
                    return Err(DataError::format(
                        path,
                        "a compressed element holding a miMATRIX (type 14)",
                        format!("type {}", m.ty),
                    ));
                }
                let contents = m.data.clone();
                matrix(inner, contents, endian, path)?
            }
            mi::MATRIX => {
                let contents = bytes[el.data.clone()].to_vec();
                let len = contents.len();
                matrix(contents, 0..len, endian, path)?
            }
            _ => None,
        };
        arrays.extend(array);
        pos = el.next;
    }
    Ok(arrays)
}

/// Decompresses a miCOMPRESSED element, reading no more than the size its inner tag
/// declares: the tag (the first 8 decompressed bytes) is read first, a size the compressed
/// bytes cannot hold is refused at once, and a stream that goes on past the declared size
/// stops at the first extra byte.
fn inflate(data: &[u8], endian: Endian, path: &Path) -> Result<Vec<u8>, DataError> {
    let bad = |e: std::io::Error| {
        DataError::format(
            path,
            "a valid zlib stream in a compressed element",
            e.to_string(),
        )
    };
    let mut decoder = ZlibDecoder::new(data);
    let mut tag = [0u8; 8];
    decoder.read_exact(&mut tag).map_err(bad)?;
    let declared = endian.u32(&tag[4..]) as usize;
    let capacity = data.len().saturating_mul(MAX_INFLATE_RATIO);
    if declared > capacity {
        return Err(DataError::format(
            path,
            format!(
                "a compressed element of {} bytes to hold at most {} bytes",
                data.len(),
                capacity
            ),
            format!("an element tag declaring {declared} bytes"),
        ));
    }
    // Reserved, not touched: pages that no data reaches take no memory.
    let mut out = Vec::with_capacity(8 + declared);
    out.extend_from_slice(&tag);
    (&mut decoder)
        .take(declared as u64)
        .read_to_end(&mut out)
        .map_err(bad)?;
    let mut extra = [0u8; 1];
    if decoder.read(&mut extra).map_err(bad)? > 0 {
        return Err(DataError::format(
            path,
            format!("a compressed element of {declared} bytes, as its tag declares"),
            "more data than the tag declares",
        ));
    }
    Ok(out)
}

/// Parses the contents of a miMATRIX element at `contents` inside `buf`, moving the real part
/// out of `buf` without a copy. `None` for arrays that are not numeric.
fn matrix(
    mut buf: Vec<u8>,
    contents: Range<usize>,
    endian: Endian,
    path: &Path,
) -> Result<Option<MatArray>, DataError> {
    let region = &buf[..contents.end];
    let expect = |ok: bool, what: &str, found: String| {
        if ok {
            Ok(())
        } else {
            Err(DataError::format(path, what.to_string(), found))
        }
    };
    let flags = element(region, contents.start, endian, path)?;
    expect(
        flags.ty == mi::UINT32 && flags.data.len() == 8,
        "array flags (miUINT32, 8 bytes)",
        format!("type {}, {} bytes", flags.ty, flags.data.len()),
    )?;
    let flag_word = endian.u32(&region[flags.data.start..]);
    let class = (flag_word & 0xff) as u8;

    let dims_el = element(region, flags.next, endian, path)?;
    expect(
        dims_el.ty == mi::INT32 && dims_el.data.len() >= 8 && dims_el.data.len() % 4 == 0,
        "array dimensions (miINT32, at least 2)",
        format!("type {}, {} bytes", dims_el.ty, dims_el.data.len()),
    )?;
    let dims: Vec<usize> = region[dims_el.data.clone()]
        .chunks_exact(4)
        .map(|d| endian.u32(d) as i32)
        .map(|d| d.max(0) as usize)
        .collect();

    let name_el = element(region, dims_el.next, endian, path)?;
    let name = String::from_utf8_lossy(&region[name_el.data.clone()]).into_owned();
    if !NUMERIC_CLASSES.contains(&class) {
        return Ok(None);
    }
    expect(
        flag_word & COMPLEX_FLAG == 0,
        &format!("variable '{name}' to be real"),
        "a complex array".into(),
    )?;

    let real = element(region, name_el.next, endian, path)?;
    let size = element_size(real.ty).ok_or_else(|| {
        DataError::format(
            path,
            format!("a numeric real part for variable '{name}'"),
            format!("element type {}", real.ty),
        )
    })?;
    let count = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    expect(
        count.and_then(|c| c.checked_mul(size)) == Some(real.data.len()),
        &format!(
            "variable '{name}' of dimensions {dims:?} to hold {} elements",
            count.map_or("more than 2^64".to_string(), |c| c.to_string())
        ),
        format!("{} bytes of {size}-byte elements", real.data.len()),
    )?;
    buf.truncate(real.data.end);
    buf.drain(..real.data.start);
    Ok(Some(MatArray {
        name,
        class,
        dims,
        data: MatData {
            ty: real.ty,
            bytes: buf,
            endian,
        },
    }))
}

/// Writing MAT-files, for test fixtures: a little-endian header and zlib-compressed
/// variables, the structure of scipy's `savemat(..., do_compression=True)`.
#[doc(hidden)]
pub mod write {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::ZlibEncoder;

    use super::mi;

    fn tag(out: &mut Vec<u8>, ty: u32, data: &[u8]) {
        out.extend(ty.to_le_bytes());
        out.extend((data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(8), 0);
    }

    /// The 128-byte header.
    pub fn header() -> Vec<u8> {
        let mut h = b"MATLAB 5.0 MAT-file, written by auglocal test fixtures".to_vec();
        h.resize(116, b' ');
        h.extend([0u8; 8]);
        h.extend(0x0100u16.to_le_bytes());
        h.extend(b"IM");
        h
    }

    /// A compressed miMATRIX variable of class `class` whose real part is `data` stored as
    /// element type `ty`.
    pub fn variable(name: &str, class: u8, dims: &[i32], ty: u32, data: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        let mut flags = (class as u32).to_le_bytes().to_vec();
        flags.extend([0u8; 4]);
        tag(&mut m, mi::UINT32, &flags);
        let d: Vec<u8> = dims.iter().flat_map(|d| d.to_le_bytes()).collect();
        tag(&mut m, mi::INT32, &d);
        tag(&mut m, mi::INT8, name.as_bytes());
        tag(&mut m, ty, data);
        let mut matrix = Vec::new();
        tag(&mut matrix, mi::MATRIX, &m);
        let mut z = ZlibEncoder::new(Vec::new(), Compression::fast());
        z.write_all(&matrix).expect("in-memory write");
        let compressed = z.finish().expect("in-memory write");
        let mut out = Vec::new();
        out.extend(mi::COMPRESSED.to_le_bytes());
        out.extend((compressed.len() as u32).to_le_bytes());
        out.extend(compressed);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(vars: &[Vec<u8>]) -> Vec<u8> {
        let mut f = write::header();
        for v in vars {
            f.extend_from_slice(v);
        }
        f
    }

    #[test]
    fn reads_compressed_variables_of_any_storage_type() {
        let x = write::variable("X", 9, &[2, 3], mi::UINT8, &[1, 2, 3, 4, 5, 6]);
        let y: Vec<u8> = [1.0f64, 10.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let y = write::variable("y", 6, &[2, 1], mi::DOUBLE, &y);
        // A double array stored as uint8 elements, as MATLAB does for small integers.
        let z = write::variable("z", 6, &[1, 2], mi::UINT8, &[7, 8]);
        let arrays = parse(&file(&[x, y, z]), Path::new("t.mat")).expect("valid");
        assert_eq!(arrays.len(), 3);
        assert_eq!(
            (arrays[0].name.as_str(), arrays[0].dims.as_slice()),
            ("X", &[2, 3][..])
        );
        assert_eq!(arrays[1].data.to_f64(), vec![1.0, 10.0]);
        assert_eq!(arrays[2].data.to_f64(), vec![7.0, 8.0]);
        let x = arrays[0]
            .data
            .clone()
            .into_u8(Path::new("t.mat"), "X")
            .expect("u8");
        assert_eq!(x, vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn corrupt_compressed_element_is_an_error() {
        let mut f = write::header();
        f.extend(mi::COMPRESSED.to_le_bytes());
        f.extend(8u32.to_le_bytes());
        f.extend(b"notzlib!");
        let err = parse(&f, Path::new("train_32x32.mat")).expect_err("corrupt");
        let msg = err.to_string();
        assert!(
            msg.contains("train_32x32.mat") && msg.contains("zlib"),
            "{msg}"
        );
    }

    #[test]
    fn a_zlib_bomb_stops_at_the_declared_size() {
        use std::io::Write;
        // An element tag declaring 16 bytes, then 64 MB of zeros: 64 KB compressed.
        let mut inner = Vec::new();
        inner.extend(mi::MATRIX.to_le_bytes());
        inner.extend(16u32.to_le_bytes());
        inner.resize(64 << 20, 0);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(&inner).expect("in memory");
        let compressed = z.finish().expect("in memory");
        let err = inflate(&compressed, Endian::Little, Path::new("t.mat")).expect_err("bomb");
        assert!(
            err.to_string().contains("more data than the tag declares"),
            "{err}"
        );
        // A tag declaring 4 GB in a few compressed bytes.
        let mut liar = Vec::new();
        liar.extend(mi::MATRIX.to_le_bytes());
        liar.extend(u32::MAX.to_le_bytes());
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(&liar).expect("in memory");
        let err = inflate(
            &z.finish().expect("zlib"),
            Endian::Little,
            Path::new("t.mat"),
        )
        .expect_err("impossible size");
        assert!(err.to_string().contains("to hold at most"), "{err}");
    }

    #[test]
    fn bad_header_and_size_mismatch_are_errors() {
        let err = parse(b"\x89HDF\r\n", Path::new("v73.mat")).expect_err("hdf5");
        assert!(err.to_string().contains("v7.3/HDF5"), "{err}");
        let x = write::variable("X", 9, &[2, 3], mi::UINT8, &[1, 2, 3]);
        let err = parse(&file(&[x]), Path::new("t.mat")).expect_err("size");
        assert!(err.to_string().contains("variable 'X'"), "{err}");
        let mut truncated = file(&[write::variable("X", 9, &[1, 1], mi::UINT8, &[1])]);
        truncated.truncate(truncated.len() - 3);
        assert!(parse(&truncated, Path::new("t.mat")).is_err());
    }

    #[test]
    fn non_integer_values_do_not_become_bytes() {
        let v: Vec<u8> = [1.5f64].iter().flat_map(|v| v.to_le_bytes()).collect();
        let arrays = parse(
            &file(&[write::variable("X", 6, &[1, 1], mi::DOUBLE, &v)]),
            Path::new("t.mat"),
        )
        .expect("valid");
        let err = arrays[0]
            .data
            .clone()
            .into_u8(Path::new("t.mat"), "X")
            .expect_err("1.5");
        assert!(err.to_string().contains("1.5 at element 0"), "{err}");
    }
}
