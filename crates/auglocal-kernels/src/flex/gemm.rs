//! A bounds-checked, single-threaded wrapper over `gemm::gemm` for f32 matrices.
#![allow(unsafe_code)]

/// A read-only strided matrix view: element `(i, j)` is `data[i * rs + j * cs]`.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl View<'_> {
    /// Panics unless every element of a `rows x cols` matrix lies inside `data`.
    fn check(&self, rows: usize, cols: usize, what: &str) {
        if rows == 0 || cols == 0 {
            return;
        }
        let last = (rows - 1) * self.rs + (cols - 1) * self.cs;
        assert!(last < self.data.len(), "gemm: {what} view out of bounds");
    }
}

/// `dst = lhs x rhs` (or `dst += lhs x rhs` when `accumulate`), `dst` row-major `m x n` with
/// row stride `dst_rs`, `lhs` `m x k`, `rhs` `k x n`. Runs on the calling thread: callers
/// split work over rayon themselves, so results never depend on the number of threads.
pub(crate) fn gemm(
    [m, n, k]: [usize; 3],
    dst: &mut [f32],
    dst_rs: usize,
    accumulate: bool,
    lhs: View<'_>,
    rhs: View<'_>,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        n <= dst_rs && (m - 1) * dst_rs + n <= dst.len(),
        "gemm: dst out of bounds"
    );
    lhs.check(m, k, "lhs");
    rhs.check(k, n, "rhs");
    // SAFETY: the three checks above keep every address gemm reads or writes inside its slice;
    // `dst` is borrowed mutably, so it cannot alias `lhs` or `rhs`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.data.as_ptr(),
            rhs.cs as isize,
            rhs.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiplies_and_accumulates_strided_views() {
        // lhs 2x3 row-major, rhs 3x2 given transposed (column-major).
        let lhs = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let rhs_t = [1.0, 0.0, 2.0, 0.5, 1.0, -1.0]; // rhs = [[1, .5], [0, 1], [2, -1]]
        let mut dst = [0.0f32; 4];
        let l = View {
            data: &lhs,
            rs: 3,
            cs: 1,
        };
        let r = View {
            data: &rhs_t,
            rs: 1,
            cs: 3,
        };
        gemm([2, 2, 3], &mut dst, 2, false, l, r);
        assert_eq!(dst, [7.0, -0.5, 16.0, 1.0]);
        gemm([2, 2, 3], &mut dst, 2, true, l, r);
        assert_eq!(dst, [14.0, -1.0, 32.0, 2.0]);
    }

    #[test]
    #[should_panic(expected = "rhs view out of bounds")]
    fn refuses_a_view_past_its_slice() {
        let mut dst = [0.0f32; 4];
        let a = [0.0f32; 4];
        let v = View {
            data: &a,
            rs: 2,
            cs: 1,
        };
        gemm(
            [2, 2, 3],
            &mut dst,
            2,
            false,
            View {
                data: &[0.0; 6],
                rs: 3,
                cs: 1,
            },
            v,
        );
    }
}
