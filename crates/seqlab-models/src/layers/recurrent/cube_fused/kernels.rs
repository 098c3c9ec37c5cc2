//! The CubeCL kernels of one time step, forward and backward: one thread per hidden unit of
//! one sequence, `(b, j)`, that runs the cell of its unit for every gate. The recurrent
//! products are Burn's matrix products, one a step each way (see [`super`] for why).
//!
//! Buffers are contiguous and row-major (see [`super`] for their shapes). The state lives in
//! buffers of its own: the hidden state in two, read from one and written to the other, the
//! LSTM's cell state in one (each unit reads and writes only its own). A step at or past a
//! sequence's length leaves its state as it was. The gradients of the gates are time-major,
//! `[T, B, G·H]`, so that one step's rows are contiguous for the next step's product.

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

/// Whether step `t` is inside sequence `b`.
#[cube]
fn is_active<I: Numeric>(lengths: &Tensor<I>, b: usize, t: usize) -> bool {
    t < u32::cast_from(lengths[b]) as usize
}

/// One LSTM step from the projected input `xp` `[B, T, 4·H]` and the recurrent product
/// `hp = h · W_hhᵀ` `[B, 4·H]` (`b_hh` added here): reads `h` (`h(t−1)`), writes `h_next`,
/// updates `c` in place, writes the output row `[h, c]` of step `t` and, when `save`, the
/// gates `[i, f, g, o]`.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub(super) fn lstm_forward<F: Float, I: Numeric>(
    xp: &Tensor<F>,
    hp: &Tensor<F>,
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
    let unit = ABSOLUTE_POS;
    let (batch, hidden) = (h.shape(0), h.shape(1));
    if unit >= batch * hidden {
        terminate!();
    }
    let (b, j) = (unit / hidden, unit % hidden);
    let r = b * 4 * hidden + j;
    let time = xp.len() / (batch * 4 * hidden);
    let t = t as usize;
    let row = b * time + t;
    let out_at = row * 2 * hidden + j;
    if is_active::<I>(lengths, b, t) {
        let x = row * 4 * hidden + j;
        let i = sigmoid::<F>(xp[x] + hp[r] + b_hh[j]);
        let f = sigmoid::<F>(xp[x + hidden] + hp[r + hidden] + b_hh[hidden + j]);
        let g = F::tanh(xp[x + 2 * hidden] + hp[r + 2 * hidden] + b_hh[2 * hidden + j]);
        let o = sigmoid::<F>(xp[x + 3 * hidden] + hp[r + 3 * hidden] + b_hh[3 * hidden + j]);
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

/// One GRU step from `xp` `[B, T, 3·H]` and `hp` `[B, 3·H]`: reads `h`, writes `h_next` and the
/// output row of step `t` and, when `save`, `[reset, update, n, h_n]` (`h_n`: the state's part of
/// the candidate, its bias included).
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub(super) fn gru_forward<F: Float, I: Numeric>(
    xp: &Tensor<F>,
    hp: &Tensor<F>,
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
    let unit = ABSOLUTE_POS;
    let (batch, hidden) = (h.shape(0), h.shape(1));
    if unit >= batch * hidden {
        terminate!();
    }
    let (b, j) = (unit / hidden, unit % hidden);
    let r = b * 3 * hidden + j;
    let time = xp.len() / (batch * 3 * hidden);
    let t = t as usize;
    let row = b * time + t;
    let out_at = row * hidden + j;
    if is_active::<I>(lengths, b, t) {
        let x = row * 3 * hidden + j;
        let reset = sigmoid::<F>(xp[x] + hp[r] + b_hh[j]);
        let update = sigmoid::<F>(xp[x + hidden] + hp[r + hidden] + b_hh[hidden + j]);
        let h_n = hp[r + 2 * hidden] + b_hh[2 * hidden + j];
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

/// One RNN step from `xp` `[B, T, H]` and `hp` `[B, H]`, with the nonlinearity `activation`
/// ([`TANH`], [`RELU`] or [`IDENTITY`]): reads `h`, writes `h_next` and the output row of step `t`.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub(super) fn rnn_forward<F: Float, I: Numeric>(
    xp: &Tensor<F>,
    hp: &Tensor<F>,
    b_hh: &Tensor<F>,
    lengths: &Tensor<I>,
    h: &Tensor<F>,
    h_next: &mut Tensor<F>,
    out: &mut Tensor<F>,
    t: u32,
    #[comptime] activation: u32,
    #[define(F, I)] _dtypes: [ElemType; 2],
) {
    let unit = ABSOLUTE_POS;
    let (batch, hidden) = (h.shape(0), h.shape(1));
    if unit >= batch * hidden {
        terminate!();
    }
    let (b, j) = (unit / hidden, unit % hidden);
    let time = xp.len() / (batch * hidden);
    let t = t as usize;
    let row = b * time + t;
    let mut state = h[unit];
    if is_active::<I>(lengths, b, t) {
        let pre = xp[row * hidden + j] + hp[unit] + b_hh[j];
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

/// One LSTM step backwards, `through_w_hh` `[B, H]` being the gradient reaching `h(t)` through the
/// next step's recurrent product (zeros at the last step): the gradients of step `t`'s gate
/// pre-activations into `d_gates` (the same for the projected input and the recurrent product), and
/// what passes to step `t − 1` directly into `carry_h` and `carry_c`. `c_prev` is `c0` at the first
/// step, else the output (whose rows hold `[h, c]`).
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub(super) fn lstm_backward<F: Float, I: Numeric>(
    through_w_hh: &Tensor<F>,
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
    let unit = ABSOLUTE_POS;
    let (batch, hidden) = (carry_h.shape(0), carry_h.shape(1));
    if unit >= batch * hidden {
        terminate!();
    }
    let (b, j) = (unit / hidden, unit % hidden);
    let time = out.len() / (batch * 2 * hidden);
    let t = t as usize;
    let dh = d_out[(b * time + t) * 2 * hidden + j] + carry_h[unit] + through_w_hh[unit];
    let row = b * time + t;
    let one = F::new(1.0);
    let mut dc = d_out[row * 2 * hidden + hidden + j] + carry_c[unit];
    let x = row * 4 * hidden + j;
    let d = (t * batch + b) * 4 * hidden + j;
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
        d_gates[d] = dc * g * i * (one - i);
        d_gates[d + hidden] = dc * c_prev * f * (one - f);
        d_gates[d + 2 * hidden] = dc * i * (one - g * g);
        d_gates[d + 3 * hidden] = dh * tc * o * (one - o);
        carry_h[unit] = F::new(0.0);
        carry_c[unit] = dc * f;
    } else {
        #[unroll]
        for gate in 0..4 {
            d_gates[d + gate * hidden] = F::new(0.0);
        }
        carry_h[unit] = dh;
        carry_c[unit] = dc;
    }
}

/// One GRU step backwards (`through_w_hh` as for [`lstm_backward`]): the gradients of step `t`'s
/// projected input `d_xp` and of its recurrent product `d_hp` (they differ in the candidate, which
/// the reset gate scales), and what passes to `h(t − 1)` directly into `carry_h`. `h_prev` is `h0`
/// at the first step, else the output.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub(super) fn gru_backward<F: Float, I: Numeric>(
    through_w_hh: &Tensor<F>,
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
    let unit = ABSOLUTE_POS;
    let (batch, hidden) = (carry_h.shape(0), carry_h.shape(1));
    if unit >= batch * hidden {
        terminate!();
    }
    let (b, j) = (unit / hidden, unit % hidden);
    let time = out.len() / (batch * hidden);
    let t = t as usize;
    let dh = d_out[(b * time + t) * hidden + j] + carry_h[unit] + through_w_hh[unit];
    let row = b * time + t;
    let one = F::new(1.0);
    let d = (t * batch + b) * 3 * hidden + j;
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
        d_xp[d] = d_reset;
        d_xp[d + hidden] = d_update;
        d_xp[d + 2 * hidden] = d_n;
        d_hp[d] = d_reset;
        d_hp[d + hidden] = d_update;
        d_hp[d + 2 * hidden] = d_n * reset;
        carry_h[unit] = dh * update;
    } else {
        #[unroll]
        for gate in 0..3 {
            d_xp[d + gate * hidden] = F::new(0.0);
            d_hp[d + gate * hidden] = F::new(0.0);
        }
        carry_h[unit] = dh;
    }
}

/// One RNN step backwards (`through_w_hh` as for [`lstm_backward`]): the gradient of step `t`'s
/// pre-activation into `d_gates`, and what passes to `h(t − 1)` directly into `carry_h` (all of it
/// at a padded step).
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub(super) fn rnn_backward<F: Float, I: Numeric>(
    through_w_hh: &Tensor<F>,
    lengths: &Tensor<I>,
    out: &Tensor<F>,
    d_out: &Tensor<F>,
    d_gates: &mut Tensor<F>,
    carry_h: &mut Tensor<F>,
    t: u32,
    #[comptime] activation: u32,
    #[define(F, I)] _dtypes: [ElemType; 2],
) {
    let unit = ABSOLUTE_POS;
    let (batch, hidden) = (carry_h.shape(0), carry_h.shape(1));
    if unit >= batch * hidden {
        terminate!();
    }
    let (b, j) = (unit / hidden, unit % hidden);
    let time = out.len() / (batch * hidden);
    let t = t as usize;
    let dh = d_out[(b * time + t) * hidden + j] + carry_h[unit] + through_w_hh[unit];
    let at = (b * time + t) * hidden + j;
    let d = (t * batch + b) * hidden + j;
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
        d_gates[d] = d_pre;
        carry_h[unit] = F::new(0.0);
    } else {
        d_gates[d] = F::new(0.0);
        carry_h[unit] = dh;
    }
}
