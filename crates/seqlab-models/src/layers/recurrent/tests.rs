//! The layers against PyTorch's equations, the fused path against the plain one, padding.

use super::*;
use burn::module::Module;
use burn::nn::{EmbeddingConfig, LinearConfig};
use burn::tensor::{Device, Int, Tensor};
use burn::tensor::{Distribution, TensorData};

fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f64> {
    tensor
        .into_data()
        .convert::<f64>()
        .try_to_vec::<f64>()
        .unwrap()
}

#[test]
fn parameter_counts_are_pytorchs() {
    let device = Device::flex();
    let count = |config: RecurrentConfig| config.init(&device).num_params();
    assert_eq!(count(RecurrentConfig::rnn(10, 20).with_num_layers(2)), 1480);
    assert_eq!(count(RecurrentConfig::gru(10, 20)), 1920);
    assert_eq!(
        count(
            RecurrentConfig::lstm(10, 20)
                .with_num_layers(2)
                .with_bidirectional(true)
        ),
        15040
    );
    assert_eq!(count(RecurrentConfig::lstm(10, 20).with_bias(false)), 2400);
    // Seed 000's classifiers: Embedding(30522, 10), two layers of 20, Linear(20, 2).
    let head = EmbeddingConfig::new(30522, 10).init(&device).num_params()
        + LinearConfig::new(20, 2).init(&device).num_params();
    assert_eq!(
        head + count(RecurrentConfig::rnn(10, 20).with_num_layers(2)),
        306742
    );
    assert_eq!(
        head + count(RecurrentConfig::lstm(10, 20).with_num_layers(2)),
        311182
    );
}

/// PyTorch's equations for one layer and direction, step by step in f64 on plain vectors.
fn reference(
    kind: CellKind,
    w: &DirectionWeights,
    x: &[Vec<f64>],
    hidden: usize,
    reverse: bool,
) -> Vec<Vec<f64>> {
    let (w_ih, w_hh) = (values(w.weight_ih.val()), values(w.weight_hh.val()));
    let zeros = vec![0.0; w_ih.len() / x[0].len()];
    let b_ih = w
        .bias_ih
        .as_ref()
        .map_or(zeros.clone(), |b| values(b.val()));
    let b_hh = w.bias_hh.as_ref().map_or(zeros, |b| values(b.val()));
    let input = x[0].len();
    let project = |m: &[f64], b: &[f64], v: &[f64], cols: usize| -> Vec<f64> {
        (0..b.len())
            .map(|r| b[r] + (0..cols).map(|k| m[r * cols + k] * v[k]).sum::<f64>())
            .collect()
    };
    let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
    let (mut h, mut c) = (vec![0.0; hidden], vec![0.0; hidden]);
    let mut out = vec![Vec::new(); x.len()];
    let order: Vec<usize> = if reverse {
        (0..x.len()).rev().collect()
    } else {
        (0..x.len()).collect()
    };
    for t in order {
        let gx = project(&w_ih, &b_ih, &x[t], input);
        let gh = project(&w_hh, &b_hh, &h, hidden);
        let g = |k: usize, j: usize| gx[k * hidden + j] + gh[k * hidden + j];
        h = match kind {
            CellKind::Rnn(_) => (0..hidden).map(|j| g(0, j).tanh()).collect(),
            CellKind::Lstm => {
                c = (0..hidden)
                    .map(|j| sig(g(1, j)) * c[j] + sig(g(0, j)) * g(2, j).tanh())
                    .collect();
                (0..hidden).map(|j| sig(g(3, j)) * c[j].tanh()).collect()
            }
            CellKind::Gru => (0..hidden)
                .map(|j| {
                    let r = sig(gx[j] + gh[j]);
                    let z = sig(gx[hidden + j] + gh[hidden + j]);
                    let n = (gx[2 * hidden + j] + r * gh[2 * hidden + j]).tanh();
                    (1.0 - z) * n + z * h[j]
                })
                .collect(),
        };
        out[t] = h.clone();
    }
    out
}

#[test]
fn every_kind_and_direction_matches_pytorchs_equations() {
    let device = Device::flex();
    device.seed(5);
    let (batch, time, input, hidden) = (2, 4, 3, 5);
    for kind in [
        CellKind::Rnn(Nonlinearity::Tanh),
        CellKind::Lstm,
        CellKind::Gru,
    ] {
        let layer = RecurrentConfig::new(kind, input, hidden)
            .with_bidirectional(true)
            .init(&device);
        let x = Tensor::<3>::random(
            [batch, time, input],
            Distribution::Uniform(-1.0, 1.0),
            &device,
        );
        let (output, state) = layer.forward(x.clone(), None).unwrap();
        assert_eq!(output.dims(), [batch, time, 2 * hidden]);
        let x = values(x);
        let output = values(output);
        let final_hidden = values(state.hidden);
        for b in 0..batch {
            let rows: Vec<Vec<f64>> = (0..time)
                .map(|t| x[(b * time + t) * input..][..input].to_vec())
                .collect();
            for direction in 0..2 {
                let expected = reference(
                    kind,
                    &layer.weights[direction],
                    &rows,
                    hidden,
                    direction == 1,
                );
                for t in 0..time {
                    for j in 0..hidden {
                        let got = output[(b * time + t) * 2 * hidden + direction * hidden + j];
                        assert!(
                            (got - expected[t][j]).abs() < 1e-5,
                            "{kind:?} dir {direction} t {t}: {got} vs {}",
                            expected[t][j]
                        );
                    }
                }
                let last = if direction == 0 { time - 1 } else { 0 };
                for j in 0..hidden {
                    let got = final_hidden[(direction * batch + b) * hidden + j];
                    assert!(
                        (got - expected[last][j]).abs() < 1e-5,
                        "{kind:?} final state"
                    );
                }
            }
        }
    }
}

#[test]
fn stepping_gives_the_sequence_call_exactly() {
    let device = Device::flex();
    device.seed(9);
    for kind in [
        CellKind::Rnn(Nonlinearity::Relu),
        CellKind::Lstm,
        CellKind::Gru,
    ] {
        let layer = RecurrentConfig::new(kind, 3, 4)
            .with_num_layers(2)
            .init(&device);
        let x = Tensor::<3>::random([2, 5, 3], Distribution::Default, &device);
        let (whole, whole_state) = layer.forward(x.clone(), None).unwrap();
        let mut state = None;
        let mut steps = Vec::new();
        for t in 0..5 {
            let (out, next) = layer
                .step(x.clone().narrow(1, t, 1).reshape([2, 3]), state)
                .unwrap();
            steps.push(out);
            state = Some(next);
        }
        let stepped = Tensor::stack::<3>(steps, 1);
        whole
            .into_data()
            .assert_approx_eq::<f32>(&stepped.into_data(), Default::default());
        let state = state.unwrap();
        whole_state
            .hidden
            .into_data()
            .assert_approx_eq::<f32>(&state.hidden.into_data(), Default::default());
        assert_eq!(whole_state.cell.is_some(), kind == CellKind::Lstm);
    }
}

#[test]
fn bad_input_and_state_are_typed_errors() {
    let device = Device::flex();
    let lstm = RecurrentConfig::lstm(3, 4).with_num_layers(2).init(&device);
    let x = Tensor::<3>::zeros([2, 5, 3], &device);
    let wrong = Tensor::<3>::zeros([2, 5, 7], &device);
    assert_eq!(
        lstm.forward(wrong, None).unwrap_err(),
        RecurrentError::InputSize {
            expected: 3,
            got: 7
        }
    );
    let empty = Tensor::<3>::zeros([2, 0, 3], &device);
    assert_eq!(
        lstm.forward(empty, None).unwrap_err(),
        RecurrentError::EmptyInput([2, 0, 3])
    );
    let bad = RecurrentState {
        hidden: Tensor::zeros([1, 2, 4], &device),
        cell: Some(Tensor::zeros([2, 2, 4], &device)),
    };
    assert_eq!(
        lstm.forward(x.clone(), Some(bad)).unwrap_err(),
        RecurrentError::StateShape {
            name: "hidden",
            expected: [2, 2, 4],
            got: [1, 2, 4]
        }
    );
    let no_cell = RecurrentState {
        hidden: Tensor::zeros([2, 2, 4], &device),
        cell: None,
    };
    assert_eq!(
        lstm.forward(x, Some(no_cell)).unwrap_err(),
        RecurrentError::CellMismatch
    );
}

#[test]
fn the_identity_rnn_is_linear() {
    let device = Device::flex();
    let rnn = RecurrentConfig::new(CellKind::Rnn(Nonlinearity::Identity), 2, 3)
        .with_bias(false)
        .init(&device);
    let x = Tensor::<3>::from_data(
        TensorData::new(vec![1.0f32, -2.0, 0.5, 3.0], [1, 2, 2]),
        &device,
    );
    let (once, _) = rnn.forward(x.clone(), None).unwrap();
    let (twice, _) = rnn.forward(x.mul_scalar(2.0), None).unwrap();
    once.mul_scalar(2.0)
        .into_data()
        .assert_approx_eq::<f32>(&twice.into_data(), Default::default());
}

/// Asserts `|a - b| <= 1e-6 + rtol * |b|` elementwise.
fn assert_close(what: &str, a: Vec<f64>, b: Vec<f64>, rtol: f64) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-6 + rtol * y.abs(),
            "{what}[{i}]: {x} vs {y}"
        );
    }
}

/// The fused operation against the plain path on the same weights: outputs, final states
/// and the gradients of every input, state and parameter.
fn fused_matches_plain_on(device: Device) {
    let device = device.autodiff();
    device.seed(3);
    let (batch, time, input) = (3, 6, 4);
    for kind in [
        CellKind::Lstm,
        CellKind::Gru,
        CellKind::Rnn(Nonlinearity::Tanh),
        CellKind::Rnn(Nonlinearity::Relu),
    ] {
        for (bidirectional, lengths) in [(false, None), (true, Some(vec![6, 2, 5]))] {
            let config = RecurrentConfig::new(kind, input, 5)
                .with_num_layers(2)
                .with_bidirectional(bidirectional);
            let fused = config.init(&device);
            let plain = config
                .with_fused(false)
                .init(&device)
                .load_record(fused.clone().into_record());
            let x = Tensor::<3>::random([batch, time, input], Distribution::Default, &device);
            let states = 2 * if bidirectional { 2 } else { 1 };
            let state = RecurrentState {
                hidden: Tensor::random([states, batch, 5], Distribution::Default, &device),
                cell: (kind == CellKind::Lstm)
                    .then(|| Tensor::random([states, batch, 5], Distribution::Default, &device)),
            };
            let run = |layer: &Recurrent| {
                let x = x.clone().detach().require_grad();
                let h0 = state.hidden.clone().detach().require_grad();
                let c0 = state.cell.clone().map(|c| c.detach().require_grad());
                let start = RecurrentState {
                    hidden: h0.clone(),
                    cell: c0.clone(),
                };
                let (out, end) = match &lengths {
                    Some(lengths) => layer.forward_padded(x.clone(), Some(start), lengths),
                    None => layer.forward(x.clone(), Some(start)),
                }
                .unwrap();
                // A loss that weighs every output and final state differently.
                let weigh = |t: Tensor<3>| {
                    let n = t.shape().num_elements();
                    let w = Tensor::<1, Int>::arange(0..n as i64, &t.device())
                        .float()
                        .reshape(t.dims())
                        .mul_scalar(0.37)
                        .sin();
                    (t * w).sum()
                };
                let mut loss = weigh(out.clone()) + weigh(end.hidden.clone());
                if let Some(c) = end.cell.clone() {
                    loss = loss + weigh(c);
                }
                let grads = loss.backward();
                let mut tensors = vec![
                    ("output", values(out)),
                    ("hidden", values(end.hidden)),
                    ("dx", values(x.grad(&grads).unwrap())),
                    ("dh0", values(h0.grad(&grads).unwrap())),
                ];
                if let (Some(c), Some(c0)) = (end.cell, c0) {
                    tensors.push(("cell", values(c)));
                    tensors.push(("dc0", values(c0.grad(&grads).unwrap())));
                }
                for w in &layer.weights {
                    tensors.push(("dw_ih", values(w.weight_ih.grad(&grads).unwrap())));
                    tensors.push(("dw_hh", values(w.weight_hh.grad(&grads).unwrap())));
                    tensors.push((
                        "db_ih",
                        values(w.bias_ih.as_ref().unwrap().grad(&grads).unwrap()),
                    ));
                    tensors.push((
                        "db_hh",
                        values(w.bias_hh.as_ref().unwrap().grad(&grads).unwrap()),
                    ));
                }
                tensors
            };
            for ((name, a), (_, b)) in run(&fused).into_iter().zip(run(&plain)) {
                assert_close(&format!("{kind:?} {lengths:?} {name}"), a, b, 1e-5);
            }
        }
    }
}

/// `forward_tokens` (each vocabulary entry projected once, rows looked up) against the same
/// layer over the looked-up embeddings: outputs, final state and the gradients of the
/// embedding, the initial state and every parameter.
fn looked_up_rows_match_embedded_tokens_on(device: Device) {
    let device = device.autodiff();
    device.seed(5);
    let (vocab, input, hidden, batch, time) = (5, 4, 6, 3, 7);
    for kind in [
        CellKind::Lstm,
        CellKind::Gru,
        CellKind::Rnn(Nonlinearity::Tanh),
    ] {
        for (bidirectional, batch_first) in [(false, true), (true, true), (false, false)] {
            let what = format!("{kind:?} bidirectional {bidirectional} batch-first {batch_first}");
            let layer = RecurrentConfig::new(kind, input, hidden)
                .with_num_layers(2)
                .with_bidirectional(bidirectional)
                .with_batch_first(batch_first)
                .init(&device);
            let embedding = EmbeddingConfig::new(vocab, input).init(&device);
            let dims = if batch_first {
                [batch, time]
            } else {
                [time, batch]
            };
            assert!(
                layer.looks_up_projected_rows(vocab, dims, &device),
                "{what}: the table path is the one under test"
            );
            let ids: Vec<i64> = (0..batch * time).map(|i| (i * 7 % vocab) as i64).collect();
            let tokens = Tensor::<1, Int>::from_data(TensorData::new(ids, [batch * time]), &device)
                .reshape(dims);
            let states = 2 * if bidirectional { 2 } else { 1 };
            let h0 = Tensor::<3>::random([states, batch, hidden], Distribution::Default, &device);
            let c0 = (kind == CellKind::Lstm).then(|| {
                Tensor::<3>::random([states, batch, hidden], Distribution::Default, &device)
            });
            let run = |by_table: bool| {
                let h0 = h0.clone().detach().require_grad();
                let start = RecurrentState {
                    hidden: h0.clone(),
                    cell: c0.clone(),
                };
                let (out, end) = if by_table {
                    layer.forward_tokens(&embedding, tokens.clone(), Some(start))
                } else {
                    layer.forward(embedding.forward(tokens.clone()), Some(start))
                }
                .unwrap();
                let n = out.shape().num_elements();
                let weights = Tensor::<1, Int>::arange(0..n as i64, &device)
                    .float()
                    .reshape(out.dims())
                    .mul_scalar(0.37)
                    .sin();
                let loss = (out.clone() * weights).sum() + end.hidden.clone().sum();
                let grads = loss.backward();
                let mut tensors = vec![
                    ("output", values(out)),
                    ("hidden", values(end.hidden)),
                    (
                        "d_embedding",
                        values(embedding.weight.grad(&grads).unwrap()),
                    ),
                    ("dh0", values(h0.grad(&grads).unwrap())),
                ];
                for w in &layer.weights {
                    tensors.push(("dw_ih", values(w.weight_ih.grad(&grads).unwrap())));
                    tensors.push(("dw_hh", values(w.weight_hh.grad(&grads).unwrap())));
                    for bias in [&w.bias_ih, &w.bias_hh] {
                        tensors.push(("db", values(bias.as_ref().unwrap().grad(&grads).unwrap())));
                    }
                }
                tensors
            };
            for ((name, a), (_, b)) in run(true).into_iter().zip(run(false)) {
                assert_close(&format!("{what} {name}"), a, b, 1e-5);
            }
        }
    }
    // Without autodiff (validation, inference) the operation takes the projected rows too.
    let inner = device.clone().inner();
    let layer = RecurrentConfig::lstm(input, hidden)
        .with_num_layers(2)
        .init(&inner);
    let embedding = EmbeddingConfig::new(vocab, input).init(&inner);
    assert!(layer.looks_up_projected_rows(vocab, [batch, time], &inner));
    let ids: Vec<i64> = (0..batch * time).map(|i| (i * 3 % vocab) as i64).collect();
    let tokens = Tensor::<1, Int>::from_data(TensorData::new(ids, [batch * time]), &inner)
        .reshape([batch, time]);
    let (looked_up, end) = layer
        .forward_tokens(&embedding, tokens.clone(), None)
        .unwrap();
    let (embedded, want) = layer.forward(embedding.forward(tokens), None).unwrap();
    assert_close(
        "inference output",
        values(looked_up),
        values(embedded),
        1e-5,
    );
    assert_close(
        "inference cell",
        values(end.cell.unwrap()),
        values(want.cell.unwrap()),
        1e-5,
    );
    // Fewer tokens than twice the vocabulary, one step, or the plain path: looked up as given.
    let layer = RecurrentConfig::lstm(4, 6).init(&device);
    assert!(!layer.looks_up_projected_rows(10, [3, 6], &device));
    assert!(!layer.looks_up_projected_rows(5, [30, 1], &device));
    let plain = RecurrentConfig::lstm(4, 6).with_fused(false).init(&device);
    assert!(!plain.looks_up_projected_rows(5, [3, 6], &device));
}

#[test]
fn looked_up_rows_match_embedded_tokens_on_flex() {
    looked_up_rows_match_embedded_tokens_on(Device::flex());
}

#[test]
#[allow(deprecated)]
#[cfg(feature = "ndarray")]
fn looked_up_rows_match_embedded_tokens_on_ndarray() {
    looked_up_rows_match_embedded_tokens_on(Device::ndarray());
}

#[test]
fn fused_matches_plain_on_flex() {
    assert!(fused::supports(&Device::flex()));
    fused_matches_plain_on(Device::flex());
}

#[test]
#[allow(deprecated)]
#[cfg(feature = "ndarray")]
fn fused_matches_plain_on_ndarray() {
    fused_matches_plain_on(Device::ndarray());
}

#[test]
fn padding_changes_neither_state_nor_outputs() {
    let device = Device::flex();
    device.seed(4);
    for kind in [
        CellKind::Lstm,
        CellKind::Gru,
        CellKind::Rnn(Nonlinearity::Tanh),
    ] {
        for fused in [true, false] {
            let layer = RecurrentConfig::new(kind, 3, 4)
                .with_num_layers(2)
                .with_bidirectional(true)
                .with_fused(fused)
                .init(&device);
            let short = Tensor::<3>::random([1, 3, 3], Distribution::Default, &device);
            let padded = Tensor::cat(
                vec![
                    Tensor::cat(
                        vec![
                            short.clone(),
                            Tensor::random([1, 4, 3], Distribution::Default, &device),
                        ],
                        1,
                    ),
                    Tensor::random([1, 7, 3], Distribution::Default, &device),
                ],
                0,
            );
            let (alone, alone_state) = layer.forward(short, None).unwrap();
            let (out, state) = layer.forward_padded(padded, None, &[3, 7]).unwrap();
            let what = format!("{kind:?} fused {fused}");
            assert_close(
                &what,
                values(out.clone().slice([0..1, 0..3])),
                values(alone.clone()),
                1e-5,
            );
            assert!(
                values(out.clone().slice([0..1, 3..7]))
                    .iter()
                    .all(|v| *v == 0.0)
            );
            assert_close(
                &what,
                values(state.hidden.slice([0..4, 0..1])),
                values(alone_state.hidden),
                1e-5,
            );
            let last = last_valid_output(out, &[3, 7]).unwrap();
            assert_close(
                &what,
                values(last.narrow(0, 0, 1)),
                values(alone.slice([0..1, 2..3]).reshape([1, 8])),
                1e-6,
            );
        }
    }
}

#[test]
fn time_first_layers_give_the_batch_first_numbers() {
    let device = Device::flex();
    let config = RecurrentConfig::lstm(3, 4).with_num_layers(2);
    let batch_first = config.init(&device);
    let time_first = config
        .with_batch_first(false)
        .init(&device)
        .load_record(batch_first.clone().into_record());
    let x = Tensor::<3>::random([2, 5, 3], Distribution::Default, &device);
    let (a, state_a) = batch_first.forward(x.clone(), None).unwrap();
    let (b, state_b) = time_first.forward(x.swap_dims(0, 1), None).unwrap();
    assert_eq!(b.dims(), [5, 2, 4]);
    assert_close("output", values(b.swap_dims(0, 1)), values(a), 1e-6);
    assert_close(
        "state",
        values(state_b.hidden),
        values(state_a.hidden),
        1e-6,
    );
    let step = time_first
        .step(Tensor::zeros([2, 3], &device), None)
        .unwrap();
    assert_eq!(step.0.dims(), [2, 4]);
}

#[test]
fn lengths_that_do_not_fit_are_typed_errors() {
    let device = Device::flex();
    let gru = RecurrentConfig::gru(3, 4).init(&device);
    let x = Tensor::<3>::zeros([2, 5, 3], &device);
    for lengths in [vec![5], vec![5, 0], vec![6, 1], vec![1, 2, 3]] {
        assert_eq!(
            gru.forward_padded(x.clone(), None, &lengths).unwrap_err(),
            RecurrentError::Lengths {
                lengths: lengths.clone(),
                batch: 2,
                time: 5
            }
        );
    }
    assert!(last_valid_output(x, &[0, 1]).is_err());
}
