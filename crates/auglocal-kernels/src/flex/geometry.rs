//! The shape of one convolution, its tiles of output rows, and im2col / col2im over one tile.
//!
//! Notation: `x` is `[n, c, h, w]`, the weight `[o, c, kh, kw]`, the output `[n, o, ho, wo]`;
//! `k = c * kh * kw` (rows of a column matrix) and `p = ho * wo` (output positions).
//! A tile is the output rows `r0..r1` of one image; its column matrix is `[k, (r1 - r0) * wo]`.

use std::ops::Range;

/// Most elements of one column buffer (1 MiB of f32): a tile holds as many output rows as fit.
const COL_BUDGET: usize = 1 << 18;

/// One convolution's sizes (groups 1, dilation 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub ph: usize,
    pub pw: usize,
    pub ho: usize,
    pub wo: usize,
}

impl Geometry {
    /// The geometry of `x` `[n, c, h, w]` convolved with a `[o, c, kh, kw]` weight, or `None`
    /// when the kernels here do not cover it (groups or dilation other than 1, a kernel larger
    /// than the padded input, an empty tensor).
    pub fn new(
        x: [usize; 4],
        weight: [usize; 4],
        stride: [usize; 2],
        padding: [usize; 2],
        dilation: [usize; 2],
        groups: usize,
    ) -> Option<Self> {
        let [n, c, h, w] = x;
        let [o, wc, kh, kw] = weight;
        let [sh, sw] = stride;
        let [ph, pw] = padding;
        if groups != 1 || dilation != [1, 1] || wc != c || sh == 0 || sw == 0 {
            return None;
        }
        if h + 2 * ph < kh || w + 2 * pw < kw {
            return None;
        }
        let ho = (h + 2 * ph - kh) / sh + 1;
        let wo = (w + 2 * pw - kw) / sw + 1;
        let g = Self {
            n,
            c,
            h,
            w,
            o,
            kh,
            kw,
            sh,
            sw,
            ph,
            pw,
            ho,
            wo,
        };
        (g.n * g.c * g.h * g.w * g.o * g.k() > 0).then_some(g)
    }

    /// Rows of a column matrix: `c * kh * kw`.
    pub fn k(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// Output positions of one image: `ho * wo`.
    pub fn p(&self) -> usize {
        self.ho * self.wo
    }

    /// Elements of one input image: `c * h * w`.
    pub fn image(&self) -> usize {
        self.c * self.h * self.w
    }

    /// A 1x1 convolution at stride 1 without padding: the image itself is its column matrix.
    pub fn is_pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.sh == 1 && self.sw == 1 && self.ph == 0 && self.pw == 0
    }

    /// The output rows of one image in tiles of at most [`COL_BUDGET`] column elements.
    pub fn tiles(&self) -> impl Iterator<Item = Range<usize>> + use<> {
        let rows = (COL_BUDGET / (self.k() * self.wo)).clamp(1, self.ho);
        let ho = self.ho;
        (0..ho.div_ceil(rows)).map(move |t| t * rows..((t + 1) * rows).min(ho))
    }

    /// Elements of the largest tile's column matrix.
    pub fn col_len(&self) -> usize {
        self.tiles().map(|r| r.len()).max().unwrap_or(0) * self.wo * self.k()
    }

    /// The output columns `ow` whose input column `ow * sw + j - pw` lies inside the image.
    fn valid_cols(&self, j: usize) -> Range<usize> {
        let lo = if self.pw > j {
            (self.pw - j).div_ceil(self.sw)
        } else {
            0
        };
        let hi = if self.w + self.pw > j {
            (self.w + self.pw - j - 1) / self.sw + 1
        } else {
            0
        };
        let hi = hi.min(self.wo);
        lo.min(hi)..hi
    }

    /// The input row read by output row `oh` at kernel row `i`, if inside the image.
    fn input_row(&self, oh: usize, i: usize) -> Option<usize> {
        (oh * self.sh + i)
            .checked_sub(self.ph)
            .filter(|&ih| ih < self.h)
    }

    /// Whether a row of the column matrix is the input plane shifted by a constant offset
    /// (stride 1 and as many output as input columns: "same" padding), so it is filled by one
    /// copy per kernel position instead of one per output row.
    fn is_shift(&self) -> bool {
        self.sh == 1 && self.sw == 1 && self.wo == self.w
    }

    /// For [`Geometry::is_shift`]: the tile rows `ra..rb` whose input row exists, and the
    /// offset of input element `(ih, iw)` = `q + offset` for column-matrix position `q`,
    /// clamped to the positions `qa..qb` that land inside the plane.
    fn shift(&self, rows: &Range<usize>, i: usize, j: usize) -> ([usize; 4], isize) {
        let len = rows.len() as isize;
        let first = rows.start as isize + i as isize - self.ph as isize; // input row of tile row 0
        let ra = (-first).clamp(0, len);
        let rb = (self.h as isize - first).clamp(ra, len);
        let offset = first * self.w as isize + j as isize - self.pw as isize;
        let plane = (self.h * self.w) as isize;
        let wo = self.wo as isize;
        let qa = (ra * wo).max(-offset).min(rb * wo);
        let qb = (rb * wo).min(plane - offset).max(qa);
        let r = |v: isize| v as usize;
        ([r(ra), r(rb), r(qa), r(qb)], offset)
    }

    /// Fills `col` (`[k, rows.len() * wo]`) with the patches of `image` (`[c, h, w]`) seen by
    /// the output rows `rows`; zeros where the kernel overhangs the padding.
    pub fn im2col(&self, image: &[f32], rows: Range<usize>, col: &mut [f32]) {
        if self.is_shift() {
            return self.im2col_shift(image, rows, col);
        }
        let t = rows.len() * self.wo;
        for (row, line) in col[..self.k() * t].chunks_exact_mut(t).enumerate() {
            let (ch, i, j) = (
                row / (self.kh * self.kw),
                row / self.kw % self.kh,
                row % self.kw,
            );
            let valid = self.valid_cols(j);
            for (r, oh) in rows.clone().enumerate() {
                let seg = &mut line[r * self.wo..(r + 1) * self.wo];
                let Some(ih) = self.input_row(oh, i) else {
                    seg.fill(0.0);
                    continue;
                };
                let src = &image[(ch * self.h + ih) * self.w..][..self.w];
                seg[..valid.start].fill(0.0);
                seg[valid.end..].fill(0.0);
                if valid.is_empty() {
                    continue;
                }
                let first = valid.start * self.sw + j - self.pw;
                if self.sw == 1 {
                    seg[valid.clone()].copy_from_slice(&src[first..first + valid.len()]);
                } else {
                    let picks = src[first..].iter().step_by(self.sw);
                    for (d, s) in seg[valid.clone()].iter_mut().zip(picks) {
                        *d = *s;
                    }
                }
            }
        }
    }

    /// For [`Geometry::is_shift`]: zeroes, in the tile rows `rows` of a column-matrix line for
    /// kernel column `j`, the columns whose input column lies left or right of the image (a
    /// shifted copy wraps them into the neighbouring row; they read padding).
    fn zero_wrapped(&self, line: &mut [f32], rows: Range<usize>, j: usize) {
        let (valid, wo) = (self.valid_cols(j), self.wo);
        if valid.len() < wo {
            for r in rows {
                line[r * wo..r * wo + valid.start].fill(0.0);
                line[r * wo + valid.end..(r + 1) * wo].fill(0.0);
            }
        }
    }

    /// [`Geometry::im2col`] when [`Geometry::is_shift`]: per kernel position, one copy of the
    /// shifted plane, then zeros on the rows and columns the kernel overhangs.
    fn im2col_shift(&self, image: &[f32], rows: Range<usize>, col: &mut [f32]) {
        let (t, plane) = (rows.len() * self.wo, self.h * self.w);
        for (row, line) in col[..self.k() * t].chunks_exact_mut(t).enumerate() {
            let (ch, i, j) = (
                row / (self.kh * self.kw),
                row / self.kw % self.kh,
                row % self.kw,
            );
            let ([ra, rb, qa, qb], offset) = self.shift(&rows, i, j);
            let src = &image[ch * plane..][..plane];
            line[..qa].fill(0.0);
            line[qb..].fill(0.0);
            if qa < qb {
                let from = (qa as isize + offset) as usize;
                line[qa..qb].copy_from_slice(&src[from..from + (qb - qa)]);
            }
            self.zero_wrapped(line, ra..rb, j);
        }
    }

    /// The adjoint of [`Geometry::im2col`]: adds every element of `col` (`[k, rows.len() * wo]`)
    /// into the input position it was read from in `image` (`[c, h, w]`). `col` is scratch:
    /// the entries that read padding may be zeroed.
    pub fn col2im(&self, col: &mut [f32], rows: Range<usize>, image: &mut [f32]) {
        if self.is_shift() {
            return self.col2im_shift(col, rows, image);
        }
        let t = rows.len() * self.wo;
        for (row, line) in col[..self.k() * t].chunks_exact(t).enumerate() {
            let (ch, i, j) = (
                row / (self.kh * self.kw),
                row / self.kw % self.kh,
                row % self.kw,
            );
            let valid = self.valid_cols(j);
            if valid.is_empty() {
                continue;
            }
            for (r, oh) in rows.clone().enumerate() {
                let Some(ih) = self.input_row(oh, i) else {
                    continue;
                };
                let seg = &line[r * self.wo..(r + 1) * self.wo];
                let dst = &mut image[(ch * self.h + ih) * self.w..][..self.w];
                let first = valid.start * self.sw + j - self.pw;
                if self.sw == 1 {
                    let d = &mut dst[first..first + valid.len()];
                    for (d, s) in d.iter_mut().zip(&seg[valid.clone()]) {
                        *d += *s;
                    }
                } else {
                    let picks = dst[first..].iter_mut().step_by(self.sw);
                    for (d, s) in picks.zip(&seg[valid.clone()]) {
                        *d += *s;
                    }
                }
            }
        }
    }

    /// [`Geometry::col2im`] when [`Geometry::is_shift`]: zero the entries that read padding,
    /// then one shifted vector add per kernel position.
    fn col2im_shift(&self, col: &mut [f32], rows: Range<usize>, image: &mut [f32]) {
        let (t, plane) = (rows.len() * self.wo, self.h * self.w);
        for (row, line) in col[..self.k() * t].chunks_exact_mut(t).enumerate() {
            let (ch, i, j) = (
                row / (self.kh * self.kw),
                row / self.kw % self.kh,
                row % self.kw,
            );
            let ([ra, rb, qa, qb], offset) = self.shift(&rows, i, j);
            self.zero_wrapped(line, ra..rb, j);
            if qa == qb {
                continue;
            }
            let from = (qa as isize + offset) as usize;
            let dst = &mut image[ch * plane..][..plane][from..from + (qb - qa)];
            for (d, s) in dst.iter_mut().zip(&line[qa..qb]) {
                *d += *s;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry(x: [usize; 4], o: usize, k: usize, s: usize, p: usize) -> Geometry {
        Geometry::new(x, [o, x[1], k, k], [s, s], [p, p], [1, 1], 1).expect("covered")
    }

    /// im2col by its definition, one element at a time.
    fn naive_im2col(g: &Geometry, image: &[f32], rows: Range<usize>) -> Vec<f32> {
        let t = rows.len() * g.wo;
        let mut col = vec![0.0; g.k() * t];
        for ch in 0..g.c {
            for i in 0..g.kh {
                for j in 0..g.kw {
                    let row = (ch * g.kh + i) * g.kw + j;
                    for (r, oh) in rows.clone().enumerate() {
                        for ow in 0..g.wo {
                            let ih = (oh * g.sh + i) as isize - g.ph as isize;
                            let iw = (ow * g.sw + j) as isize - g.pw as isize;
                            if (0..g.h as isize).contains(&ih) && (0..g.w as isize).contains(&iw) {
                                col[row * t + r * g.wo + ow] =
                                    image[(ch * g.h + ih as usize) * g.w + iw as usize];
                            }
                        }
                    }
                }
            }
        }
        col
    }

    #[test]
    fn im2col_matches_its_definition_and_col2im_is_its_adjoint() {
        for (x, k, s, p) in [
            ([1, 3, 7, 5], 3, 2, 1),
            ([1, 2, 8, 8], 3, 1, 1),
            ([1, 2, 9, 9], 7, 2, 3),
            ([1, 4, 5, 5], 1, 2, 0),
            ([1, 1, 4, 6], 3, 1, 0),
            ([1, 2, 3, 3], 5, 1, 2),
            ([1, 2, 9, 9], 7, 1, 3),
            ([1, 3, 6, 5], 1, 1, 0),
            ([1, 2, 5, 7], 3, 1, 1),
        ] {
            let g = geometry(x, 2, k, s, p);
            let image: Vec<f32> = (0..g.image()).map(|v| v as f32 + 1.0).collect();
            for rows in [0..g.ho, 1.min(g.ho - 1)..g.ho] {
                let mut col = vec![f32::NAN; g.k() * rows.len() * g.wo];
                g.im2col(&image, rows.clone(), &mut col);
                let want = naive_im2col(&g, &image, rows.clone());
                assert_eq!(col, want, "im2col {x:?} k{k} s{s} p{p} rows {rows:?}");
                // <im2col(x), y> == <x, col2im(y)> for integer-valued x and y (exact in f32).
                let mut y: Vec<f32> = (0..col.len()).map(|v| (v % 7) as f32 - 3.0).collect();
                let lhs: f32 = col.iter().zip(&y).map(|(a, b)| a * b).sum();
                let mut back = vec![0.0; g.image()];
                g.col2im(&mut y, rows.clone(), &mut back);
                let rhs: f32 = image.iter().zip(&back).map(|(a, b)| a * b).sum();
                assert_eq!(lhs, rhs, "col2im {x:?} k{k} s{s} p{p}");
            }
        }
    }

    #[test]
    fn tiles_cover_the_rows_within_the_budget() {
        let g = geometry([2, 3, 224, 224], 64, 7, 2, 3);
        let tiles: Vec<_> = g.tiles().collect();
        assert_eq!(tiles.first().map(|r| r.start), Some(0));
        assert_eq!(tiles.last().map(|r| r.end), Some(g.ho));
        assert!(tiles.windows(2).all(|w| w[0].end == w[1].start));
        assert!(g.col_len() <= COL_BUDGET && tiles.len() > 1);
        assert_eq!(geometry([1, 16, 32, 32], 16, 3, 1, 1).tiles().count(), 1);
    }

    #[test]
    fn refuses_what_it_does_not_cover() {
        assert!(Geometry::new([1, 4, 8, 8], [4, 2, 3, 3], [1, 1], [1, 1], [1, 1], 2).is_none());
        assert!(Geometry::new([1, 4, 8, 8], [4, 4, 3, 3], [1, 1], [1, 1], [2, 2], 1).is_none());
        assert!(Geometry::new([1, 4, 2, 2], [4, 4, 5, 5], [1, 1], [0, 0], [1, 1], 1).is_none());
        assert!(Geometry::new([0, 4, 8, 8], [4, 4, 3, 3], [1, 1], [1, 1], [1, 1], 1).is_none());
    }
}
