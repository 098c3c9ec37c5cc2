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
        Self::sized(kind, lengths, [3, 5, 4])
    }

    /// A case of `batch` sequences of `time` steps and `hidden` units.
    fn sized(
        kind: CellKind,
        lengths: Option<Vec<usize>>,
        [batch, time, hidden]: [usize; 3],
    ) -> Self {
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

/// The time loops split by groups of sequences (two threads, small steps) give every value the
/// loop of the whole batch on one thread gives, bit for bit: forward output and saved gates,
/// and every gradient.
#[test]
fn groups_of_sequences_match_the_whole_batch() {
    let pool = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    };
    let (one, two) = (pool(1), pool(2));
    let (batch, time, hidden) = (19, 60, 64);
    for kind in kinds() {
        for lengths in [None, Some((0..batch).map(|b| 1 + b % time).collect())] {
            let mut case = Case::sized(kind, lengths, [batch, time, hidden]);
            // Small enough that the identity RNN stays finite over 60 steps.
            case.w_hh.iter_mut().for_each(|w| *w *= 0.1);
            let d_out = values(batch * time * case.dims.out_width(), 6);
            let run = || {
                let (out, saved) = forward(case.dims, &case.xp, &case.inputs(), true);
                let grads = backward(case.dims, &case.inputs(), &out, &saved, &d_out);
                (out, saved, grads)
            };
            // 19 sequences in two groups.
            assert_eq!(two.install(|| case.dims.sequences_per_group()), Some(10));
            let (whole, split) = (one.install(run), two.install(run));
            let label = format!("{kind:?} lengths {:?}", case.lengths.is_some());
            let same = |whole: &[f32], split: &[f32], what: &str| {
                assert_eq!(whole.len(), split.len(), "{label}: {what} length");
                assert!(
                    whole.iter().all(|v| v.is_finite()),
                    "{label}: {what} finite"
                );
                let first = whole
                    .iter()
                    .zip(split)
                    .position(|(a, b)| a.to_bits() != b.to_bits());
                assert_eq!(first, None, "{label}: {what} differs first at that index");
            };
            same(&whole.0, &split.0, "output");
            same(&whole.1, &split.1, "saved");
            same(&whole.2.xp, &split.2.xp, "d xp");
            same(&whole.2.w_hh, &split.2.w_hh, "d w_hh");
            same(&whole.2.b_hh, &split.2.b_hh, "d b_hh");
            same(&whole.2.h0, &split.2.h0, "d h0");
            same(&whole.2.c0, &split.2.c0, "d c0");
        }
    }
}
