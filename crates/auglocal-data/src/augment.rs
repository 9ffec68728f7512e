//! The reference's augmentations (method doc, section 7), with seeded randomness.
//!
//! Every image draws its random parameters from its own generator, seeded by (run seed, epoch,
//! image index) through [`item_rng`], so a batch is the same whatever thread made it and
//! whatever order the threads ran in.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::transform::{Padding, crop_resize, flip_horizontal, pad_crop, resize_center_crop};
use crate::{ImageShape, Sample};

/// SplitMix64's finaliser: a bijective mix of 64 bits.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The generator of image `index` in epoch `epoch` of a run seeded with `seed`.
pub fn item_rng(seed: u64, epoch: usize, index: usize) -> StdRng {
    StdRng::seed_from_u64(mix(mix(mix(seed) ^ epoch as u64) ^ index as u64))
}

/// The generator of epoch `epoch`'s shuffle.
pub fn epoch_rng(seed: u64, epoch: usize) -> StdRng {
    StdRng::seed_from_u64(mix(mix(seed ^ 0x5eed_5eed_5eed_5eed) ^ epoch as u64))
}

/// A training- or evaluation-time transformation of one image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Augment {
    /// Nothing.
    None,
    /// Pad every side by `pad`, crop a random `size x size` window, flip with probability 1/2
    /// if `flip`. CIFAR: reflect 4, 32, flip. SVHN: zero 2, 32, no flip. STL-10: zero 4, 96,
    /// flip.
    PadCrop {
        /// Padding on each side.
        pad: usize,
        /// How the padding is filled.
        padding: Padding,
        /// Side of the crop.
        size: usize,
        /// Random horizontal flip.
        flip: bool,
    },
    /// torchvision's `RandomResizedCrop(size)` (scale 0.08..1, aspect 3/4..4/3), then a random
    /// flip if `flip` (ImageNet training).
    RandomResizedCrop {
        /// Side of the output.
        size: usize,
        /// Random horizontal flip.
        flip: bool,
    },
    /// `Resize(resize)` of the shorter side, then `CenterCrop(crop)` (ImageNet evaluation).
    ResizeCenterCrop {
        /// Shorter side after resizing.
        resize: usize,
        /// Side of the centre crop.
        crop: usize,
    },
}

/// The random parameters drawn for one image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Draw {
    /// The window: `(top, left, height, width)`, in padded coordinates for `PadCrop`.
    pub window: (usize, usize, usize, usize),
    /// Whether the image is flipped horizontally.
    pub flip: bool,
}

impl Augment {
    /// Shape of the output for an input of `input` (the same for every input, except for
    /// `None`).
    pub fn output_shape(&self, input: ImageShape) -> ImageShape {
        match *self {
            Augment::None => input,
            Augment::PadCrop { size, .. } | Augment::RandomResizedCrop { size, .. } => {
                ImageShape::new(input.channels, size, size)
            }
            Augment::ResizeCenterCrop { crop, .. } => ImageShape::new(input.channels, crop, crop),
        }
    }

    /// Whether every output has the same shape whatever the input's size.
    pub fn fixes_size(&self) -> bool {
        !matches!(self, Augment::None)
    }

    /// Draws the random parameters for an image of `shape`; `None` for deterministic
    /// augmentations.
    pub fn draw(&self, shape: ImageShape, rng: &mut StdRng) -> Option<Draw> {
        match *self {
            Augment::None | Augment::ResizeCenterCrop { .. } => None,
            Augment::PadCrop {
                pad, size, flip, ..
            } => {
                let top = rng.random_range(0..=(shape.height + 2 * pad).saturating_sub(size));
                let left = rng.random_range(0..=(shape.width + 2 * pad).saturating_sub(size));
                let flip = flip && rng.random_bool(0.5);
                Some(Draw {
                    window: (top, left, size, size),
                    flip,
                })
            }
            Augment::RandomResizedCrop { flip, .. } => {
                let window = random_resized_window(shape, rng);
                let flip = flip && rng.random_bool(0.5);
                Some(Draw { window, flip })
            }
        }
    }

    /// Applies the augmentation with parameters drawn from `rng`.
    pub fn apply(&self, sample: Sample, rng: &mut StdRng) -> Sample {
        let draw = self.draw(sample.shape, rng);
        self.apply_draw(sample, draw)
    }

    /// Applies the augmentation with the given parameters (from [`Augment::draw`]).
    pub fn apply_draw(&self, sample: Sample, draw: Option<Draw>) -> Sample {
        match (self, draw) {
            (
                Augment::PadCrop {
                    pad, padding, size, ..
                },
                Some(d),
            ) => pad_crop(
                &sample,
                *pad,
                *padding,
                *size,
                (d.window.0, d.window.1),
                d.flip,
            ),
            (Augment::RandomResizedCrop { size, .. }, Some(d)) => {
                let out = crop_resize(&sample, d.window, (*size, *size));
                if d.flip { flip_horizontal(out) } else { out }
            }
            (Augment::ResizeCenterCrop { resize, crop }, _) => {
                resize_center_crop(&sample, *resize, *crop)
            }
            _ => sample,
        }
    }
}

/// torchvision's `RandomResizedCrop.get_params` with scale (0.08, 1) and ratio (3/4, 4/3).
fn random_resized_window(shape: ImageShape, rng: &mut StdRng) -> (usize, usize, usize, usize) {
    let (height, width) = (shape.height as f64, shape.width as f64);
    let area = height * width;
    let (log_lo, log_hi) = ((3.0f64 / 4.0).ln(), (4.0f64 / 3.0).ln());
    for _ in 0..10 {
        let target = area * rng.random_range(0.08..=1.0);
        let aspect = rng.random_range(log_lo..=log_hi).exp();
        let w = (target * aspect).sqrt().round() as usize;
        let h = (target / aspect).sqrt().round() as usize;
        if 0 < w && w <= shape.width && 0 < h && h <= shape.height {
            let top = rng.random_range(0..=shape.height - h);
            let left = rng.random_range(0..=shape.width - w);
            return (top, left, h, w);
        }
    }
    // Fall back to a central crop of the extreme allowed aspect ratio.
    let ratio = width / height;
    let (w, h) = if ratio < 3.0 / 4.0 {
        (shape.width, (width / (3.0 / 4.0)).round() as usize)
    } else if ratio > 4.0 / 3.0 {
        ((height * (4.0 / 3.0)).round() as usize, shape.height)
    } else {
        (shape.width, shape.height)
    };
    let (h, w) = (h.min(shape.height), w.min(shape.width));
    ((shape.height - h) / 2, (shape.width - w) / 2, h, w)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CIFAR: Augment = Augment::PadCrop {
        pad: 4,
        padding: Padding::Reflect,
        size: 32,
        flip: true,
    };
    const SVHN: Augment = Augment::PadCrop {
        pad: 2,
        padding: Padding::Zero,
        size: 32,
        flip: false,
    };

    #[test]
    fn crop_offsets_stay_in_range_and_flips_are_about_half() {
        let shape = ImageShape::new(3, 32, 32);
        let (mut flips, n) = (0, 4000);
        let (mut seen_min, mut seen_max) = (usize::MAX, 0);
        for i in 0..n {
            let d = CIFAR.draw(shape, &mut item_rng(7, 0, i)).expect("random");
            let (top, left, h, w) = d.window;
            assert!(top <= 8 && left <= 8 && (h, w) == (32, 32), "{d:?}");
            seen_min = seen_min.min(top.min(left));
            seen_max = seen_max.max(top.max(left));
            flips += d.flip as usize;
        }
        assert_eq!((seen_min, seen_max), (0, 8), "every offset is reachable");
        // Binomial(4000, 0.5): mean 2000, sd ~32; 1850..2150 is more than 4.5 sd.
        assert!((1850..2150).contains(&flips), "{flips} flips of {n}");
    }

    #[test]
    fn svhn_never_flips() {
        let shape = ImageShape::new(3, 32, 32);
        for i in 0..1000 {
            let d = SVHN.draw(shape, &mut item_rng(1, 3, i)).expect("random");
            assert!(!d.flip);
            assert!(d.window.0 <= 4 && d.window.1 <= 4);
        }
    }

    #[test]
    fn same_seed_same_draw_other_seed_or_epoch_other_draw() {
        let shape = ImageShape::new(3, 32, 32);
        let draws = |seed, epoch| -> Vec<Draw> {
            (0..64)
                .filter_map(|i| CIFAR.draw(shape, &mut item_rng(seed, epoch, i)))
                .collect()
        };
        assert_eq!(draws(5, 1), draws(5, 1));
        assert_ne!(draws(5, 1), draws(6, 1));
        assert_ne!(draws(5, 1), draws(5, 2));
    }

    #[test]
    fn random_resized_windows_fit_and_output_has_the_size() {
        let aug = Augment::RandomResizedCrop {
            size: 24,
            flip: true,
        };
        let shape = ImageShape::new(3, 50, 80);
        for i in 0..500 {
            let d = aug.draw(shape, &mut item_rng(2, 0, i)).expect("random");
            let (top, left, h, w) = d.window;
            assert!(h > 0 && w > 0 && top + h <= 50 && left + w <= 80, "{d:?}");
        }
        let sample = Sample {
            pixels: vec![128; shape.len()],
            shape,
            label: 3,
        };
        let out = aug.apply(sample, &mut item_rng(2, 0, 0));
        assert_eq!(out.shape, ImageShape::new(3, 24, 24));
        assert!(out.pixels.iter().all(|&p| p == 128));
        assert_eq!(out.label, 3);
    }
}
