//! One step of a recurrent layer for inference, as generation takes them: `x` `[B, I]` and
//! the state `[B, H]` in, the next state out, with the input and recurrent products done as
//! matrix-vector products straight from the weights (no copy, no packing), split across
//! threads by groups of hidden units. At batch 1 a step is bound by reading the weights once,
//! which this does.

#[cfg(target_arch = "x86_64")]
use super::isa::{has_avx2_fma, has_avx512};
use super::kernel;
use crate::layers::recurrent::CellKind;
use rayon::prelude::*;

/// Thread tasks a step aims for per thread: a few, so that a thread held up elsewhere does
/// not hold the step up (one each measured no faster).
const TASKS_PER_THREAD: usize = 2;

/// Hidden units per task: the rows of every gate for those units, so that the task runs their
/// cell too (no serial pass over the whole layer after the products). A multiple of 16 units
/// (one AVX-512 register in the cell).
fn units_per_task(hidden: usize) -> usize {
    let tasks = TASKS_PER_THREAD * rayon::current_num_threads();
    hidden.div_ceil(tasks).next_multiple_of(16).max(16)
}

/// The weights and state of one step, borrowed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StepInputs<'a> {
    pub kind: CellKind,
    pub batch: usize,
    pub hidden: usize,
    /// `[B, I]`.
    pub x: &'a [f32],
    /// `[G·H, I]`, PyTorch's layout.
    pub w_ih: &'a [f32],
    /// `[G·H]`.
    pub b_ih: &'a [f32],
    /// `[G·H, H]`.
    pub w_hh: &'a [f32],
    /// `[G·H]`.
    pub b_hh: &'a [f32],
    /// `[B, H]`.
    pub h0: &'a [f32],
    /// `[B, H]` (read by the LSTM only).
    pub c0: &'a [f32],
}

/// The next state `[B, S·H]`: `h`, and for the LSTM `c` after it.
pub(crate) fn step(inputs: &StepInputs) -> Vec<f32> {
    let StepInputs { batch, hidden, .. } = *inputs;
    let is_lstm = inputs.kind == CellKind::Lstm;
    let width = if is_lstm { 2 * hidden } else { hidden };
    let per_task = units_per_task(hidden);
    let groups: Vec<(Vec<f32>, Vec<f32>)> = (0..hidden.div_ceil(per_task))
        .into_par_iter()
        .map(|task| {
            let first = task * per_task;
            unit_group(inputs, first..(first + per_task).min(hidden))
        })
        .collect();
    let mut out = vec![0.0f32; batch * width];
    for (task, (h, c)) in groups.iter().enumerate() {
        let first = task * per_task;
        let units = h.len() / batch;
        for b in 0..batch {
            let dst = &mut out[b * width..][..width];
            dst[first..][..units].copy_from_slice(&h[b * units..][..units]);
            if is_lstm {
                dst[hidden + first..][..units].copy_from_slice(&c[b * units..][..units]);
            }
        }
    }
    out
}

/// The next `h` and (LSTM) `c` `[B, n]` of the hidden units `units` (`n` of them).
fn unit_group(inputs: &StepInputs, units: std::ops::Range<usize>) -> (Vec<f32>, Vec<f32>) {
    let StepInputs { batch, hidden, .. } = *inputs;
    let gates = inputs.kind.gates();
    let features = inputs.x.len() / batch;
    let n = units.len();
    // Gate-major rows of these units, then batch: xp[(g·n + j)·B + b], and their b_hh.
    let mut xp = vec![0.0f32; gates * n * batch];
    let mut hp = vec![0.0f32; gates * n * batch];
    let mut b_hh = vec![0.0f32; gates * n];
    for g in 0..gates {
        let rows = g * hidden + units.start..g * hidden + units.end;
        let xp = &mut xp[g * n * batch..][..n * batch];
        products(
            &inputs.w_ih[rows.start * features..rows.end * features],
            inputs.x,
            features,
            xp,
        );
        products(
            &inputs.w_hh[rows.start * hidden..rows.end * hidden],
            inputs.h0,
            hidden,
            &mut hp[g * n * batch..][..n * batch],
        );
        for (values, bias) in xp.chunks_mut(batch).zip(&inputs.b_ih[rows.clone()]) {
            values.iter_mut().for_each(|v| *v += bias);
        }
        b_hh[g * n..][..n].copy_from_slice(&inputs.b_hh[rows]);
    }
    let mut h = vec![0.0f32; batch * n];
    let mut c = vec![
        0.0f32;
        if inputs.kind == CellKind::Lstm {
            batch * n
        } else {
            0
        }
    ];
    let (mut x_row, mut r_row) = (vec![0.0f32; gates * n], vec![0.0f32; gates * n]);
    for b in 0..batch {
        for k in 0..gates * n {
            x_row[k] = xp[k * batch + b];
            r_row[k] = hp[k * batch + b];
        }
        let h = &mut h[b * n..][..n];
        h.copy_from_slice(&inputs.h0[b * hidden..][units.clone()]);
        let c = if c.is_empty() {
            &mut []
        } else {
            let c = &mut c[b * n..][..n];
            c.copy_from_slice(&inputs.c0[b * hidden..][units.clone()]);
            c
        };
        kernel::cell(inputs.kind, &x_row, &r_row, &b_hh, h, c);
    }
    (h, c)
}

/// Weights a [`matrix_vector`] product reads on one thread; above this it splits its rows
/// across threads (a join costs about what reading 256 K values from the caches does).
const SERIAL_MATRIX_VECTOR: usize = 256 * 1024;

/// `out = w v` for `w` `[N, K]` and `v` `[K]`, the rows split across threads when there are
/// many: an output layer's scores for one step of generation.
pub(crate) fn matrix_vector(w: &[f32], v: &[f32], out: &mut [f32]) {
    let cols = v.len();
    assert_eq!(w.len(), out.len() * cols, "w is [out, v] in size");
    if w.len() <= SERIAL_MATRIX_VECTOR {
        return products(w, v, cols, out);
    }
    let rows_per_task = (SERIAL_MATRIX_VECTOR / 4 / cols.max(1)).max(1);
    out.par_chunks_mut(rows_per_task)
        .zip(w.par_chunks(rows_per_task * cols))
        .for_each(|(out, w)| products(w, v, cols, out));
}

/// `out[r * B + b] = w[r] · v[b]` for every row `r` of `w` (`cols` wide) and batch row `b` of
/// `v`: each weight row is read once for the whole batch.
///
/// Every ISA computes the same sums, bit for bit: [`LANES`] running sums per dot product
/// (lane `l` takes the columns `k ≡ l` mod [`LANES`]), halved pairwise down to one, plus a
/// separate running sum over the last `cols % LANES` columns.
fn products(w: &[f32], v: &[f32], cols: usize, out: &mut [f32]) {
    if cols == 0 {
        out.fill(0.0);
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if has_avx512() {
        // SAFETY: the CPU has AVX-512, AVX2 and FMA, checked just above.
        return unsafe { products_avx512(w, v, cols, out) };
    }
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA, checked just above.
        return unsafe { products_avx2(w, v, cols, out) };
    }
    products_portable(w, v, cols, out);
}

/// Rows of the weights the AVX-512 products read side by side: four streams from memory in
/// flight, and each load of `v` used four times. (A step is bound by reading the weights; one
/// row at a time left most of the bandwidth unused.)
#[cfg(target_arch = "x86_64")]
const AVX512_ROWS: usize = 4;

/// The AVX2 products' rows side by side: two, as four rows' 32 sums would not fit in its 16
/// registers.
#[cfg(target_arch = "x86_64")]
const AVX2_ROWS: usize = 2;

/// # Safety
/// The CPU must have AVX-512F, AVX2 and FMA: call it only after [`isa`](crate::layers::recurrent::fused::isa) says so.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn products_avx512(w: &[f32], v: &[f32], cols: usize, out: &mut [f32]) {
    products_in_blocks::<AVX512_ROWS>(
        [w, v],
        cols,
        out,
        // SAFETY: AVX-512 is checked by the caller, and the driver passes whole rows.
        |w, v| unsafe { dots_avx512(w, v) },
        // SAFETY: as above.
        |w, v| unsafe { dots_avx512(w, v) },
    );
}

/// The dot products of `R` consecutive rows of `w` with `v`, each row in two 16-wide sums.
///
/// # Safety
/// The CPU must have AVX-512F, AVX2 and FMA: call it only after [`isa`](crate::layers::recurrent::fused::isa) says so.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn dots_avx512<const R: usize>(w: &[f32], v: &[f32]) -> [f32; R] {
    use std::arch::x86_64::*;
    let cols = v.len();
    assert_eq!(w.len(), R * cols, "R rows of the vector's length");
    let full = cols / LANES * LANES;
    let mut acc = [[_mm512_setzero_ps(); 2]; R];
    let (w, v) = (w.as_ptr(), v.as_ptr());
    for k in (0..full).step_by(LANES) {
        // SAFETY: `k + LANES <= full <= cols` and each row is `cols` long (asserted above).
        unsafe {
            let low = _mm512_loadu_ps(v.add(k));
            let high = _mm512_loadu_ps(v.add(k + 16));
            for (r, acc) in acc.iter_mut().enumerate() {
                let row = w.add(r * cols + k);
                acc[0] = _mm512_fmadd_ps(_mm512_loadu_ps(row), low, acc[0]);
                acc[1] = _mm512_fmadd_ps(_mm512_loadu_ps(row.add(16)), high, acc[1]);
            }
        }
    }
    std::array::from_fn(|r| {
        let [low, high] = acc[r];
        let sum = _mm512_add_ps(low, high);
        let high = _mm512_extractf64x4_pd::<1>(_mm512_castps_pd(sum));
        let eight = _mm256_add_ps(_mm512_castps512_ps256(sum), _mm256_castpd_ps(high));
        // SAFETY: the row's last columns lie within `w` and `v`.
        let tail = unsafe { tail_sum(w.add(r * cols), v, full, cols) };
        tail + reduce8(eight)
    })
}

/// # Safety
/// The CPU must have AVX2 and FMA: call it only after [`isa`](crate::layers::recurrent::fused::isa) says so.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn products_avx2(w: &[f32], v: &[f32], cols: usize, out: &mut [f32]) {
    products_in_blocks::<AVX2_ROWS>(
        [w, v],
        cols,
        out,
        // SAFETY: AVX2 and FMA are checked by the caller, and the driver passes whole rows.
        |w, v| unsafe { dots_avx2(w, v) },
        // SAFETY: as above.
        |w, v| unsafe { dots_avx2(w, v) },
    );
}

/// [`products`] with an ISA's dot-product kernel: `block` takes `R` consecutive rows of `w`
/// at once, `single` the rows left over.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn products_in_blocks<const R: usize>(
    [w, v]: [&[f32]; 2],
    cols: usize,
    out: &mut [f32],
    block: impl Fn(&[f32], &[f32]) -> [f32; R],
    single: impl Fn(&[f32], &[f32]) -> [f32; 1],
) {
    let batch = v.len() / cols;
    let rows = w.len() / cols;
    let blocked = rows / R * R;
    for b in 0..batch {
        let v = &v[b * cols..][..cols];
        for first in (0..blocked).step_by(R) {
            let sums = block(&w[first * cols..][..R * cols], v);
            for (r, sum) in sums.into_iter().enumerate() {
                out[(first + r) * batch + b] = sum;
            }
        }
        for row in blocked..rows {
            let [sum] = single(&w[row * cols..][..cols], v);
            out[row * batch + b] = sum;
        }
    }
}

/// [`dots_avx512`] in four 8-wide sums per row, added in the same order.
///
/// # Safety
/// The CPU must have AVX2 and FMA: call it only after [`isa`](crate::layers::recurrent::fused::isa) says so.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dots_avx2<const R: usize>(w: &[f32], v: &[f32]) -> [f32; R] {
    use std::arch::x86_64::*;
    let cols = v.len();
    assert_eq!(w.len(), R * cols, "R rows of the vector's length");
    let full = cols / LANES * LANES;
    let mut acc = [[_mm256_setzero_ps(); 4]; R];
    let (w, v) = (w.as_ptr(), v.as_ptr());
    for k in (0..full).step_by(LANES) {
        // SAFETY: `k + LANES <= full <= cols` and each row is `cols` long (asserted above).
        unsafe {
            let x: [__m256; 4] = std::array::from_fn(|q| _mm256_loadu_ps(v.add(k + 8 * q)));
            for (r, acc) in acc.iter_mut().enumerate() {
                let row = w.add(r * cols + k);
                for q in 0..4 {
                    acc[q] = _mm256_fmadd_ps(_mm256_loadu_ps(row.add(8 * q)), x[q], acc[q]);
                }
            }
        }
    }
    std::array::from_fn(|r| {
        let [a0, a1, a2, a3] = acc[r];
        let eight = _mm256_add_ps(_mm256_add_ps(a0, a2), _mm256_add_ps(a1, a3));
        // SAFETY: the row's last columns lie within `w` and `v`.
        let tail = unsafe { tail_sum(w.add(r * cols), v, full, cols) };
        tail + reduce8(eight)
    })
}

/// Eight running sums halved pairwise down to one, as [`dot`] does.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn reduce8(eight: std::arch::x86_64::__m256) -> f32 {
    use std::arch::x86_64::*;
    let four = _mm_add_ps(
        _mm256_castps256_ps128(eight),
        _mm256_extractf128_ps::<1>(eight),
    );
    let two = _mm_add_ps(four, _mm_movehl_ps(four, four));
    let one = _mm_add_ss(two, _mm_shuffle_ps::<1>(two, two));
    _mm_cvtss_f32(one)
}

/// The running sum of `row[k] * v[k]` over `from..cols`, as [`dot`] takes its last columns.
///
/// # Safety
/// `row` and `v` must point at `cols` values each.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn tail_sum(row: *const f32, v: *const f32, from: usize, cols: usize) -> f32 {
    (from..cols).fold(0.0f32, |total, k| {
        // SAFETY: `k < cols`, within both (the caller's contract).
        unsafe { (*row.add(k)).mul_add(*v.add(k), total) }
    })
}

fn products_portable(w: &[f32], v: &[f32], cols: usize, out: &mut [f32]) {
    let batch = v.len() / cols;
    for (row, weights) in w.chunks_exact(cols).enumerate() {
        for b in 0..batch {
            out[row * batch + b] = dot(weights, &v[b * cols..][..cols]);
        }
    }
}

/// Running sums per dot product in [`products`]: enough independent chains of fused
/// multiply-adds for the products to keep up with memory.
const LANES: usize = 32;

/// A dot product with [`LANES`] running sums: the sums every ISA's products give.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut sums = [0.0f32; LANES];
    let mut a_chunks = a.chunks_exact(LANES);
    let mut b_chunks = b.chunks_exact(LANES);
    for (x, y) in a_chunks.by_ref().zip(b_chunks.by_ref()) {
        for lane in 0..LANES {
            sums[lane] = x[lane].mul_add(y[lane], sums[lane]);
        }
    }
    let mut total = 0.0f32;
    for (x, y) in a_chunks.remainder().iter().zip(b_chunks.remainder()) {
        total = x.mul_add(*y, total);
    }
    let mut width = LANES / 2;
    while width > 0 {
        for lane in 0..width {
            sums[lane] += sums[lane + width];
        }
        width /= 2;
    }
    total + sums[0]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::recurrent::Nonlinearity;

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) % 1000) as f32 / 1000.0
                    - 0.5
            })
            .collect()
    }

    /// The step against the whole-sequence kernel run for one step on the same numbers.
    #[test]
    fn a_step_matches_the_sequence_kernel() {
        let (batch, features, hidden) = (3, 37, 300);
        for kind in [
            CellKind::Lstm,
            CellKind::Gru,
            CellKind::Rnn(Nonlinearity::Tanh),
        ] {
            let gated = kind.gates() * hidden;
            let (x, w_ih, b_ih) = (
                values(batch * features, 1),
                values(gated * features, 2),
                values(gated, 3),
            );
            let (w_hh, b_hh) = (values(gated * hidden, 4), values(gated, 5));
            let (h0, c0) = (values(batch * hidden, 6), values(batch * hidden, 7));
            let got = step(&StepInputs {
                kind,
                batch,
                hidden,
                x: &x,
                w_ih: &w_ih,
                b_ih: &b_ih,
                w_hh: &w_hh,
                b_hh: &b_hh,
                h0: &h0,
                c0: &c0,
            });
            let mut xp = vec![0.0f32; batch * gated];
            for b in 0..batch {
                for n in 0..gated {
                    xp[b * gated + n] = (0..features)
                        .map(|k| f64::from(w_ih[n * features + k]) * f64::from(x[b * features + k]))
                        .sum::<f64>() as f32
                        + b_ih[n];
                }
            }
            let dims = kernel::Dims {
                batch,
                time: 1,
                hidden,
                kind,
            };
            let inputs = kernel::Inputs {
                w_hh: &w_hh,
                b_hh: &b_hh,
                h0: &h0,
                c0: &c0,
                lengths: None,
            };
            let (expected, _) = kernel::forward(dims, &xp, &inputs, false);
            assert_eq!(got.len(), expected.len());
            for (g, e) in got.iter().zip(&expected) {
                assert!((g - e).abs() < 1e-5, "{kind:?}: {g} vs {e}");
            }
        }
    }

    /// Every ISA's products against the portable ones, bit for bit: rows in whole blocks and
    /// left over, columns in whole groups of [`LANES`] and a tail, one and several sequences.
    #[test]
    fn every_isa_gives_the_portable_sums_exactly() {
        for (rows, cols, batch) in [(7, 37, 1), (9, 64, 3), (16, 100, 2), (5, 3, 1)] {
            let (w, v) = (values(rows * cols, 11), values(batch * cols, 12));
            let mut expected = vec![0.0f32; rows * batch];
            products_portable(&w, &v, cols, &mut expected);
            let mut got = vec![f32::NAN; rows * batch];
            products(&w, &v, cols, &mut got);
            assert_eq!(got, expected, "{rows} x {cols}, batch {batch}");
            #[cfg(target_arch = "x86_64")]
            if has_avx2_fma() {
                got.fill(f32::NAN);
                // SAFETY: the CPU has AVX2 and FMA, checked just above.
                unsafe { products_avx2(&w, &v, cols, &mut got) };
                assert_eq!(got, expected, "AVX2: {rows} x {cols}, batch {batch}");
            }
            for (row, sums) in expected.chunks(batch).enumerate() {
                for (b, sum) in sums.iter().enumerate() {
                    let exact: f64 = (0..cols)
                        .map(|k| f64::from(w[row * cols + k]) * f64::from(v[b * cols + k]))
                        .sum();
                    assert!((f64::from(*sum) - exact).abs() < 1e-4, "{sum} vs {exact}");
                }
            }
        }
    }

    /// A matrix-vector product large enough to split across threads gives the serial sums.
    #[test]
    fn a_split_matrix_vector_product_gives_the_serial_sums() {
        let (rows, cols) = (1000, 300);
        assert!(rows * cols > SERIAL_MATRIX_VECTOR);
        let (w, v) = (values(rows * cols, 13), values(cols, 14));
        let mut serial = vec![0.0f32; rows];
        products(&w, &v, cols, &mut serial);
        let mut split = vec![f32::NAN; rows];
        matrix_vector(&w, &v, &mut split);
        assert_eq!(split, serial);
    }
}
