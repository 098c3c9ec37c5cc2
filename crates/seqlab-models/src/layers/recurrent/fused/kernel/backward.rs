//! The backward time loop: per step the cell's backward for every sequence, then one product
//! for the gradient of the previous state (small steps in groups of sequences, as the
//! forward's); the weights' gradient in one product at the end.

use super::cells::{gru_cell_backward, lstm_cell_backward, rnn_cell_backward};
use super::forward::PARALLEL_CELLS;
use super::{Dims, Gradients, Inputs, active};
use crate::layers::recurrent::CellKind;
use crate::layers::recurrent::fused::buffers::zeros;
use crate::layers::recurrent::fused::isa::{has_avx2_fma, has_avx512};
use crate::layers::recurrent::fused::packed::PackedRhs;
use crate::layers::recurrent::fused::projection::column_sums;
use rayon::prelude::*;
use std::ops::Range;

/// The cell pass of one backward step for one sequence.
struct BackwardStep<'a> {
    steps: &'a BackwardSteps<'a>,
    t: usize,
}

impl BackwardStep<'_> {
    /// From sequence `b`'s gradients `dh`, `dc` into step `t`'s state writes the
    /// pre-activation gradients of step `t` into its rows `d_x` (and, for the GRU, `d_h`).
    fn run(&self, b: usize, buffers: [&mut [f32]; 4]) {
        #[cfg(target_arch = "x86_64")]
        if has_avx512() {
            // SAFETY: the CPU has AVX-512, AVX2 and FMA, checked just above.
            return unsafe { self.run_avx512(b, buffers) };
        }
        #[cfg(target_arch = "x86_64")]
        if has_avx2_fma() {
            // SAFETY: the CPU has AVX2 and FMA, checked just above.
            return unsafe { self.run_avx2(b, buffers) };
        }
        self.run_portable(b, buffers)
    }

    /// [`Self::run_portable`] compiled for AVX2 and FMA.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA: call it only after [`isa`](crate::layers::recurrent::fused::isa) says so.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_avx2(&self, b: usize, buffers: [&mut [f32]; 4]) {
        self.run_portable(b, buffers)
    }

    /// [`Self::run_portable`] compiled for AVX-512.
    ///
    /// # Safety
    /// The CPU must have AVX-512F, AVX2 and FMA: call it only after [`isa`](crate::layers::recurrent::fused::isa) says so.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn run_avx512(&self, b: usize, buffers: [&mut [f32]; 4]) {
        self.run_portable(b, buffers)
    }

    #[inline(always)]
    fn run_portable(&self, b: usize, [dh, dc, d_x, d_h]: [&mut [f32]; 4]) {
        let t = self.t;
        let BackwardSteps {
            dims,
            inputs,
            out,
            saved,
            d_out,
            h_prev,
        } = *self.steps;
        let Dims {
            time, hidden, kind, ..
        } = dims;
        let (gated, width, saved_width) = (dims.gated(), dims.out_width(), dims.saved_width());
        let row = b * time + t;
        let d_top = &d_out[row * width..][..width];
        for j in 0..hidden {
            dh[j] += d_top[j];
        }
        if kind == CellKind::Lstm {
            for j in 0..hidden {
                dc[j] += d_top[hidden + j];
            }
        }
        if !active(inputs.lengths, b, t) {
            // The state passed through unchanged: so does its gradient.
            return;
        }
        let sv = &saved[row * saved_width..][..saved_width];
        let dg = &mut d_x[t * gated..][..gated];
        match kind {
            CellKind::Lstm => {
                let c_prev = if t == 0 {
                    &inputs.c0[b * hidden..][..hidden]
                } else {
                    &out[(row - 1) * width + hidden..][..hidden]
                };
                let c = &out[row * width + hidden..][..hidden];
                lstm_cell_backward(sv, c, c_prev, dh, dc, dg);
            }
            CellKind::Gru => {
                let hp = &h_prev[row * hidden..][..hidden];
                let dr = &mut d_h[t * gated..][..gated];
                gru_cell_backward(sv, hp, dh, dg, dr);
            }
            CellKind::Rnn(nonlinearity) => {
                let h = &out[row * width..][..hidden];
                rnn_cell_backward(nonlinearity, h, dh, dg);
            }
        }
    }
}

/// What every step of a backward time loop reads.
#[derive(Clone, Copy)]
struct BackwardSteps<'a> {
    dims: Dims,
    inputs: &'a Inputs<'a>,
    out: &'a [f32],
    saved: &'a [f32],
    d_out: &'a [f32],
    h_prev: &'a [f32],
}

impl BackwardSteps<'_> {
    /// The backward time loop of the sequences `sequences`, given their rows of `dh`, `dc`
    /// `[n, H]` and of `d_xp` and (the GRU's, else empty) `d_hp` `[n, T, G·H]`; its steps
    /// split across threads where the batch and `w_hh` allow.
    fn time_loop(
        &self,
        sequences: Range<usize>,
        w_hh: &PackedRhs,
        [dh, dc, d_xp, d_hp]: [&mut [f32]; 4],
    ) {
        let Dims {
            time, hidden, kind, ..
        } = self.dims;
        let (gated, batch) = (self.dims.gated(), sequences.len());
        let parallel = w_hh.allows_threads() && batch * hidden >= PARALLEL_CELLS;
        let (h_rows, gate_rows) = (hidden.max(1), (time * gated).max(1));
        for t in (0..time).rev() {
            let step = BackwardStep { steps: self, t };
            // Each sequence's rows of d_hp: the GRU's, empty otherwise.
            let d_hp_rows: Vec<&mut [f32]> = if kind == CellKind::Gru {
                d_hp.chunks_mut(gate_rows).collect()
            } else {
                (0..batch).map(|_| &mut [][..]).collect()
            };
            let run = |(b, (((dh, dc), d_x), d_h)): (usize, _)| {
                step.run(sequences.start + b, [dh, dc, d_x, d_h])
            };
            if parallel {
                dh.par_chunks_mut(h_rows)
                    .zip(dc.par_chunks_mut(h_rows))
                    .zip(d_xp.par_chunks_mut(gate_rows))
                    .zip(d_hp_rows)
                    .enumerate()
                    .for_each(run);
            } else {
                dh.chunks_mut(h_rows)
                    .zip(dc.chunks_mut(h_rows))
                    .zip(d_xp.chunks_mut(gate_rows))
                    .zip(d_hp_rows)
                    .enumerate()
                    .for_each(run);
            }
            // dh_{t-1} += d(pre-activations)_t · W_hh, over the sequences at once.
            let d_rec = if kind == CellKind::Gru {
                &*d_hp
            } else {
                &*d_xp
            };
            w_hh.product(
                batch,
                dh,
                hidden,
                true,
                &d_rec[t * gated..],
                [time * gated, 1],
            );
        }
    }
}

/// Gradients of the inputs from the gradient `d_out` `[B, T, S·H]` of the output, given the
/// output and what [`forward`] saved.
pub(crate) fn backward(
    dims: Dims,
    inputs: &Inputs,
    out: &[f32],
    saved: &[f32],
    d_out: &[f32],
) -> Gradients {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA, checked just above.
        return unsafe { backward_avx2(dims, inputs, out, saved, d_out) };
    }
    backward_portable(dims, inputs, out, saved, d_out)
}

/// [`backward_portable`] compiled for AVX2 and FMA.
///
/// # Safety
/// The CPU must have AVX2 and FMA: call it only after [`isa`](crate::layers::recurrent::fused::isa) says so.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn backward_avx2(
    dims: Dims,
    inputs: &Inputs,
    out: &[f32],
    saved: &[f32],
    d_out: &[f32],
) -> Gradients {
    backward_portable(dims, inputs, out, saved, d_out)
}

#[inline(always)]
fn backward_portable(
    dims: Dims,
    inputs: &Inputs,
    out: &[f32],
    saved: &[f32],
    d_out: &[f32],
) -> Gradients {
    let Dims {
        batch,
        time,
        hidden,
        kind,
    } = dims;
    let (gated, width) = (dims.gated(), dims.out_width());
    // Gradients of the pre-activations as the input projection and the recurrent product see
    // them; they differ only in the GRU's candidate gate.
    let mut d_xp = zeros(batch * time * gated);
    let mut d_hp = if kind == CellKind::Gru {
        zeros(batch * time * gated)
    } else {
        Vec::new()
    };
    let mut dh = vec![0.0f32; batch * hidden];
    // The gradient into the cell state (the LSTM's; zeros otherwise).
    let mut dc = vec![0.0f32; batch * hidden];
    let parallel = batch * hidden >= PARALLEL_CELLS;
    // The state each step started from, `[B, T, H]`, for the weight gradient.
    let mut h_prev = zeros(batch * time * hidden);
    let copy_previous = |(b, h_prev): (usize, &mut [f32])| {
        for (t, dst) in h_prev.chunks_exact_mut(hidden.max(1)).enumerate() {
            let src = if t == 0 {
                &inputs.h0[b * hidden..][..hidden]
            } else {
                &out[(b * time + t - 1) * width..][..hidden]
            };
            dst.copy_from_slice(src);
        }
    };
    let sequence_len = (time * hidden).max(1);
    if parallel {
        h_prev
            .par_chunks_mut(sequence_len)
            .enumerate()
            .for_each(copy_previous);
    } else {
        h_prev
            .chunks_mut(sequence_len)
            .enumerate()
            .for_each(copy_previous);
    }
    // W_hh `[G·H, H]` as the right-hand side of dh_{t-1} += d(pre-activations)_t · W_hh.
    let w_hh = PackedRhs::new(inputs.w_hh, [gated, hidden], [hidden, 1]);
    let steps = BackwardSteps {
        dims,
        inputs,
        out,
        saved,
        d_out,
        h_prev: &h_prev,
    };
    if let Some(per_group) = dims.sequences_per_group() {
        let w_hh = w_hh.on_one_thread();
        let groups = batch.div_ceil(per_group);
        let (h_rows, gate_rows) = (per_group * hidden, per_group * time * gated);
        let d_hp_groups: Vec<&mut [f32]> = if kind == CellKind::Gru {
            d_hp.chunks_mut(gate_rows).collect()
        } else {
            (0..groups).map(|_| &mut [][..]).collect()
        };
        dh.par_chunks_mut(h_rows)
            .zip(dc.par_chunks_mut(h_rows))
            .zip(d_xp.par_chunks_mut(gate_rows))
            .zip(d_hp_groups)
            .enumerate()
            .for_each(|(group, (((dh, dc), d_xp), d_hp))| {
                let sequences = dims.group_sequences(group, per_group);
                steps.time_loop(sequences, &w_hh, [dh, dc, d_xp, d_hp]);
            });
    } else {
        steps.time_loop(0..batch, &w_hh, [&mut dh, &mut dc, &mut d_xp, &mut d_hp]);
    }
    let d_rec = if kind == CellKind::Gru { &d_hp } else { &d_xp };
    // dW_hh = Σ_rows d_recᵀ · h_prev, one product over every step of every sequence.
    let mut d_w_hh = zeros(gated * hidden);
    PackedRhs::new(&h_prev, [batch * time, hidden], [hidden, 1]).product(
        gated,
        &mut d_w_hh,
        hidden,
        false,
        d_rec,
        [1, gated],
    );
    let d_b_hh = column_sums(d_rec, gated);
    Gradients {
        xp: d_xp,
        w_hh: d_w_hh,
        b_hh: d_b_hh,
        h0: dh,
        c0: if kind == CellKind::Lstm {
            dc
        } else {
            Vec::new()
        },
    }
}
