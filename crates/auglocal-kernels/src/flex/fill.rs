//! Vectors written in parallel without being zeroed first.
//!
//! A `vec![0.0; n]` that a parallel pass then overwrites costs a serial pass over `n` values
//! (and the page faults of a fresh allocation, all on one thread) before the parallel one.
#![allow(unsafe_code)]

use std::mem::MaybeUninit;

use rayon::prelude::*;

/// A vector of `len` values written in parallel, `chunk` values per task and at least
/// `min_tasks` chunks per rayon job: `fill(i, chunk)` writes chunk `i` (the last may be
/// shorter) through [`Chunk::write`]. Nothing is zeroed first, and each page is first touched
/// by the thread that fills it.
///
/// # Panics
/// When `fill` leaves a value of its chunk unwritten.
pub(crate) fn par_vec(
    len: usize,
    chunk: usize,
    min_tasks: usize,
    fill: impl Fn(usize, &mut Chunk<'_>) + Sync,
) -> Vec<f32> {
    let mut v = Vec::with_capacity(len);
    v.spare_capacity_mut()[..len]
        .par_chunks_mut(chunk.max(1))
        .enumerate()
        .with_min_len(min_tasks.max(1))
        .for_each(|(i, out)| {
            let mut chunk = Chunk { out, written: 0 };
            fill(i, &mut chunk);
            assert_eq!(
                chunk.written,
                chunk.out.len(),
                "a chunk left partly unwritten"
            );
        });
    // SAFETY: the chunks cover `0..len`, and each had all its values written (the assertion
    // above): `Chunk::write` writes a prefix of what it has not written yet.
    unsafe { v.set_len(len) };
    v
}

/// One chunk of a [`par_vec`], written front to back.
#[derive(Debug)]
pub(crate) struct Chunk<'a> {
    out: &'a mut [MaybeUninit<f32>],
    written: usize,
}

impl Chunk<'_> {
    /// Writes `values` after what the chunk holds, as many as fit.
    pub(crate) fn write(&mut self, values: impl Iterator<Item = f32>) {
        let rest = &mut self.out[self.written..];
        let mut n = 0;
        for (o, v) in rest.iter_mut().zip(values) {
            o.write(v);
            n += 1;
        }
        self.written += n;
    }
}
