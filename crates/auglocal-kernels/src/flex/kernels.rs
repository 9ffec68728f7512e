//! The convolution kernels on contiguous f32 slices: the forward pass and the three gradients.
//!
//! Work is split over rayon's *current* pool (a trainer in a 1-thread pool runs single-threaded)
//! by image for the input gradient and by fixed chunks of images for the weight gradient; each
//! chunk's partial sum is added to the result in chunk order. Chunks depend only on the shapes,
//! so the same inputs give bit-identical gradients whatever the number of threads.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use rayon::prelude::*;

use super::direct;
use super::gemm::{View, gemm};
use super::geometry::Geometry;

/// Most chunks the batch is cut into for the weight gradient.
const MAX_CHUNKS: usize = 16;
/// Most elements held by the chunks' partial weight gradients together (16 MiB of f32).
const PARTIAL_BUDGET: usize = 1 << 22;

/// The chunks of the batch for the weight gradient: as many as fit [`PARTIAL_BUDGET`], at most
/// [`MAX_CHUNKS`], at least 2 when there are 2 images (so two cores always have work).
fn chunks(g: &Geometry) -> Vec<Range<usize>> {
    let fit = (PARTIAL_BUDGET / (g.o * g.k())).max(2);
    let count = g.n.min(MAX_CHUNKS).min(fit).max(1);
    (0..count)
        .map(|i| i * g.n / count..(i + 1) * g.n / count)
        .collect()
}

/// `partial` of every chunk of images, computed in parallel on rayon's current pool, summed
/// element-wise in chunk order (the order that keeps a weight gradient bit-identical whatever
/// the number of threads).
///
/// Each of the pool's threads takes the next chunk not yet taken, so the chunks finish about
/// in order, and each partial result is added (under a lock) as soon as those before it
/// have been: about two per thread are alive at once rather than one per chunk.
pub(super) fn sum_in_order<F>(chunks: Vec<Range<usize>>, partial: F) -> Vec<f32>
where
    F: Fn(Range<usize>) -> Vec<f32> + Sync,
{
    /// The sum so far, of the chunks before `next`, and the partials that finished early.
    struct Sum {
        sum: Option<Vec<f32>>,
        next: usize,
        early: BTreeMap<usize, Vec<f32>>,
    }
    let taken = AtomicUsize::new(0);
    let state = Mutex::new(Sum {
        sum: None,
        next: 0,
        early: BTreeMap::new(),
    });
    let work = || {
        loop {
            let i = taken.fetch_add(1, Ordering::Relaxed);
            let Some(images) = chunks.get(i) else { break };
            let part = partial(images.clone());
            let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
            state.early.insert(i, part);
            let Sum { sum, next, early } = &mut *state;
            while let Some(part) = early.remove(next) {
                match sum {
                    None => *sum = Some(part),
                    Some(sum) => sum.iter_mut().zip(&part).for_each(|(d, s)| *d += *s),
                }
                *next += 1;
            }
        }
    };
    let workers = rayon::current_num_threads().clamp(1, chunks.len().max(1));
    rayon::scope(|scope| {
        for _ in 1..workers {
            scope.spawn(|_| work());
        }
        work();
    });
    let state = state.into_inner().unwrap_or_else(PoisonError::into_inner);
    state.sum.unwrap_or_default()
}

/// `Y_n[o, p] = W[o, k] x col_n[k, p]`, image by image, plus the bias.
///
/// - `x`: `[n, c, h, w]`, `weight`: `[o, c, kh, kw]`, `bias`: `[o]`; returns `[n, o, ho, wo]`.
pub(crate) fn forward(g: &Geometry, x: &[f32], weight: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    if direct::covers(g) {
        return direct::forward(g, x, weight, bias);
    }
    let (k, p, o) = (g.k(), g.p(), g.o);
    let mut y = vec![0.0f32; g.n * o * p];
    let w = View {
        data: weight,
        rs: k,
        cs: 1,
    };
    y.par_chunks_mut(o * p).enumerate().for_each_init(
        || vec![0.0f32; if g.is_pointwise() { 0 } else { g.col_len() }],
        |col, (n, out)| {
            let image = &x[n * g.image()..][..g.image()];
            if g.is_pointwise() {
                gemm(
                    [o, p, k],
                    out,
                    p,
                    false,
                    w,
                    View {
                        data: image,
                        rs: p,
                        cs: 1,
                    },
                );
            } else {
                for rows in g.tiles() {
                    let t = rows.len() * g.wo;
                    g.im2col(image, rows.clone(), col);
                    let dst = &mut out[rows.start * g.wo..];
                    gemm(
                        [o, t, k],
                        dst,
                        p,
                        false,
                        w,
                        View {
                            data: col,
                            rs: t,
                            cs: 1,
                        },
                    );
                }
            }
            if let Some(bias) = bias {
                for (channel, b) in out.chunks_exact_mut(p).zip(bias) {
                    channel.iter_mut().for_each(|v| *v += *b);
                }
            }
        },
    );
    y
}

/// `dW[o, k] = sum over images n of dY_n[o, p] x col_n[k, p]^T`.
///
/// - `x`: `[n, c, h, w]`, `dy`: `[n, o, ho, wo]`; returns `[o, c, kh, kw]`.
pub(crate) fn weight_grad(g: &Geometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
    if direct::covers(g) {
        return direct::weight_grad(g, x, dy, chunks(g));
    }
    let (k, p, o) = (g.k(), g.p(), g.o);
    sum_in_order(chunks(g), |images| {
        let mut dw = vec![0.0f32; o * k];
        let mut col = vec![0.0f32; if g.is_pointwise() { 0 } else { g.col_len() }];
        let mut accumulate = false;
        for n in images {
            let image = &x[n * g.image()..][..g.image()];
            let grad = &dy[n * o * p..][..o * p];
            for rows in g.tiles() {
                let t = rows.len() * g.wo;
                let lhs = View {
                    data: &grad[rows.start * g.wo..],
                    rs: p,
                    cs: 1,
                };
                // col^T: element (position, row) of the [k, t] column matrix.
                let cols = if g.is_pointwise() {
                    View {
                        data: &image[rows.start * g.wo..],
                        rs: 1,
                        cs: p,
                    }
                } else {
                    g.im2col(image, rows.clone(), &mut col);
                    View {
                        data: &col,
                        rs: 1,
                        cs: t,
                    }
                };
                gemm([o, k, t], &mut dw, k, accumulate, lhs, cols);
                accumulate = true;
            }
        }
        dw
    })
}

/// `dX_n = col2im(W^T[k, o] x dY_n[o, p])`, image by image.
///
/// - `weight`: `[o, c, kh, kw]`, `dy`: `[n, o, ho, wo]`; returns `[n, c, h, w]`.
pub(crate) fn input_grad(g: &Geometry, weight: &[f32], dy: &[f32]) -> Vec<f32> {
    if direct::covers(g) {
        return direct::input_grad(g, weight, dy);
    }
    let (k, p, o) = (g.k(), g.p(), g.o);
    let mut dx = vec![0.0f32; g.n * g.image()];
    // W^T: element (row, channel_out) of the [o, k] weight.
    let wt = View {
        data: weight,
        rs: 1,
        cs: k,
    };
    dx.par_chunks_mut(g.image()).enumerate().for_each_init(
        || vec![0.0f32; if g.is_pointwise() { 0 } else { g.col_len() }],
        |col, (n, image)| {
            let grad = &dy[n * o * p..][..o * p];
            if g.is_pointwise() {
                let rhs = View {
                    data: grad,
                    rs: p,
                    cs: 1,
                };
                gemm([k, p, o], image, p, false, wt, rhs);
                return;
            }
            for rows in g.tiles() {
                let t = rows.len() * g.wo;
                let rhs = View {
                    data: &grad[rows.start * g.wo..],
                    rs: p,
                    cs: 1,
                };
                gemm([k, t, o], col, t, false, wt, rhs);
                g.col2im(col, rows, image);
            }
        },
    );
    dx
}

/// `db[o] = sum over images and positions of dY[n, o, p]`, in a fixed order.
///
/// - `dy`: `[n, o, ho, wo]` (`n * o` rows of `p`); returns `[o]`.
pub(crate) fn bias_grad(dy: &[f32], o: usize, p: usize) -> Vec<f32> {
    let mut db = vec![0.0f32; o];
    for (row, grad) in dy.chunks_exact(p).enumerate() {
        db[row % o] += grad.iter().sum::<f32>();
    }
    db
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn chunks_cover_the_batch_in_order() {
        for n in [1, 2, 3, 17, 128, 1000] {
            let g = Geometry::new([n, 16, 8, 8], [16, 16, 3, 3], [1, 1], [1, 1], [1, 1], 1);
            let c = chunks(&g.expect("covered"));
            assert_eq!(c.first().map(|r| r.start), Some(0));
            assert_eq!(c.last().map(|r| r.end), Some(n));
            assert!(c.windows(2).all(|w| w[0].end == w[1].start));
            assert!(c.iter().all(|r| !r.is_empty()) && c.len() <= MAX_CHUNKS);
            assert_eq!(c.len(), n.min(MAX_CHUNKS));
        }
    }

    #[test]
    fn bias_grad_sums_each_channel() {
        // n = 2, o = 2, p = 3.
        let dy = [
            1.0, 2.0, 3.0, 10.0, 20.0, 30.0, 4.0, 5.0, 6.0, 40.0, 50.0, 60.0,
        ];
        assert_eq!(bias_grad(&dy, 2, 3), vec![21.0, 210.0]);
    }

    #[test]
    fn partials_are_added_in_chunk_order_whatever_the_pool_and_the_finishing_order() {
        // Partials whose f32 sum depends on the order of the additions (1e8 swallows some of
        // the small terms, depending on what came before), finishing out of order.
        let partial = |r: Range<usize>| {
            let i = r.start;
            std::thread::sleep(Duration::from_micros((i * 7 % 5) as u64 * 300));
            let big = if i.is_multiple_of(2) { 1e8 } else { -3e7 };
            vec![big + i as f32, 1.0 + i as f32 * 0.37, (i as f32).exp()]
        };
        let chunks: Vec<Range<usize>> = (0..13).map(|i| i..i + 1).collect();
        let mut want = partial(0..1);
        for r in &chunks[1..] {
            want.iter_mut()
                .zip(partial(r.clone()))
                .for_each(|(d, s)| *d += s);
        }
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for threads in [1, 2, 3, 8] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("a pool");
            let (tx, rx) = mpsc::channel();
            let chunks = chunks.clone();
            std::thread::spawn(move || tx.send(pool.install(|| sum_in_order(chunks, partial))));
            let got = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("the sum finishes within a minute");
            assert_eq!(bits(&got), bits(&want), "{threads} threads");
        }
    }
}
