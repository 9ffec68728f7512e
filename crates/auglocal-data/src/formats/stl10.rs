//! STL-10 binary (`stl10_binary/`): `train_X.bin` (5,000 images), `test_X.bin` (8,000), with
//! `train_y.bin` / `test_y.bin` holding one label byte each, 1..10.
//!
//! Each image is 3 planes of 96x96 stored column-major: pixel (n, ch, r, c) lies at
//! `n * 27648 + ch * 9216 + c * 96 + r`.

use std::path::Path;

use super::{thousands, transpose_planes};
use crate::error::{read_file, regular_file};
use crate::{DataError, ImageSet, ImageShape};

/// Shape of an STL-10 image.
pub const STL10_SHAPE: ImageShape = ImageShape::new(3, 96, 96);

/// Parses image and label bytes into a CHW set with labels 0..9; takes the pixels by value to
/// transpose them in place.
pub fn parse(
    mut pixels: Vec<u8>,
    x_path: &Path,
    labels: &[u8],
    y_path: &Path,
) -> Result<ImageSet, DataError> {
    let size = STL10_SHAPE.len();
    if pixels.is_empty() || !pixels.len().is_multiple_of(size) {
        return Err(DataError::format(
            x_path,
            format!(
                "a whole number of {}-byte images (3 x 96 x 96)",
                thousands(size)
            ),
            format!("{} bytes", thousands(pixels.len())),
        ));
    }
    let n = pixels.len() / size;
    if labels.len() != n {
        return Err(DataError::format(
            y_path,
            format!("{n} label bytes, one per image of {}", x_path.display()),
            format!("{} bytes", labels.len()),
        ));
    }
    let labels = labels
        .iter()
        .enumerate()
        .map(|(index, &l)| {
            if (1..=10).contains(&l) {
                Ok(l as u16 - 1)
            } else {
                Err(DataError::Label {
                    path: y_path.to_path_buf(),
                    index,
                    label: l as i64,
                    expected: "1..=10".into(),
                })
            }
        })
        .collect::<Result<Vec<u16>, _>>()?;
    transpose_planes(&mut pixels, 96);
    Ok(ImageSet::new(pixels, labels, STL10_SHAPE, 10))
}

/// Reads `*_X.bin` and `*_y.bin`; both lengths are checked from their metadata (whole
/// images, one label byte each) before either file is read.
pub fn read(x_path: &Path, y_path: &Path) -> Result<ImageSet, DataError> {
    let (x_len, y_len) = (regular_file(x_path)?, regular_file(y_path)?);
    let size = STL10_SHAPE.len() as u64;
    if x_len == 0 || !x_len.is_multiple_of(size) {
        return Err(DataError::format(
            x_path,
            format!(
                "a whole number of {}-byte images (3 x 96 x 96)",
                thousands(size as usize)
            ),
            format!("{x_len} bytes"),
        ));
    }
    if y_len != x_len / size {
        return Err(DataError::format(
            y_path,
            format!(
                "{} label bytes, one per image of {}",
                x_len / size,
                x_path.display()
            ),
            format!("{y_len} bytes"),
        ));
    }
    let labels = read_file(y_path)?;
    parse(read_file(x_path)?, x_path, &labels, y_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_major_planes_become_rows_and_labels_start_at_0() {
        let mut x = vec![0u8; 2 * 27648];
        // Image 1, channel 0, row 3, column 80 at n * 27648 + ch * 9216 + c * 96 + r.
        x[27648 + 80 * 96 + 3] = 42;
        let set = parse(x, Path::new("x"), &[1, 10], Path::new("y")).expect("valid");
        assert_eq!((set.label(0), set.label(1)), (0, 9));
        let s = set.sample(1).expect("image 1");
        assert_eq!(s.at(0, 3, 80), 42);
        assert_eq!(s.at(0, 80, 3), 0);
    }

    #[test]
    fn sizes_and_labels_are_checked() {
        let err = parse(
            vec![0; 27647],
            Path::new("train_X.bin"),
            &[1],
            Path::new("y"),
        )
        .expect_err("short");
        assert!(err.to_string().contains("train_X.bin"), "{err}");
        let err = parse(
            vec![0; 27648],
            Path::new("x"),
            &[1, 2],
            Path::new("train_y.bin"),
        )
        .expect_err("count");
        assert!(err.to_string().contains("1 label bytes"), "{err}");
        let err = parse(vec![0; 27648], Path::new("x"), &[0], Path::new("y")).expect_err("0");
        assert!(matches!(err, DataError::Label { label: 0, .. }), "{err}");
    }

    #[test]
    fn file_lengths_are_checked_before_reading() {
        let dir = std::env::temp_dir().join(format!("auglocal-stl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let (x, y) = (dir.join("train_X.bin"), dir.join("train_y.bin"));
        std::fs::File::create(&x)
            .and_then(|f| f.set_len(2_000_000_000))
            .expect("sparse");
        std::fs::write(&y, [1]).expect("labels");
        let err = read(&x, &y).expect_err("not whole images");
        assert!(err.to_string().contains("train_X.bin"), "{err}");
        std::fs::File::create(&x)
            .and_then(|f| f.set_len(27648 * 2))
            .expect("two images");
        let err = read(&x, &y).expect_err("one label for two images");
        assert!(err.to_string().contains("2 label bytes"), "{err}");
        std::fs::remove_dir_all(dir).expect("clean up");
    }
}
