//! One step of a recurrent layer for inference, as generation takes them: `x` `[B, I]` and
//! the state `[B, H]` in, the next state out, with the input and recurrent products done as
//! matrix-vector products straight from the weights (no copy, no packing) and split across
//! threads by rows. At batch 1 a step is bound by reading the weights once, which this does.

use super::kernel;
use crate::recurrent::CellKind;
use rayon::prelude::*;

/// Rows of the weight matrices each thread task takes.
const ROWS_PER_TASK: usize = 256;

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
    let gated = inputs.kind.gates() * hidden;
    let features = inputs.x.len() / batch;
    // Row-major by weight row, then batch: xp[n * B + b], hp[n * B + b].
    let mut xp = vec![0.0f32; gated * batch];
    let mut hp = vec![0.0f32; gated * batch];
    xp.par_chunks_mut(ROWS_PER_TASK * batch)
        .zip(hp.par_chunks_mut(ROWS_PER_TASK * batch))
        .enumerate()
        .for_each(|(task, (xp, hp))| {
            let first = task * ROWS_PER_TASK;
            let rows = xp.len() / batch;
            products(
                &inputs.w_ih[first * features..(first + rows) * features],
                inputs.x,
                features,
                xp,
            );
            products(
                &inputs.w_hh[first * hidden..(first + rows) * hidden],
                inputs.h0,
                hidden,
                hp,
            );
            for (row, values) in xp.chunks_mut(batch).enumerate() {
                values
                    .iter_mut()
                    .for_each(|v| *v += inputs.b_ih[first + row]);
            }
        });
    let width = if inputs.kind == CellKind::Lstm {
        2 * hidden
    } else {
        hidden
    };
    let mut out = vec![0.0f32; batch * width];
    let mut x_row = vec![0.0f32; gated];
    let mut r_row = vec![0.0f32; gated];
    for b in 0..batch {
        for n in 0..gated {
            x_row[n] = xp[n * batch + b];
            r_row[n] = hp[n * batch + b];
        }
        let mut h = inputs.h0[b * hidden..][..hidden].to_vec();
        let mut c = if inputs.kind == CellKind::Lstm {
            inputs.c0[b * hidden..][..hidden].to_vec()
        } else {
            Vec::new()
        };
        kernel::cell(inputs.kind, &x_row, &r_row, inputs.b_hh, &mut h, &mut c);
        let dst = &mut out[b * width..][..width];
        dst[..hidden].copy_from_slice(&h);
        if inputs.kind == CellKind::Lstm {
            dst[hidden..].copy_from_slice(&c);
        }
    }
    out
}

/// `out[r * B + b] = w[r] · v[b]` for every row `r` of `w` (`cols` wide) and batch row `b` of
/// `v`: each weight row is read once for the whole batch.
fn products(w: &[f32], v: &[f32], cols: usize, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if kernel::has_avx512() {
        // SAFETY: the CPU has AVX-512, AVX2 and FMA, checked just above.
        return unsafe { products_avx512(w, v, cols, out) };
    }
    #[cfg(target_arch = "x86_64")]
    if kernel::has_avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA, checked just above.
        return unsafe { products_avx2(w, v, cols, out) };
    }
    products_portable(w, v, cols, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn products_avx2(w: &[f32], v: &[f32], cols: usize, out: &mut [f32]) {
    products_portable(w, v, cols, out);
}

/// The same sums as [`products_avx2`], lane for lane, in 16-wide registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn products_avx512(w: &[f32], v: &[f32], cols: usize, out: &mut [f32]) {
    products_portable(w, v, cols, out);
}

#[inline(always)]
fn products_portable(w: &[f32], v: &[f32], cols: usize, out: &mut [f32]) {
    let batch = v.len() / cols.max(1);
    for (row, weights) in w.chunks_exact(cols.max(1)).enumerate() {
        for b in 0..batch {
            out[row * batch + b] = dot(weights, &v[b * cols..][..cols]);
        }
    }
}

/// Running sums of [`dot`]: four 8-wide vectors, so that four chains of fused multiply-adds
/// are in flight at once (with two, each waited on the last one's latency and a step read the
/// weights at half the speed memory gives).
const LANES: usize = 32;

/// A dot product with [`LANES`] running sums.
#[inline(always)]
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
    use crate::recurrent::Nonlinearity;

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
}
