//! Decoding image files (PNG, JPEG) with bounded memory.
//!
//! - At most [`MAX_SIDE`] pixels a side and [`MAX_DECODE_BYTES`] of decoded pixels (the
//!   `image` crate's decoding limits; the JPEG decoder's own for JPEG), so a small file that
//!   declares a huge image is refused before its pixels are allocated. Decoding holds the
//!   pixels twice at its peak (interleaved as decoded, and as planes), so one image costs at
//!   most about `2 * MAX_DECODE_BYTES`, whatever its header declares.
//! - An aspect ratio of at most [`MAX_ASPECT`]: a square crop resized from such an image costs
//!   at most `MAX_ASPECT` times the square, never gigabytes.
//! - JPEG is decoded in strict mode: a truncated file (no end-of-image marker, entropy data
//!   cut short) is an error naming the file, not an image silently filled with grey. A
//!   complete file that strict mode rejects for a minor departure from the standard is
//!   decoded leniently, as browsers and PIL do.

use std::io::Cursor;
use std::path::Path;

use image::{ImageFormat, ImageReader, Limits};
use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;

use crate::{DataError, ImageShape, Sample};

/// Longest side of an image file, in pixels.
pub const MAX_SIDE: u32 = 16_384;
/// Most bytes of decoded pixels of one image (and of the file itself): 44.7 million RGB
/// pixels, more than a 45-megapixel camera's. The peak of decoding one is about twice this.
pub const MAX_DECODE_BYTES: u64 = 128 << 20;
/// Most pixels of the long side per pixel of the short side.
pub const MAX_ASPECT: u32 = 32;

fn decode_error(path: &Path, message: impl Into<String>) -> DataError {
    DataError::Decode {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Checks the dimensions of an image before (or right after) decoding it.
fn check_dimensions(path: &Path, width: u32, height: u32) -> Result<(), DataError> {
    if width == 0 || height == 0 {
        return Err(decode_error(
            path,
            format!("an empty {width}x{height} image"),
        ));
    }
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(decode_error(
            path,
            format!("{width}x{height} pixels: larger than {MAX_SIDE} a side"),
        ));
    }
    let (long, short) = (width.max(height), width.min(height));
    if u64::from(long) > u64::from(short) * u64::from(MAX_ASPECT) {
        return Err(decode_error(
            path,
            format!(
                "{width}x{height} pixels: an aspect ratio beyond {MAX_ASPECT}:1, which no square \
                 crop of it can use"
            ),
        ));
    }
    if u64::from(width) * u64::from(height) * 3 > MAX_DECODE_BYTES {
        return Err(decode_error(
            path,
            format!(
                "{width}x{height} pixels: more than {} MiB decoded",
                MAX_DECODE_BYTES >> 20
            ),
        ));
    }
    Ok(())
}

/// Whether JPEG data ends with its end-of-image marker (`FF D9`), trailing zeros aside.
fn has_end_marker(bytes: &[u8]) -> bool {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    bytes[..end].ends_with(&[0xff, 0xd9])
}

/// JPEG bytes to interleaved RGB, strictly; `None` when strict mode rejects a complete file.
fn decode_jpeg_strict(bytes: &[u8], path: &Path) -> Result<Option<(u32, u32, Vec<u8>)>, DataError> {
    let options = DecoderOptions::default()
        .set_strict_mode(true)
        .set_max_width(MAX_SIDE as usize)
        .set_max_height(MAX_SIDE as usize)
        .jpeg_set_out_colorspace(ColorSpace::RGB);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    if let Err(e) = decoder.decode_headers() {
        return Err(decode_error(path, format!("not a readable JPEG: {e:?}")));
    }
    let (width, height) = decoder
        .dimensions()
        .ok_or_else(|| decode_error(path, "a JPEG without dimensions"))?;
    let (width, height) = (width as u32, height as u32);
    check_dimensions(path, width, height)?;
    match decoder.decode() {
        Ok(pixels) if pixels.len() == (width * height * 3) as usize => {
            Ok(Some((width, height, pixels)))
        }
        Ok(_) => Ok(None),
        Err(e) if !has_end_marker(bytes) => Err(decode_error(
            path,
            format!("a truncated JPEG (it ends before its end-of-image marker): {e:?}"),
        )),
        Err(_) => Ok(None),
    }
}

/// A reader of `bytes` with the decoding limits set.
fn limited_reader<'a>(
    bytes: &'a [u8],
    path: &Path,
) -> Result<ImageReader<Cursor<&'a [u8]>>, DataError> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| decode_error(path, e.to_string()))?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    Ok(reader)
}

/// Any supported image through the `image` crate, within the limits.
fn decode_lenient(bytes: &[u8], path: &Path) -> Result<(u32, u32, Vec<u8>), DataError> {
    // The header first: the shape is checked before any pixel is decoded.
    let (width, height) = limited_reader(bytes, path)?
        .into_dimensions()
        .map_err(|e| decode_error(path, e.to_string()))?;
    check_dimensions(path, width, height)?;
    // `into_rgb8` keeps an RGB8 image's buffer rather than copying it.
    let rgb = limited_reader(bytes, path)?
        .decode()
        .map_err(|e| decode_error(path, e.to_string()))?
        .into_rgb8();
    Ok((rgb.width(), rgb.height(), rgb.into_raw()))
}

/// Decodes PNG or JPEG bytes to an RGB sample (CHW) with label `label`.
pub fn decode(bytes: &[u8], path: &Path, label: usize) -> Result<Sample, DataError> {
    let decoded = match image::guess_format(bytes) {
        Ok(ImageFormat::Jpeg) => match decode_jpeg_strict(bytes, path)? {
            Some(d) => d,
            None => decode_lenient(bytes, path)?,
        },
        Ok(ImageFormat::Png) => decode_lenient(bytes, path)?,
        Ok(other) => {
            return Err(decode_error(
                path,
                format!("a {other:?} image; only PNG and JPEG are read"),
            ));
        }
        Err(_) => return Err(decode_error(path, "neither a PNG nor a JPEG file")),
    };
    let (width, height, rgb) = decoded;
    Ok(Sample {
        shape: ImageShape::new(3, height as usize, width as usize),
        pixels: crate::transform::hwc_to_chw(&rgb, 3),
        label,
    })
}

/// Reads and decodes an image file.
pub fn read(path: &Path, label: usize) -> Result<Sample, DataError> {
    let len = crate::error::regular_file(path)?;
    if len > MAX_DECODE_BYTES {
        return Err(decode_error(
            path,
            format!(
                "a file of {len} bytes, more than the {} MiB an image may have",
                MAX_DECODE_BYTES >> 20
            ),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    decode(&bytes, path, label)
}

#[cfg(test)]
mod tests {
    use image::{ImageEncoder, RgbImage};

    use super::*;

    fn encode(img: &RgbImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), format)
            .expect("encode");
        out
    }

    fn photo(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([
                (x * 7 % 256) as u8,
                (y * 13 % 256) as u8,
                ((x ^ y) % 256) as u8,
            ])
        })
    }

    #[test]
    fn decodes_png_and_jpeg_to_the_same_shape() {
        let img = photo(40, 24);
        for format in [ImageFormat::Png, ImageFormat::Jpeg] {
            let s = decode(&encode(&img, format), Path::new("x"), 3).expect("decodes");
            assert_eq!((s.shape, s.label), (ImageShape::new(3, 24, 40), 3));
        }
        let png = decode(&encode(&img, ImageFormat::Png), Path::new("x"), 0).expect("png");
        assert_eq!(png.at(0, 5, 9), img.get_pixel(9, 5)[0]);
    }

    #[test]
    fn a_truncated_jpeg_is_an_error_not_a_grey_image() {
        let jpeg = encode(&photo(64, 64), ImageFormat::Jpeg);
        // Cut inside the entropy-coded data (a file missing only its final marker is complete).
        for keep in [jpeg.len() - 40, jpeg.len() / 2, jpeg.len() / 3] {
            let result = decode(&jpeg[..keep], Path::new("cut.jpg"), 0);
            let Err(err) = result else {
                panic!("a JPEG cut to {keep} of {} bytes decoded", jpeg.len());
            };
            assert!(err.to_string().contains("cut.jpg"), "{err}");
        }
        let png = encode(&photo(64, 64), ImageFormat::Png);
        assert!(decode(&png[..png.len() / 2], Path::new("cut.png"), 0).is_err());
        assert!(decode(&png[..png.len() - 12], Path::new("cut.png"), 0).is_err());
    }

    #[test]
    fn extreme_shapes_are_refused_before_resizing() {
        // A 4000x1 PNG is 84 bytes; resized to a 256-pixel short side it would be 786 MB.
        let strip = encode(
            &RgbImage::from_pixel(4000, 1, image::Rgb([9, 9, 9])),
            ImageFormat::Png,
        );
        assert!(strip.len() < 200, "{}", strip.len());
        let err = decode(&strip, Path::new("strip.png"), 0).expect_err("aspect");
        assert!(err.to_string().contains("aspect ratio"), "{err}");
        assert!(decode(&encode(&photo(64, 2), ImageFormat::Png), Path::new("x"), 0).is_ok());
        // A header that declares 20,000 x 20,000 pixels.
        let mut big = Vec::new();
        image::codecs::png::PngEncoder::new(&mut big)
            .write_image(&[0; 3], 1, 1, image::ExtendedColorType::Rgb8)
            .expect("png");
        // Width and height live at bytes 16..24 of the IHDR chunk; the CRC no longer matches,
        // which the limit check must not need to reach.
        big[16..20].copy_from_slice(&20_000u32.to_be_bytes());
        big[20..24].copy_from_slice(&20_000u32.to_be_bytes());
        assert!(decode(&big, Path::new("big.png"), 0).is_err());
        assert!(decode(b"not an image", Path::new("x"), 0).is_err());
    }

    #[test]
    fn a_jpeg_declaring_more_than_the_pixel_budget_is_refused_from_its_header() {
        // The fuzzer's find: a 671-byte JPEG declaring 9124 x 9508 pixels (260 MB decoded, so
        // 520 MB at the peak of decoding). Its frame header is rewritten here to those sides.
        let mut jpeg = encode(&photo(16, 16), ImageFormat::Jpeg);
        let sof = jpeg
            .windows(2)
            .position(|m| m == [0xff, 0xc0])
            .expect("a baseline frame header");
        jpeg[sof + 5..sof + 7].copy_from_slice(&9508u16.to_be_bytes());
        jpeg[sof + 7..sof + 9].copy_from_slice(&9124u16.to_be_bytes());
        let err = decode(&jpeg, Path::new("big.jpg"), 0).expect_err("over the budget");
        assert!(err.to_string().contains("MiB decoded"), "{err}");
        // Within the budget, the same rewrite reaches the decoder, which finds too little data.
        jpeg[sof + 5..sof + 7].copy_from_slice(&64u16.to_be_bytes());
        jpeg[sof + 7..sof + 9].copy_from_slice(&64u16.to_be_bytes());
        let err = decode(&jpeg, Path::new("small.jpg"), 0).map(|s| s.shape);
        assert!(
            !matches!(&err, Err(e) if e.to_string().contains("MiB decoded")),
            "{err:?}"
        );
    }
}
