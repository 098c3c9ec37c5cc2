//! The cells: one step of an LSTM, GRU or RNN for one sequence, forward and backward, on
//! plain `f32` rows of gates.

use crate::layers::recurrent::fused::activation::{sigmoid, tanh};
use crate::layers::recurrent::fused::isa::{has_avx2_fma, has_avx512};
use crate::layers::recurrent::{CellKind, Nonlinearity};

/// One step of the recurrence for one sequence without saving anything: the projected input
/// `x` and state `r` `[G·H]` (bias `b_hh` not yet added) update `h` (and, for the LSTM, `c`).
pub(crate) fn cell(
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
///
/// # Safety
/// The CPU must have AVX2 and FMA: call it only after [`isa`](crate::layers::recurrent::fused::isa) says so.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn cell_avx2(kind: CellKind, x: &[f32], r: &[f32], b: &[f32], h: &mut [f32], c: &mut [f32]) {
    cell_portable(kind, x, r, b, h, c)
}

/// [`cell_portable`] compiled for AVX-512.
///
/// # Safety
/// The CPU must have AVX-512F, AVX2 and FMA: call it only after [`isa`](crate::layers::recurrent::fused::isa) says so.
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
pub(super) fn gates<const G: usize>(row: &[f32], hidden: usize) -> [&[f32]; G] {
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
pub(super) fn lstm_cell<const SAVE: bool>(
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
pub(super) fn gru_cell<const SAVE: bool>(
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
pub(super) fn rnn_cell(
    nonlinearity: Nonlinearity,
    x: &[f32],
    r: &[f32],
    bias: &[f32],
    h: &mut [f32],
) {
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
pub(super) fn lstm_cell_backward(
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
pub(super) fn gru_cell_backward(
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
pub(super) fn rnn_cell_backward(
    nonlinearity: Nonlinearity,
    h: &[f32],
    dh: &mut [f32],
    dg: &mut [f32],
) {
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
