//! Matrix products on a right-hand side packed once into panels of columns, run by a
//! register-tile kernel: AVX-512 (panels of 32 columns, tiles of 12 rows) where the CPU has it,
//! else AVX2/FMA (16 columns, 6 rows), else the `gemm` crate.
//!
//! The recurrent products of the time loop, `[B, K] × [K, N]` with the same right-hand side at
//! every step, pack the recurrent weights once per call and split the panels across threads.
//! A general matrix product packs its right-hand side again on every call; at batch 32 and
//! hidden 512 that repacking and the small row count keep the `gemm` crate at about half the
//! speed of the AVX2 kernel (measured on config c's shapes: 110–150 GFLOP/s here against
//! 55–90, on a 2-core AMD EPYC). The `gemm` crate also stops at AVX2 on stable Rust, half of
//! what an AVX-512 core with full-width units does.
//!
//! Products with many rows (the input projection and the weight gradients over every step at
//! once) run block by block (`BLOCK_TILES` tiles of rows × [`BLOCK_DEPTH`] of depth, whose
//! left-hand side stays in the core's L2 cache while the panels stream past it), and split the
//! row blocks across threads.

#[cfg(target_arch = "x86_64")]
use super::buffers::zeros;
#[cfg(target_arch = "x86_64")]
use super::isa::Isa;
use rayon::prelude::*;

/// Products at least this large (`m · n · k`) are split across threads.
pub(super) const PARALLEL_WORK: usize = 512 * 1024;

/// Right-hand sides at least this large (`k · n`) are packed by several threads.
const PARALLEL_PACK: usize = 256 * 1024;

/// Parallel tasks per thread a product aims for where its shape allows, so that the threads
/// finish together.
#[cfg(target_arch = "x86_64")]
const TASKS_PER_THREAD: usize = 4;

/// Register tiles of rows per block of a product with many rows (at most).
#[cfg(target_arch = "x86_64")]
const BLOCK_TILES: usize = 8;

/// Depth (`k`) per block of a product with many rows.
#[cfg(target_arch = "x86_64")]
const BLOCK_DEPTH: usize = 256;

#[cfg(target_arch = "x86_64")]
impl Isa {
    /// Columns per packed panel: two vector registers.
    fn panel(self) -> usize {
        match self {
            Isa::Avx2 => 16,
            Isa::Avx512 => 32,
        }
    }

    /// Rows of the left-hand side per register tile: with two accumulators a row, two panel
    /// loads and a broadcast, 15 of AVX2's 16 registers, 27 of AVX-512's 32.
    fn tile_rows(self) -> usize {
        match self {
            Isa::Avx2 => 6,
            Isa::Avx512 => 12,
        }
    }
}

/// A right-hand side `[K, N]` ready for products, packed or, on CPUs without AVX2 and FMA,
/// kept as strides into the original matrix.
pub(super) struct PackedRhs<'a> {
    k: usize,
    n: usize,
    layout: Layout<'a>,
    /// Whether its products may split across threads (large ones do).
    threads: bool,
}

enum Layout<'a> {
    /// Panel `p` holds rows `0..K` of columns `p·W..p·W+W` (zero past `N`), `W` values a row,
    /// `W` being the ISA's panel width.
    #[cfg(target_arch = "x86_64")]
    Packed(Vec<f32>, Isa),
    /// The original matrix with its row and column strides.
    Strided(&'a [f32], [usize; 2]),
}

impl<'a> PackedRhs<'a> {
    /// The `[k, n]` matrix whose element `(row, col)` is `rhs[row · strides[0] + col ·
    /// strides[1]]`.
    pub fn new(rhs: &'a [f32], [k, n]: [usize; 2], strides: [usize; 2]) -> Self {
        let [row_stride, col_stride] = strides;
        if k > 0 && n > 0 {
            assert!(
                (k - 1) * row_stride + (n - 1) * col_stride < rhs.len(),
                "packed product: right-hand side out of bounds"
            );
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(isa) = Isa::detect() {
            let width = isa.panel();
            let panels = n.div_ceil(width);
            let mut packed = zeros(panels * k * width);
            let pack = |(panel, dst): (usize, &mut [f32])| {
                let first = panel * width;
                let cols = width.min(n - first);
                if col_stride == 1 {
                    // Rows are contiguous: copy each row's run of the panel's columns.
                    for (row, dst) in dst.chunks_exact_mut(width).enumerate() {
                        dst[..cols].copy_from_slice(&rhs[row * row_stride + first..][..cols]);
                    }
                } else if row_stride == 1 {
                    // Columns are contiguous (a transposed matrix): transposed in blocks.
                    let columns = &rhs[first * col_stride..];
                    // SAFETY: `Isa::detect` found AVX2 and FMA; the bounds were asserted.
                    unsafe { pack_transposed(columns, col_stride, [k, cols], width, dst) };
                } else {
                    for (row, dst) in dst.chunks_exact_mut(width).enumerate() {
                        for (col, value) in dst[..cols].iter_mut().enumerate() {
                            *value = rhs[row * row_stride + (first + col) * col_stride];
                        }
                    }
                }
            };
            let panel_len = (k * width).max(1);
            if k * n >= PARALLEL_PACK {
                packed.par_chunks_mut(panel_len).enumerate().for_each(pack);
            } else {
                packed.chunks_mut(panel_len).enumerate().for_each(pack);
            }
            return Self {
                k,
                n,
                layout: Layout::Packed(packed, isa),
                threads: true,
            };
        }
        Self {
            k,
            n,
            layout: Layout::Strided(rhs, strides),
            threads: true,
        }
    }

    /// The same right-hand side, its products each run on the calling thread: for callers
    /// that already split their work across threads.
    pub fn on_one_thread(self) -> Self {
        Self {
            threads: false,
            ..self
        }
    }

    /// Whether its products may split across threads.
    pub fn allows_threads(&self) -> bool {
        self.threads
    }

    /// `dst = [dst +] lhs · rhs` for `m` rows: `lhs` element `(r, i)` is `lhs[r · lhs_strides[0]
    /// + i · lhs_strides[1]]`, `dst` row `r` is `dst[r · dst_stride..][..N]`.
    pub fn product(
        &self,
        m: usize,
        dst: &mut [f32],
        dst_stride: usize,
        accumulate: bool,
        lhs: &[f32],
        lhs_strides: [usize; 2],
    ) {
        let (k, n) = (self.k, self.n);
        if m == 0 || n == 0 {
            return;
        }
        assert!(
            (m - 1) * dst_stride + n <= dst.len(),
            "packed product: destination out of bounds"
        );
        let [lhs_rs, lhs_cs] = lhs_strides;
        assert!(
            k == 0 || (m - 1) * lhs_rs + (k - 1) * lhs_cs < lhs.len(),
            "packed product: left-hand side out of bounds"
        );
        match &self.layout {
            #[cfg(target_arch = "x86_64")]
            Layout::Packed(packed, isa) => {
                let shape = Shape {
                    isa: *isa,
                    m,
                    k,
                    n,
                    lhs: lhs.as_ptr(),
                    lhs_strides,
                    packed: packed.as_ptr(),
                    dst: Destination(dst.as_mut_ptr()),
                    dst_stride,
                    accumulate,
                    threads: self.threads,
                };
                // SAFETY: `Packed` exists only on CPUs with its ISA; every row of `lhs` and
                // `dst` was bounds-checked above; `packed` holds `k · W` values a panel.
                unsafe {
                    if m >= 2 * BLOCK_TILES * isa.tile_rows() && k > 0 {
                        shape.by_row_blocks()
                    } else {
                        shape.by_panels()
                    }
                }
            }
            Layout::Strided(rhs, strides) => matmul(
                self.threads,
                [m, n, k],
                dst,
                dst_stride,
                accumulate,
                lhs,
                lhs_strides,
                rhs,
                *strides,
            ),
        }
    }
}

/// The `gemm` crate's product, for CPUs without AVX2: `dst = [dst +] lhs · rhs`, each matrix
/// given as a slice with its row and column strides. Bounds are checked before the unchecked
/// product runs.
#[allow(clippy::too_many_arguments)]
fn matmul(
    threads: bool,
    [m, n, k]: [usize; 3],
    dst: &mut [f32],
    dst_rs: usize,
    accumulate: bool,
    lhs: &[f32],
    [lhs_rs, lhs_cs]: [usize; 2],
    rhs: &[f32],
    [rhs_rs, rhs_cs]: [usize; 2],
) {
    if m == 0 || n == 0 {
        return;
    }
    let last = |rows: usize, cols: usize, rs: usize, cs: usize| (rows - 1) * rs + (cols - 1) * cs;
    assert!(
        last(m, n, dst_rs, 1) < dst.len(),
        "matmul: destination out of bounds"
    );
    if k > 0 {
        assert!(
            last(m, k, lhs_rs, lhs_cs) < lhs.len(),
            "matmul: lhs out of bounds"
        );
        assert!(
            last(k, n, rhs_rs, rhs_cs) < rhs.len(),
            "matmul: rhs out of bounds"
        );
    }
    let parallelism = if threads && m * n * k >= 192 * 192 * 192 {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: every index the product touches was bounds-checked above, and `dst` does not
    // overlap `lhs` or `rhs` (it is borrowed mutably while they are borrowed shared).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// One product on a packed right-hand side, its bounds checked by [`PackedRhs::product`].
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Shape {
    isa: Isa,
    m: usize,
    k: usize,
    n: usize,
    lhs: *const f32,
    lhs_strides: [usize; 2],
    packed: *const f32,
    dst: Destination,
    dst_stride: usize,
    accumulate: bool,
    /// Whether it may split across threads.
    threads: bool,
}

// SAFETY: the threads of one product read `lhs` and `packed` and write disjoint parts of `dst`.
#[cfg(target_arch = "x86_64")]
unsafe impl Send for Shape {}
// SAFETY: as for `Send`: shared between the threads of one product, which only read what
// they share and write disjoint parts of `dst`.
#[cfg(target_arch = "x86_64")]
unsafe impl Sync for Shape {}

/// Runs `task` for `0..count`, across threads when `parallel`.
#[cfg(target_arch = "x86_64")]
fn for_each_task(parallel: bool, count: usize, task: impl Fn(usize) + Sync + Send) {
    if parallel {
        (0..count).into_par_iter().for_each(task);
    } else {
        (0..count).for_each(task);
    }
}

/// The tasks a parallel product aims for: [`TASKS_PER_THREAD`] for each of rayon's threads.
#[cfg(target_arch = "x86_64")]
fn target_tasks() -> usize {
    TASKS_PER_THREAD * rayon::current_num_threads()
}

#[cfg(target_arch = "x86_64")]
impl Shape {
    fn panels(&self) -> usize {
        self.n.div_ceil(self.isa.panel())
    }

    /// Every row against one panel at a time, the panels split across threads: for few rows
    /// (the recurrent products), whose left-hand side stays in the core's caches. Where there
    /// are too few panels to keep every thread busy, the rows are split too.
    ///
    /// # Safety
    /// The CPU has the ISA; the bounds were checked by [`PackedRhs::product`].
    unsafe fn by_panels(self) {
        let panels = self.panels();
        let parallel = self.threads && self.m * self.n * self.k >= PARALLEL_WORK;
        let tile_rows = self.isa.tile_rows();
        let tiles = self.m.div_ceil(tile_rows);
        let groups = if parallel {
            target_tasks().div_ceil(panels).clamp(1, tiles)
        } else {
            1
        };
        let group_rows = tiles.div_ceil(groups) * tile_rows;
        let groups = self.m.div_ceil(group_rows);
        let task = |task: usize| {
            let (p, first_row) = (task / groups, task % groups * group_rows);
            let tile = self.panel_tile(p);
            // SAFETY: the caller's contract; rows `first_row..` of `lhs` and `dst` are within
            // its bounds; tasks write disjoint blocks of `dst`.
            unsafe {
                Tile {
                    lhs: tile.lhs.add(first_row * self.lhs_strides[0]),
                    dst: tile.dst.add(first_row * self.dst_stride),
                    ..tile
                }
                .panel(group_rows.min(self.m - first_row))
            }
        };
        for_each_task(parallel, panels * groups, task);
    }

    /// Every row of the left-hand side against panel `p`.
    fn panel_tile(&self, p: usize) -> Tile {
        let width = self.isa.panel();
        let first = p * width;
        Tile {
            isa: self.isa,
            k: self.k,
            cols: width.min(self.n - first),
            lhs: self.lhs,
            lhs_strides: self.lhs_strides,
            panel: self.packed.wrapping_add(p * self.k * width),
            dst: self.dst.at(first),
            dst_stride: self.dst_stride,
            accumulate: self.accumulate,
        }
    }

    /// Blocks of up to [`BLOCK_TILES`] register tiles of rows split across threads; each runs
    /// its rows [`BLOCK_DEPTH`] columns at a time against every panel.
    ///
    /// # Safety
    /// As [`Shape::by_panels`].
    unsafe fn by_row_blocks(self) {
        let parallel = self.threads && self.m * self.n * self.k >= PARALLEL_WORK;
        let tile_rows = self.isa.tile_rows();
        // Smaller blocks where there are too few to keep every thread busy.
        let block_tiles = if parallel {
            self.m
                .div_ceil(tile_rows)
                .div_ceil(target_tasks())
                .clamp(1, BLOCK_TILES)
        } else {
            BLOCK_TILES
        };
        let block_rows = block_tiles * tile_rows;
        let blocks = self.m.div_ceil(block_rows);
        // SAFETY: the caller's contract; threads write disjoint rows of `dst`.
        let block = |b: usize| unsafe { self.row_block(b * block_rows, block_rows) };
        for_each_task(parallel, blocks, block);
    }

    /// The block of `block_rows` rows (fewer at the end) from `first_row`, its left-hand side
    /// read in place, [`BLOCK_DEPTH`] columns at a time against every panel. A transposed
    /// left-hand side (the weight gradients') is read in place too, each depth's rows side by
    /// side: copying it into tiles first was slower (`[2048, 3200]ᵀ`-by-`[3200, 64]`, config
    /// c's first-layer input weights' gradient: 94–124 GFLOP/s copied, 180–198 in place).
    ///
    /// # Safety
    /// As [`Shape::by_panels`].
    unsafe fn row_block(self, first_row: usize, block_rows: usize) {
        let (width, tile_rows) = (self.isa.panel(), self.isa.tile_rows());
        let rows = block_rows.min(self.m - first_row);
        let tiles = rows.div_ceil(tile_rows);
        let [lhs_rs, lhs_cs] = self.lhs_strides;
        let mut depth = 0;
        while depth < self.k {
            let depth_len = BLOCK_DEPTH.min(self.k - depth);
            for p in 0..self.panels() {
                let first_col = p * width;
                for t in 0..tiles {
                    let row = first_row + t * tile_rows;
                    // SAFETY: the tile's rows `row..` (at most `tile_rows`, below `m`) at depths
                    // `depth..depth + depth_len` (below `k`) are within the checked bounds of
                    // `lhs`; panel `p`'s rows `depth..depth + depth_len` are within its `k · W`
                    // values; `dst` rows `row..row + tile_rows` (fewer at the end) are within
                    // the checked bounds.
                    unsafe {
                        Tile {
                            isa: self.isa,
                            k: depth_len,
                            cols: width.min(self.n - first_col),
                            lhs: self.lhs.wrapping_add(row * lhs_rs + depth * lhs_cs),
                            lhs_strides: self.lhs_strides,
                            panel: self.packed.add((p * self.k + depth) * width),
                            dst: self.dst.at(row * self.dst_stride + first_col),
                            dst_stride: self.dst_stride,
                            accumulate: self.accumulate || depth > 0,
                        }
                        .rows(tile_rows.min(rows - t * tile_rows))
                    }
                }
            }
            depth += depth_len;
        }
    }
}

/// Packs `cols` columns of a transposed matrix into one panel `dst` (`k` rows of `width`):
/// column `c` is `columns[c · stride..][..k]`. Blocks of 8 columns × 8 rows are transposed
/// in registers (eight loads and eight stores where a value at a time took 64 of each).
///
/// # Safety
/// The CPU must have AVX2; `columns` must hold `cols` columns of `k` values at `stride`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn pack_transposed(
    columns: &[f32],
    stride: usize,
    [k, cols]: [usize; 2],
    width: usize,
    dst: &mut [f32],
) {
    use std::arch::x86_64::*;
    const BLOCK: usize = 8;
    let (full_cols, full_rows) = (cols / BLOCK * BLOCK, k / BLOCK * BLOCK);
    for col in (0..full_cols).step_by(BLOCK) {
        for row in (0..full_rows).step_by(BLOCK) {
            // SAFETY: rows `row..row + 8` of columns `col..col + 8` lie within `columns` (the
            // caller's contract); the stores within the panel's rows `row..row + 8`.
            unsafe {
                let src = columns.as_ptr().add(col * stride + row);
                let r: [__m256; BLOCK] =
                    std::array::from_fn(|c| _mm256_loadu_ps(src.add(c * stride)));
                let t0 = _mm256_unpacklo_ps(r[0], r[1]);
                let t1 = _mm256_unpackhi_ps(r[0], r[1]);
                let t2 = _mm256_unpacklo_ps(r[2], r[3]);
                let t3 = _mm256_unpackhi_ps(r[2], r[3]);
                let t4 = _mm256_unpacklo_ps(r[4], r[5]);
                let t5 = _mm256_unpackhi_ps(r[4], r[5]);
                let t6 = _mm256_unpacklo_ps(r[6], r[7]);
                let t7 = _mm256_unpackhi_ps(r[6], r[7]);
                let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
                let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
                let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
                let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
                let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
                let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
                let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
                let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
                let out = [
                    _mm256_permute2f128_ps::<0x20>(u0, u4),
                    _mm256_permute2f128_ps::<0x20>(u1, u5),
                    _mm256_permute2f128_ps::<0x20>(u2, u6),
                    _mm256_permute2f128_ps::<0x20>(u3, u7),
                    _mm256_permute2f128_ps::<0x31>(u0, u4),
                    _mm256_permute2f128_ps::<0x31>(u1, u5),
                    _mm256_permute2f128_ps::<0x31>(u2, u6),
                    _mm256_permute2f128_ps::<0x31>(u3, u7),
                ];
                let dst = dst.as_mut_ptr().add(row * width + col);
                for (i, value) in out.into_iter().enumerate() {
                    _mm256_storeu_ps(dst.add(i * width), value);
                }
            }
        }
        for row in full_rows..k {
            for c in col..col + BLOCK {
                dst[row * width + c] = columns[c * stride + row];
            }
        }
    }
    for c in full_cols..cols {
        for (row, value) in columns[c * stride..][..k].iter().enumerate() {
            dst[row * width + c] = *value;
        }
    }
}

/// The destination pointer shared by the threads of one product, each writing its own
/// columns or rows.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Destination(*mut f32);

#[cfg(target_arch = "x86_64")]
impl Destination {
    /// The pointer `offset` values in.
    fn at(self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }
}

/// Rows of `lhs` against one panel: [`Tile::panel`] runs all `m` rows, in register tiles
/// ([`Tile::run_avx2`], [`Tile::run_avx512`]).
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Tile {
    isa: Isa,
    k: usize,
    cols: usize,
    lhs: *const f32,
    /// Element `(r, i)` of the tile's rows is `lhs[r · lhs_strides[0] + i · lhs_strides[1]]`.
    lhs_strides: [usize; 2],
    panel: *const f32,
    dst: *mut f32,
    dst_stride: usize,
    accumulate: bool,
}

#[cfg(target_arch = "x86_64")]
impl Tile {
    /// # Safety
    /// The CPU has the ISA; `lhs` rows `0..m` (`k` values each), `panel` (`k · W` values)
    /// and `dst` rows `0..m` (`cols` values each, `dst_stride` apart) are valid.
    unsafe fn panel(self, m: usize) {
        let tile_rows = self.isa.tile_rows();
        let mut row = 0;
        while row < m {
            let rows = tile_rows.min(m - row);
            // SAFETY: rows `row..row + rows` are within `0..m` (the caller's contract).
            unsafe {
                Tile {
                    lhs: self.lhs.add(row * self.lhs_strides[0]),
                    dst: self.dst.add(row * self.dst_stride),
                    ..self
                }
                .rows(rows)
            }
            row += rows;
        }
    }

    /// The first `rows` (1 to the ISA's tile rows) rows of the tile.
    ///
    /// # Safety
    /// As [`Tile::panel`], for `rows` rows.
    unsafe fn rows(self, rows: usize) {
        // SAFETY: the caller's contract.
        unsafe {
            match (self.isa, rows) {
                (Isa::Avx2, 6) => self.run_avx2::<6>(),
                (Isa::Avx2, 5) => self.run_avx2::<5>(),
                (Isa::Avx2, 4) => self.run_avx2::<4>(),
                (Isa::Avx2, 3) => self.run_avx2::<3>(),
                (Isa::Avx2, 2) => self.run_avx2::<2>(),
                (Isa::Avx2, _) => self.run_avx2::<1>(),
                (Isa::Avx512, 12) => self.run_avx512::<12>(),
                (Isa::Avx512, 11) => self.run_avx512::<11>(),
                (Isa::Avx512, 10) => self.run_avx512::<10>(),
                (Isa::Avx512, 9) => self.run_avx512::<9>(),
                (Isa::Avx512, 8) => self.run_avx512::<8>(),
                (Isa::Avx512, 7) => self.run_avx512::<7>(),
                (Isa::Avx512, 6) => self.run_avx512::<6>(),
                (Isa::Avx512, 5) => self.run_avx512::<5>(),
                (Isa::Avx512, 4) => self.run_avx512::<4>(),
                (Isa::Avx512, 3) => self.run_avx512::<3>(),
                (Isa::Avx512, 2) => self.run_avx512::<2>(),
                (Isa::Avx512, _) => self.run_avx512::<1>(),
            }
        }
    }

    /// `R` rows against a 16-column panel.
    ///
    /// # Safety
    /// As [`Tile::panel`], for `R` rows, on a CPU with AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_avx2<const R: usize>(&self) {
        use std::arch::x86_64::*;
        let Tile {
            k,
            cols,
            lhs,
            lhs_strides: [lhs_rs, lhs_cs],
            panel,
            dst,
            dst_stride,
            accumulate,
            ..
        } = *self;
        const W: usize = 16;
        // SAFETY: reads `panel[..k · 16]`, `lhs` rows `0..R` up to `k`, writes `dst` rows
        // `0..R` up to `cols`: the caller's contract.
        unsafe {
            let mut acc = [[_mm256_setzero_ps(); 2]; R];
            // acc[r] += lhs[r, i] · panel[i, ..16] for every row of the tile. Indexed loops
            // over constant bounds: the accumulators stay in registers.
            macro_rules! accumulate_step {
                ($i:expr) => {{
                    let i = $i;
                    let b0 = _mm256_loadu_ps(panel.add(i * W));
                    let b1 = _mm256_loadu_ps(panel.add(i * W + 8));
                    #[allow(clippy::needless_range_loop)]
                    for r in 0..R {
                        let a = _mm256_broadcast_ss(&*lhs.add(r * lhs_rs + i * lhs_cs));
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
                if cols == W {
                    let (mut low, mut high) = (acc[r][0], acc[r][1]);
                    if accumulate {
                        low = _mm256_add_ps(low, _mm256_loadu_ps(out));
                        high = _mm256_add_ps(high, _mm256_loadu_ps(out.add(8)));
                    }
                    _mm256_storeu_ps(out, low);
                    _mm256_storeu_ps(out.add(8), high);
                } else {
                    let mut values = [0.0f32; W];
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

    /// `R` rows against a 32-column panel.
    ///
    /// # Safety
    /// As [`Tile::panel`], for `R` rows, on a CPU with AVX-512.
    #[target_feature(enable = "avx512f")]
    unsafe fn run_avx512<const R: usize>(&self) {
        use std::arch::x86_64::*;
        let Tile {
            k,
            cols,
            lhs,
            lhs_strides: [lhs_rs, lhs_cs],
            panel,
            dst,
            dst_stride,
            accumulate,
            ..
        } = *self;
        const W: usize = 32;
        // SAFETY: reads `panel[..k · 32]`, `lhs` rows `0..R` up to `k`, writes `dst` rows
        // `0..R` up to `cols` (masked stores past them): the caller's contract.
        unsafe {
            let mut acc = [[_mm512_setzero_ps(); 2]; R];
            macro_rules! accumulate_step {
                ($i:expr) => {{
                    let i = $i;
                    let b0 = _mm512_loadu_ps(panel.add(i * W));
                    let b1 = _mm512_loadu_ps(panel.add(i * W + 16));
                    #[allow(clippy::needless_range_loop)]
                    for r in 0..R {
                        let a = _mm512_set1_ps(*lhs.add(r * lhs_rs + i * lhs_cs));
                        acc[r][0] = _mm512_fmadd_ps(a, b0, acc[r][0]);
                        acc[r][1] = _mm512_fmadd_ps(a, b1, acc[r][1]);
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
            // Lanes of the two halves that hold columns of the destination.
            let mask = |from: usize| -> __mmask16 {
                let lanes = cols.saturating_sub(from).min(16);
                ((1u32 << lanes) - 1) as __mmask16
            };
            let (low_mask, high_mask) = (mask(0), mask(16));
            #[allow(clippy::needless_range_loop)]
            for r in 0..R {
                let out = dst.add(r * dst_stride);
                let (mut low, mut high) = (acc[r][0], acc[r][1]);
                if cols == W {
                    if accumulate {
                        low = _mm512_add_ps(low, _mm512_loadu_ps(out));
                        high = _mm512_add_ps(high, _mm512_loadu_ps(out.add(16)));
                    }
                    _mm512_storeu_ps(out, low);
                    _mm512_storeu_ps(out.add(16), high);
                } else {
                    // Masked lanes are neither read nor written (the pointer may pass the end).
                    let out_high = out.wrapping_add(16);
                    if accumulate {
                        low = _mm512_add_ps(low, _mm512_maskz_loadu_ps(low_mask, out));
                        high = _mm512_add_ps(high, _mm512_maskz_loadu_ps(high_mask, out_high));
                    }
                    _mm512_mask_storeu_ps(out, low_mask, low);
                    _mm512_mask_storeu_ps(out_high, high_mask, high);
                }
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Deterministic values in [-1, 1) for the products' tests.
    pub(in super::super) fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 7919 + seed * 104_729) % 1000) as f32 / 500.0 - 1.0)
            .collect()
    }

    /// The packed product against a plain triple loop, over shapes that leave partial tiles,
    /// panels and blocks, both strides of each side, with and without accumulation, serial and
    /// threaded, by panels and by row blocks.
    #[test]
    fn matches_the_plain_product() {
        for &(m, k, n) in &[
            (1, 1, 1),
            (7, 5, 17),
            (13, 33, 40),
            (32, 200, 800),
            (64, 300, 300),
            (150, 7, 20),
            (301, 600, 50),
        ] {
            let w = values((k + 3) * n, 2);
            // Row-major, transposed, and transposed with a gap after each column.
            for (strides, transposed) in [([n, 1], false), ([1, k], true), ([1, k + 3], true)] {
                let rhs = PackedRhs::new(&w, [k, n], strides);
                for (lhs_strides, lhs_len) in [([k + 3, 1], m * (k + 3)), ([1, m + 2], k * (m + 2))]
                {
                    let lhs = values(lhs_len, 1);
                    let a = |r: usize, i: usize| lhs[r * lhs_strides[0] + i * lhs_strides[1]];
                    for accumulate in [false, true] {
                        let dst_stride = n + 2;
                        let mut dst = values(m * dst_stride, 3);
                        let mut expected = dst.clone();
                        rhs.product(m, &mut dst, dst_stride, accumulate, &lhs, lhs_strides);
                        for r in 0..m {
                            for c in 0..n {
                                let sum: f64 = (0..k)
                                    .map(|i| {
                                        let b = if transposed {
                                            w[c * strides[1] + i]
                                        } else {
                                            w[i * n + c]
                                        };
                                        a(r, i) as f64 * b as f64
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
                                "m {m} k {k} n {n} rhs transposed {transposed} lhs strides \
                                 {lhs_strides:?} accumulate {accumulate} [{index}]: {got} vs \
                                 {want}"
                            );
                        }
                    }
                }
            }
        }
    }
}
