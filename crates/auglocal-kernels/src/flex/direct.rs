//! Direct 3x3 convolutions with padding 1, at stride 1 (the "same" convolutions that make up
//! most of a ResNet) and at stride 2 on even sides (its downsampling ones), without an im2col
//! matrix.
//!
//! A chunk of images is copied onto a zero-bordered grid: rows `w + 1` wide (one zero column
//! serves as the right border of a row and the left border of the next) and one zero row
//! between images. On that grid the output at position `q` reads the input at
//! `q + i * (w + 1) + j` for kernel tap `(i, j)`: every tap is a shifted vector load, so a
//! block of output channels times a few 16-position vectors accumulates in registers over all
//! input channels and taps, and no position is handled apart. The grid computes one junk
//! column per row and one junk row per image (6% of positions at 32x32, 21% at 8x8) and drops
//! them.
//!
//! At stride 2 the input is split into its four phases (even or odd rows by even or odd
//! columns), each an `h/2 x w/2` plane on the output's grid. Output row `oh` reads input row
//! `2 oh + i - 1`: row `oh - 1` of the odd rows for `i = 0`, row `oh` of the even rows for
//! `i = 1`, row `oh` of the odd rows for `i = 2` (columns alike), so each tap is again one
//! shifted load, from one of the channel's four planes ([`Read`]), and no multiply is wasted.
//!
//! - forward: `y[o, q] = sum_c sum_tap W[o, c, tap] * x[c, q + shift(tap)]`;
//! - input gradient: the same convolution of `dy` with the weight transposed and flipped
//!   (`W'[c, o, tap] = W[o, c, 8 - tap]`); at stride 2, one pass per phase of the input, the
//!   phase `(a, b)` receiving the taps with `i = a + 1` and `j = b + 1` (mod 2): 1, 2, 2 and 4
//!   of the nine, each pass writing every other row and column;
//! - weight gradient: `dW[o, c, tap] = sum_q x[c, q + shift(tap)] * dy[q, o]` over a chunk of
//!   images, with `dy` copied position-major so that output channels fill the lanes and each
//!   sum runs position by position in one lane; the chunks' sums are added in order.
//!
//! Every output element is summed in one order (input channel, then tap; for the weight
//! gradient position by position, then chunk by chunk) whatever the blocking, the number of
//! threads or the instruction set (AVX-512 and AVX2 both fuse every multiply-add; so does the
//! portable code on aarch64, while on an x86 CPU without FMA it rounds the product first).
#![allow(unsafe_code)]

use std::mem::MaybeUninit;
use std::sync::OnceLock;

use rayon::prelude::*;

use super::geometry::Geometry;

/// Lanes of one accumulator: one AVX-512 register, two AVX2 registers.
const LANES: usize = 16;
/// Positions of the widest register block (3 vectors): the grid computes whole blocks, as a
/// block of one vector compiles to slow code (gathers) beside the wide one.
const BLOCK: usize = 3 * LANES;
/// Taps of a 3x3 kernel.
const TAPS: usize = 9;
/// Elements of a chunk's padded input the forward kernels aim to keep in the L2 cache.
const CHUNK_BUDGET: usize = 1 << 16;

/// Whether the direct kernels cover `g`: a 3x3 kernel with padding 1, at stride 1, or at
/// stride 2 over even sides (where the output is exactly half the input).
pub(crate) fn covers(g: &Geometry) -> bool {
    (g.kh, g.kw, g.ph, g.pw) == (3, 3, 1, 1)
        && match (g.sh, g.sw) {
            (1, 1) => true,
            (2, 2) => g.h.is_multiple_of(2) && g.w.is_multiple_of(2),
            _ => false,
        }
}

/// Where a kernel tap reads, relative to the output position it sums into: plane `plane` of
/// the input channel (one plane at stride 1, a phase at stride 2), `row` grid rows and `col`
/// columns on (1 is the output's own row or column, 0 the one before, 2 the one after).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Read {
    plane: usize,
    row: usize,
    col: usize,
}

/// Where kernel row (or column) `i` reads at stride `s` (1 or 2): input row `s * oh + i - 1`
/// is row `oh + (i - 1).div_euclid(s)` of the phase `(i - 1).rem_euclid(s)`; returns the phase
/// and the grid row offset (`(i - 1).div_euclid(s) + 1`, see [`Read`]).
#[inline(always)]
const fn phase_of(i: usize, s: usize) -> (usize, usize) {
    ((i + s - 1) % s, i.div_ceil(s))
}

/// The forward pass's reads at stride `s` (1 or 2), tap by tap ([`phase_of`] for the row and
/// the column); the phase `(a, b)` is plane `a * s + b`.
fn forward_reads(s: usize) -> [Read; TAPS] {
    std::array::from_fn(|t| {
        let ((a, row), (b, col)) = (phase_of(t / 3, s), phase_of(t % 3, s));
        Read {
            plane: a * s + b,
            row,
            col,
        }
    })
}

/// The input gradient's taps at stride `s` for the input phase `(a, b)`, each with where it
/// reads the output gradient: input row `s * r + a` takes output row `r + d` through the tap
/// row `i` with `s * d = a + 1 - i`, for each `i` in 0..3 that makes `d` a whole number
/// (columns alike). Taps in descending order, so that at stride 1 the sum runs over the
/// flipped kernel's taps in ascending order.
fn input_grad_taps(s: usize, [a, b]: [usize; 2]) -> Vec<(usize, Read)> {
    let taps = |phase: usize| {
        (0..3usize).rev().filter_map(move |i| {
            let (span, s) = (phase as isize + 1 - i as isize, s as isize);
            // The grid offset of output row `r + d` from row `r` is `d + 1` (see [`Read`]).
            (span.rem_euclid(s) == 0).then(|| (i, (span / s + 1) as usize))
        })
    };
    taps(a)
        .flat_map(|(i, row)| taps(b).map(move |(j, col)| (i * 3 + j, Read { plane: 0, row, col })))
        .collect()
}

/// `m` images of `h x w` planes stacked on the zero-bordered grid (see the module docs).
#[derive(Clone, Copy, Debug)]
struct Stack {
    h: usize,
    w: usize,
    m: usize,
}

impl Stack {
    /// The width of a grid row.
    fn ws(&self) -> usize {
        self.w + 1
    }

    /// Output positions computed per channel (junk ones included), whole blocks of vectors.
    fn positions(&self) -> usize {
        (self.m * (self.h + 1) * self.ws()).next_multiple_of(BLOCK)
    }

    /// Elements of one channel's padded input: every position any computed output reads.
    fn len(&self) -> usize {
        (self.positions() + 2 * self.ws() + 2).next_multiple_of(LANES)
    }

    /// Elements of one image's padded input: `channels` channels of `planes` planes each, one
    /// grid row and one grid column more than the stack's planes (what sizes a chunk).
    fn image_len(&self, channels: usize, planes: usize) -> usize {
        channels * planes * (self.h + 1) * self.ws()
    }

    /// Index in a channel's padded input of input row `ih` of image `img`.
    fn input_row(&self, img: usize, ih: usize) -> usize {
        (1 + img * (self.h + 1) + ih) * self.ws() + 1
    }

    /// Position of output row `oh` of image `img`.
    fn output_row(&self, img: usize, oh: usize) -> usize {
        (img * (self.h + 1) + oh) * self.ws()
    }

    /// Where `read` is, from an output position, in a channel's padded input (its planes one
    /// after the other).
    fn offset(&self, read: Read) -> usize {
        read.plane * self.len() + read.row * self.ws() + read.col
    }

    /// Writes every element of the padded inputs `buf` (`[channels, s * s, len]`,
    /// uninitialised): the phases of `planes` (`[imgs, channels, s * h, s * w]`, `imgs <= m`)
    /// at their places, phase `(a, b)` (rows `s * r + a`, columns `s * c + b`) on plane
    /// `a * s + b`, zeros everywhere else (the borders, the rows of the images past `imgs`,
    /// the tail); returns them initialised.
    fn pad<'a>(
        &self,
        planes: &[f32],
        channels: usize,
        s: usize,
        buf: &'a mut [MaybeUninit<f32>],
    ) -> &'a mut [f32] {
        let (h, w, ws, len) = (self.h, self.w, self.ws(), self.len());
        assert_eq!(buf.len(), channels * s * s * len);
        let (sh, sw) = (s * h, s * w);
        let imgs = planes.len() / (channels * sh * sw);
        for (plane, dst) in buf.chunks_exact_mut(len).enumerate() {
            let (ch, a, b) = (plane / (s * s), plane / s % s, plane % s);
            zero(&mut dst[..ws]);
            for img in 0..imgs {
                let src = &planes[(img * channels + ch) * sh * sw..][..sh * sw];
                for r in 0..h {
                    let row = &src[(s * r + a) * sw..][..sw];
                    let at = self.input_row(img, r);
                    dst[at - 1].write(0.0);
                    let dst = &mut dst[at..][..w];
                    if s == 1 {
                        copy_row(dst, row, MaybeUninit::new);
                    } else {
                        for (d, v) in dst.iter_mut().zip(row[b..].iter().step_by(s)) {
                            d.write(*v);
                        }
                    }
                }
                // The zero row below the image (and above the next).
                zero(&mut dst[self.input_row(img, h) - 1..][..ws]);
            }
            zero(&mut dst[self.input_row(imgs, 0) - 1..]);
        }
        // SAFETY: the rows written above tile each plane: row 0, then per image its `h` rows
        // (a zero and `w` values each: a phase's row of `s * w` input values has `w`) and a
        // zero row, then zeros to the end.
        unsafe { assume_init(buf) }
    }

    /// Writes every element of `grid` (uninitialised), laid out position-major
    /// (`[positions, stride]`, channel `ch` at `q * stride + ch`): `planes`
    /// (`[imgs, channels, h, w]`) at their output positions, zeros at the junk positions and
    /// past the last channel; returns it initialised.
    fn fill_grid_transposed<'a>(
        &self,
        planes: &[f32],
        channels: usize,
        stride: usize,
        grid: &'a mut [MaybeUninit<f32>],
    ) -> &'a mut [f32] {
        let (h, w, ws) = (self.h, self.w, self.ws());
        assert_eq!(grid.len(), self.positions() * stride);
        let imgs = planes.len() / (channels * h * w);
        for img in 0..imgs {
            let planes = &planes[img * channels * h * w..][..channels * h * w];
            for oh in 0..h {
                let row = &mut grid[self.output_row(img, oh) * stride..][..ws * stride];
                if channels < stride {
                    zero(row);
                } else {
                    zero(&mut row[w * stride..]);
                }
                for ch in 0..channels {
                    let src = &planes[(ch * h + oh) * w..][..w];
                    for (ow, v) in src.iter().enumerate() {
                        row[ow * stride + ch].write(*v);
                    }
                }
            }
            zero(&mut grid[self.output_row(img, h) * stride..][..ws * stride]);
        }
        zero(&mut grid[self.output_row(imgs, 0) * stride..]);
        // SAFETY: each image's `h + 1` rows of `ws` positions are written whole (values at
        // the channels below `channels`, zeros past them and at the junk column), then zeros
        // to the end.
        unsafe { assume_init(grid) }
    }

    /// Writes the valid positions of `grid` (`[>= channels, positions]`) to every element of
    /// the phase `(a, b)` of `planes` (`[imgs, channels, s * h, s * w]`: rows `s * r + a`,
    /// columns `s * c + b`; all of them at `s = 1`), adding `bias[channel]` when given.
    fn unpad(
        &self,
        grid: &[f32],
        channels: usize,
        (s, [a, b]): (usize, [usize; 2]),
        planes: &mut [MaybeUninit<f32>],
        bias: Option<&[f32]>,
    ) {
        let (h, w, positions) = (self.h, self.w, self.positions());
        let (sh, sw) = (s * h, s * w);
        for (plane, dst) in planes.chunks_exact_mut(sh * sw).enumerate() {
            let (img, ch) = (plane / channels, plane % channels);
            let src = &grid[ch * positions..][..positions];
            for oh in 0..h {
                let src = &src[self.output_row(img, oh)..][..w];
                let row = &mut dst[(s * oh + a) * sw..][..sw];
                let bias = bias.map(|bias| bias[ch]);
                if bias.is_none() && s == 1 {
                    copy_row(row, src, MaybeUninit::new);
                    continue;
                }
                for (d, v) in row[b..].iter_mut().step_by(s).zip(src) {
                    d.write(bias.map_or(*v, |bias| *v + bias));
                }
            }
        }
    }
}

/// `dst = src` for the short rows of a plane, 16 values per move: a call to `memmove` per row
/// of 8 to 32 values took a fifth of a forward pass.
#[inline(always)]
fn copy_row<T: Copy>(dst: &mut [T], src: &[f32], wrap: impl Fn(f32) -> T) {
    assert_eq!(dst.len(), src.len());
    let mut d = dst.chunks_exact_mut(LANES);
    let mut s = src.chunks_exact(LANES);
    for (d, s) in (&mut d).zip(&mut s) {
        let v: [T; LANES] = std::array::from_fn(|l| wrap(s[l]));
        d.copy_from_slice(&v);
    }
    for (d, s) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *d = wrap(*s);
    }
}

/// Writes zeros to all of `dst`.
fn zero(dst: &mut [MaybeUninit<f32>]) {
    dst.fill(MaybeUninit::new(0.0));
}

/// `buf` as the values it holds.
///
/// # Safety
/// Every element of `buf` has been written.
unsafe fn assume_init(buf: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    // SAFETY: `MaybeUninit<f32>` has f32's layout, and the caller wrote every element.
    unsafe { &mut *(std::ptr::from_mut(buf) as *mut [f32]) }
}

/// Runs `f` on fresh, uninitialised scratch cut into slices of `lens` values, each starting on
/// a cache line (64 bytes) so that the vectors at multiples of 16 are whole lines. Freed when
/// `f` returns: a step's peak memory holds only the chunks being convolved, and nothing is
/// zeroed that the kernels overwrite anyway.
fn with_scratch<R>(lens: [usize; 2], f: impl FnOnce([&mut [MaybeUninit<f32>]; 2]) -> R) -> R {
    let [a, b] = lens.map(|len| len.next_multiple_of(LANES));
    let mut data = Vec::<f32>::with_capacity(a + b + LANES);
    let spare = data.spare_capacity_mut();
    let offset = spare.as_ptr().align_offset(64).min(LANES);
    let (first, rest) = spare[offset..].split_at_mut(a);
    f([&mut first[..lens[0]], &mut rest[..lens[1]]])
}

/// `a * b + c`, fused or not.
trait MulAdd {
    fn mul_add(a: f32, b: f32, c: f32) -> f32;
}

/// One rounding: what the AVX-512, AVX2 and aarch64 code uses.
struct Fused;

impl MulAdd for Fused {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

/// The product rounded first: for x86 CPUs without FMA, where `f32::mul_add` is a library call.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
struct Unfused;

impl MulAdd for Unfused {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

#[cfg(target_arch = "x86_64")]
type Portable = Unfused;
#[cfg(not(target_arch = "x86_64"))]
type Portable = Fused;

/// The instruction set the kernels run with, detected once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
enum Isa {
    Avx512,
    Avx2,
    Portable,
}

fn isa() -> Isa {
    static ISA: OnceLock<Isa> = OnceLock::new();
    *ISA.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("fma") {
                return Isa::Avx512;
            }
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                return Isa::Avx2;
            }
        }
        Isa::Portable
    })
}

impl Isa {
    /// Output channels per register block of the forward kernel.
    fn out_block(self) -> usize {
        match self {
            Isa::Avx512 => 8,
            _ => 4,
        }
    }
}

/// The weights in the forward kernel's order: `[o_blocks, ci, taps, ob]` from
/// `weight(out_channel, in_channel, tap)`, zero past the last output channel.
fn pack(
    [co, ci, taps]: [usize; 3],
    ob: usize,
    weight: impl Fn(usize, usize, usize) -> f32,
) -> Vec<f32> {
    let blocks = co.div_ceil(ob);
    let mut packed = vec![0.0; blocks * ci * taps * ob];
    for (i, v) in packed.iter_mut().enumerate() {
        let (r, tap, ch, block) = (
            i % ob,
            i / ob % taps,
            i / ob / taps % ci,
            i / ob / taps / ci,
        );
        let oc = block * ob + r;
        if oc < co {
            *v = weight(oc, ch, tap);
        }
    }
    packed
}

/// Sixteen values starting at `at`, unchecked.
///
/// # Safety
/// `at + LANES <= data.len()`.
#[inline(always)]
unsafe fn load_unchecked(data: &[f32], at: usize) -> [f32; LANES] {
    debug_assert!(at + LANES <= data.len());
    // SAFETY: the caller keeps the 16 values inside `data`; `[f32; 16]` has f32's alignment...
    unsafe { std::ptr::read_unaligned(data.as_ptr().add(at).cast::<[f32; LANES]>()) }
}

/// The arguments of one forward convolution over a stack.
struct Convolve<'a, const T: usize> {
    stack: Stack,
    /// Input channels.
    ci: usize,
    /// Padded inputs, `[ci, channel]`: each channel's planes one after the other.
    buf: &'a [f32],
    /// Where each of the `T` taps reads in a channel's padded input, from an output position.
    offsets: [usize; T],
    /// Packed weights, `[o_blocks, ci, T, ob]`.
    packed: &'a [f32],
}

impl<const T: usize> Convolve<'_, T> {
    /// Writes every element of `grid` (`[o_blocks * OB, positions]`): the convolution at
    /// every position.
    #[inline(always)]
    fn run<M: MulAdd, const OB: usize, const V: usize>(&self, grid: &mut [MaybeUninit<f32>]) {
        const { assert!(BLOCK.is_multiple_of(V * LANES)) };
        let positions = self.stack.positions();
        let per_block = self.ci * T * OB;
        assert_eq!(grid.len(), self.packed.len() / per_block * OB * positions);
        let reach = self.offsets.iter().max().copied().unwrap_or(0);
        for (block, weights) in self.packed.chunks_exact(per_block).enumerate() {
            let rows = &mut grid[block * OB * positions..][..OB * positions];
            for q in (0..positions).step_by(V * LANES) {
                self.block::<M, OB, V>(weights, q, reach, rows);
            }
        }
    }

    /// `OB` output channels at positions `q..q + V * LANES`, summed over channels, then taps;
    /// `reach` is the largest offset.
    #[inline(always)]
    fn block<M: MulAdd, const OB: usize, const V: usize>(
        &self,
        weights: &[f32],
        q: usize,
        reach: usize,
        rows: &mut [MaybeUninit<f32>],
    ) {
        let positions = self.stack.positions();
        let channel = self.buf.len() / self.ci;
        assert!(q + V * LANES + reach <= channel && weights.len() >= self.ci * T * OB);
        let mut acc = [[[0.0f32; LANES]; V]; OB];
        for (plane, w) in self
            .buf
            .chunks_exact(channel)
            .zip(weights.chunks_exact(T * OB))
        {
            for (tap, offset) in self.offsets.iter().enumerate() {
                // SAFETY: the assert above keeps `q + offset + V * LANES <= channel`.
                let x: [[f32; LANES]; V] = std::array::from_fn(|v| unsafe {
                    load_unchecked(plane, q + offset + v * LANES)
                });
                for (r, acc) in acc.iter_mut().enumerate() {
                    let wv = w[tap * OB + r];
                    for (acc, x) in acc.iter_mut().zip(&x) {
                        for (a, x) in acc.iter_mut().zip(x) {
                            *a = M::mul_add(wv, *x, *a);
                        }
                    }
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            for (v, acc) in acc.iter().enumerate() {
                copy_row(
                    &mut rows[r * positions + q + v * LANES..][..LANES],
                    acc,
                    MaybeUninit::new,
                );
            }
        }
    }

    /// Writes every element of `grid`, then returns it initialised.
    fn dispatch<'a>(&self, isa: Isa, grid: &'a mut [MaybeUninit<f32>]) -> &'a mut [f32] {
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `isa()` detected AVX-512F and FMA on this CPU.
            Isa::Avx512 => unsafe { self.avx512(grid) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `isa()` detected AVX2 and FMA on this CPU.
            Isa::Avx2 => unsafe { self.avx2(grid) },
            _ => self.run::<Portable, 4, 1>(grid),
        }
        // SAFETY: `run` stores every output block: all `OB`-channel blocks, at positions
        // `0..positions` in steps that divide it, and its assert holds `grid` to that size.
        unsafe { assume_init(grid) }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,fma")]
    fn avx512(&self, grid: &mut [MaybeUninit<f32>]) {
        self.run::<Fused, 8, 3>(grid);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn avx2(&self, grid: &mut [MaybeUninit<f32>]) {
        self.run::<Fused, 4, 1>(grid);
    }
}

/// One convolution pass over a stack: where its taps read, their packed weights, and the
/// phase of the output it writes.
struct Pass {
    reads: Vec<Read>,
    /// `[o_blocks, ci, reads.len(), ob]`, from [`pack`] with the block of the ISA.
    packed: Vec<f32>,
    /// `(s, phase)`: the output's phase `phase` of `s x s` (see [`Stack::unpad`]).
    writes: (usize, [usize; 2]),
}

impl Pass {
    /// Writes every element of `grid` (`[o_blocks * ob, positions]`), the pass at every
    /// position of `stack` over the padded inputs `buf` (`[ci, channel]`); returns it
    /// initialised.
    fn convolve<'g>(
        &self,
        stack: Stack,
        ci: usize,
        buf: &[f32],
        isa: Isa,
        grid: &'g mut [MaybeUninit<f32>],
    ) -> &'g mut [f32] {
        fn taps<'g, const T: usize>(
            pass: &Pass,
            (stack, ci, buf, isa): (Stack, usize, &[f32], Isa),
            grid: &'g mut [MaybeUninit<f32>],
        ) -> &'g mut [f32] {
            let conv = Convolve::<T> {
                stack,
                ci,
                buf,
                offsets: std::array::from_fn(|t| stack.offset(pass.reads[t])),
                packed: &pass.packed,
            };
            conv.dispatch(isa, grid)
        }
        let args = (stack, ci, buf, isa);
        match self.reads.len() {
            1 => taps::<1>(self, args, grid),
            2 => taps::<2>(self, args, grid),
            4 => taps::<4>(self, args, grid),
            TAPS => taps::<TAPS>(self, args, grid),
            n => unreachable!("a pass of {n} taps"),
        }
    }
}

/// `n` images of `ci` channels convolved to `co` channels by `passes`: `input`
/// `[n, ci, s_in * h, s_in * w]` read as `s_in x s_in` phases on a grid of `h x w` positions,
/// each pass writing its phase of the output `[n, co, s_out * h, s_out * w]`, which the passes
/// cover together; returns the output.
fn convolve(
    [n, ci, co]: [usize; 3],
    [h, w]: [usize; 2],
    [s_in, s_out]: [usize; 2],
    input: &[f32],
    passes: &[Pass],
    bias: Option<&[f32]>,
    isa: Isa,
) -> Vec<f32> {
    let planes = s_in * s_in;
    let per_image = Stack { h, w, m: 1 }.image_len(ci, planes);
    let threads = rayon::current_num_threads().max(1);
    let m = (CHUNK_BUDGET / per_image)
        .clamp(1, n.div_ceil(2 * threads).max(1))
        .min(n);
    let stack = Stack { h, w, m };
    let rows = co.next_multiple_of(isa.out_block());
    let (image_in, image_out) = (ci * planes * h * w, co * s_out * s_out * h * w);
    let total = n * image_out;
    let mut out = Vec::with_capacity(total);
    out.spare_capacity_mut()[..total]
        .par_chunks_mut(m * image_out)
        .enumerate()
        .for_each(|(chunk, out)| {
            with_scratch(
                [ci * planes * stack.len(), rows * stack.positions()],
                |[buf, grid]| {
                    let imgs = out.len() / image_out;
                    let input = &input[chunk * m * image_in..][..imgs * image_in];
                    let buf = stack.pad(input, ci, s_in, buf);
                    for pass in passes {
                        let done = pass.convolve(stack, ci, buf, isa, &mut *grid);
                        stack.unpad(done, co, pass.writes, out, bias);
                    }
                },
            )
        });
    // SAFETY: the chunks cover `0..total`, and in each the passes' `unpad`s wrote every
    // element of their phases, which tile the output.
    unsafe { out.set_len(total) };
    out
}

/// The forward pass of a covered convolution: `x` `[n, c, h, w]`, `weight` `[o, c, 3, 3]`,
/// `bias` `[o]`; returns `[n, o, ho, wo]`.
pub(crate) fn forward(g: &Geometry, x: &[f32], weight: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    forward_on(isa(), g, x, weight, bias)
}

fn forward_on(isa: Isa, g: &Geometry, x: &[f32], weight: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let pass = Pass {
        reads: forward_reads(g.sh).to_vec(),
        packed: pack([g.o, g.c, TAPS], isa.out_block(), |o, c, tap| {
            weight[(o * g.c + c) * TAPS + tap]
        }),
        writes: (1, [0, 0]),
    };
    convolve(
        [g.n, g.c, g.o],
        [g.ho, g.wo],
        [g.sh, 1],
        x,
        &[pass],
        bias,
        isa,
    )
}

/// The input gradient of a covered convolution: `weight` `[o, c, 3, 3]`, `dy`
/// `[n, o, ho, wo]`; returns `[n, c, h, w]`.
pub(crate) fn input_grad(g: &Geometry, weight: &[f32], dy: &[f32]) -> Vec<f32> {
    input_grad_on(isa(), g, weight, dy)
}

fn input_grad_on(isa: Isa, g: &Geometry, weight: &[f32], dy: &[f32]) -> Vec<f32> {
    let s = g.sh;
    let passes: Vec<Pass> = (0..s * s)
        .map(|phase| {
            let phase = [phase / s, phase % s];
            let taps = input_grad_taps(s, phase);
            Pass {
                reads: taps.iter().map(|&(_, read)| read).collect(),
                packed: pack([g.c, g.o, taps.len()], isa.out_block(), |c, o, t| {
                    weight[(o * g.c + c) * TAPS + taps[t].0]
                }),
                writes: (s, phase),
            }
        })
        .collect();
    convolve(
        [g.n, g.o, g.c],
        [g.ho, g.wo],
        [1, s],
        dy,
        &passes,
        None,
        isa,
    )
}

/// The arguments of one weight-gradient correlation over a stack.
struct Correlate<'a> {
    stack: Stack,
    c: usize,
    /// The convolution's stride, 1 or 2.
    s: usize,
    /// Output channels rounded up to whole vectors.
    op: usize,
    /// Padded inputs, `[c, s * s, stack.len()]` (see [`Stack::pad`]).
    buf: &'a [f32],
    /// Output gradients on the grid, position-major `[positions, op]`, zero at junk
    /// positions and past the last channel.
    grid: &'a [f32],
}

impl Correlate<'_> {
    /// `dwt[c, tap, o] += sum over positions q of buf[c, q + shift(tap)] * grid[q, o]`, each
    /// sum carried on from the value in `dwt`: output channels in the lanes, so each sum runs
    /// position by position in one lane and no lanes are added across. Blocks of `OV` vectors
    /// of output channels by `CB` input channels by the three taps of a kernel row (single
    /// ones for the remainders).
    #[inline(always)]
    fn run<M: MulAdd, const OV: usize, const CB: usize>(&self, dwt: &mut [f32]) {
        match self.s {
            1 => self.strided::<M, OV, CB, 1>(dwt),
            2 => self.strided::<M, OV, CB, 2>(dwt),
            s => unreachable!("stride {s}"),
        }
    }

    #[inline(always)]
    fn strided<M: MulAdd, const OV: usize, const CB: usize, const S: usize>(
        &self,
        dwt: &mut [f32],
    ) {
        let groups = self.op / LANES;
        let whole = groups / OV * OV;
        for g in (0..whole).step_by(OV) {
            self.channels::<M, OV, CB, S>(g * LANES, dwt);
        }
        for g in whole..groups {
            self.channels::<M, 1, CB, S>(g * LANES, dwt);
        }
    }

    #[inline(always)]
    fn channels<M: MulAdd, const OV: usize, const CB: usize, const S: usize>(
        &self,
        o: usize,
        dwt: &mut [f32],
    ) {
        let whole = self.c / CB * CB;
        for i in 0..3 {
            for c in (0..whole).step_by(CB) {
                self.block::<M, OV, CB, S>(o, c, i, dwt);
            }
            for c in whole..self.c {
                self.block::<M, OV, 1, S>(o, c, i, dwt);
            }
        }
    }

    /// Output channels `o..o + OV * LANES`, input channels `c..c + CB`, kernel row `i`, at
    /// stride `S`. The row's taps read, from an output position, `d[j]` past the row's start
    /// `(plane (a, 0), row)` ([`phase_of`]): at stride 1 the next columns, at stride 2 the odd
    /// plane's column before, the even plane's own, the odd plane's own.
    #[inline(always)]
    fn block<M: MulAdd, const OV: usize, const CB: usize, const S: usize>(
        &self,
        o: usize,
        c: usize,
        i: usize,
        dwt: &mut [f32],
    ) {
        let (len, positions, op) = (self.stack.len(), self.stack.positions(), self.op);
        let channel = S * S * len;
        let (a, row) = phase_of(i, S);
        let start = a * S * len + row * self.stack.ws();
        let d: [usize; 3] = std::array::from_fn(|j| {
            let (b, col) = phase_of(j, S);
            b * len + col
        });
        let reach = (S - 1) * len + 2;
        let x = &self.buf[c * channel + start..][..(CB - 1) * channel + positions + reach];
        let dy = &self.grid[o..][..(positions - 1) * op + OV * LANES];
        let row = |k: usize, j: usize| ((c + k) * TAPS + i * 3 + j) * op + o;
        let mut acc: [[[[f32; LANES]; OV]; 3]; CB] = std::array::from_fn(|k| {
            std::array::from_fn(|j| {
                std::array::from_fn(|v| std::array::from_fn(|l| dwt[row(k, j) + v * LANES + l]))
            })
        });
        for q in 0..positions {
            // SAFETY: `q < positions`, so `q * op + OV * LANES <= dy.len()` and
            // `(CB - 1) * channel + q + d[j] < x.len()`, as `d[j] < reach` (the slicings
            // above).
            let dq: [[f32; LANES]; OV] =
                std::array::from_fn(|v| unsafe { load_unchecked(dy, q * op + v * LANES) });
            for (k, acc) in acc.iter_mut().enumerate() {
                for (j, acc) in acc.iter_mut().enumerate() {
                    let xv = unsafe { *x.get_unchecked(k * channel + q + d[j]) };
                    for (acc, d) in acc.iter_mut().zip(&dq) {
                        for (a, d) in acc.iter_mut().zip(d) {
                            *a = M::mul_add(xv, *d, *a);
                        }
                    }
                }
            }
        }
        for (k, acc) in acc.iter().enumerate() {
            for (j, acc) in acc.iter().enumerate() {
                for (v, acc) in acc.iter().enumerate() {
                    dwt[row(k, j) + v * LANES..][..LANES].copy_from_slice(acc);
                }
            }
        }
    }

    fn dispatch(&self, isa: Isa, dwt: &mut [f32]) {
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `isa()` detected AVX-512F and FMA on this CPU.
            Isa::Avx512 => unsafe { self.avx512(dwt) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `isa()` detected AVX2 and FMA on this CPU.
            Isa::Avx2 => unsafe { self.avx2(dwt) },
            _ => self.run::<Portable, 1, 2>(dwt),
        }
    }

    /// 24 accumulators of the 32 registers: 8, 4 or 2 input channels by 1, 2 or 4 vectors.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,fma")]
    fn avx512(&self, dwt: &mut [f32]) {
        match self.op / LANES {
            1 => self.run::<Fused, 1, 8>(dwt),
            2 => self.run::<Fused, 2, 4>(dwt),
            _ => self.run::<Fused, 4, 2>(dwt),
        }
    }

    /// 12 accumulators of the 16 registers (a vector of 16 lanes is two).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn avx2(&self, dwt: &mut [f32]) {
        self.run::<Fused, 1, 2>(dwt);
    }
}

/// The weight gradient of a covered convolution over the chunks of images `chunks` (from the
/// shapes alone), each chunk's sum added in order: `x` `[n, c, h, w]`, `dy` `[n, o, ho, wo]`;
/// returns `[o, c, 3, 3]`.
pub(crate) fn weight_grad(
    g: &Geometry,
    x: &[f32],
    dy: &[f32],
    chunks: Vec<std::ops::Range<usize>>,
) -> Vec<f32> {
    // A chunk is correlated a few images at a time (about `CHUNK_BUDGET` padded inputs), each
    // sum carried on from one stack to the next: the same terms in the same order as one
    // stack of the whole chunk (the stacks' extra junk positions add exact zeros), in a
    // fraction of its scratch.
    let longest = chunks.iter().map(|r| r.len()).max().unwrap_or(1);
    let per_image = Stack {
        h: g.ho,
        w: g.wo,
        m: 1,
    }
    .image_len(g.c, g.sh * g.sh);
    let m = (CHUNK_BUDGET / per_image).clamp(1, longest);
    weight_grad_on(isa(), g, x, dy, chunks, m)
}

/// [`weight_grad`] on `isa`, correlating stacks of `m` images.
fn weight_grad_on(
    isa: Isa,
    g: &Geometry,
    x: &[f32],
    dy: &[f32],
    chunks: Vec<std::ops::Range<usize>>,
    m: usize,
) -> Vec<f32> {
    let (c, o, s) = (g.c, g.o, g.sh);
    let (image_x, image_dy) = (c * g.h * g.w, o * g.ho * g.wo);
    let op = o.next_multiple_of(LANES);
    let stack = Stack {
        h: g.ho,
        w: g.wo,
        m,
    };
    let dwt = super::kernels::sum_in_order(chunks, |images| {
        let mut dwt = vec![0.0f32; c * TAPS * op];
        let lens = [c * s * s * stack.len(), stack.positions() * op];
        with_scratch(lens, |[buf, grid]| {
            for first in images.clone().step_by(m) {
                let imgs = m.min(images.end - first);
                let x = &x[first * image_x..][..imgs * image_x];
                let dy = &dy[first * image_dy..][..imgs * image_dy];
                let corr = Correlate {
                    stack,
                    c,
                    s,
                    op,
                    buf: stack.pad(x, c, s, buf),
                    grid: stack.fill_grid_transposed(dy, o, op, grid),
                };
                corr.dispatch(isa, &mut dwt);
            }
        });
        dwt
    });
    // [c, tap, op] -> [o, c, tap].
    let mut dw = vec![0.0f32; o * c * TAPS];
    for (i, d) in dw.iter_mut().enumerate() {
        let (oc, rest) = (i / (c * TAPS), i % (c * TAPS));
        *d = dwt[rest * op + oc];
    }
    dw
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The instruction sets this CPU runs: the portable code always.
    fn isas() -> Vec<Isa> {
        let mut all = vec![Isa::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                all.push(Isa::Avx2);
            }
            if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("fma") {
                all.push(Isa::Avx512);
            }
        }
        all
    }

    /// Values of a fixed pseudo-random sequence in [-1, 1).
    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// The three results by their definitions, in f64: forward, input and weight gradient.
    fn naive(g: &Geometry, x: &[f32], w: &[f32], dy: &[f32]) -> [Vec<f64>; 3] {
        let (mut y, mut dx) = (vec![0.0; g.n * g.o * g.ho * g.wo], vec![0.0; x.len()]);
        let mut dw = vec![0.0; w.len()];
        for (n, o, c, i, j) in (0..g.n).flat_map(|n| {
            (0..g.o).flat_map(move |o| {
                (0..g.c).flat_map(move |c| (0..9).map(move |t| (n, o, c, t / 3, t % 3)))
            })
        }) {
            for oh in 0..g.ho {
                for ow in 0..g.wo {
                    let (ih, iw) = ((oh * g.sh + i) as isize - 1, (ow * g.sw + j) as isize - 1);
                    if ih < 0 || iw < 0 || ih >= g.h as isize || iw >= g.w as isize {
                        continue;
                    }
                    let xi = ((n * g.c + c) * g.h + ih as usize) * g.w + iw as usize;
                    let yi = ((n * g.o + o) * g.ho + oh) * g.wo + ow;
                    let wi = (o * g.c + c) * 9 + i * 3 + j;
                    y[yi] += f64::from(w[wi]) * f64::from(x[xi]);
                    dx[xi] += f64::from(w[wi]) * f64::from(dy[yi]);
                    dw[wi] += f64::from(x[xi]) * f64::from(dy[yi]);
                }
            }
        }
        [y, dx, dw]
    }

    fn max_error(got: &[f32], want: &[f64]) -> f64 {
        assert_eq!(got.len(), want.len());
        let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        let worst = got
            .iter()
            .zip(want)
            .map(|(g, w)| (f64::from(*g) - w).abs())
            .fold(0.0, f64::max);
        worst / scale
    }

    #[test]
    fn every_instruction_set_matches_the_definition_and_fma_ones_agree_bit_for_bit() {
        // Channel counts off the register blocks, planes narrower and wider than a vector,
        // one image, several chunks with a short last one; stride 1, and stride 2 down to a
        // single output position.
        let shapes = [
            [1, 1, 1, 1, 1, 1],
            [2, 3, 2, 7, 5, 1],
            [3, 5, 17, 3, 20, 1],
            [5, 16, 8, 8, 16, 1],
            [4, 9, 5, 5, 33, 1],
            [2, 4, 40, 9, 70, 1],
            [1, 1, 2, 2, 1, 2],
            [2, 3, 4, 6, 5, 2],
            [3, 5, 18, 4, 20, 2],
            [5, 16, 16, 16, 32, 2],
            [2, 9, 40, 10, 33, 2],
        ];
        for (s, [n, c, h, w, o, stride]) in shapes.into_iter().enumerate() {
            let g = Geometry::new([n, c, h, w], [o, c, 3, 3], [stride; 2], [1, 1], [1, 1], 1)
                .expect("a geometry");
            assert!(covers(&g));
            let seed = 10 * s as u64;
            let (x, wt) = (values(n * c * h * w, seed), values(o * c * 9, seed + 1));
            let dy = values(n * o * g.ho * g.wo, seed + 2);
            let bias = values(o, seed + 3);
            let [y, dx, dw] = naive(&g, &x, &wt, &dy);
            let y: Vec<f64> = y
                .iter()
                .enumerate()
                .map(|(i, v)| v + f64::from(bias[i / (g.ho * g.wo) % o]))
                .collect();
            let chunks = || (0..n.min(3)).map(|i| i * n / n.min(3)..(i + 1) * n / n.min(3));
            let mut fused: Option<[Vec<f32>; 3]> = None;
            for isa in isas() {
                let got = [
                    forward_on(isa, &g, &x, &wt, Some(&bias)),
                    input_grad_on(isa, &g, &wt, &dy),
                    weight_grad_on(isa, &g, &x, &dy, chunks().collect(), n),
                ];
                for (what, got, want) in [("y", &got[0], &y), ("dx", &got[1], &dx)]
                    .into_iter()
                    .chain([("dw", &got[2], &dw)])
                {
                    let err = max_error(got, want);
                    assert!(
                        err < 1e-5,
                        "{isa:?} {what} of {:?}: {err:e}",
                        [n, c, h, w, o, stride]
                    );
                }
                if isa != Isa::Portable || cfg!(not(target_arch = "x86_64")) {
                    match &fused {
                        Some(first) => assert_eq!(first, &got, "{isa:?} against the first FMA ISA"),
                        None => fused = Some(got),
                    }
                }
            }
        }
    }

    #[test]
    fn a_chunk_correlated_in_smaller_stacks_gives_the_same_bits() {
        for (s, [n, c, h, w, o]) in [(1, [7, 3, 6, 5, 20]), (2, [7, 3, 6, 10, 20])] {
            a_chunk_in_stacks(s, [n, c, h, w, o]);
        }
    }

    fn a_chunk_in_stacks(s: usize, [n, c, h, w, o]: [usize; 5]) {
        let g = Geometry::new([n, c, h, w], [o, c, 3, 3], [s, s], [1, 1], [1, 1], 1)
            .expect("a geometry");
        let (x, dy) = (values(n * c * h * w, 1), values(n * o * g.ho * g.wo, 2));
        let want = naive(&g, &x, &values(o * c * 9, 3), &dy)[2].clone();
        for isa in isas() {
            // Chunks of 4 and 3 images, in stacks of one image up to the whole chunk.
            let by = |m| weight_grad_on(isa, &g, &x, &dy, vec![0..4, 4..7], m);
            let whole = by(4);
            assert!(max_error(&whole, &want) < 1e-5, "{isa:?}, stride {s}");
            for m in 1..4 {
                let got = by(m);
                let same = got
                    .iter()
                    .zip(&whole)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{isa:?}, stride {s}, stacks of {m}");
            }
        }
    }

    #[test]
    fn the_stack_keeps_every_read_inside_and_the_borders_zero() {
        for (h, w, m) in [(1, 1, 1), (2, 7, 3), (8, 8, 5), (32, 32, 1), (3, 17, 2)] {
            let s = Stack { h, w, m };
            for stride in [1, 2] {
                // The last position's reads stay inside the channel's planes.
                let last = s.positions() - 1;
                for read in forward_reads(stride) {
                    assert!(read.row < 3 && read.col < 3 && read.plane < stride * stride);
                    let at = last + s.offset(read);
                    assert!(at < (read.plane + 1) * s.len(), "{h}x{w}x{m} at {stride}");
                }
            }
            assert!(s.input_row(m - 1, h - 1) + w <= s.len());
            // An output at (img, oh, ow) reads input (oh + i - 1, ow + j - 1) at tap (i, j).
            let (img, oh, ow) = (m - 1, h - 1, w - 1);
            let q = s.output_row(img, oh) + ow;
            assert_eq!(q + s.offset(forward_reads(1)[4]), s.input_row(img, oh) + ow);
        }
    }

    #[test]
    fn at_stride_2_each_tap_reads_its_phase_and_the_input_gradient_takes_every_tap_once() {
        // Input row 2 * oh + i - 1: odd rows' row oh - 1, even rows' row oh, odd rows' row oh.
        let rows = [(1, 0), (0, 1), (1, 1)];
        for (t, read) in forward_reads(2).into_iter().enumerate() {
            let ((a, row), (b, col)) = (rows[t / 3], rows[t % 3]);
            assert_eq!(
                read,
                Read {
                    plane: a * 2 + b,
                    row,
                    col
                },
                "tap {t}"
            );
        }
        let mut taken = vec![0; TAPS];
        for phase in [[0, 0], [0, 1], [1, 0], [1, 1]] {
            let taps = input_grad_taps(2, phase);
            let count = [1, 2][phase[0]] * [1, 2][phase[1]];
            assert_eq!(taps.len(), count, "{phase:?}");
            for (tap, _) in taps {
                taken[tap] += 1;
            }
        }
        assert_eq!(taken, vec![1; TAPS]);
        // At stride 1: the flipped kernel's taps in order, each at the forward's place.
        let flipped = input_grad_taps(1, [0, 0]);
        for (t, (tap, read)) in flipped.into_iter().enumerate() {
            assert_eq!((tap, read), (TAPS - 1 - t, forward_reads(1)[t]));
        }
    }

    #[test]
    fn pad_and_unpad_round_trip() {
        let (s, channels) = (Stack { h: 3, w: 4, m: 2 }, 2);
        let planes: Vec<f32> = (0..2 * channels * 12).map(|v| v as f32 + 1.0).collect();
        // NaN in place of uninitialised values: pad must write all of them.
        let mut buf = vec![MaybeUninit::new(f32::NAN); channels * s.len()];
        let buf = s.pad(&planes, channels, 1, &mut buf);
        // The centre tap of each output position reads its own input.
        let mut grid = vec![0.0; channels * s.positions()];
        for ch in 0..channels {
            for q in 0..s.positions() {
                grid[ch * s.positions() + q] =
                    buf[ch * s.len() + q + s.offset(forward_reads(1)[4])];
            }
        }
        let mut back = vec![MaybeUninit::new(f32::NAN); planes.len()];
        s.unpad(&grid, channels, (1, [0, 0]), &mut back, None);
        // SAFETY: every element was initialised (to NaN, then by `unpad`).
        let back: Vec<f32> = back.iter().map(|v| unsafe { v.assume_init() }).collect();
        assert_eq!(back, planes);
        // Everything else in the padded input is zero: the sum matches.
        assert_eq!(buf.iter().sum::<f32>(), planes.iter().sum::<f32>());
        // Position-major, with room for 5 channels: written whole too.
        let mut grid = vec![MaybeUninit::new(f32::NAN); s.positions() * 5];
        let grid = s.fill_grid_transposed(&planes, channels, 5, &mut grid);
        assert_eq!(grid.iter().sum::<f32>(), planes.iter().sum::<f32>());
        let (img, ch, oh, ow) = (1, 1, 2, 3);
        let at = (s.output_row(img, oh) + ow) * 5 + ch;
        assert_eq!(grid[at], planes[((img * channels + ch) * 3 + oh) * 4 + ow]);
    }

    #[test]
    fn the_four_phases_pad_and_unpad_back_to_the_planes() {
        // 6 x 8 planes as four 3 x 4 phases, the second image's rows past the first.
        let (s, channels) = (Stack { h: 3, w: 4, m: 2 }, 2);
        let planes: Vec<f32> = (0..2 * channels * 48).map(|v| v as f32 + 1.0).collect();
        let mut buf = vec![MaybeUninit::new(f32::NAN); channels * 4 * s.len()];
        let buf = s.pad(&planes, channels, 2, &mut buf);
        assert_eq!(buf.iter().sum::<f32>(), planes.iter().sum::<f32>());
        let mut back = vec![MaybeUninit::new(f32::NAN); planes.len()];
        for (a, b) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
            // Each phase's own value at every output position.
            let own = s.offset(Read {
                plane: a * 2 + b,
                row: 1,
                col: 1,
            });
            let grid: Vec<f32> = (0..channels * s.positions())
                .map(|i| buf[i / s.positions() * 4 * s.len() + own + i % s.positions()])
                .collect();
            s.unpad(&grid, channels, (2, [a, b]), &mut back, None);
        }
        // SAFETY: every element was initialised (to NaN, then by `unpad`).
        let back: Vec<f32> = back.iter().map(|v| unsafe { v.assume_init() }).collect();
        assert_eq!(back, planes);
    }
}
