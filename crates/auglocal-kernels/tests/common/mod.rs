//! Shared helpers of the gradient tests: deterministic random tensors and a relative error.

// Each test binary uses a part of these helpers.
#![allow(dead_code)]

use burn::tensor::TensorData;
use burn_flex::FlexTensor;

/// A convolution case: `[n, c, h, w]` input, `o` output channels, square kernel `k`,
/// stride `s`, padding `p`.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    pub x: [usize; 4],
    pub o: usize,
    pub k: usize,
    pub s: usize,
    pub p: usize,
}

impl Case {
    pub const fn new(x: [usize; 4], o: usize, k: usize, s: usize, p: usize) -> Self {
        Self { x, o, k, s, p }
    }

    pub fn weight(&self) -> [usize; 4] {
        [self.o, self.x[1], self.k, self.k]
    }

    pub fn out(&self) -> [usize; 4] {
        let side = |i: usize| (i + 2 * self.p - self.k) / self.s + 1;
        [self.x[0], self.o, side(self.x[2]), side(self.x[3])]
    }
}

/// Every convolution shape of the CIFAR ResNets (stem, blocks, projections), of AugLocal's aux
/// blocks at pyramid widths and of DGL's head, then the odd cases.
pub const CASES: &[Case] = &[
    // CIFAR ResNet: stem, stage 1-3 blocks, downsampling blocks and their 1x1 projections.
    Case::new([8, 3, 32, 32], 16, 3, 1, 1),
    Case::new([8, 16, 32, 32], 16, 3, 1, 1),
    Case::new([8, 16, 32, 32], 32, 3, 2, 1),
    Case::new([8, 16, 32, 32], 32, 1, 2, 0),
    Case::new([8, 32, 16, 16], 32, 3, 1, 1),
    Case::new([8, 32, 16, 16], 64, 3, 2, 1),
    Case::new([8, 32, 16, 16], 64, 1, 2, 0),
    Case::new([8, 64, 8, 8], 64, 3, 1, 1),
    // AugLocal aux blocks with pyramid-narrowed widths (and wider ones at width 2).
    Case::new([8, 16, 32, 32], 8, 3, 2, 1),
    Case::new([8, 8, 16, 16], 24, 3, 1, 1),
    Case::new([8, 128, 8, 8], 128, 3, 1, 1),
    // DGL's head: 1x1 convolutions at the pooled size ceil(H / 4).
    Case::new([8, 16, 8, 8], 16, 1, 1, 0),
    Case::new([8, 64, 2, 2], 64, 1, 1, 0),
    // Odd cases: stride 2 on odd sizes, 7x7 with padding 3, padding 0, batch 1, a batch not
    // divisible by the chunk count, several row tiles per image, 5x5 larger than the input.
    Case::new([3, 4, 7, 9], 6, 3, 2, 1),
    Case::new([2, 3, 15, 13], 8, 7, 2, 3),
    Case::new([2, 4, 9, 9], 5, 3, 1, 0),
    Case::new([1, 5, 11, 11], 3, 3, 2, 1),
    Case::new([17, 4, 6, 6], 4, 3, 1, 1),
    Case::new([33, 3, 5, 5], 2, 1, 2, 0),
    Case::new([2, 3, 128, 128], 4, 7, 1, 3),
    Case::new([2, 2, 3, 3], 3, 5, 1, 2),
];

/// `len` values of a fixed pseudo-random sequence in [-1, 1) (a 64-bit LCG).
pub fn values(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

pub fn flex(shape: [usize; 4], seed: u64) -> FlexTensor {
    let len = shape.iter().product();
    FlexTensor::from_data(TensorData::new(values(len, seed), shape))
}

pub fn to_vec(t: FlexTensor) -> Vec<f32> {
    t.into_data().to_vec::<f32>().expect("f32 data")
}

/// `|a - b| / |b|` in the Frobenius norm.
pub fn relative_error(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "shapes differ");
    let diff: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
        .sum();
    let norm: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    (diff / norm.max(f64::MIN_POSITIVE)).sqrt()
}

/// Asserts that each named gradient is present on both paths or on neither, and where present
/// agrees within `tolerance` (relative error); `case` names the case in messages.
pub fn assert_grads_agree(
    names: &[&str],
    got: &[Option<Vec<f32>>],
    want: &[Option<Vec<f32>>],
    tolerance: f64,
    case: &str,
) {
    for (name, (g, w)) in names.iter().zip(got.iter().zip(want)) {
        match (g, w) {
            (Some(g), Some(w)) => {
                let err = relative_error(g, w);
                assert!(
                    err < tolerance,
                    "{name} grad of {case}: relative error {err:e}"
                );
            }
            (None, None) => {}
            _ => panic!("{name} grad of {case}: present on one path only"),
        }
    }
}
