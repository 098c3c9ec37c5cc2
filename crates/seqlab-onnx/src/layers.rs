//! seqlab's layers as ONNX nodes, from their weights under PyTorch's names
//! ([`NamedTensors`], as [`PytorchWeights::save_pytorch`](seqlab_models::PytorchWeights)
//! writes them): an embedding as `Gather`, a linear layer as `Gemm` or `MatMul` + `Add`, and
//! a stack of recurrent layers as one ONNX `RNN`, `LSTM` or `GRU` node per layer.

use seqlab_models::{CellKind, NamedTensors, Nonlinearity, RecurrentConfig};

use crate::OnnxError;
use crate::graph::{GraphBuilder, Value};

/// Embedding lookup: `Gather` of the rows of `{prefix}weight` `[vocab, width]` at `tokens`
/// (int64, any shape); the result has `tokens`' shape and one more axis of `width`.
pub fn embedding(
    graph: &mut GraphBuilder,
    weights: &NamedTensors,
    prefix: &str,
    tokens: &Value,
) -> Result<Value, OnnxError> {
    let table = graph.named_weight(weights, &format!("{prefix}weight"))?;
    Ok(graph.op("Gather", &[&table, tokens], vec![]))
}

/// A linear layer `x · Wᵀ + b` with `{prefix}weight` `[out, in]` and `{prefix}bias` `[out]`
/// (if there is one) over the last axis of `input`, which has `rank` axes: one `Gemm` for
/// `rank` 2, `MatMul` with the transposed weight and `Add` for more.
pub fn linear(
    graph: &mut GraphBuilder,
    weights: &NamedTensors,
    prefix: &str,
    input: &Value,
    rank: usize,
) -> Result<Value, OnnxError> {
    let weight = graph.named_weight(weights, &format!("{prefix}weight"))?;
    let bias_name = format!("{prefix}bias");
    let bias = match weights.get(&bias_name) {
        Some(_) => Some(graph.named_weight(weights, &bias_name)?),
        None => None,
    };
    Ok(project(graph, input, rank, &weight, bias.as_ref()))
}

/// `input · weightᵀ + bias` for a weight `[out, in]` already in the graph.
pub(crate) fn project(
    graph: &mut GraphBuilder,
    input: &Value,
    rank: usize,
    weight: &Value,
    bias: Option<&Value>,
) -> Value {
    if rank == 2 {
        return graph
            .op_outputs(
                "Gemm",
                &[Some(input), Some(weight), bias],
                1,
                vec![("transB", 1).into()],
            )
            .remove(0);
    }
    let transposed = graph.op("Transpose", &[weight], vec![("perm", vec![1, 0]).into()]);
    let product = graph.op("MatMul", &[input, &transposed], vec![]);
    match bias {
        Some(bias) => graph.op("Add", &[&product, bias], vec![]),
        None => product,
    }
}

/// Where padded sequences end, as graph values: `steps` int64 `[1, time]` (0, 1, …),
/// `lengths` as a column `[batch, 1]`, and `valid` bool `[batch, time]`, true at each
/// sequence's first `lengths[b]` steps.
pub(crate) struct StepMask {
    pub(crate) steps: Value,
    pub(crate) lengths: Value,
    pub(crate) valid: Value,
}

/// The [`StepMask`] of `lengths` int64 `[batch]` over the time axis of `ids` `[batch, time]`.
pub(crate) fn step_mask(graph: &mut GraphBuilder, ids: &Value, lengths: &Value) -> StepMask {
    let shape = graph.op("Shape", &[ids], vec![]);
    let one = graph.int_scalar(1);
    let time = graph.op("Gather", &[&shape, &one], vec![]);
    let zero = graph.int_scalar(0);
    let steps = graph.op("Range", &[&zero, &time, &one], vec![]);
    let (axis0, axis1) = (graph.ints(&[0]), graph.ints(&[1]));
    let steps = graph.op("Unsqueeze", &[&steps, &axis0], vec![]);
    let lengths = graph.op("Unsqueeze", &[lengths, &axis1], vec![]);
    let valid = graph.op("Less", &[&steps, &lengths], vec![]);
    StepMask {
        steps,
        lengths,
        valid,
    }
}

/// What a stack of recurrent layers gives: the last layer's outputs and the final state of
/// every layer and direction.
#[derive(Debug, Clone)]
pub struct RecurrentOutputs {
    /// `[time, batch, directions * hidden]`, zero after each sequence's length.
    pub output: Value,
    /// `[layers * directions, batch, hidden]`, PyTorch's `h_n`.
    pub hidden: Value,
    /// The LSTM's `c_n`, same shape; `None` for RNN and GRU.
    pub cell: Option<Value>,
}

/// The initial state of a stack of recurrent layers: `[layers * directions, batch, hidden]`
/// tensors, PyTorch's `h_0` (and `c_0` for an LSTM).
#[derive(Debug, Clone, Copy)]
pub struct InitialState<'a> {
    /// `h_0`.
    pub hidden: &'a Value,
    /// `c_0`, for an LSTM.
    pub cell: Option<&'a Value>,
}

/// The ONNX gate order as positions in PyTorch's: LSTM `i o f c` from `i f g o`, GRU `z r h`
/// from `r z n`.
pub(crate) fn onnx_gate_order(kind: CellKind) -> &'static [usize] {
    match kind {
        CellKind::Rnn(_) => &[0],
        CellKind::Lstm => &[0, 3, 1, 2],
        CellKind::Gru => &[1, 0, 2],
    }
}

/// `values` `[gates * hidden, width]` (or `[gates * hidden]`, `width` 1) with its gate
/// blocks put in ONNX's order.
pub(crate) fn reorder_gates(
    values: &[f32],
    kind: CellKind,
    hidden: usize,
    width: usize,
) -> Vec<f32> {
    let block = hidden * width;
    onnx_gate_order(kind)
        .iter()
        .flat_map(|&gate| &values[gate * block..(gate + 1) * block])
        .copied()
        .collect()
}

/// The tensor `name` of `weights`, checked to have `shape`.
pub(crate) fn tensor<'w>(
    weights: &'w NamedTensors,
    name: &str,
    shape: &[usize],
) -> Result<&'w [f32], OnnxError> {
    let (got, values) = weights
        .get(name)
        .ok_or_else(|| OnnxError::MissingWeight(name.into()))?;
    if got != shape {
        return Err(OnnxError::WeightShape {
            name: name.into(),
            expected: shape.to_vec(),
            got: got.to_vec(),
        });
    }
    Ok(values)
}

/// The ONNX node's activation names for a plain RNN: `Tanh`, `Relu`, or `Affine` with
/// slope 1 and offset 0 for the linear RNN.
fn rnn_activation(nonlinearity: Nonlinearity) -> &'static str {
    match nonlinearity {
        Nonlinearity::Tanh => "Tanh",
        Nonlinearity::Relu => "Relu",
        Nonlinearity::Identity => "Affine",
    }
}

/// A stack of recurrent layers (`config`: cell, sizes, layers, directions, bias; dropout
/// between layers is a training-time operation and has no node) over `input`
/// `[time, batch, config.input_size]`, its weights under `prefix` in PyTorch's names
/// (`weight_ih_l0`, `bias_hh_l1_reverse`, …). Each layer is one ONNX `RNN`, `LSTM` or `GRU`
/// node with its gates reordered to ONNX's layout and, for the GRU, `linear_before_reset`
/// (PyTorch's formula). With `lengths` (int32 `[batch]`), sequence `b` is its first
/// `lengths[b]` steps, as with PyTorch's packed sequences; `state` is the initial state
/// (zeros when `None`).
pub fn recurrent(
    graph: &mut GraphBuilder,
    weights: &NamedTensors,
    prefix: &str,
    config: &RecurrentConfig,
    input: &Value,
    lengths: Option<&Value>,
    state: Option<InitialState>,
) -> Result<RecurrentOutputs, OnnxError> {
    let kind = config.kind;
    let (gates, hidden) = (kind.gates(), config.hidden_size);
    let directions = if config.bidirectional { 2 } else { 1 };
    let op_type = match kind {
        CellKind::Rnn(_) => "RNN",
        CellKind::Lstm => "LSTM",
        CellKind::Gru => "GRU",
    };
    let mut x = input.clone();
    let (mut hiddens, mut cells) = (Vec::new(), Vec::new());
    for layer in 0..config.num_layers {
        let width = if layer == 0 {
            config.input_size
        } else {
            directions * hidden
        };
        let (mut w, mut r, mut b) = (Vec::new(), Vec::new(), Vec::new());
        for direction in 0..directions {
            let suffix = if direction == 1 { "_reverse" } else { "" };
            let name = |what: &str| format!("{prefix}{what}_l{layer}{suffix}");
            let w_ih = tensor(weights, &name("weight_ih"), &[gates * hidden, width])?;
            let w_hh = tensor(weights, &name("weight_hh"), &[gates * hidden, hidden])?;
            w.extend(reorder_gates(w_ih, kind, hidden, width));
            r.extend(reorder_gates(w_hh, kind, hidden, hidden));
            if config.bias {
                for what in ["bias_ih", "bias_hh"] {
                    let bias = tensor(weights, &name(what), &[gates * hidden])?;
                    b.extend(reorder_gates(bias, kind, hidden, 1));
                }
            }
        }
        let stem = format!("{prefix}l{layer}");
        let w = graph.weight(
            &format!("{stem}.W"),
            &[directions, gates * hidden, width],
            &w,
        );
        let r = graph.weight(
            &format!("{stem}.R"),
            &[directions, gates * hidden, hidden],
            &r,
        );
        let b = config
            .bias
            .then(|| graph.weight(&format!("{stem}.B"), &[directions, 2 * gates * hidden], &b));
        let layer_state = state.map(|state| {
            let start = (layer * directions) as i64;
            let (starts, ends, axes) = (
                graph.ints(&[start]),
                graph.ints(&[start + directions as i64]),
                graph.ints(&[0]),
            );
            let slice = |graph: &mut GraphBuilder, of: &Value| {
                graph.op("Slice", &[of, &starts, &ends, &axes], vec![])
            };
            let h = slice(graph, state.hidden);
            let c = state.cell.map(|cell| slice(graph, cell));
            (h, c)
        });
        let mut attributes = vec![
            ("hidden_size", hidden as i64).into(),
            (
                "direction",
                if directions == 2 {
                    "bidirectional"
                } else {
                    "forward"
                },
            )
                .into(),
        ];
        match kind {
            CellKind::Rnn(nonlinearity) => {
                let activation = rnn_activation(nonlinearity);
                attributes.push(("activations", vec![activation; directions]).into());
                if nonlinearity == Nonlinearity::Identity {
                    attributes.push(("activation_alpha", vec![1.0f32; directions]).into());
                    attributes.push(("activation_beta", vec![0.0f32; directions]).into());
                }
            }
            CellKind::Gru => attributes.push(("linear_before_reset", 1).into()),
            CellKind::Lstm => {}
        }
        let (h0, c0) = match &layer_state {
            Some((h, c)) => (Some(h), c.as_ref()),
            None => (None, None),
        };
        let mut inputs = vec![Some(&x), Some(&w), Some(&r), b.as_ref(), lengths, h0];
        if kind == CellKind::Lstm {
            inputs.push(c0);
        }
        let outputs = if kind == CellKind::Lstm { 3 } else { 2 };
        let mut out = graph.op_outputs(op_type, &inputs, outputs, attributes);
        if kind == CellKind::Lstm {
            cells.push(out.pop().expect("an LSTM node has three outputs"));
        }
        hiddens.push(out.pop().expect("a recurrent node has a final state"));
        // Y is [time, directions, batch, hidden]: the next layer reads [time, batch,
        // directions * hidden].
        let y = out.pop().expect("a recurrent node has outputs");
        let y = graph.op("Transpose", &[&y], vec![("perm", vec![0, 2, 1, 3]).into()]);
        let shape = graph.ints(&[0, 0, -1]);
        x = graph.op("Reshape", &[&y, &shape], vec![]);
    }
    let concat = |graph: &mut GraphBuilder, parts: Vec<Value>| {
        if parts.len() == 1 {
            return parts.into_iter().next().expect("one part");
        }
        let parts: Vec<&Value> = parts.iter().collect();
        graph.op("Concat", &parts, vec![("axis", 0).into()])
    };
    let hidden = concat(graph, hiddens);
    let cell = (!cells.is_empty()).then(|| concat(graph, cells));
    Ok(RecurrentOutputs {
        output: x,
        hidden,
        cell,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gates_are_put_in_onnx_order() {
        // Hidden 1, width 1: PyTorch's LSTM rows are i f g o, ONNX's i o f c.
        let lstm = reorder_gates(&[0.0, 1.0, 2.0, 3.0], CellKind::Lstm, 1, 1);
        assert_eq!(lstm, [0.0, 3.0, 1.0, 2.0]);
        // Hidden 2, width 1: whole blocks move; GRU r z n becomes z r h.
        let gru = reorder_gates(&[0.0, 0.5, 1.0, 1.5, 2.0, 2.5], CellKind::Gru, 2, 1);
        assert_eq!(gru, [1.0, 1.5, 0.0, 0.5, 2.0, 2.5]);
    }
}
