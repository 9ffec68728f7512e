//! Training-mode BatchNorm2d kernels on contiguous f32 slices, optionally fused with the residual
//! addition and the ReLU that follow it in a residual block.
//!
//! A `[n, c, h, w]` tensor is `n * c` rows of `h * w` values; channel `ch` owns rows
//! `ch, c + ch, 2c + ch, ...`. Per-channel sums run one channel per task over rayon's current
//! pool, each in a fixed order (16 lanes within a row, the lanes added in order, rows added in
//! f64 in order), so the result does not depend on the number of threads; the elementwise
//! passes run in blocks of rows.

use rayon::prelude::*;

use super::fill::par_vec;

/// Lanes of the vectorised sums.
const LANES: usize = 16;
/// Fewest values a task of an elementwise pass covers (keeps small maps on one thread).
pub(crate) const MIN_TASK: usize = 1 << 14;

/// `n * c` rows of `p` values: the shape of a BatchNorm's input seen row by row.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rows {
    /// Images.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Values per row (`h * w`).
    pub p: usize,
}

impl Rows {
    /// Values per channel: the count each statistic is taken over.
    fn count(self) -> usize {
        self.n * self.p
    }

    /// Rows per task of an elementwise pass.
    fn rows_per_task(self) -> usize {
        MIN_TASK.div_ceil(self.p.max(1))
    }

    /// Row `r` of `data`.
    fn row(self, data: &[f32], r: usize) -> &[f32] {
        &data[r * self.p..][..self.p]
    }

    /// `sum(f(a, b))` over channel `ch`'s values of `a` and `b` (shaped like the input): rows
    /// in order, added in f64.
    fn channel_sum(self, ch: usize, a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f64 {
        (0..self.n)
            .map(|n| {
                let r = n * self.c + ch;
                f64::from(lane_sum(self.row(a, r), self.row(b, r), &f))
            })
            .sum()
    }
}

/// `sum(f(a[i], b[i]))` in 16 lanes, the lanes added in order at the end: a fixed order that
/// the compiler vectorises.
fn lane_sum(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    let (blocks_a, blocks_b) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = (blocks_a.remainder().iter().zip(blocks_b.remainder()))
        .map(|(&u, &v)| f(u, v))
        .sum();
    let mut lanes = [0.0f32; LANES];
    for (u, v) in blocks_a.zip(blocks_b) {
        for ((acc, &u), &v) in lanes.iter_mut().zip(u).zip(v) {
            *acc += f(u, v);
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// The batch statistics of every channel: `(mean, biased variance)`, each `[c]`. The variance
/// is the mean of squared deviations from the mean (two passes), as PyTorch computes it.
pub(crate) fn statistics(rows: Rows, x: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let count = rows.count() as f64;
    (0..rows.c)
        .into_par_iter()
        .map(|ch| {
            let mean = (rows.channel_sum(ch, x, x, |v, _| v) / count) as f32;
            let var = rows.channel_sum(ch, x, x, |v, _| (v - mean) * (v - mean)) / count;
            (mean, var as f32)
        })
        .unzip()
}

/// `1 / sqrt(var + epsilon)` of every channel.
pub(crate) fn inverse_std(var: &[f32], epsilon: f64) -> Vec<f32> {
    var.iter()
        .map(|v| (1.0 / (f64::from(*v) + epsilon).sqrt()) as f32)
        .collect()
}

/// The per-channel values both passes use, each `[c]`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Channels<'a> {
    /// The scale.
    pub gamma: &'a [f32],
    /// The batch mean.
    pub mean: &'a [f32],
    /// `1 / sqrt(var + epsilon)`.
    pub inv_std: &'a [f32],
}

/// The forward pass: `act(gamma * (x - mean) * inv_std + beta [+ residual])`, `[n, c, h, w]`.
pub(crate) fn forward(
    rows: Rows,
    x: &[f32],
    channels: Channels<'_>,
    beta: &[f32],
    residual: Option<&[f32]>,
    relu: bool,
) -> Vec<f32> {
    par_vec(x.len(), rows.p, rows.rows_per_task(), |r, out| {
        let ch = r % rows.c;
        let scale = channels.gamma[ch] * channels.inv_std[ch];
        let shift = beta[ch] - channels.mean[ch] * scale;
        let act = |v: f32| if relu { v.max(0.0) } else { v };
        let x = rows.row(x, r).iter();
        match residual {
            Some(residual) => {
                out.write((x.zip(rows.row(residual, r))).map(|(v, s)| act(v * scale + shift + s)))
            }
            None => out.write(x.map(|v| act(v * scale + shift))),
        }
    })
}

/// The gradients of [`forward`].
#[derive(Debug)]
pub(crate) struct Grads {
    /// For the input.
    pub x: Vec<f32>,
    /// For `gamma`, `[c]`.
    pub gamma: Vec<f32>,
    /// For `beta`, `[c]`.
    pub beta: Vec<f32>,
    /// For the residual (the output gradient after the ReLU's mask), when asked for.
    pub residual: Option<Vec<f32>>,
}

/// The gradients of [`forward`], given its input, its output when it went through the ReLU
/// (for the ReLU's mask) and the output's gradient; the residual's only when `with_residual`.
pub(crate) fn backward(
    rows: Rows,
    x: &[f32],
    channels: Channels<'_>,
    output: Option<&[f32]>,
    output_grad: &[f32],
    with_residual: bool,
) -> Grads {
    // dz: the gradient after the ReLU, zero where the output is.
    let mut dz = par_vec(output_grad.len(), MIN_TASK, 1, |i, dz| {
        let g = output_grad[i * MIN_TASK..].iter();
        match output {
            Some(y) => {
                dz.write((g.zip(&y[i * MIN_TASK..])).map(|(&g, &y)| if y > 0.0 { g } else { 0.0 }))
            }
            None => dz.write(g.copied()),
        }
    });
    // Per channel: sum(dz) (beta's gradient) and sum(dz * xhat) (gamma's).
    let (dbeta, dgamma): (Vec<f32>, Vec<f32>) = (0..rows.c)
        .into_par_iter()
        .map(|ch| {
            let m = channels.mean[ch];
            let dbeta = rows.channel_sum(ch, &dz, &dz, |d, _| d);
            let dz_xc = rows.channel_sum(ch, &dz, x, |d, v| d * (v - m));
            (
                dbeta as f32,
                (dz_xc * f64::from(channels.inv_std[ch])) as f32,
            )
        })
        .unzip();
    // dx = gamma inv_std / M (M dz - dbeta - xhat dgamma): written over dz, unless dz is the
    // residual's gradient too.
    let count = rows.count() as f32;
    let dx = |r: usize| {
        let ch = r % rows.c;
        let (m, s) = (channels.mean[ch], channels.inv_std[ch]);
        let k = channels.gamma[ch] * s / count;
        let (db, dg) = (dbeta[ch], dgamma[ch]);
        move |d: f32, v: f32| k * (count * d - db - (v - m) * s * dg)
    };
    let residual = if with_residual {
        let dx = par_vec(dz.len(), rows.p, rows.rows_per_task(), |r, out| {
            let f = dx(r);
            let row = rows.row(&dz, r).iter().zip(rows.row(x, r));
            out.write(row.map(|(&d, &v)| f(d, v)));
        });
        Some(std::mem::replace(&mut dz, dx))
    } else {
        dz.par_chunks_mut(rows.p)
            .enumerate()
            .with_min_len(rows.rows_per_task())
            .for_each(|(r, out)| {
                let f = dx(r);
                for (o, &v) in out.iter_mut().zip(rows.row(x, r)) {
                    *o = f(*o, v);
                }
            });
        None
    };
    Grads {
        x: dz,
        gamma: dgamma,
        beta: dbeta,
        residual,
    }
}
