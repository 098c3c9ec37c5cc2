//! The CubeCL kernels of one time step, forward and backward: one thread per hidden unit of
//! one sequence, `(b, j)`, that computes its recurrent product for every gate of the unit and
//! then the cell, so that a step is one launch each way. A cube holds [`TILE`] × [`TILE`]
//! threads (sequences × units), which read the state and the weights through shared memory
//! in tiles of [`TILE`] × [`TILE`]: each value read from the device's memory serves
//! [`TILE`] threads.
//!
//! Buffers are contiguous and row-major (see [`super`] for their shapes). The state lives in
//! buffers of its own: the hidden state in two, read from one and written to the other (every
//! unit reads the whole of `h(t−1)`), the LSTM's cell state in one (each unit reads and writes
//! only its own). A step at or past a sequence's length leaves its state as it was.

use cubecl::prelude::*;

/// The RNN's nonlinearity as a compile-time code.
pub(super) const TANH: u32 = 0;
/// See [`TANH`].
pub(super) const RELU: u32 = 1;
/// See [`TANH`].
pub(super) const IDENTITY: u32 = 2;

#[cube]
fn sigmoid<F: Float>(x: F) -> F {
    F::new(1.0) / (F::new(1.0) + F::exp(-x))
}

/// Sequences and units a cube covers along each side.
pub(super) const TILE: u32 = 16;

/// The unit `(b, j)` of this thread: sequence `b` (the cube's row), hidden unit `j`.
#[cube]
fn this_unit() -> (usize, usize) {
    let tile = comptime![TILE as usize];
    (
        CUBE_POS_Y as usize * tile + UNIT_POS_Y as usize,
        CUBE_POS_X as usize * tile + UNIT_POS_X as usize,
    )
}

/// The recurrent products of unit `j` of sequence `b`, one per gate:
/// `b_hh[g·H + j] + Σ_k h[b, k] · W_hhᵀ[k, g·H + j]`, with `w_hh_t` `[H, G·H]`. Every thread of
/// the cube calls it (it synchronises the cube), those past the batch or the units too.
#[cube]
fn recurrent_products<F: Float>(
    h: &Tensor<F>,
    w_hh_t: &Tensor<F>,
    b_hh: &Tensor<F>,
    b: usize,
    j: usize,
    #[comptime] gates: usize,
) -> Array<F> {
    let tile = comptime![TILE as usize];
    let (batch, hidden) = (h.shape(0), h.shape(1));
    let gated = w_hh_t.shape(1);
    let (x, y) = (UNIT_POS_X as usize, UNIT_POS_Y as usize);
    let mut h_tile = Shared::<[F]>::new_slice(comptime![tile * tile]);
    let mut w_tile = Shared::<[F]>::new_slice(comptime![gates * tile * tile]);
    let mut sums = Array::<F>::new(gates);
    #[unroll]
    for g in 0..gates {
        sums[g] = F::new(0.0);
        if j < hidden {
            sums[g] = b_hh[g * hidden + j];
        }
    }
    let mut k0 = 0;
    while k0 < hidden {
        // This thread loads h[b, k0 + x] and, for each gate, W_hhᵀ[k0 + y, g·H + j].
        let mut value = F::new(0.0);
        if b < batch && k0 + x < hidden {
            value = h[b * hidden + k0 + x];
        }
        h_tile[y * tile + x] = value;
        #[unroll]
        for g in 0..gates {
            let mut weight = F::new(0.0);
            if j < hidden && k0 + y < hidden {
                weight = w_hh_t[(k0 + y) * gated + g * hidden + j];
            }
            w_tile[(g * tile + y) * tile + x] = weight;
        }
        sync_cube();
        #[unroll]
        for k in 0..tile {
            let state = h_tile[y * tile + k];
            #[unroll]
            for g in 0..gates {
                sums[g] += state * w_tile[(g * tile + k) * tile + x];
            }
        }
        sync_cube();
        k0 += tile;
    }
    sums
}

/// Whether step `t` is inside sequence `b`.
#[cube]
fn is_active<I: Numeric>(lengths: &Tensor<I>, b: usize, t: usize) -> bool {
    t < u32::cast_from(lengths[b]) as usize
}

/// One LSTM step: reads `h` (`h(t−1)`), writes `h_next`, updates `c` in place, writes the
/// output row `[h, c]` of step `t` and, when `save`, the gates `[i, f, g, o]`.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub(super) fn lstm_forward<F: Float, I: Numeric>(
    xp: &Tensor<F>,
    w_hh_t: &Tensor<F>,
    b_hh: &Tensor<F>,
    lengths: &Tensor<I>,
    h: &Tensor<F>,
    h_next: &mut Tensor<F>,
    c: &mut Tensor<F>,
    out: &mut Tensor<F>,
    saved: &mut Tensor<F>,
    t: u32,
    #[comptime] save: bool,
    #[define(F, I)] _dtypes: [ElemType; 2],
) {
    let (b, j) = this_unit();
    let sums = recurrent_products::<F>(h, w_hh_t, b_hh, b, j, 4usize);
    let (batch, hidden) = (h.shape(0), h.shape(1));
    if b < batch && j < hidden {
        let unit = b * hidden + j;
        let time = xp.len() / (batch * 4 * hidden);
        let t = t as usize;
        let row = b * time + t;
        let out_at = row * 2 * hidden + j;
        if is_active::<I>(lengths, b, t) {
            let x = row * 4 * hidden + j;
            let i = sigmoid::<F>(xp[x] + sums[0]);
            let f = sigmoid::<F>(xp[x + hidden] + sums[1]);
            let g = F::tanh(xp[x + 2 * hidden] + sums[2]);
            let o = sigmoid::<F>(xp[x + 3 * hidden] + sums[3]);
            let cell = f * c[unit] + i * g;
            let state = o * F::tanh(cell);
            c[unit] = cell;
            h_next[unit] = state;
            out[out_at] = state;
            out[out_at + hidden] = cell;
            if save {
                saved[x] = i;
                saved[x + hidden] = f;
                saved[x + 2 * hidden] = g;
                saved[x + 3 * hidden] = o;
            }
        } else {
            let state = h[unit];
            h_next[unit] = state;
            out[out_at] = state;
            out[out_at + hidden] = c[unit];
        }
    }
}

/// One GRU step: reads `h`, writes `h_next` and the output row of step `t` and, when `save`,
/// `[reset, update, n, h_n]` (`h_n`: the state's part of the candidate, its bias included).
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub(super) fn gru_forward<F: Float, I: Numeric>(
    xp: &Tensor<F>,
    w_hh_t: &Tensor<F>,
    b_hh: &Tensor<F>,
    lengths: &Tensor<I>,
    h: &Tensor<F>,
    h_next: &mut Tensor<F>,
    out: &mut Tensor<F>,
    saved: &mut Tensor<F>,
    t: u32,
    #[comptime] save: bool,
    #[define(F, I)] _dtypes: [ElemType; 2],
) {
    let (b, j) = this_unit();
    let sums = recurrent_products::<F>(h, w_hh_t, b_hh, b, j, 3usize);
    let (batch, hidden) = (h.shape(0), h.shape(1));
    if b < batch && j < hidden {
        let unit = b * hidden + j;
        let time = xp.len() / (batch * 3 * hidden);
        let t = t as usize;
        let row = b * time + t;
        let out_at = row * hidden + j;
        if is_active::<I>(lengths, b, t) {
            let x = row * 3 * hidden + j;
            let reset = sigmoid::<F>(xp[x] + sums[0]);
            let update = sigmoid::<F>(xp[x + hidden] + sums[1]);
            let h_n = sums[2];
            let n = F::tanh(xp[x + 2 * hidden] + reset * h_n);
            let state = n + update * (h[unit] - n);
            h_next[unit] = state;
            out[out_at] = state;
            if save {
                let s = row * 4 * hidden + j;
                saved[s] = reset;
                saved[s + hidden] = update;
                saved[s + 2 * hidden] = n;
                saved[s + 3 * hidden] = h_n;
            }
        } else {
            let state = h[unit];
            h_next[unit] = state;
            out[out_at] = state;
        }
    }
}

/// One RNN step with the nonlinearity `activation` ([`TANH`], [`RELU`] or [`IDENTITY`]):
/// reads `h`, writes `h_next` and the output row of step `t`.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub(super) fn rnn_forward<F: Float, I: Numeric>(
    xp: &Tensor<F>,
    w_hh_t: &Tensor<F>,
    b_hh: &Tensor<F>,
    lengths: &Tensor<I>,
    h: &Tensor<F>,
    h_next: &mut Tensor<F>,
    out: &mut Tensor<F>,
    t: u32,
    #[comptime] activation: u32,
    #[define(F, I)] _dtypes: [ElemType; 2],
) {
    let (b, j) = this_unit();
    let sums = recurrent_products::<F>(h, w_hh_t, b_hh, b, j, 1usize);
    let (batch, hidden) = (h.shape(0), h.shape(1));
    if b < batch && j < hidden {
        let unit = b * hidden + j;
        let time = xp.len() / (batch * hidden);
        let t = t as usize;
        let row = b * time + t;
        let mut state = h[unit];
        if is_active::<I>(lengths, b, t) {
            let pre = xp[row * hidden + j] + sums[0];
            state = pre;
            if activation == TANH {
                state = F::tanh(pre);
            } else if activation == RELU {
                state = F::max(pre, F::new(0.0));
            }
        }
        h_next[unit] = state;
        out[row * hidden + j] = state;
    }
}

/// The gradient reaching `h(t)` of unit `(b, j)` from outside its own cell: the output's
/// `d_out[b, t, j]`, what the step after passed on directly (`carry_h`), and, when there is a
/// step after, its gates' gradients through `W_hh`: `Σ_n d_hp[b, t+1, n] · W_hh[n, j]`, read
/// in shared tiles as [`recurrent_products`] reads its operands. Every thread of the cube
/// calls it; those past the batch or the units get zero.
#[cube]
#[allow(clippy::too_many_arguments)]
fn state_gradient<F: Float>(
    d_out: &Tensor<F>,
    d_hp: &mut Tensor<F>,
    w_hh: &Tensor<F>,
    carry_h: &mut Tensor<F>,
    b: usize,
    j: usize,
    t: usize,
    time: usize,
    out_width: usize,
) -> F {
    let tile = comptime![TILE as usize];
    let (batch, hidden) = (carry_h.shape(0), carry_h.shape(1));
    let gated = w_hh.shape(0);
    let (x, y) = (UNIT_POS_X as usize, UNIT_POS_Y as usize);
    let mut d_tile = Shared::<[F]>::new_slice(comptime![tile * tile]);
    let mut w_tile = Shared::<[F]>::new_slice(comptime![tile * tile]);
    let mut dh = F::new(0.0);
    if t + 1 < time {
        let next = (b * time + t + 1) * gated;
        let mut n0 = 0;
        while n0 < gated {
            // This thread loads d_hp[b, t + 1, n0 + x] and W_hh[n0 + y, j].
            let mut gradient = F::new(0.0);
            if b < batch && n0 + x < gated {
                gradient = d_hp[next + n0 + x];
            }
            d_tile[y * tile + x] = gradient;
            let mut weight = F::new(0.0);
            if j < hidden && n0 + y < gated {
                weight = w_hh[(n0 + y) * hidden + j];
            }
            w_tile[y * tile + x] = weight;
            sync_cube();
            #[unroll]
            for n in 0..tile {
                dh += d_tile[y * tile + n] * w_tile[n * tile + x];
            }
            sync_cube();
            n0 += tile;
        }
    }
    if b < batch && j < hidden {
        dh += d_out[(b * time + t) * out_width + j] + carry_h[b * hidden + j];
    }
    dh
}

/// One LSTM step backwards: the gradients of step `t`'s gate pre-activations into `d_gates`
/// (the same for the projected input and the recurrent product), and what passes to step
/// `t − 1` directly into `carry_h` and `carry_c`. `c_prev` is `c0` at the first step, else
/// the output (whose rows hold `[h, c]`).
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub(super) fn lstm_backward<F: Float, I: Numeric>(
    w_hh: &Tensor<F>,
    lengths: &Tensor<I>,
    c0: &Tensor<F>,
    out: &Tensor<F>,
    saved: &Tensor<F>,
    d_out: &Tensor<F>,
    d_gates: &mut Tensor<F>,
    carry_h: &mut Tensor<F>,
    carry_c: &mut Tensor<F>,
    t: u32,
    #[define(F, I)] _dtypes: [ElemType; 2],
) {
    let (b, j) = this_unit();
    let (batch, hidden) = (carry_h.shape(0), carry_h.shape(1));
    let time = out.len() / (batch * 2 * hidden);
    let t = t as usize;
    let dh = state_gradient::<F>(d_out, d_gates, w_hh, carry_h, b, j, t, time, 2 * hidden);
    if b < batch && j < hidden {
        let unit = b * hidden + j;
        let row = b * time + t;
        let one = F::new(1.0);
        let mut dc = d_out[row * 2 * hidden + hidden + j] + carry_c[unit];
        let x = row * 4 * hidden + j;
        if is_active::<I>(lengths, b, t) {
            let (i, f, g, o) = (
                saved[x],
                saved[x + hidden],
                saved[x + 2 * hidden],
                saved[x + 3 * hidden],
            );
            let tc = F::tanh(out[row * 2 * hidden + hidden + j]);
            dc += dh * o * (one - tc * tc);
            let mut c_prev = c0[unit];
            if t > 0 {
                c_prev = out[(row - 1) * 2 * hidden + hidden + j];
            }
            d_gates[x] = dc * g * i * (one - i);
            d_gates[x + hidden] = dc * c_prev * f * (one - f);
            d_gates[x + 2 * hidden] = dc * i * (one - g * g);
            d_gates[x + 3 * hidden] = dh * tc * o * (one - o);
            carry_h[unit] = F::new(0.0);
            carry_c[unit] = dc * f;
        } else {
            #[unroll]
            for gate in 0..4 {
                d_gates[x + gate * hidden] = F::new(0.0);
            }
            carry_h[unit] = dh;
            carry_c[unit] = dc;
        }
    }
}

/// One GRU step backwards: the gradients of step `t`'s projected input `d_xp` and of its
/// recurrent product `d_hp` (they differ in the candidate, which the reset gate scales), and
/// what passes to `h(t − 1)` directly into `carry_h`. `h_prev` is `h0` at the first step,
/// else the output.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub(super) fn gru_backward<F: Float, I: Numeric>(
    w_hh: &Tensor<F>,
    lengths: &Tensor<I>,
    h0: &Tensor<F>,
    out: &Tensor<F>,
    saved: &Tensor<F>,
    d_out: &Tensor<F>,
    d_xp: &mut Tensor<F>,
    d_hp: &mut Tensor<F>,
    carry_h: &mut Tensor<F>,
    t: u32,
    #[define(F, I)] _dtypes: [ElemType; 2],
) {
    let (b, j) = this_unit();
    let (batch, hidden) = (carry_h.shape(0), carry_h.shape(1));
    let time = out.len() / (batch * hidden);
    let t = t as usize;
    let dh = state_gradient::<F>(d_out, d_hp, w_hh, carry_h, b, j, t, time, hidden);
    if b < batch && j < hidden {
        let unit = b * hidden + j;
        let row = b * time + t;
        let one = F::new(1.0);
        let x = row * 3 * hidden + j;
        if is_active::<I>(lengths, b, t) {
            let s = row * 4 * hidden + j;
            let (reset, update, n, h_n) = (
                saved[s],
                saved[s + hidden],
                saved[s + 2 * hidden],
                saved[s + 3 * hidden],
            );
            let mut h_prev = h0[unit];
            if t > 0 {
                h_prev = out[(row - 1) * hidden + j];
            }
            let d_n = dh * (one - update) * (one - n * n);
            let d_update = dh * (h_prev - n) * update * (one - update);
            let d_reset = d_n * h_n * reset * (one - reset);
            d_xp[x] = d_reset;
            d_xp[x + hidden] = d_update;
            d_xp[x + 2 * hidden] = d_n;
            d_hp[x] = d_reset;
            d_hp[x + hidden] = d_update;
            d_hp[x + 2 * hidden] = d_n * reset;
            carry_h[unit] = dh * update;
        } else {
            #[unroll]
            for gate in 0..3 {
                d_xp[x + gate * hidden] = F::new(0.0);
                d_hp[x + gate * hidden] = F::new(0.0);
            }
            carry_h[unit] = dh;
        }
    }
}

/// One RNN step backwards: the gradient of step `t`'s pre-activation into `d_gates`, and
/// what passes to `h(t − 1)` directly into `carry_h` (all of it at a padded step).
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub(super) fn rnn_backward<F: Float, I: Numeric>(
    w_hh: &Tensor<F>,
    lengths: &Tensor<I>,
    out: &Tensor<F>,
    d_out: &Tensor<F>,
    d_gates: &mut Tensor<F>,
    carry_h: &mut Tensor<F>,
    t: u32,
    #[comptime] activation: u32,
    #[define(F, I)] _dtypes: [ElemType; 2],
) {
    let (b, j) = this_unit();
    let (batch, hidden) = (carry_h.shape(0), carry_h.shape(1));
    let time = out.len() / (batch * hidden);
    let t = t as usize;
    let dh = state_gradient::<F>(d_out, d_gates, w_hh, carry_h, b, j, t, time, hidden);
    if b < batch && j < hidden {
        let unit = b * hidden + j;
        let at = (b * time + t) * hidden + j;
        if is_active::<I>(lengths, b, t) {
            let state = out[at];
            let mut d_pre = dh;
            if activation == TANH {
                d_pre = dh * (F::new(1.0) - state * state);
            } else if activation == RELU {
                d_pre = F::new(0.0);
                if state > F::new(0.0) {
                    d_pre = dh;
                }
            }
            d_gates[at] = d_pre;
            carry_h[unit] = F::new(0.0);
        } else {
            d_gates[at] = F::new(0.0);
            carry_h[unit] = dh;
        }
    }
}
