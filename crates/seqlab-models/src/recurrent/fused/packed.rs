//! The recurrent products of the time loop, `[B, K] × [K, N]` with the same right-hand side at
//! every step: that matrix (the recurrent weights) is packed once per call into panels of
//! [`PANEL`] columns, and each step runs an AVX2/FMA register-tile kernel over the panels.
//!
//! A general matrix product packs its right-hand side again on every call; at batch 32 and
//! hidden 512 that repacking and the small row count keep the `gemm` crate at about half the
//! speed of this kernel (measured on config c's shapes: 110–150 GFLOP/s here against 55–90,
//! on a 2-core AMD EPYC). Other CPUs use the `gemm` crate.

use rayon::prelude::*;

/// Columns per packed panel: two 8-wide AVX registers.
const PANEL: usize = 16;

/// Products at least this large (`m · n · k`) are split across threads, by panels.
const PARALLEL_WORK: usize = 2 * 1024 * 1024;

/// Right-hand sides at least this large (`k · n`) are packed by several threads.
const PARALLEL_PACK: usize = 256 * 1024;

/// A right-hand side `[K, N]` ready for repeated products, packed or, on CPUs without AVX2
/// and FMA, kept as strides into the original matrix.
pub(super) struct RecurrentRhs<'a> {
    k: usize,
    n: usize,
    layout: Layout<'a>,
}

enum Layout<'a> {
    /// Panel `p` holds rows `0..K` of columns `p·16..p·16+16` (zero past `N`), 16 values a row.
    #[cfg(target_arch = "x86_64")]
    Packed(Vec<f32>),
    /// The original matrix with its row and column strides.
    Strided(&'a [f32], [usize; 2]),
}

impl<'a> RecurrentRhs<'a> {
    /// The `[k, n]` matrix whose element `(row, col)` is `rhs[row · strides[0] + col ·
    /// strides[1]]`.
    pub fn new(rhs: &'a [f32], [k, n]: [usize; 2], strides: [usize; 2]) -> Self {
        let [row_stride, col_stride] = strides;
        if k > 0 && n > 0 {
            assert!(
                (k - 1) * row_stride + (n - 1) * col_stride < rhs.len(),
                "recurrent product: right-hand side out of bounds"
            );
        }
        #[cfg(target_arch = "x86_64")]
        if super::kernel::has_avx2_fma() {
            let panels = n.div_ceil(PANEL);
            let mut packed = vec![0.0f32; panels * k * PANEL];
            let pack = |(panel, dst): (usize, &mut [f32])| {
                let first = panel * PANEL;
                let cols = PANEL.min(n - first);
                if col_stride == 1 {
                    // Rows are contiguous: copy each row's run of the panel's columns.
                    for (row, dst) in dst.chunks_exact_mut(PANEL).enumerate() {
                        dst[..cols].copy_from_slice(&rhs[row * row_stride + first..][..cols]);
                    }
                } else if row_stride == 1 {
                    // Columns are contiguous (a transposed matrix): read each column in order.
                    for col in 0..cols {
                        let src = &rhs[(first + col) * col_stride..][..k];
                        for (dst, value) in dst[col..].iter_mut().step_by(PANEL).zip(src) {
                            *dst = *value;
                        }
                    }
                } else {
                    for (row, dst) in dst.chunks_exact_mut(PANEL).enumerate() {
                        for (col, value) in dst[..cols].iter_mut().enumerate() {
                            *value = rhs[row * row_stride + (first + col) * col_stride];
                        }
                    }
                }
            };
            let panel_len = (k * PANEL).max(1);
            if k * n >= PARALLEL_PACK {
                packed.par_chunks_mut(panel_len).enumerate().for_each(pack);
            } else {
                packed.chunks_mut(panel_len).enumerate().for_each(pack);
            }
            return Self {
                k,
                n,
                layout: Layout::Packed(packed),
            };
        }
        Self {
            k,
            n,
            layout: Layout::Strided(rhs, strides),
        }
    }

    /// `dst = [dst +] lhs · rhs` for `m` rows: `lhs` row `r` is `lhs[r · lhs_stride..][..K]`,
    /// `dst` row `r` is `dst[r · dst_stride..][..N]`.
    pub fn product(
        &self,
        m: usize,
        dst: &mut [f32],
        dst_stride: usize,
        accumulate: bool,
        lhs: &[f32],
        lhs_stride: usize,
    ) {
        let (k, n) = (self.k, self.n);
        if m == 0 || n == 0 {
            return;
        }
        assert!(
            (m - 1) * dst_stride + n <= dst.len(),
            "recurrent product: destination out of bounds"
        );
        assert!(
            k == 0 || (m - 1) * lhs_stride + k <= lhs.len(),
            "recurrent product: left-hand side out of bounds"
        );
        match &self.layout {
            #[cfg(target_arch = "x86_64")]
            Layout::Packed(packed) => {
                let out = Destination(dst.as_mut_ptr());
                let panel = |p: usize| {
                    let first = p * PANEL;
                    // SAFETY: `Packed` exists only on CPUs with AVX2 and FMA; every row of
                    // `lhs` and `dst` the tile touches was bounds-checked above; panel `p`
                    // holds `k · 16` values; threads write disjoint columns of `dst`.
                    unsafe {
                        Tile {
                            k,
                            cols: PANEL.min(n - first),
                            lhs: lhs.as_ptr(),
                            lhs_stride,
                            panel: packed.as_ptr().add(p * k * PANEL),
                            dst: out.at(first),
                            dst_stride,
                            accumulate,
                        }
                        .panel(m)
                    }
                };
                let panels = n.div_ceil(PANEL);
                if m * n * k >= PARALLEL_WORK {
                    (0..panels).into_par_iter().with_min_len(4).for_each(panel);
                } else {
                    (0..panels).for_each(panel);
                }
            }
            Layout::Strided(rhs, strides) => super::kernel::matmul(
                [m, n, k],
                dst,
                dst_stride,
                accumulate,
                lhs,
                [lhs_stride, 1],
                rhs,
                *strides,
            ),
        }
    }
}

/// The destination pointer shared by the threads of one product, each writing its own
/// columns.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Destination(*mut f32);

// SAFETY: the threads of one product write disjoint panels of columns.
#[cfg(target_arch = "x86_64")]
unsafe impl Send for Destination {}
#[cfg(target_arch = "x86_64")]
unsafe impl Sync for Destination {}

#[cfg(target_arch = "x86_64")]
impl Destination {
    /// The pointer `offset` values in (a method, so closures capture the `Sync` wrapper).
    fn at(self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }
}

/// Rows of `lhs` per register tile: 6 × 2 accumulators, 2 panel loads and 1 broadcast fill
/// 15 of the 16 AVX registers.
#[cfg(target_arch = "x86_64")]
const TILE_ROWS: usize = 6;

/// Rows of `lhs` against one panel: [`Tile::panel`] runs all `m` rows, in register tiles of
/// [`TILE_ROWS`] ([`Tile::run`]).
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Tile {
    k: usize,
    cols: usize,
    lhs: *const f32,
    lhs_stride: usize,
    panel: *const f32,
    dst: *mut f32,
    dst_stride: usize,
    accumulate: bool,
}

#[cfg(target_arch = "x86_64")]
impl Tile {
    /// # Safety
    /// The CPU has AVX2 and FMA; `lhs` rows `0..m` (`k` values each, `lhs_stride` apart),
    /// `panel` (`k · 16` values) and `dst` rows `0..m` (`cols` values each, `dst_stride`
    /// apart) are valid.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn panel(self, m: usize) {
        let mut row = 0;
        while row < m {
            let rows = TILE_ROWS.min(m - row);
            // SAFETY: rows `row..row + rows` are within `0..m` (the caller's contract).
            unsafe {
                let tile = Tile {
                    lhs: self.lhs.add(row * self.lhs_stride),
                    dst: self.dst.add(row * self.dst_stride),
                    ..self
                };
                match rows {
                    6 => tile.run::<6>(),
                    5 => tile.run::<5>(),
                    4 => tile.run::<4>(),
                    3 => tile.run::<3>(),
                    2 => tile.run::<2>(),
                    _ => tile.run::<1>(),
                }
            }
            row += rows;
        }
    }

    /// # Safety
    /// As [`Tile::panel`], for `R` rows.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run<const R: usize>(&self) {
        use std::arch::x86_64::*;
        let Tile {
            k,
            cols,
            lhs,
            lhs_stride,
            panel,
            dst,
            dst_stride,
            accumulate,
        } = *self;
        // SAFETY: reads `panel[..k · 16]`, `lhs` rows `0..R` up to `k`, writes `dst` rows
        // `0..R` up to `cols`: the caller's contract.
        unsafe {
            let mut acc = [[_mm256_setzero_ps(); 2]; R];
            // acc[r] += lhs[r, i] · panel[i, ..16] for every row of the tile. Indexed loops
            // over constant bounds: the accumulators stay in registers.
            macro_rules! accumulate_step {
                ($i:expr) => {{
                    let i = $i;
                    let b0 = _mm256_loadu_ps(panel.add(i * PANEL));
                    let b1 = _mm256_loadu_ps(panel.add(i * PANEL + 8));
                    #[allow(clippy::needless_range_loop)]
                    for r in 0..R {
                        let a = _mm256_broadcast_ss(&*lhs.add(r * lhs_stride + i));
                        acc[r][0] = _mm256_fmadd_ps(a, b0, acc[r][0]);
                        acc[r][1] = _mm256_fmadd_ps(a, b1, acc[r][1]);
                    }
                }};
            }
            let mut i = 0;
            while i + 4 <= k {
                for u in 0..4 {
                    accumulate_step!(i + u);
                }
                i += 4;
            }
            while i < k {
                accumulate_step!(i);
                i += 1;
            }
            #[allow(clippy::needless_range_loop)]
            for r in 0..R {
                let out = dst.add(r * dst_stride);
                if cols == PANEL {
                    let (mut low, mut high) = (acc[r][0], acc[r][1]);
                    if accumulate {
                        low = _mm256_add_ps(low, _mm256_loadu_ps(out));
                        high = _mm256_add_ps(high, _mm256_loadu_ps(out.add(8)));
                    }
                    _mm256_storeu_ps(out, low);
                    _mm256_storeu_ps(out.add(8), high);
                } else {
                    let mut values = [0.0f32; PANEL];
                    _mm256_storeu_ps(values.as_mut_ptr(), acc[r][0]);
                    _mm256_storeu_ps(values.as_mut_ptr().add(8), acc[r][1]);
                    for (col, value) in values[..cols].iter().enumerate() {
                        let out = out.add(col);
                        *out = if accumulate { *out + value } else { *value };
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 7919 + seed * 104_729) % 1000) as f32 / 500.0 - 1.0)
            .collect()
    }

    /// The packed product against a plain triple loop, over shapes that leave partial tiles
    /// and partial panels, both strides of the right-hand side, with and without
    /// accumulation, serial and threaded.
    #[test]
    fn matches_the_plain_product() {
        for &(m, k, n) in &[
            (1, 1, 1),
            (7, 5, 17),
            (13, 33, 40),
            (32, 200, 800),
            (64, 300, 300),
        ] {
            let lhs_stride = k + 3;
            let lhs = values(m * lhs_stride, 1);
            let w = values(k * n, 2);
            for (strides, transposed) in [([n, 1], false), ([1, k], true)] {
                let rhs = RecurrentRhs::new(&w, [k, n], strides);
                for accumulate in [false, true] {
                    let dst_stride = n + 2;
                    let mut dst = values(m * dst_stride, 3);
                    let mut expected = dst.clone();
                    rhs.product(m, &mut dst, dst_stride, accumulate, &lhs, lhs_stride);
                    for r in 0..m {
                        for c in 0..n {
                            let sum: f64 = (0..k)
                                .map(|i| {
                                    let b = if transposed {
                                        w[c * k + i]
                                    } else {
                                        w[i * n + c]
                                    };
                                    lhs[r * lhs_stride + i] as f64 * b as f64
                                })
                                .sum();
                            let e = &mut expected[r * dst_stride + c];
                            *e = if accumulate {
                                *e + sum as f32
                            } else {
                                sum as f32
                            };
                        }
                    }
                    for (index, (got, want)) in dst.iter().zip(&expected).enumerate() {
                        assert!(
                            (got - want).abs() <= 1e-4 * (1.0 + want.abs()),
                            "m {m} k {k} n {n} transposed {transposed} accumulate \
                             {accumulate} [{index}]: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }
}
