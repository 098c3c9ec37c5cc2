//! The forward time loop: per step one recurrent product for the whole batch, then the cell
//! pass of every sequence. Small steps run in groups of sequences instead, each group's whole
//! loop on one thread ([`Dims::sequences_per_group`]).

use super::cells::{gru_cell, lstm_cell, rnn_cell};
use super::{Dims, Inputs, active};
use crate::layers::recurrent::CellKind;
use crate::layers::recurrent::fused::activation::{sigmoid, tanh};
use crate::layers::recurrent::fused::buffers::zeros;
use crate::layers::recurrent::fused::isa::{has_avx2_fma, has_avx512};
use crate::layers::recurrent::fused::packed::PackedRhs;
use rayon::prelude::*;

/// Runs the recurrence over the projected input `xp`. Returns the output `[B, T, S·H]` and,
/// when `save` is set, what [`backward`] needs (empty otherwise).
pub(crate) fn forward(dims: Dims, xp: &[f32], inputs: &Inputs, save: bool) -> (Vec<f32>, Vec<f32>) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA, checked just above.
        return unsafe { forward_avx2(dims, xp, inputs, save) };
    }
    forward_portable(dims, xp, inputs, save)
}

/// [`forward_portable`] compiled for AVX2 and FMA.
///
/// # Safety
/// The CPU must have AVX2 and FMA: call it only after [`isa`](crate::layers::recurrent::fused::isa) says so.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn forward_avx2(
    dims: Dims,
    xp: &[f32],
    inputs: &Inputs,
    save: bool,
) -> (Vec<f32>, Vec<f32>) {
    forward_portable(dims, xp, inputs, save)
}

#[inline(always)]
fn forward_portable(dims: Dims, xp: &[f32], inputs: &Inputs, save: bool) -> (Vec<f32>, Vec<f32>) {
    let Dims {
        batch,
        time,
        hidden,
        ..
    } = dims;
    let (gated, width, saved_width) = (dims.gated(), dims.out_width(), dims.saved_width());
    let mut out = zeros(batch * time * width);
    let mut saved = zeros(if save { batch * time * saved_width } else { 0 });
    // W_hhᵀ `[H, G·H]`: W_hhᵀ[k, n] = w_hh[n * H + k].
    let w_hh_t = PackedRhs::new(inputs.w_hh, [hidden, gated], [1, hidden]);
    let Some(per_group) = dims.sequences_per_group() else {
        time_loop(dims, xp, inputs, &w_hh_t, [&mut out, &mut saved]);
        return (out, saved);
    };
    let w_hh_t = w_hh_t.on_one_thread();
    let groups = batch.div_ceil(per_group);
    let saved_groups: Vec<&mut [f32]> = if save && saved_width > 0 {
        saved.chunks_mut(per_group * time * saved_width).collect()
    } else {
        (0..groups).map(|_| &mut [][..]).collect()
    };
    out.par_chunks_mut(per_group * time * width)
        .zip(saved_groups)
        .enumerate()
        .for_each(|(group, (out, saved))| {
            let sequences = dims.group_sequences(group, per_group);
            let xp = &xp[sequences.start * time * gated..sequences.end * time * gated];
            let (dims, inputs) = (dims.group(&sequences), inputs.group(sequences, hidden));
            time_loop(dims, xp, &inputs, &w_hh_t, [out, saved]);
        });
    (out, saved)
}

/// The time loop of `dims.batch` sequences, writing their output and saved rows; its steps
/// split across threads where `dims` and `w_hh_t` allow.
fn time_loop(
    dims: Dims,
    xp: &[f32],
    inputs: &Inputs,
    w_hh_t: &PackedRhs,
    [out, saved]: [&mut [f32]; 2],
) {
    let Dims {
        batch,
        time,
        hidden,
        kind,
    } = dims;
    let (gated, width, saved_width) = (dims.gated(), dims.out_width(), dims.saved_width());
    let save = !saved.is_empty();
    let mut h = inputs.h0.to_vec();
    // The cell state (read by the LSTM only).
    let mut c = if kind == CellKind::Lstm {
        inputs.c0.to_vec()
    } else {
        vec![0.0f32; batch * hidden]
    };
    let mut hp = vec![0.0f32; batch * gated];
    let parallel = w_hh_t.allows_threads() && batch * hidden >= PARALLEL_CELLS;
    if kind == CellKind::Lstm && !parallel && inputs.lengths.is_none() {
        let mut gates = vec![0.0f32; 4 * batch * hidden];
        for t in 0..time {
            w_hh_t.product(batch, &mut hp, gated, false, &h, [hidden, 1]);
            let step = LstmStep {
                dims,
                t,
                xp,
                hp: &hp,
                b_hh: inputs.b_hh,
            };
            step.run(&mut gates, [&mut h, &mut c, &mut *out, &mut *saved]);
        }
        return;
    }
    // Each sequence's state and its rows of the output, split once.
    let saved_rows: Vec<&mut [f32]> = if save && saved_width > 0 {
        saved.chunks_mut((time * saved_width).max(1)).collect()
    } else {
        (0..batch).map(|_| &mut [][..]).collect()
    };
    let mut sequences: Vec<SequenceForward> = c
        .chunks_mut(hidden.max(1))
        .zip(out.chunks_mut((time * width).max(1)))
        .zip(saved_rows)
        .map(|((c, out), saved)| SequenceForward { c, out, saved })
        .collect();
    for t in 0..time {
        // hp = h · W_hhᵀ.
        w_hh_t.product(batch, &mut hp, gated, false, &h, [hidden, 1]);
        let step = ForwardStep {
            dims,
            t,
            xp,
            inputs,
            save,
        };
        let (h_rows, r_rows) = (hidden.max(1), gated.max(1));
        if parallel {
            h.par_chunks_mut(h_rows)
                .zip(sequences.par_iter_mut())
                .zip(hp.par_chunks(r_rows))
                .enumerate()
                .for_each(|(b, ((h, sequence), r))| step.run(b, h, sequence, r));
        } else {
            h.chunks_mut(h_rows)
                .zip(sequences.iter_mut())
                .zip(hp.chunks(r_rows))
                .enumerate()
                .for_each(|(b, ((h, sequence), r))| step.run(b, h, sequence, r));
        }
    }
}

/// The cell pass of one forward step for one sequence.
struct ForwardStep<'a> {
    dims: Dims,
    t: usize,
    xp: &'a [f32],
    inputs: &'a Inputs<'a>,
    save: bool,
}

impl ForwardStep<'_> {
    /// Updates sequence `b`'s state `h` (and its cell state) from its recurrent product `r`
    /// and writes its output row.
    fn run(&self, b: usize, h: &mut [f32], sequence: &mut SequenceForward, r: &[f32]) {
        #[cfg(target_arch = "x86_64")]
        if has_avx512() {
            // SAFETY: the CPU has AVX-512, AVX2 and FMA, checked just above.
            return unsafe { self.run_avx512(b, h, sequence, r) };
        }
        #[cfg(target_arch = "x86_64")]
        if has_avx2_fma() {
            // SAFETY: the CPU has AVX2 and FMA, checked just above.
            return unsafe { self.run_avx2(b, h, sequence, r) };
        }
        self.run_portable(b, h, sequence, r)
    }

    /// [`Self::run_portable`] compiled for AVX2 and FMA (threads run closures without the
    /// caller's target features, so each thread's work enters through here).
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA: call it only after [`isa`](crate::layers::recurrent::fused::isa) says so.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_avx2(&self, b: usize, h: &mut [f32], sequence: &mut SequenceForward, r: &[f32]) {
        self.run_portable(b, h, sequence, r)
    }

    /// [`Self::run_portable`] compiled for AVX-512 (16-wide gate loops).
    ///
    /// # Safety
    /// The CPU must have AVX-512F, AVX2 and FMA: call it only after [`isa`](crate::layers::recurrent::fused::isa) says so.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn run_avx512(
        &self,
        b: usize,
        h: &mut [f32],
        sequence: &mut SequenceForward,
        r: &[f32],
    ) {
        self.run_portable(b, h, sequence, r)
    }

    #[inline(always)]
    fn run_portable(&self, b: usize, h: &mut [f32], sequence: &mut SequenceForward, r: &[f32]) {
        let ForwardStep {
            dims,
            t,
            xp,
            inputs,
            save,
        } = *self;
        let Dims {
            time, hidden, kind, ..
        } = dims;
        let (gated, width, saved_width) = (dims.gated(), dims.out_width(), dims.saved_width());
        let SequenceForward { c, out, saved } = sequence;
        let dst = &mut out[t * width..][..width];
        if !active(inputs.lengths, b, t) {
            dst[..hidden].copy_from_slice(h);
            if kind == CellKind::Lstm {
                dst[hidden..].copy_from_slice(c);
            }
            return;
        }
        let x = &xp[(b * time + t) * gated..][..gated];
        let sv: &mut [f32] = if save {
            &mut saved[t * saved_width..][..saved_width]
        } else {
            &mut []
        };
        match kind {
            CellKind::Lstm => {
                if save {
                    lstm_cell::<true>(x, r, inputs.b_hh, h, c, sv);
                } else {
                    lstm_cell::<false>(x, r, inputs.b_hh, h, c, sv);
                }
                dst[..hidden].copy_from_slice(h);
                dst[hidden..].copy_from_slice(c);
            }
            CellKind::Gru => {
                if save {
                    gru_cell::<true>(x, r, inputs.b_hh, h, sv);
                } else {
                    gru_cell::<false>(x, r, inputs.b_hh, h, sv);
                }
                dst.copy_from_slice(h);
            }
            CellKind::Rnn(nonlinearity) => {
                rnn_cell(nonlinearity, x, r, inputs.b_hh, h);
                dst.copy_from_slice(h);
            }
        }
    }
}

/// One LSTM step of every sequence at once, for batches too small to split across threads:
/// the pre-activations of all `B·H` units are gathered gate by gate into contiguous runs, so
/// that the gate loop runs in full vector registers whatever `H` is (a per-sequence pass at
/// `H = 20` left 12 of every 32 lanes empty and paid a call per sequence). The same
/// arithmetic as [`lstm_cell`], value for value.
struct LstmStep<'a> {
    dims: Dims,
    t: usize,
    /// `[B, T, 4·H]`.
    xp: &'a [f32],
    /// `[B, 4·H]`.
    hp: &'a [f32],
    b_hh: &'a [f32],
}

impl LstmStep<'_> {
    /// Updates `h`, `c` `[B, H]`, writes step `t` of the output `[B, T, 2·H]` and, when it is
    /// not empty, of the saved gates `[B, T, 4·H]`; `gates` is scratch of `4·B·H`.
    fn run(&self, gates: &mut [f32], buffers: [&mut [f32]; 4]) {
        #[cfg(target_arch = "x86_64")]
        if has_avx512() {
            // SAFETY: the CPU has AVX-512, AVX2 and FMA, checked just above.
            return unsafe { self.run_avx512(gates, buffers) };
        }
        #[cfg(target_arch = "x86_64")]
        if has_avx2_fma() {
            // SAFETY: the CPU has AVX2 and FMA, checked just above.
            return unsafe { self.run_avx2(gates, buffers) };
        }
        self.run_portable(gates, buffers)
    }

    /// # Safety
    /// The CPU must have AVX2 and FMA: call it only after [`isa`](crate::layers::recurrent::fused::isa) says so.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_avx2(&self, gates: &mut [f32], buffers: [&mut [f32]; 4]) {
        self.run_portable(gates, buffers)
    }

    /// # Safety
    /// The CPU must have AVX-512F, AVX2 and FMA: call it only after [`isa`](crate::layers::recurrent::fused::isa) says so.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn run_avx512(&self, gates: &mut [f32], buffers: [&mut [f32]; 4]) {
        self.run_portable(gates, buffers)
    }

    #[inline(always)]
    fn run_portable(&self, gates: &mut [f32], [h, c, out, saved]: [&mut [f32]; 4]) {
        let Dims {
            batch,
            time,
            hidden,
            ..
        } = self.dims;
        let units = batch * hidden;
        let gated = 4 * hidden;
        // gates[g·B·H + b·H + j] = xp[b, t, g·H + j] + hp[b, g·H + j] + b_hh[g·H + j].
        for b in 0..batch {
            let x = &self.xp[(b * time + self.t) * gated..][..gated];
            let r = &self.hp[b * gated..][..gated];
            for g in 0..4 {
                let dst = &mut gates[g * units + b * hidden..][..hidden];
                let (x, r) = (&x[g * hidden..][..hidden], &r[g * hidden..][..hidden]);
                let bias = &self.b_hh[g * hidden..][..hidden];
                for j in 0..hidden {
                    dst[j] = x[j] + r[j] + bias[j];
                }
            }
        }
        let (i, rest) = gates.split_at_mut(units);
        let (f, rest) = rest.split_at_mut(units);
        let (g, o) = rest.split_at_mut(units);
        let (h, c) = (&mut h[..units], &mut c[..units]);
        for n in 0..units {
            let gi = sigmoid(i[n]);
            let gf = sigmoid(f[n]);
            let gg = tanh(g[n]);
            let go = sigmoid(o[n]);
            let cell = gf * c[n] + gi * gg;
            c[n] = cell;
            h[n] = go * tanh(cell);
            (i[n], f[n], g[n], o[n]) = (gi, gf, gg, go);
        }
        for b in 0..batch {
            let dst = &mut out[(b * time + self.t) * 2 * hidden..][..2 * hidden];
            dst[..hidden].copy_from_slice(&h[b * hidden..][..hidden]);
            dst[hidden..].copy_from_slice(&c[b * hidden..][..hidden]);
            if !saved.is_empty() {
                let dst = &mut saved[(b * time + self.t) * gated..][..gated];
                for (k, gate) in [&*i, &*f, &*g, &*o].into_iter().enumerate() {
                    dst[k * hidden..][..hidden].copy_from_slice(&gate[b * hidden..][..hidden]);
                }
            }
        }
    }
}

/// Sequences × hidden units at or above which the cell passes of a step are split across
/// threads (below it the threads' hand-over costs more than the pass).
pub(super) const PARALLEL_CELLS: usize = 4 * 1024;

/// One sequence's cell state and rows of the forward's buffers.
struct SequenceForward<'a> {
    /// `[H]` (the LSTM's; zeros otherwise).
    c: &'a mut [f32],
    /// `[T, S·H]`.
    out: &'a mut [f32],
    /// `[T, saved width]`, or empty when nothing is saved.
    saved: &'a mut [f32],
}
