//! SVHN format 2: `train_32x32.mat` (73,257 images), `test_32x32.mat` (26,032).
//!
//! `X` is uint8 of dimensions [32, 32, 3, N], column-major, so pixel (row r, column c, channel
//! ch, image n) lies at `r + 32 c + 1024 ch + 3072 n`: each plane is the transpose of CIFAR's.
//! `y` is [N, 1] with labels 1..10, where 10 means the digit 0.

use std::path::Path;

use super::mat::{self, MatArray};
use super::transpose_planes;
use crate::error::read_file;
use crate::{DataError, ImageSet, ImageShape};

/// Shape of an SVHN image.
pub const SVHN_SHAPE: ImageShape = ImageShape::new(3, 32, 32);

fn take(arrays: &mut Vec<MatArray>, name: &str, path: &Path) -> Result<MatArray, DataError> {
    let found: Vec<String> = arrays.iter().map(|a| a.name.clone()).collect();
    let i = arrays.iter().position(|a| a.name == name).ok_or_else(|| {
        DataError::format(
            path,
            format!("a numeric variable '{name}'"),
            format!("variables {found:?}"),
        )
    })?;
    Ok(arrays.swap_remove(i))
}

/// Parses an SVHN `.mat` file into a CHW set with labels 0..9.
pub fn parse(bytes: &[u8], path: &Path) -> Result<ImageSet, DataError> {
    let mut arrays = mat::parse(bytes, path)?;
    let x = take(&mut arrays, "X", path)?;
    let y = take(&mut arrays, "y", path)?;
    // MATLAB drops trailing singleton dimensions: one image is [32, 32, 3].
    let n = match x.dims.as_slice() {
        [32, 32, 3] => 1,
        [32, 32, 3, n] => *n,
        dims => {
            return Err(DataError::format(
                path,
                "X of dimensions [32, 32, 3, N]",
                format!("{dims:?}"),
            ));
        }
    };
    if !matches!(y.dims.as_slice(), [a, 1] | [1, a] if *a == n) {
        return Err(DataError::format(
            path,
            format!("y of dimensions [{n}, 1], one label per image"),
            format!("{:?}", y.dims),
        ));
    }
    let labels = y
        .data
        .to_f64()
        .into_iter()
        .enumerate()
        .map(|(index, v)| {
            if v.fract() == 0.0 && (1.0..=10.0).contains(&v) {
                Ok((v as u16) % 10)
            } else {
                Err(DataError::LabelValue {
                    path: path.to_path_buf(),
                    index,
                    value: v,
                    expected: "an integer in 1..=10 (10 is the digit 0)".into(),
                })
            }
        })
        .collect::<Result<Vec<u16>, _>>()?;
    let mut pixels = x.data.into_u8(path, "X")?;
    transpose_planes(&mut pixels, 32);
    Ok(ImageSet::new(pixels, labels, SVHN_SHAPE, 10))
}

/// Reads an SVHN `.mat` file.
pub fn read(path: &Path) -> Result<ImageSet, DataError> {
    parse(&read_file(path)?, path)
}

#[cfg(test)]
mod tests {
    use super::mat::{mi, write};
    use super::*;

    fn svhn(pixels_colmajor: &[u8], dims: &[i32], labels: &[f64]) -> Vec<u8> {
        let mut f = write::header();
        f.extend(write::variable("X", 9, dims, mi::UINT8, pixels_colmajor));
        let y: Vec<u8> = labels.iter().flat_map(|v| v.to_le_bytes()).collect();
        f.extend(write::variable(
            "y",
            6,
            &[labels.len() as i32, 1],
            mi::DOUBLE,
            &y,
        ));
        f
    }

    #[test]
    fn column_major_planes_become_rows_and_10_becomes_0() {
        let mut x = vec![0u8; 2 * 3072];
        // Image 1, channel 2, row 5, column 7 at r + 32 c + 1024 ch + 3072 n.
        x[5 + 32 * 7 + 1024 * 2 + 3072] = 99;
        let set =
            parse(&svhn(&x, &[32, 32, 3, 2], &[10.0, 3.0]), Path::new("t.mat")).expect("valid");
        assert_eq!((set.label(0), set.label(1)), (0, 3));
        let s = set.sample(1).expect("image 1");
        assert_eq!(s.at(2, 5, 7), 99);
        assert_eq!(s.at(2, 7, 5), 0);
    }

    #[test]
    fn bad_labels_and_shapes_are_errors() {
        let x = vec![0u8; 3072];
        let err =
            parse(&svhn(&x, &[32, 32, 3, 1], &[11.0]), Path::new("t.mat")).expect_err("label 11");
        assert!(err.to_string().contains("is 11,"), "{err}");
        for (bad, shown) in [(1.5, "is 1.5,"), (f64::NAN, "is NaN,"), (-3.0, "is -3,")] {
            let err = parse(&svhn(&x, &[32, 32, 3, 1], &[bad]), Path::new("t.mat"))
                .expect_err("not a label");
            assert!(
                matches!(err, DataError::LabelValue { .. }) && err.to_string().contains(shown),
                "{err}"
            );
        }
        let err = parse(&svhn(&x, &[32, 96, 1, 1], &[1.0]), Path::new("t.mat")).expect_err("shape");
        assert!(err.to_string().contains("[32, 32, 3, N]"), "{err}");
        let mut f = write::header();
        f.extend(write::variable("X", 9, &[32, 32, 3], mi::UINT8, &x));
        let err = parse(&f, Path::new("t.mat")).expect_err("no y");
        assert!(err.to_string().contains("'y'"), "{err}");
    }
}
