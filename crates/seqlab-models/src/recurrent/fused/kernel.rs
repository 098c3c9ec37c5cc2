//! The recurrence of one layer in one direction on plain `f32` buffers, forward and backward.
//!
//! The input projection `xp = x · W_ihᵀ + b_ih` of every step is computed before
//! ([`super::projection`]: one large matrix product); here each step costs one
//! `[B, H] × [H, G·H]` product and one pass over the gates. Buffers are batch-first and
//! row-major:
//!
//! | buffer | shape |
//! |---|---|
//! | `xp` | `[B, T, G·H]` |
//! | `w_hh` | `[G·H, H]` (PyTorch's layout) |
//! | `b_hh` | `[G·H]` |
//! | `h0`, `c0` | `[B, H]` |
//! | output | `[B, T, S·H]`: `h_t`, and for the LSTM `c_t` after it (`S = 2`) |
//!
//! With `lengths`, steps at or past a sequence's length leave its state unchanged, so that the
//! output at the last step is each sequence's final state.

use super::activation::{sigmoid, tanh};
use super::packed::{PARALLEL_WORK, PackedRhs};
use super::projection::column_sums;
use crate::recurrent::{CellKind, Nonlinearity};
use rayon::prelude::*;

/// The sizes of one recurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dims {
    pub batch: usize,
    pub time: usize,
    pub hidden: usize,
    pub kind: CellKind,
}

impl Dims {
    fn gated(&self) -> usize {
        self.kind.gates() * self.hidden
    }

    /// Values per step in the output: `h`, and `c` for the LSTM.
    pub fn out_width(&self) -> usize {
        match self.kind {
            CellKind::Lstm => 2 * self.hidden,
            _ => self.hidden,
        }
    }

    /// Whether the time loop splits work across threads (its cell passes or its recurrent
    /// products).
    pub fn is_parallel(&self) -> bool {
        self.batch * self.hidden >= PARALLEL_CELLS
            || self.batch * self.gated() * self.hidden >= PARALLEL_WORK
    }

    /// Values per step that the backward pass needs besides the output.
    fn saved_width(&self) -> usize {
        match self.kind {
            CellKind::Lstm | CellKind::Gru => 4 * self.hidden,
            CellKind::Rnn(_) => 0,
        }
    }
}

/// The inputs of a recurrence besides the projected input, borrowed: what the backward pass
/// needs again.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Inputs<'a> {
    pub w_hh: &'a [f32],
    pub b_hh: &'a [f32],
    pub h0: &'a [f32],
    /// Read by the LSTM only.
    pub c0: &'a [f32],
    /// Valid steps per sequence; `None` when every sequence fills all `T` steps.
    pub lengths: Option<&'a [usize]>,
}

/// Gradients of a scalar loss with respect to each input of the recurrence.
#[derive(Debug)]
pub(crate) struct Gradients {
    pub xp: Vec<f32>,
    pub w_hh: Vec<f32>,
    pub b_hh: Vec<f32>,
    pub h0: Vec<f32>,
    pub c0: Vec<f32>,
}

fn active(lengths: Option<&[usize]>, b: usize, t: usize) -> bool {
    lengths.is_none_or(|l| t < l[b])
}

/// Whether this CPU runs the 8-wide FMA versions of the gate loops.
#[cfg(target_arch = "x86_64")]
pub(super) fn has_avx2_fma() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

/// Whether this CPU runs the 16-wide AVX-512 versions.
#[cfg(target_arch = "x86_64")]
pub(super) fn has_avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx512f") && has_avx2_fma()
}

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
        kind,
    } = dims;
    let (gated, width, saved_width) = (dims.gated(), dims.out_width(), dims.saved_width());
    let mut out = vec![0.0f32; batch * time * width];
    let mut saved = vec![0.0f32; if save { batch * time * saved_width } else { 0 }];
    let mut h = inputs.h0.to_vec();
    // The cell state (read by the LSTM only).
    let mut c = if kind == CellKind::Lstm {
        inputs.c0.to_vec()
    } else {
        vec![0.0f32; batch * hidden]
    };
    let mut hp = vec![0.0f32; batch * gated];
    let parallel = batch * hidden >= PARALLEL_CELLS;
    // W_hhᵀ `[H, G·H]`: W_hhᵀ[k, n] = w_hh[n * H + k].
    let w_hh_t = PackedRhs::new(inputs.w_hh, [hidden, gated], [1, hidden]);
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
            step.run(&mut gates, [&mut h, &mut c, &mut out, &mut saved]);
        }
        return (out, saved);
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
    drop(sequences);
    (out, saved)
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
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_avx2(&self, b: usize, h: &mut [f32], sequence: &mut SequenceForward, r: &[f32]) {
        self.run_portable(b, h, sequence, r)
    }

    /// [`Self::run_portable`] compiled for AVX-512 (16-wide gate loops).
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

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_avx2(&self, gates: &mut [f32], buffers: [&mut [f32]; 4]) {
        self.run_portable(gates, buffers)
    }

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
const PARALLEL_CELLS: usize = 4 * 1024;

/// One sequence's cell state and rows of the forward's buffers.
struct SequenceForward<'a> {
    /// `[H]` (the LSTM's; zeros otherwise).
    c: &'a mut [f32],
    /// `[T, S·H]`.
    out: &'a mut [f32],
    /// `[T, saved width]`, or empty when nothing is saved.
    saved: &'a mut [f32],
}

/// One step of the recurrence for one sequence without saving anything: the projected input
/// `x` and state `r` `[G·H]` (bias `b_hh` not yet added) update `h` (and, for the LSTM, `c`).
pub(super) fn cell(
    kind: CellKind,
    x: &[f32],
    r: &[f32],
    b_hh: &[f32],
    h: &mut [f32],
    c: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if has_avx512() {
        // SAFETY: the CPU has AVX-512, AVX2 and FMA, checked just above.
        return unsafe { cell_avx512(kind, x, r, b_hh, h, c) };
    }
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA, checked just above.
        return unsafe { cell_avx2(kind, x, r, b_hh, h, c) };
    }
    cell_portable(kind, x, r, b_hh, h, c)
}

/// [`cell_portable`] compiled for AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn cell_avx2(kind: CellKind, x: &[f32], r: &[f32], b: &[f32], h: &mut [f32], c: &mut [f32]) {
    cell_portable(kind, x, r, b, h, c)
}

/// [`cell_portable`] compiled for AVX-512.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn cell_avx512(
    kind: CellKind,
    x: &[f32],
    r: &[f32],
    b: &[f32],
    h: &mut [f32],
    c: &mut [f32],
) {
    cell_portable(kind, x, r, b, h, c)
}

#[inline(always)]
fn cell_portable(kind: CellKind, x: &[f32], r: &[f32], b_hh: &[f32], h: &mut [f32], c: &mut [f32]) {
    match kind {
        CellKind::Lstm => lstm_cell::<false>(x, r, b_hh, h, c, &mut []),
        CellKind::Gru => gru_cell::<false>(x, r, b_hh, h, &mut []),
        CellKind::Rnn(nonlinearity) => rnn_cell(nonlinearity, x, r, b_hh, h),
    }
}

/// Splits a `[G·H]` row into its `G` gates of `H` values each.
#[inline(always)]
fn gates<const G: usize>(row: &[f32], hidden: usize) -> [&[f32]; G] {
    std::array::from_fn(|k| &row[k * hidden..(k + 1) * hidden])
}

/// Splits a mutable `[G·H]` row into its `G` gates.
#[inline(always)]
fn gates_mut<const G: usize>(row: &mut [f32], hidden: usize) -> [&mut [f32]; G] {
    let mut rest = row;
    std::array::from_fn(|_| {
        let (gate, tail) = std::mem::take(&mut rest).split_at_mut(hidden);
        rest = tail;
        gate
    })
}

/// Hidden units an LSTM cell pass takes at once: one AVX-512 register (two AVX2 ones).
const CELL_LANES: usize = 16;

/// One LSTM step for one sequence: updates `h` and `c` in place; with `SAVE`, saves
/// `i, f, g, o`. Saving, the units go [`CELL_LANES`] at a time through fixed-size arrays, the
/// last group padded, so that every unit runs in vector registers (a hidden size such as 20
/// left a scalar tail of 4 units that cost more than the 16 before it: training at hidden 20
/// +25%).
#[inline(always)]
fn lstm_cell<const SAVE: bool>(
    x: &[f32],
    r: &[f32],
    bias: &[f32],
    h: &mut [f32],
    c: &mut [f32],
    saved: &mut [f32],
) {
    let hidden = h.len();
    let [xi, xf, xg, xo] = gates::<4>(x, hidden);
    let [ri, rf, rg, ro] = gates::<4>(r, hidden);
    let [bi, bf, bg, bo] = gates::<4>(bias, hidden);
    if !SAVE {
        // Without the saved activations a plain loop measured faster (inference at hidden
        // 20: 3.4 M against 2.9 M tokens/s).
        let c = &mut c[..hidden];
        for j in 0..hidden {
            let i = sigmoid(xi[j] + ri[j] + bi[j]);
            let f = sigmoid(xf[j] + rf[j] + bf[j]);
            let g = tanh(xg[j] + rg[j] + bg[j]);
            let o = sigmoid(xo[j] + ro[j] + bo[j]);
            let cell = f * c[j] + i * g;
            c[j] = cell;
            h[j] = o * tanh(cell);
        }
        return;
    }
    let [si, sf, sg, so] = gates_mut::<4>(saved, hidden);
    let mut first = 0;
    while first < hidden {
        let n = CELL_LANES.min(hidden - first);
        let units = first..first + n;
        // Pre-activations of the group's units, zeros past the last.
        let load = |[x, r, b]: [&[f32]; 3]| {
            let mut lanes = [0.0f32; CELL_LANES];
            let (x, r, b) = (&x[units.clone()], &r[units.clone()], &b[units.clone()]);
            for (lane, ((x, r), b)) in lanes.iter_mut().zip(x.iter().zip(r).zip(b)) {
                *lane = x + r + b;
            }
            lanes
        };
        let (ai, af, ag, ao) = (
            load([xi, ri, bi]),
            load([xf, rf, bf]),
            load([xg, rg, bg]),
            load([xo, ro, bo]),
        );
        let mut c_lanes = [0.0f32; CELL_LANES];
        c_lanes[..n].copy_from_slice(&c[units.clone()]);
        let (mut gi, mut gf, mut gg, mut go, mut h_lanes) = (
            [0.0f32; CELL_LANES],
            [0.0f32; CELL_LANES],
            [0.0f32; CELL_LANES],
            [0.0f32; CELL_LANES],
            [0.0f32; CELL_LANES],
        );
        for l in 0..CELL_LANES {
            let i = sigmoid(ai[l]);
            let f = sigmoid(af[l]);
            let g = tanh(ag[l]);
            let o = sigmoid(ao[l]);
            let cell = f * c_lanes[l] + i * g;
            c_lanes[l] = cell;
            h_lanes[l] = o * tanh(cell);
            (gi[l], gf[l], gg[l], go[l]) = (i, f, g, o);
        }
        c[units.clone()].copy_from_slice(&c_lanes[..n]);
        h[units.clone()].copy_from_slice(&h_lanes[..n]);
        si[units.clone()].copy_from_slice(&gi[..n]);
        sf[units.clone()].copy_from_slice(&gf[..n]);
        sg[units.clone()].copy_from_slice(&gg[..n]);
        so[units.clone()].copy_from_slice(&go[..n]);
        first += n;
    }
}

/// One GRU step for one sequence: updates `h` in place; with `SAVE`, saves `r, z, n` and
/// `W_hn h + b_hn`.
#[inline(always)]
fn gru_cell<const SAVE: bool>(
    x: &[f32],
    r: &[f32],
    bias: &[f32],
    h: &mut [f32],
    saved: &mut [f32],
) {
    let hidden = h.len();
    let [xr, xz, xn] = gates::<3>(x, hidden);
    let [rr, rz, rn] = gates::<3>(r, hidden);
    let [br, bz, bn] = gates::<3>(bias, hidden);
    let mut step = |j: usize| {
        let reset = sigmoid(xr[j] + rr[j] + br[j]);
        let update = sigmoid(xz[j] + rz[j] + bz[j]);
        let hn = rn[j] + bn[j];
        let n = tanh(xn[j] + reset * hn);
        h[j] = n + update * (h[j] - n);
        [reset, update, n, hn]
    };
    if SAVE {
        let [sr, sz, sn, sh] = gates_mut::<4>(saved, hidden);
        for j in 0..hidden {
            [sr[j], sz[j], sn[j], sh[j]] = step(j);
        }
    } else {
        for j in 0..hidden {
            step(j);
        }
    }
}

/// One plain RNN step for one sequence: updates `h` in place.
#[inline(always)]
fn rnn_cell(nonlinearity: Nonlinearity, x: &[f32], r: &[f32], bias: &[f32], h: &mut [f32]) {
    let hidden = h.len();
    let (x, r, bias) = (&x[..hidden], &r[..hidden], &bias[..hidden]);
    match nonlinearity {
        Nonlinearity::Tanh => {
            for j in 0..hidden {
                h[j] = tanh(x[j] + r[j] + bias[j]);
            }
        }
        Nonlinearity::Relu => {
            for j in 0..hidden {
                h[j] = (x[j] + r[j] + bias[j]).max(0.0);
            }
        }
        Nonlinearity::Identity => {
            for j in 0..hidden {
                h[j] = x[j] + r[j] + bias[j];
            }
        }
    }
}

/// The LSTM step's backward for one sequence: from `dh` and `dc` (gradients into `h_t`, `c_t`)
/// writes the pre-activation gradients `dg` `[4·H]`, leaves in `dc` the gradient into
/// `c_{t-1}`, and zeroes `dh` (the recurrent product adds the gradient into `h_{t-1}`).
#[inline(always)]
fn lstm_cell_backward(
    saved: &[f32],
    c: &[f32],
    c_prev: &[f32],
    dh: &mut [f32],
    dc: &mut [f32],
    dg: &mut [f32],
) {
    let hidden = dh.len();
    let (c, c_prev, dc) = (&c[..hidden], &c_prev[..hidden], &mut dc[..hidden]);
    let [si, sf, sg, so] = gates::<4>(saved, hidden);
    let [di, df, dgg, d_o] = gates_mut::<4>(dg, hidden);
    for j in 0..hidden {
        let (i, f, g, o) = (si[j], sf[j], sg[j], so[j]);
        let tc = tanh(c[j]);
        let dcj = dc[j] + dh[j] * o * (1.0 - tc * tc);
        di[j] = dcj * g * i * (1.0 - i);
        df[j] = dcj * c_prev[j] * f * (1.0 - f);
        dgg[j] = dcj * i * (1.0 - g * g);
        d_o[j] = dh[j] * tc * o * (1.0 - o);
        dc[j] = dcj * f;
        dh[j] = 0.0;
    }
}

/// The GRU step's backward for one sequence: from `dh` writes the pre-activation gradients
/// as the input projection sees them (`dx`) and as the recurrent product sees them (`dr`),
/// and leaves in `dh` the direct part of the gradient into `h_{t-1}`.
#[inline(always)]
fn gru_cell_backward(
    saved: &[f32],
    h_prev: &[f32],
    dh: &mut [f32],
    dx: &mut [f32],
    dr: &mut [f32],
) {
    let hidden = dh.len();
    let h_prev = &h_prev[..hidden];
    let [sr, sz, sn, shn] = gates::<4>(saved, hidden);
    let [dxr, dxz, dxn] = gates_mut::<3>(dx, hidden);
    let [drr, drz, drn] = gates_mut::<3>(dr, hidden);
    for j in 0..hidden {
        let (reset, update, n, hn) = (sr[j], sz[j], sn[j], shn[j]);
        let dn = dh[j] * (1.0 - update);
        let dz = dh[j] * (h_prev[j] - n);
        let dan = dn * (1.0 - n * n);
        let dar = dan * hn * reset * (1.0 - reset);
        let daz = dz * update * (1.0 - update);
        dxr[j] = dar;
        dxz[j] = daz;
        dxn[j] = dan;
        drr[j] = dar;
        drz[j] = daz;
        drn[j] = dan * reset;
        dh[j] *= update;
    }
}

/// The plain RNN step's backward for one sequence: writes the pre-activation gradient and
/// zeroes `dh`.
#[inline(always)]
fn rnn_cell_backward(nonlinearity: Nonlinearity, h: &[f32], dh: &mut [f32], dg: &mut [f32]) {
    let hidden = dh.len();
    let (h, dg) = (&h[..hidden], &mut dg[..hidden]);
    for j in 0..hidden {
        let slope = match nonlinearity {
            Nonlinearity::Tanh => 1.0 - h[j] * h[j],
            Nonlinearity::Relu => (h[j] > 0.0) as u8 as f32,
            Nonlinearity::Identity => 1.0,
        };
        dg[j] = dh[j] * slope;
        dh[j] = 0.0;
    }
}

/// The cell pass of one backward step for one sequence.
struct BackwardStep<'a> {
    dims: Dims,
    t: usize,
    inputs: &'a Inputs<'a>,
    out: &'a [f32],
    saved: &'a [f32],
    d_out: &'a [f32],
    h_prev: &'a [f32],
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
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_avx2(&self, b: usize, buffers: [&mut [f32]; 4]) {
        self.run_portable(b, buffers)
    }

    /// [`Self::run_portable`] compiled for AVX-512.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn run_avx512(&self, b: usize, buffers: [&mut [f32]; 4]) {
        self.run_portable(b, buffers)
    }

    #[inline(always)]
    fn run_portable(&self, b: usize, [dh, dc, d_x, d_h]: [&mut [f32]; 4]) {
        let BackwardStep {
            dims,
            t,
            inputs,
            out,
            saved,
            d_out,
            h_prev,
        } = *self;
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
    let mut d_xp = vec![0.0f32; batch * time * gated];
    let mut d_hp = if kind == CellKind::Gru {
        vec![0.0f32; batch * time * gated]
    } else {
        Vec::new()
    };
    let mut dh = vec![0.0f32; batch * hidden];
    // The gradient into the cell state (the LSTM's; zeros otherwise).
    let mut dc = vec![0.0f32; batch * hidden];
    let parallel = batch * hidden >= PARALLEL_CELLS;
    // The state each step started from, `[B, T, H]`, for the weight gradient.
    let mut h_prev = vec![0.0f32; batch * time * hidden];
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
    let (h_rows, gate_rows) = (hidden.max(1), (time * gated).max(1));
    for t in (0..time).rev() {
        let step = BackwardStep {
            dims,
            t,
            inputs,
            out,
            saved,
            d_out,
            h_prev: &h_prev,
        };
        // Each sequence's rows of d_hp: the GRU's, empty otherwise.
        let d_hp_rows: Vec<&mut [f32]> = if kind == CellKind::Gru {
            d_hp.chunks_mut(gate_rows).collect()
        } else {
            (0..batch).map(|_| &mut [][..]).collect()
        };
        if parallel {
            dh.par_chunks_mut(h_rows)
                .zip(dc.par_chunks_mut(h_rows))
                .zip(d_xp.par_chunks_mut(gate_rows))
                .zip(d_hp_rows)
                .enumerate()
                .for_each(|(b, (((dh, dc), d_x), d_h))| step.run(b, [dh, dc, d_x, d_h]));
        } else {
            dh.chunks_mut(h_rows)
                .zip(dc.chunks_mut(h_rows))
                .zip(d_xp.chunks_mut(gate_rows))
                .zip(d_hp_rows)
                .enumerate()
                .for_each(|(b, (((dh, dc), d_x), d_h))| step.run(b, [dh, dc, d_x, d_h]));
        }
        // dh_{t-1} += d(pre-activations)_t · W_hh, over the batch at once.
        let d_rec = if kind == CellKind::Gru { &d_hp } else { &d_xp };
        w_hh.product(
            batch,
            &mut dh,
            hidden,
            true,
            &d_rec[t * gated..],
            [time * gated, 1],
        );
    }
    let d_rec = if kind == CellKind::Gru { &d_hp } else { &d_xp };
    // dW_hh = Σ_rows d_recᵀ · h_prev, one product over every step of every sequence.
    let mut d_w_hh = vec![0.0f32; gated * hidden];
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
