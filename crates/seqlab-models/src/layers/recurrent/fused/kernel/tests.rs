//! The kernel against finite differences and padding.

use super::*;
use crate::layers::recurrent::Nonlinearity;

/// A tiny deterministic generator, so the kernel's tests need no backend.
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

struct Case {
    dims: Dims,
    xp: Vec<f32>,
    w_hh: Vec<f32>,
    b_hh: Vec<f32>,
    h0: Vec<f32>,
    c0: Vec<f32>,
    lengths: Option<Vec<usize>>,
}

impl Case {
    fn new(kind: CellKind, lengths: Option<Vec<usize>>) -> Self {
        let (batch, time, hidden) = (3, 5, 4);
        let gated = kind.gates() * hidden;
        Self {
            dims: Dims {
                batch,
                time,
                hidden,
                kind,
            },
            xp: values(batch * time * gated, 1),
            w_hh: values(gated * hidden, 2),
            b_hh: values(gated, 3),
            h0: values(batch * hidden, 4),
            c0: values(batch * hidden, 5),
            lengths,
        }
    }

    fn inputs(&self) -> Inputs<'_> {
        Inputs {
            w_hh: &self.w_hh,
            b_hh: &self.b_hh,
            h0: &self.h0,
            c0: &self.c0,
            lengths: self.lengths.as_deref(),
        }
    }

    fn field(&mut self, name: &str) -> &mut Vec<f32> {
        match name {
            "xp" => &mut self.xp,
            "w_hh" => &mut self.w_hh,
            "b_hh" => &mut self.b_hh,
            "h0" => &mut self.h0,
            _ => &mut self.c0,
        }
    }

    /// A scalar loss: Σ out ⊙ weights, so that d_out = weights.
    fn loss(&self, weights: &[f32]) -> f64 {
        let (out, _) = forward(self.dims, &self.xp, &self.inputs(), false);
        out.iter()
            .zip(weights)
            .map(|(o, w)| *o as f64 * *w as f64)
            .sum()
    }
}

fn kinds() -> [CellKind; 5] {
    [
        CellKind::Lstm,
        CellKind::Gru,
        CellKind::Rnn(Nonlinearity::Tanh),
        CellKind::Rnn(Nonlinearity::Relu),
        CellKind::Rnn(Nonlinearity::Identity),
    ]
}

/// Every analytic gradient against a central difference of the loss.
#[test]
fn gradients_match_finite_differences() {
    for kind in kinds() {
        for lengths in [None, Some(vec![5, 2, 4])] {
            let mut case = Case::new(kind, lengths.clone());
            let (out, saved) = forward(case.dims, &case.xp, &case.inputs(), true);
            let weights = values(out.len(), 9);
            let grads = backward(case.dims, &case.inputs(), &out, &saved, &weights);
            let eps = 1e-3f32;
            let fields = [
                ("xp", grads.xp.clone()),
                ("w_hh", grads.w_hh.clone()),
                ("b_hh", grads.b_hh.clone()),
                ("h0", grads.h0.clone()),
                ("c0", grads.c0.clone()),
            ];
            for (field, analytic) in &fields {
                for (index, &expected) in analytic.iter().enumerate() {
                    let original = case.field(field)[index];
                    case.field(field)[index] = original + eps;
                    let up = case.loss(&weights);
                    case.field(field)[index] = original - eps;
                    let down = case.loss(&weights);
                    case.field(field)[index] = original;
                    let numeric = (up - down) / (2.0 * eps as f64);
                    assert!(
                        (numeric - expected as f64).abs() < 2e-3 * (1.0 + numeric.abs()),
                        "{kind:?} {lengths:?} d{field}[{index}]: analytic {expected}, numeric {numeric}"
                    );
                }
            }
            if kind != CellKind::Lstm {
                assert!(grads.c0.is_empty());
            }
        }
    }
}

#[test]
fn padded_steps_keep_the_final_state() {
    for kind in kinds() {
        let short = Case::new(kind, Some(vec![5, 2, 4]));
        let (out, _) = forward(short.dims, &short.xp, &short.inputs(), false);
        let width = short.dims.out_width();
        for (b, &len) in [5usize, 2, 4].iter().enumerate() {
            let last = &out[(b * 5 + 4) * width..][..width];
            let at_len = &out[(b * 5 + len - 1) * width..][..width];
            assert_eq!(last, at_len, "{kind:?} sequence {b}");
        }
        let full = Case::new(kind, None);
        let (whole, _) = forward(full.dims, &full.xp, &full.inputs(), false);
        assert_eq!(
            whole[..width],
            out[..width],
            "{kind:?} first step unchanged"
        );
    }
}
