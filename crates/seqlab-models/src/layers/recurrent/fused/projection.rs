//! The input projection of a fused recurrence, `xp = x · W_ihᵀ + b_ih` for every step of every
//! sequence at once, and its gradients: three large products on packed operands
//! ([`PackedRhs`]). Buffers are row-major: `x` `[R, I]` (`R` = batch × time), `w_ih` `[G·H, I]`
//! (PyTorch's layout), `xp` `[R, G·H]`.

use super::buffers::{repeated_rows, zeros};
use super::packed::{PARALLEL_WORK, PackedRhs};

/// The sizes of one input projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Projection {
    /// Rows: every step of every sequence.
    pub rows: usize,
    /// Input features per row, `I`.
    pub input: usize,
    /// Projected features per row, `G·H`.
    pub gated: usize,
}

impl Projection {
    /// Whether its products split work across threads.
    pub fn is_parallel(&self) -> bool {
        self.rows * self.input * self.gated >= PARALLEL_WORK
    }

    /// `xp = x · W_ihᵀ + b_ih`.
    pub fn forward(&self, x: &[f32], w_ih: &[f32], b_ih: &[f32]) -> Vec<f32> {
        let Projection { rows, input, gated } = *self;
        let mut xp = repeated_rows(b_ih, rows);
        // W_ihᵀ `[I, G·H]`: element (i, n) is w_ih[n · I + i].
        PackedRhs::new(w_ih, [input, gated], [1, input]).product(
            rows,
            &mut xp,
            gated,
            true,
            x,
            [input, 1],
        );
        xp
    }

    /// `d_x = d_xp · W_ih`.
    pub fn input_gradient(&self, d_xp: &[f32], w_ih: &[f32]) -> Vec<f32> {
        let Projection { rows, input, gated } = *self;
        let mut d_x = zeros(rows * input);
        PackedRhs::new(w_ih, [gated, input], [input, 1]).product(
            rows,
            &mut d_x,
            input,
            false,
            d_xp,
            [gated, 1],
        );
        d_x
    }

    /// `d_W_ih = d_xpᵀ · x`.
    pub fn weight_gradient(&self, d_xp: &[f32], x: &[f32]) -> Vec<f32> {
        let Projection { rows, input, gated } = *self;
        let mut d_w_ih = zeros(gated * input);
        PackedRhs::new(x, [rows, input], [input, 1]).product(
            gated,
            &mut d_w_ih,
            input,
            false,
            d_xp,
            [1, gated],
        );
        d_w_ih
    }
}

/// The sum of the rows of `values` (rows of `width`): a bias's gradient.
pub(crate) fn column_sums(values: &[f32], width: usize) -> Vec<f32> {
    let mut sums = vec![0.0f32; width];
    for row in values.chunks_exact(width.max(1)) {
        for (sum, v) in sums.iter_mut().zip(row) {
            *sum += v;
        }
    }
    sums
}

#[cfg(test)]
mod tests {
    use super::super::packed::tests::values;
    use super::*;

    /// The projection and both gradients against plain loops, on sizes that take the packed
    /// products' row-block path (many rows) and their panel path (few).
    #[test]
    fn forward_and_gradients_match_plain_loops() {
        for (rows, input, gated) in [(5, 3, 8), (400, 37, 72)] {
            let p = Projection { rows, input, gated };
            let (x, w, b) = (
                values(rows * input, 1),
                values(gated * input, 2),
                values(gated, 3),
            );
            let d_xp = values(rows * gated, 4);
            let dot = |n: usize, a: &dyn Fn(usize) -> f32, b: &dyn Fn(usize) -> f32| -> f32 {
                (0..n).map(|i| a(i) as f64 * b(i) as f64).sum::<f64>() as f32
            };
            let close = |what: &str, got: &[f32], want: &[f32]| {
                assert_eq!(got.len(), want.len(), "{what}");
                for (i, (g, w)) in got.iter().zip(want).enumerate() {
                    assert!(
                        (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
                        "{what}[{i}]: {g} vs {w}"
                    );
                }
            };
            let mut want = Vec::new();
            for r in 0..rows {
                for n in 0..gated {
                    want.push(b[n] + dot(input, &|i| x[r * input + i], &|i| w[n * input + i]));
                }
            }
            close("xp", &p.forward(&x, &w, &b), &want);
            let mut want = Vec::new();
            for r in 0..rows {
                for i in 0..input {
                    want.push(dot(gated, &|n| d_xp[r * gated + n], &|n| w[n * input + i]));
                }
            }
            close("d_x", &p.input_gradient(&d_xp, &w), &want);
            let mut want = Vec::new();
            for n in 0..gated {
                for i in 0..input {
                    want.push(dot(rows, &|r| d_xp[r * gated + n], &|r| x[r * input + i]));
                }
            }
            close("d_w_ih", &p.weight_gradient(&d_xp, &x), &want);
            let sums = column_sums(&d_xp, gated);
            close(
                "d_b",
                &sums,
                &(0..gated)
                    .map(|n| dot(rows, &|r| d_xp[r * gated + n], &|_| 1.0))
                    .collect::<Vec<_>>(),
            );
        }
    }
}
