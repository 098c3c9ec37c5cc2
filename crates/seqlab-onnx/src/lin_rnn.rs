//! The RNN course's linear RNN ([`LinRnn`](seqlab_models::LinRnn)) as an ONNX graph that runs
//! free, as [`LinRnn::generate`](seqlab_models::LinRnn::generate) does: an ONNX `Loop` whose
//! body is one step of an ONNX `RNN` node with the identity (`Affine`, slope 1, offset 0) and
//! the read-out, each output fed back as the next input.

use seqlab_models::{CellKind, LinRnnConfig, NamedTensors, Nonlinearity, RecurrentConfig};

use crate::OnnxError;
use crate::graph::{Dim, ElementType, GraphBuilder, OnnxModel};
use crate::layers::{InitialState, linear, recurrent, tensor};

const BATCH: Dim = Dim::Named("batch");

/// A [`LinRnn`](seqlab_models::LinRnn) that runs free, from its config and its weights under
/// the names [`PytorchWeights`](seqlab_models::PytorchWeights) gives it (`rnn.`, `h_o.`,
/// `h_0`).
///
/// Inputs: `start` float `[batch, input]`, the first input, and `steps` int64 scalar. Output:
/// `generated` `[batch, steps, output]`, from the learnt initial state, each output the next
/// step's input (the model needs as many outputs as inputs).
pub fn lin_rnn(config: &LinRnnConfig, weights: &NamedTensors) -> Result<OnnxModel, OnnxError> {
    let (width, hidden) = (config.input_size, config.hidden_size);
    if config.output_size != width {
        return Err(OnnxError::WeightShape {
            name: "h_o.weight".into(),
            expected: vec![width, hidden],
            got: vec![config.output_size, hidden],
        });
    }
    let mut graph = GraphBuilder::new("lin_rnn");
    let start = graph.input("start", ElementType::Float, &[BATCH, Dim::Fixed(width)]);
    let steps = graph.input("steps", ElementType::Int64, &[]);
    // The learnt state [hidden] as [1, batch, hidden].
    let initial = tensor(weights, "h_0", &[hidden])?;
    let initial = graph.weight("h_0", &[1, 1, hidden], initial);
    let batch = graph.op("Shape", &[&start], vec![("end", 1).into()]);
    let (one, width_1d) = (graph.ints(&[1]), graph.ints(&[hidden as i64]));
    let shape = graph.op(
        "Concat",
        &[&one, &batch, &width_1d],
        vec![("axis", 0).into()],
    );
    let state = graph.op("Expand", &[&initial, &shape], vec![]);

    let mut body = GraphBuilder::subgraph("lin_rnn_step");
    let state_dims = [Dim::Fixed(1), BATCH, Dim::Fixed(hidden)];
    let input_dims = [BATCH, Dim::Fixed(width)];
    body.input("iteration", ElementType::Int64, &[]);
    let condition = body.input("condition", ElementType::Bool, &[]);
    let hidden_in = body.input("hidden", ElementType::Float, &state_dims);
    let input = body.input("input", ElementType::Float, &input_dims);
    let axis0 = body.ints(&[0]);
    let sequence = body.op("Unsqueeze", &[&input, &axis0], vec![]);
    let layer = RecurrentConfig::new(CellKind::Rnn(Nonlinearity::Identity), width, hidden);
    let state_in = InitialState {
        hidden: &hidden_in,
        cell: None,
    };
    let step = recurrent(
        &mut body,
        weights,
        "rnn.",
        &layer,
        &sequence,
        None,
        Some(state_in),
    )?;
    let out = body.op("Squeeze", &[&step.output, &axis0], vec![]);
    let output = linear(&mut body, weights, "h_o.", &out, 2)?;
    body.output(condition, "condition_out", ElementType::Bool, &[]);
    body.output(step.hidden, "hidden_out", ElementType::Float, &state_dims);
    body.output(output.clone(), "input_out", ElementType::Float, &input_dims);
    body.output(output, "generated_step", ElementType::Float, &input_dims);

    let inputs = [Some(&steps), None, Some(&state), Some(&start)];
    let mut outputs =
        graph.op_outputs("Loop", &inputs, 3, vec![("body", body.into_graph()).into()]);
    let generated = outputs.pop().expect("the loop's scan output");
    let generated = graph.op(
        "Transpose",
        &[&generated],
        vec![("perm", vec![1, 0, 2]).into()],
    );
    let dims = [BATCH, Dim::Named("steps"), Dim::Fixed(width)];
    graph.output(generated, "generated", ElementType::Float, &dims);
    Ok(graph.into_model(&format!(
        "seqlab linear RNN ({width} in and out, {hidden} hidden) running free. Inputs: start \
         float [batch, {width}], steps int64 scalar. Output: generated [batch, steps, {width}]."
    )))
}
