//! Direct 3x3 convolutions at stride 1 with padding 1 (the "same" convolutions that make up
//! most of a ResNet), without an im2col matrix.
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
//! - forward: `y[o, q] = sum_c sum_tap W[o, c, tap] * x[c, q + shift(tap)]`;
//! - input gradient: the same convolution of `dy` with the weight transposed and flipped
//!   (`W'[c, o, tap] = W[o, c, 8 - tap]`);
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

/// Whether the direct kernels cover `g`: a 3x3 kernel at stride 1 with padding 1.
pub(crate) fn covers(g: &Geometry) -> bool {
    (g.kh, g.kw, g.sh, g.sw, g.ph, g.pw) == (3, 3, 1, 1, 1, 1)
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

    /// Index in a channel's padded input of input row `ih` of image `img`.
    fn input_row(&self, img: usize, ih: usize) -> usize {
        (1 + img * (self.h + 1) + ih) * self.ws() + 1
    }

    /// Position of output row `oh` of image `img`.
    fn output_row(&self, img: usize, oh: usize) -> usize {
        (img * (self.h + 1) + oh) * self.ws()
    }

    /// The shift of kernel tap `tap` (row `tap / 3`, column `tap % 3`) on the grid.
    fn shifts(&self) -> [usize; TAPS] {
        std::array::from_fn(|t| t / 3 * self.ws() + t % 3)
    }

    /// Writes every element of the padded inputs `buf` (`[channels, len]`, uninitialised):
    /// `planes` (`[imgs, channels, h, w]`, `imgs <= m`) at their places, zeros everywhere else
    /// (the borders, the rows of the images past `imgs`, the tail); returns them initialised.
    fn pad<'a>(
        &self,
        planes: &[f32],
        channels: usize,
        buf: &'a mut [MaybeUninit<f32>],
    ) -> &'a mut [f32] {
        let (h, w, ws, len) = (self.h, self.w, self.ws(), self.len());
        assert_eq!(buf.len(), channels * len);
        let imgs = planes.len() / (channels * h * w);
        for (ch, dst) in buf.chunks_exact_mut(len).enumerate() {
            zero(&mut dst[..ws]);
            for img in 0..imgs {
                let src = &planes[(img * channels + ch) * h * w..][..h * w];
                for (ih, row) in src.chunks_exact(w).enumerate() {
                    let at = self.input_row(img, ih);
                    dst[at - 1].write(0.0);
                    copy_row(&mut dst[at..][..w], row, MaybeUninit::new);
                }
                // The zero row below the image (and above the next).
                zero(&mut dst[self.input_row(img, h) - 1..][..ws]);
            }
            zero(&mut dst[self.input_row(imgs, 0) - 1..]);
        }
        // SAFETY: the rows written above tile each channel: row 0, then per image its `h`
        // rows (a zero and `w` values each) and a zero row, then zeros to the end.
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
    /// `planes` (`[imgs, channels, h, w]`), adding `bias[channel]` when given.
    fn unpad(
        &self,
        grid: &[f32],
        channels: usize,
        planes: &mut [MaybeUninit<f32>],
        bias: Option<&[f32]>,
    ) {
        let (h, w, positions) = (self.h, self.w, self.positions());
        for (plane, dst) in planes.chunks_exact_mut(h * w).enumerate() {
            let (img, ch) = (plane / channels, plane % channels);
            let src = &grid[ch * positions..][..positions];
            for (oh, row) in dst.chunks_exact_mut(w).enumerate() {
                let src = &src[self.output_row(img, oh)..][..w];
                match bias {
                    Some(bias) => {
                        for (d, s) in row.iter_mut().zip(src) {
                            d.write(*s + bias[ch]);
                        }
                    }
                    None => copy_row(row, src, MaybeUninit::new),
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

/// The weights in the forward kernel's order: `[o_blocks, ci, TAPS, ob]` from
/// `weight(out_channel, in_channel, tap)`, zero past the last output channel.
fn pack(co: usize, ci: usize, ob: usize, weight: impl Fn(usize, usize, usize) -> f32) -> Vec<f32> {
    let blocks = co.div_ceil(ob);
    let mut packed = vec![0.0; blocks * ci * TAPS * ob];
    for (i, v) in packed.iter_mut().enumerate() {
        let (r, tap, ch, block) = (
            i % ob,
            i / ob % TAPS,
            i / ob / TAPS % ci,
            i / ob / TAPS / ci,
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
struct Convolve<'a> {
    stack: Stack,
    /// Input channels.
    ci: usize,
    /// Padded inputs, `[ci, stack.len()]`.
    buf: &'a [f32],
    /// Packed weights, `[o_blocks, ci, TAPS, ob]`.
    packed: &'a [f32],
}

impl Convolve<'_> {
    /// Writes every element of `grid` (`[o_blocks * OB, positions]`): the convolution at
    /// every position.
    #[inline(always)]
    fn run<M: MulAdd, const OB: usize, const V: usize>(&self, grid: &mut [MaybeUninit<f32>]) {
        const { assert!(BLOCK.is_multiple_of(V * LANES)) };
        let positions = self.stack.positions();
        let per_block = self.ci * TAPS * OB;
        assert_eq!(grid.len(), self.packed.len() / per_block * OB * positions);
        for (block, weights) in self.packed.chunks_exact(per_block).enumerate() {
            let rows = &mut grid[block * OB * positions..][..OB * positions];
            for q in (0..positions).step_by(V * LANES) {
                self.block::<M, OB, V>(weights, q, rows);
            }
        }
    }

    /// `OB` output channels at positions `q..q + V * LANES`, summed over channels, then taps.
    #[inline(always)]
    fn block<M: MulAdd, const OB: usize, const V: usize>(
        &self,
        weights: &[f32],
        q: usize,
        rows: &mut [MaybeUninit<f32>],
    ) {
        let (len, positions) = (self.stack.len(), self.stack.positions());
        let shifts = self.stack.shifts();
        assert!(q + V * LANES + shifts[TAPS - 1] <= len && weights.len() >= self.ci * TAPS * OB);
        let mut acc = [[[0.0f32; LANES]; V]; OB];
        for (plane, w) in self
            .buf
            .chunks_exact(len)
            .zip(weights.chunks_exact(TAPS * OB))
        {
            for (tap, shift) in shifts.iter().enumerate() {
                // SAFETY: the assert above keeps `q + shift + V * LANES <= len`.
                let x: [[f32; LANES]; V] = std::array::from_fn(|v| unsafe {
                    load_unchecked(plane, q + shift + v * LANES)
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

/// `n` images of `ci` channels convolved to `co` channels: `input` `[n, ci, h, w]`, `packed`
/// from [`pack`] with the block of `isa`; returns `[n, co, h, w]`.
fn convolve(
    [n, ci, co, h, w]: [usize; 5],
    input: &[f32],
    packed: &[f32],
    bias: Option<&[f32]>,
    isa: Isa,
) -> Vec<f32> {
    let per_image = ci * (h + 1) * (w + 1);
    let threads = rayon::current_num_threads().max(1);
    let m = (CHUNK_BUDGET / per_image)
        .clamp(1, n.div_ceil(2 * threads).max(1))
        .min(n);
    let stack = Stack { h, w, m };
    let rows = co.next_multiple_of(isa.out_block());
    let total = n * co * h * w;
    let mut out = Vec::with_capacity(total);
    out.spare_capacity_mut()[..total]
        .par_chunks_mut(m * co * h * w)
        .enumerate()
        .for_each(|(chunk, out)| {
            with_scratch(
                [ci * stack.len(), rows * stack.positions()],
                |[buf, grid]| {
                    let imgs = out.len() / (co * h * w);
                    let input = &input[chunk * m * ci * h * w..][..imgs * ci * h * w];
                    let conv = Convolve {
                        stack,
                        ci,
                        buf: stack.pad(input, ci, buf),
                        packed,
                    };
                    stack.unpad(conv.dispatch(isa, grid), co, out, bias);
                },
            )
        });
    // SAFETY: the chunks cover `0..total` and `unpad` wrote every element of each.
    unsafe { out.set_len(total) };
    out
}

/// The forward pass of a covered convolution: `x` `[n, c, h, w]`, `weight` `[o, c, 3, 3]`,
/// `bias` `[o]`; returns `[n, o, h, w]`.
pub(crate) fn forward(g: &Geometry, x: &[f32], weight: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    forward_on(isa(), g, x, weight, bias)
}

fn forward_on(isa: Isa, g: &Geometry, x: &[f32], weight: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let packed = pack(g.o, g.c, isa.out_block(), |o, c, tap| {
        weight[(o * g.c + c) * TAPS + tap]
    });
    convolve([g.n, g.c, g.o, g.h, g.w], x, &packed, bias, isa)
}

/// The input gradient of a covered convolution: `weight` `[o, c, 3, 3]`, `dy` `[n, o, h, w]`;
/// returns `[n, c, h, w]`.
pub(crate) fn input_grad(g: &Geometry, weight: &[f32], dy: &[f32]) -> Vec<f32> {
    input_grad_on(isa(), g, weight, dy)
}

fn input_grad_on(isa: Isa, g: &Geometry, weight: &[f32], dy: &[f32]) -> Vec<f32> {
    let packed = pack(g.c, g.o, isa.out_block(), |c, o, tap| {
        weight[(o * g.c + c) * TAPS + TAPS - 1 - tap]
    });
    convolve([g.n, g.o, g.c, g.h, g.w], dy, &packed, None, isa)
}

/// The arguments of one weight-gradient correlation over a stack.
struct Correlate<'a> {
    stack: Stack,
    c: usize,
    /// Output channels rounded up to whole vectors.
    op: usize,
    /// Padded inputs, `[c, stack.len()]`.
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
        let groups = self.op / LANES;
        let whole = groups / OV * OV;
        for g in (0..whole).step_by(OV) {
            self.channels::<M, OV, CB>(g * LANES, dwt);
        }
        for g in whole..groups {
            self.channels::<M, 1, CB>(g * LANES, dwt);
        }
    }

    #[inline(always)]
    fn channels<M: MulAdd, const OV: usize, const CB: usize>(&self, o: usize, dwt: &mut [f32]) {
        let whole = self.c / CB * CB;
        for i in 0..3 {
            for c in (0..whole).step_by(CB) {
                self.block::<M, OV, CB>(o, c, i, dwt);
            }
            for c in whole..self.c {
                self.block::<M, OV, 1>(o, c, i, dwt);
            }
        }
    }

    /// Output channels `o..o + OV * LANES`, input channels `c..c + CB`, kernel row `i`.
    #[inline(always)]
    fn block<M: MulAdd, const OV: usize, const CB: usize>(
        &self,
        o: usize,
        c: usize,
        i: usize,
        dwt: &mut [f32],
    ) {
        let (len, positions, op) = (self.stack.len(), self.stack.positions(), self.op);
        let x = &self.buf[c * len + i * self.stack.ws()..][..(CB - 1) * len + positions + 2];
        let dy = &self.grid[o..][..(positions - 1) * op + OV * LANES];
        let row = |k: usize, j: usize| ((c + k) * TAPS + i * 3 + j) * op + o;
        let mut acc: [[[[f32; LANES]; OV]; 3]; CB] = std::array::from_fn(|k| {
            std::array::from_fn(|j| {
                std::array::from_fn(|v| std::array::from_fn(|l| dwt[row(k, j) + v * LANES + l]))
            })
        });
        for q in 0..positions {
            // SAFETY: `q < positions`, so `q * op + OV * LANES <= dy.len()` and
            // `(CB - 1) * len + q + 2 < x.len()` (the slicings above).
            let d: [[f32; LANES]; OV] =
                std::array::from_fn(|v| unsafe { load_unchecked(dy, q * op + v * LANES) });
            for (k, acc) in acc.iter_mut().enumerate() {
                for (j, acc) in acc.iter_mut().enumerate() {
                    let xv = unsafe { *x.get_unchecked(k * len + q + j) };
                    for (acc, d) in acc.iter_mut().zip(&d) {
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
/// shapes alone), each chunk's sum added in order: `x` `[n, c, h, w]`, `dy` `[n, o, h, w]`;
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
    let m = (CHUNK_BUDGET / (g.c * (g.h + 1) * (g.w + 1))).clamp(1, longest);
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
    let (c, o, plane) = (g.c, g.o, g.h * g.w);
    let op = o.next_multiple_of(LANES);
    let stack = Stack { h: g.h, w: g.w, m };
    let dwt = super::kernels::sum_in_order(chunks, |images| {
        let mut dwt = vec![0.0f32; c * TAPS * op];
        with_scratch([c * stack.len(), stack.positions() * op], |[buf, grid]| {
            for first in images.clone().step_by(m) {
                let imgs = m.min(images.end - first);
                let x = &x[first * c * plane..][..imgs * c * plane];
                let dy = &dy[first * o * plane..][..imgs * o * plane];
                let corr = Correlate {
                    stack,
                    c,
                    op,
                    buf: stack.pad(x, c, buf),
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
        let (mut y, mut dx) = (vec![0.0; g.n * g.o * g.h * g.w], vec![0.0; x.len()]);
        let mut dw = vec![0.0; w.len()];
        for (n, o, c, i, j) in (0..g.n).flat_map(|n| {
            (0..g.o).flat_map(move |o| {
                (0..g.c).flat_map(move |c| (0..9).map(move |t| (n, o, c, t / 3, t % 3)))
            })
        }) {
            for oh in 0..g.h {
                for ow in 0..g.w {
                    let (ih, iw) = ((oh + i) as isize - 1, (ow + j) as isize - 1);
                    if ih < 0 || iw < 0 || ih >= g.h as isize || iw >= g.w as isize {
                        continue;
                    }
                    let xi = ((n * g.c + c) * g.h + ih as usize) * g.w + iw as usize;
                    let yi = ((n * g.o + o) * g.h + oh) * g.w + ow;
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
        // one image, several chunks with a short last one.
        let shapes = [
            [1, 1, 1, 1, 1],
            [2, 3, 2, 7, 5],
            [3, 5, 17, 3, 20],
            [5, 16, 8, 8, 16],
            [4, 9, 5, 5, 33],
            [2, 4, 40, 9, 70],
        ];
        for (s, [n, c, h, w, o]) in shapes.into_iter().enumerate() {
            let g = Geometry::new([n, c, h, w], [o, c, 3, 3], [1, 1], [1, 1], [1, 1], 1)
                .expect("covered");
            let seed = 10 * s as u64;
            let (x, wt) = (values(n * c * h * w, seed), values(o * c * 9, seed + 1));
            let dy = values(n * o * h * w, seed + 2);
            let bias = values(o, seed + 3);
            let [y, dx, dw] = naive(&g, &x, &wt, &dy);
            let y: Vec<f64> = y
                .iter()
                .enumerate()
                .map(|(i, v)| v + f64::from(bias[i / (h * w) % o]))
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
                        [n, c, h, w, o]
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
        let [n, c, h, w, o] = [7, 3, 6, 5, 20];
        let g =
            Geometry::new([n, c, h, w], [o, c, 3, 3], [1, 1], [1, 1], [1, 1], 1).expect("covered");
        let (x, dy) = (values(n * c * h * w, 1), values(n * o * h * w, 2));
        let want = naive(&g, &x, &values(o * c * 9, 3), &dy)[2].clone();
        for isa in isas() {
            // Chunks of 4 and 3 images, in stacks of one image up to the whole chunk.
            let by = |m| weight_grad_on(isa, &g, &x, &dy, vec![0..4, 4..7], m);
            let whole = by(4);
            assert!(max_error(&whole, &want) < 1e-5, "{isa:?}");
            for m in 1..4 {
                let got = by(m);
                let same = got
                    .iter()
                    .zip(&whole)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{isa:?}, stacks of {m}");
            }
        }
    }

    #[test]
    fn the_stack_keeps_every_read_inside_and_the_borders_zero() {
        for (h, w, m) in [(1, 1, 1), (2, 7, 3), (8, 8, 5), (32, 32, 1), (3, 17, 2)] {
            let s = Stack { h, w, m };
            // The last vector of positions at the largest shift.
            let last_read = s.positions() - 1 + s.shifts()[TAPS - 1];
            assert!(last_read < s.len(), "{h}x{w}x{m}");
            assert!(s.input_row(m - 1, h - 1) + w <= s.len());
            // An output at (img, oh, ow) reads input (oh + i - 1, ow + j - 1) at tap (i, j).
            let (img, oh, ow) = (m - 1, h - 1, w - 1);
            let q = s.output_row(img, oh) + ow;
            assert_eq!(q + s.shifts()[4], s.input_row(img, oh) + ow);
        }
    }

    #[test]
    fn pad_and_unpad_round_trip() {
        let (s, channels) = (Stack { h: 3, w: 4, m: 2 }, 2);
        let planes: Vec<f32> = (0..2 * channels * 12).map(|v| v as f32 + 1.0).collect();
        // NaN in place of uninitialised values: pad must write all of them.
        let mut buf = vec![MaybeUninit::new(f32::NAN); channels * s.len()];
        let buf = s.pad(&planes, channels, &mut buf);
        // The centre tap of each output position reads its own input.
        let mut grid = vec![0.0; channels * s.positions()];
        for ch in 0..channels {
            for q in 0..s.positions() {
                grid[ch * s.positions() + q] = buf[ch * s.len() + q + s.shifts()[4]];
            }
        }
        let mut back = vec![MaybeUninit::new(f32::NAN); planes.len()];
        s.unpad(&grid, channels, &mut back, None);
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
}
