//! A learnable synthetic data set, for tests that must not depend on files.

use rand::RngExt;

use crate::augment::item_rng;
use crate::source::ImageSource;
use crate::{DataError, ImageShape, Sample};

/// Images whose class is a coloured 4x4 block pattern (one per class, fixed by `seed`) under
/// uniform noise: easy for a small CNN to learn, generated on demand (no memory held).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Synthetic {
    len: usize,
    num_classes: usize,
    shape: ImageShape,
    seed: u64,
    offset: usize,
    templates: Vec<[u8; 48]>,
}

/// How much of each pixel is the class pattern (the rest is noise), out of 256.
const SIGNAL: u32 = 160;

impl Synthetic {
    /// `len` RGB images of `size x size` in `num_classes` classes; image `i` has class
    /// `i % num_classes`.
    pub fn new(len: usize, num_classes: usize, size: usize, seed: u64) -> Self {
        let templates = (0..num_classes)
            .map(|class| {
                let mut rng = item_rng(seed, usize::MAX, class);
                std::array::from_fn(|_| rng.random_range(0..=255u8))
            })
            .collect();
        Self {
            len,
            num_classes,
            shape: ImageShape::new(3, size, size),
            seed,
            offset: 0,
            templates,
        }
    }

    /// The same classes, with images `offset ..` of the generator: a disjoint test split.
    pub fn with_offset(mut self, offset: usize) -> Self {
        self.offset = offset;
        self
    }
}

impl ImageSource for Synthetic {
    fn len(&self) -> usize {
        self.len
    }

    fn num_classes(&self) -> usize {
        self.num_classes
    }

    fn shape(&self) -> Option<ImageShape> {
        Some(self.shape)
    }

    fn load(&self, index: usize) -> Result<Sample, DataError> {
        if index >= self.len {
            return Err(DataError::Config(format!(
                "image {index} requested from a synthetic set of {}",
                self.len
            )));
        }
        let index = index + self.offset;
        let label = index % self.num_classes;
        let template = &self.templates[label];
        let mut rng = item_rng(self.seed, usize::MAX - 1, index);
        let ImageShape { height, width, .. } = self.shape;
        let mut pixels = Vec::with_capacity(self.shape.len());
        for c in 0..3 {
            for y in 0..height {
                for x in 0..width {
                    let block = template[c * 16 + (y * 4 / height) * 4 + x * 4 / width] as u32;
                    let noise = rng.random_range(0..=255u32);
                    pixels.push(((block * SIGNAL + noise * (256 - SIGNAL)) >> 8) as u8);
                }
            }
        }
        Ok(Sample {
            pixels,
            shape: self.shape,
            label,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_balanced_and_class_dependent() {
        let s = Synthetic::new(40, 4, 16, 9);
        let a = s.load(5).expect("in range");
        assert_eq!(a, s.load(5).expect("in range"));
        assert_eq!(a.label, 1);
        assert_eq!(a.shape, ImageShape::new(3, 16, 16));
        // Same class, other noise: close; other class: far (mean absolute difference).
        let diff = |x: &Sample, y: &Sample| -> f64 {
            let sum: u64 = x
                .pixels
                .iter()
                .zip(&y.pixels)
                .map(|(&p, &q)| p.abs_diff(q) as u64)
                .sum();
            sum as f64 / x.pixels.len() as f64
        };
        let same = diff(&a, &s.load(9).expect("class 1"));
        let other = diff(&a, &s.load(6).expect("class 2"));
        assert!(same < other, "same-class {same} vs other-class {other}");
        assert!(s.load(40).is_err());
        let test = Synthetic::new(40, 4, 16, 9).with_offset(40);
        assert_ne!(test.load(5).expect("in range"), a);
    }
}
