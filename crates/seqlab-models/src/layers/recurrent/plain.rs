//! The reference path of the recurrent layers: the time loop written with ordinary tensor
//! operations, one step at a time. It runs on every device (wgpu included) and is what the
//! fused operation is tested against.

use burn::tensor::Tensor;
use burn::tensor::activation::{relu, sigmoid, tanh};

use super::{CellKind, Nonlinearity, step_mask};

/// Runs one layer in one direction over the projected input `xp` `[B, T, G·H]` from `h`
/// (and `c`) `[B, H]`. Steps at or past a sequence's length keep its state. Returns the
/// outputs `[B, T, H]` and the final state.
pub(super) fn run(
    kind: CellKind,
    weight_hh: Tensor<2>,
    bias_hh: Option<Tensor<1>>,
    xp: Tensor<3>,
    mut h: Tensor<2>,
    mut c: Option<Tensor<2>>,
    lengths: Option<&[usize]>,
) -> (Tensor<3>, Tensor<2>, Option<Tensor<2>>) {
    let [batch, time, gated] = xp.dims();
    let device = xp.device();
    let weight_hh = weight_hh.transpose();
    let mask = lengths.map(|lengths| step_mask(lengths, time, &device));
    let mut outputs = Vec::with_capacity(time);
    for step in 0..time {
        let x = xp.clone().narrow(1, step, 1).reshape([batch, gated]);
        let mut recurrent = h.clone().matmul(weight_hh.clone());
        if let Some(bias) = &bias_hh {
            recurrent = recurrent + bias.clone().unsqueeze_dim(0);
        }
        let (next_h, next_c) = cell(kind, x, recurrent, h.clone(), c.clone());
        (h, c) = match &mask {
            Some(mask) => {
                let keep = mask.clone().narrow(1, step, 1);
                let blend =
                    |new: Tensor<2>, old: Tensor<2>| old.clone() + (new - old) * keep.clone();
                (
                    blend(next_h, h),
                    next_c.zip(c).map(|(new, old)| blend(new, old)),
                )
            }
            None => (next_h, next_c),
        };
        outputs.push(h.clone());
    }
    (Tensor::stack(outputs, 1), h, c)
}

/// One step of the recurrence from the projected input `x` and projected state
/// `recurrent`, both `[B, G·H]`.
fn cell(
    kind: CellKind,
    x: Tensor<2>,
    recurrent: Tensor<2>,
    h: Tensor<2>,
    c: Option<Tensor<2>>,
) -> (Tensor<2>, Option<Tensor<2>>) {
    match kind {
        CellKind::Rnn(nonlinearity) => {
            let pre = x + recurrent;
            let h = match nonlinearity {
                Nonlinearity::Tanh => tanh(pre),
                Nonlinearity::Relu => relu(pre),
                Nonlinearity::Identity => pre,
            };
            (h, None)
        }
        CellKind::Lstm => {
            let gates = (x + recurrent).chunk(4, 1);
            let [i, f, g, o] = <[Tensor<2>; 4]>::try_from(gates).expect("four LSTM gates");
            let c = sigmoid(f) * c.expect("an LSTM carries a cell") + sigmoid(i) * tanh(g);
            let h = sigmoid(o) * tanh(c.clone());
            (h, Some(c))
        }
        CellKind::Gru => {
            let [x_r, x_z, x_n] =
                <[Tensor<2>; 3]>::try_from(x.chunk(3, 1)).expect("three GRU gates");
            let [h_r, h_z, h_n] =
                <[Tensor<2>; 3]>::try_from(recurrent.chunk(3, 1)).expect("three GRU gates");
            let r = sigmoid(x_r + h_r);
            let z = sigmoid(x_z + h_z);
            let n = tanh(x_n + r * h_n);
            let h = n.clone() + z * (h - n);
            (h, None)
        }
    }
}
