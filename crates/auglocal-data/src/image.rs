//! Images in memory: one sample, and a whole set in one contiguous buffer.

use serde::{Deserialize, Serialize};

/// Channels and sides of an image (CHW layout).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageShape {
    /// Channels (1 for grey, 3 for RGB).
    pub channels: usize,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
}

impl ImageShape {
    /// A shape.
    pub const fn new(channels: usize, height: usize, width: usize) -> Self {
        Self {
            channels,
            height,
            width,
        }
    }

    /// Bytes of one u8 image of this shape.
    pub const fn len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Whether the shape holds no pixel.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One image with its label: u8 pixels in CHW order (`pixels[c * H * W + y * W + x]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// CHW pixels.
    pub pixels: Vec<u8>,
    /// Their shape.
    pub shape: ImageShape,
    /// Class index, from 0.
    pub label: usize,
}

impl Sample {
    /// Pixel `(c, y, x)`.
    pub fn at(&self, c: usize, y: usize, x: usize) -> u8 {
        self.pixels[(c * self.shape.height + y) * self.shape.width + x]
    }
}

/// Images of one shape in one contiguous u8 buffer (CHW per image), with their labels.
///
/// A 60,000-image set is one allocation, not 60,000.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSet {
    pixels: Vec<u8>,
    labels: Vec<u16>,
    shape: ImageShape,
    num_classes: usize,
}

impl ImageSet {
    /// A set from its parts.
    ///
    /// # Panics
    /// If `pixels` does not hold exactly `labels.len()` images of `shape`, or a label is not
    /// below `num_classes` (readers check both before building a set).
    pub fn new(pixels: Vec<u8>, labels: Vec<u16>, shape: ImageShape, num_classes: usize) -> Self {
        assert_eq!(
            pixels.len(),
            labels.len() * shape.len(),
            "pixels and labels disagree"
        );
        assert!(
            labels.iter().all(|&l| (l as usize) < num_classes),
            "label out of range"
        );
        Self {
            pixels,
            labels,
            shape,
            num_classes,
        }
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Shape of every image.
    pub fn shape(&self) -> ImageShape {
        self.shape
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// CHW pixels of image `index`.
    ///
    /// # Panics
    /// If `index >= len()`.
    pub fn pixels(&self, index: usize) -> &[u8] {
        let n = self.shape.len();
        &self.pixels[index * n..(index + 1) * n]
    }

    /// Label of image `index`.
    ///
    /// # Panics
    /// If `index >= len()`.
    pub fn label(&self, index: usize) -> usize {
        self.labels[index] as usize
    }

    /// Every label, in order.
    pub fn labels(&self) -> impl Iterator<Item = usize> + '_ {
        self.labels.iter().map(|&l| l as usize)
    }

    /// Image `index` as an owned sample, or `None` past the end.
    pub fn sample(&self, index: usize) -> Option<Sample> {
        (index < self.len()).then(|| Sample {
            pixels: self.pixels(index).to_vec(),
            shape: self.shape,
            label: self.label(index),
        })
    }

    /// Keeps the first `n` images (all of them if there are fewer), freeing the rest.
    pub fn truncate(&mut self, n: usize) {
        if n < self.len() {
            self.labels.truncate(n);
            self.pixels.truncate(n * self.shape.len());
            self.labels.shrink_to_fit();
            self.pixels.shrink_to_fit();
        }
    }
}
