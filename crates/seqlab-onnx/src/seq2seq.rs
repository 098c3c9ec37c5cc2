//! The RNN course's encoder–decoders ([`Seq2Seq`](seqlab_models::Seq2Seq)) as one ONNX graph
//! that decodes greedily: the encoder, then the decoder as an ONNX `Loop` whose body is one
//! decoder step (a zero decoder needs no loop: it reads nothing, so one pass decodes); and
//! the notebook's hand-built copy network as two `RNN` nodes.

use seqlab_models::{
    CellKind, DecoderKind, NamedTensors, RecurrentConfig, Seq2SeqConfig, SeqEncoderDecoderConfig,
};

use crate::OnnxError;
use crate::graph::{Dim, ElementType, GraphBuilder, OnnxModel, Value};
use crate::layers::{InitialState, linear, project, recurrent, step_mask, tensor};

const BATCH: Dim = Dim::Named("batch");

/// A `[classes, classes]` identity matrix: `Gather` of its rows one-hot encodes ids.
fn one_hot_table(graph: &mut GraphBuilder, name: &str, classes: usize) -> Value {
    let mut eye = vec![0.0; classes * classes];
    for class in 0..classes {
        eye[class * classes + class] = 1.0;
    }
    graph.weight(name, &[classes, classes], &eye)
}

/// A [`Seq2Seq`](seqlab_models::Seq2Seq) as an ONNX graph that decodes greedily, from its
/// config and its weights under these names: the encoder's and the decoder's layers under
/// `encoder.` and `decoder.` in PyTorch's names (`weight_ih_l0`, …), the read-out
/// `output.weight` `[target_classes, hidden]` and `output.bias`, and for an attention decoder
/// `attention.score.weight` and `attention.combine.weight` (PyTorch's `[out, in]`).
///
/// Inputs: `source` int64 `[batch, source_time]` (symbol ids, one-hot encoded in the graph),
/// `lengths` int64 `[batch]` (source `b` is its first `lengths[b]` symbols), and `steps`
/// int64 scalar, the symbols to write. Output: `symbols` int64 `[batch, steps]`, each step's
/// most likely symbol, fed back as the next step's input (the stop symbol, id 0, before the
/// first), as [`Seq2Seq::greedy`](seqlab_models::Seq2Seq::greedy) decodes.
pub fn seq2seq(config: &Seq2SeqConfig, weights: &NamedTensors) -> Result<OnnxModel, OnnxError> {
    let mut graph = GraphBuilder::new("seq2seq");
    let source = graph.input(
        "source",
        ElementType::Int64,
        &[BATCH, Dim::Named("source_time")],
    );
    let lengths = graph.input("lengths", ElementType::Int64, &[BATCH]);
    let steps = graph.input("steps", ElementType::Int64, &[]);
    let (hidden, targets) = (config.hidden_size, config.target_classes);
    let layers =
        |input| RecurrentConfig::new(config.kind, input, hidden).with_num_layers(config.num_layers);

    let source_eye = one_hot_table(&mut graph, "source_one_hot", config.source_classes);
    let time_major = graph.op("Transpose", &[&source], vec![("perm", vec![1, 0]).into()]);
    let one_hot = graph.op("Gather", &[&source_eye, &time_major], vec![]);
    let lengths_i32 = graph.op("Cast", &[&lengths], vec![("to", 6).into()]);
    let encoder = layers(config.source_classes);
    let encoded = recurrent(
        &mut graph,
        weights,
        "encoder.",
        &encoder,
        &one_hot,
        Some(&lengths_i32),
        None,
    )?;
    let read_out = graph.named_weight(weights, "output.weight")?;
    let read_out_bias = graph.named_weight(weights, "output.bias")?;

    let symbols = match config.decoder {
        DecoderKind::Zero => {
            // Zeros [steps, batch, 1] through the decoder from the encoder's final state.
            let batch = batch_size(&mut graph, &lengths);
            let (steps_1d, one) = (unsqueeze0(&mut graph, &steps), graph.ints(&[1]));
            let shape = graph.op(
                "Concat",
                &[&steps_1d, &batch, &one],
                vec![("axis", 0).into()],
            );
            let zeros = graph.op("ConstantOfShape", &[&shape], vec![]);
            let state = InitialState {
                hidden: &encoded.hidden,
                cell: encoded.cell.as_ref(),
            };
            let decoder = layers(1);
            let out = recurrent(
                &mut graph,
                weights,
                "decoder.",
                &decoder,
                &zeros,
                None,
                Some(state),
            )?;
            let logits = project(&mut graph, &out.output, 3, &read_out, Some(&read_out_bias));
            let chosen = graph.op(
                "ArgMax",
                &[&logits],
                vec![("axis", 2).into(), ("keepdims", 0).into()],
            );
            graph.op("Transpose", &[&chosen], vec![("perm", vec![1, 0]).into()])
        }
        DecoderKind::Feedback | DecoderKind::Attention => {
            let attention = (config.decoder == DecoderKind::Attention)
                .then(|| {
                    AttentionMemory::new(&mut graph, weights, &encoded.output, &source, &lengths)
                })
                .transpose()?;
            let decoder = DecoderStep {
                config: layers(match attention {
                    Some(_) => targets + hidden,
                    None => targets,
                }),
                kind: config.kind,
                targets,
                hidden,
                read_out: &read_out,
                read_out_bias: &read_out_bias,
                attention: attention.as_ref(),
            };
            let body = decoder.loop_body(weights)?;
            // The stop symbol (0) before the first step, and no attentional state yet.
            let start = graph.op("Sub", &[&lengths, &lengths], vec![]);
            let feed = attention.as_ref().map(|_| {
                let batch = batch_size(&mut graph, &lengths);
                let width = graph.ints(&[hidden as i64]);
                let shape = graph.op("Concat", &[&batch, &width], vec![("axis", 0).into()]);
                graph.op("ConstantOfShape", &[&shape], vec![])
            });
            let mut inputs = vec![Some(&steps), None, Some(&encoded.hidden)];
            if let Some(cell) = &encoded.cell {
                inputs.push(Some(cell));
            }
            inputs.push(Some(&start));
            if let Some(feed) = &feed {
                inputs.push(Some(feed));
            }
            let carried = inputs.len() - 2;
            let mut outputs =
                graph.op_outputs("Loop", &inputs, carried + 1, vec![("body", body).into()]);
            let chosen = outputs.pop().expect("the loop's scan output");
            graph.op("Transpose", &[&chosen], vec![("perm", vec![1, 0]).into()])
        }
    };
    graph.output(
        symbols,
        "symbols",
        ElementType::Int64,
        &[BATCH, Dim::Named("steps")],
    );
    Ok(graph.into_model(&format!(
        "seqlab encoder-decoder: {}, {} layer(s) of {}, {} decoder, {} source and {} target \
         classes, greedy decoding. Inputs: source int64 [batch, source_time], lengths int64 \
         [batch], steps int64 scalar. Output: symbols int64 [batch, steps].",
        config.kind.name(),
        config.num_layers,
        hidden,
        config.decoder.name(),
        config.source_classes,
        targets
    )))
}

/// `[batch]` as a 1-D shape, from a `[batch]` tensor.
fn batch_size(graph: &mut GraphBuilder, lengths: &Value) -> Value {
    graph.op("Shape", &[lengths], vec![])
}

/// A scalar as a 1-D tensor of one value.
fn unsqueeze0(graph: &mut GraphBuilder, scalar: &Value) -> Value {
    let axis = graph.ints(&[0]);
    graph.op("Unsqueeze", &[scalar, &axis], vec![])
}

/// What Luong attention reads every step, computed once from the encoder's outputs.
struct AttentionMemory {
    /// The encoder's outputs `[batch, source_time, hidden]`.
    memory: Value,
    /// `(W_a · memory)ᵀ`: `[batch, hidden, source_time]`.
    keys: Value,
    /// `[batch, 1, source_time]`, true at real source steps.
    valid: Value,
    /// `W_c` `[hidden, 2 · hidden]`.
    combine: Value,
}

impl AttentionMemory {
    fn new(
        graph: &mut GraphBuilder,
        weights: &NamedTensors,
        encoded: &Value,
        source: &Value,
        lengths: &Value,
    ) -> Result<Self, OnnxError> {
        let memory = graph.op(
            "Transpose",
            &[encoded],
            vec![("perm", vec![1, 0, 2]).into()],
        );
        let score = graph.named_weight(weights, "attention.score.weight")?;
        let keys = project(graph, &memory, 3, &score, None);
        let keys = graph.op("Transpose", &[&keys], vec![("perm", vec![0, 2, 1]).into()]);
        let valid = step_mask(graph, source, lengths).valid;
        let axis1 = graph.ints(&[1]);
        let valid = graph.op("Unsqueeze", &[&valid, &axis1], vec![]);
        let combine = graph.named_weight(weights, "attention.combine.weight")?;
        Ok(Self {
            memory,
            keys,
            valid,
            combine,
        })
    }
}

/// One greedy decoder step, built as a `Loop` body.
struct DecoderStep<'a> {
    config: RecurrentConfig,
    kind: CellKind,
    targets: usize,
    hidden: usize,
    read_out: &'a Value,
    read_out_bias: &'a Value,
    attention: Option<&'a AttentionMemory>,
}

impl DecoderStep<'_> {
    /// The body: (iteration, condition, state, previous symbol[, attentional state]) →
    /// (condition, next state, chosen symbol[, attentional state], chosen symbol as the scan
    /// output).
    fn loop_body(&self, weights: &NamedTensors) -> Result<crate::proto::GraphProto, OnnxError> {
        let mut body = GraphBuilder::subgraph("decoder_step");
        let layers = Dim::Fixed(self.config.num_layers);
        let state_dims = [layers, BATCH, Dim::Fixed(self.hidden)];
        body.input("iteration", ElementType::Int64, &[]);
        let condition = body.input("condition", ElementType::Bool, &[]);
        let hidden = body.input("hidden", ElementType::Float, &state_dims);
        let cell = (self.kind == CellKind::Lstm)
            .then(|| body.input("cell", ElementType::Float, &state_dims));
        let previous = body.input("previous", ElementType::Int64, &[BATCH]);
        let feed = self.attention.map(|_| {
            body.input(
                "feed",
                ElementType::Float,
                &[BATCH, Dim::Fixed(self.hidden)],
            )
        });

        let eye = one_hot_table(&mut body, "target_one_hot", self.targets);
        let mut input = body.op("Gather", &[&eye, &previous], vec![]);
        if let Some(feed) = &feed {
            input = body.op("Concat", &[&input, feed], vec![("axis", 1).into()]);
        }
        let input = unsqueeze0(&mut body, &input);
        let state = InitialState {
            hidden: &hidden,
            cell: cell.as_ref(),
        };
        let step = recurrent(
            &mut body,
            weights,
            "decoder.",
            &self.config,
            &input,
            None,
            Some(state),
        )?;
        let axis0 = body.ints(&[0]);
        let output = body.op("Squeeze", &[&step.output, &axis0], vec![]);
        let (read, next_feed) = match self.attention {
            Some(attention) => {
                let attended = attend(&mut body, attention, &output);
                (attended.clone(), Some(attended))
            }
            None => (output, None),
        };
        let logits = project(&mut body, &read, 2, self.read_out, Some(self.read_out_bias));
        let chosen = body.op(
            "ArgMax",
            &[&logits],
            vec![("axis", 1).into(), ("keepdims", 0).into()],
        );

        body.output(condition.clone(), "condition_out", ElementType::Bool, &[]);
        body.output(step.hidden, "hidden_out", ElementType::Float, &state_dims);
        if let Some(cell) = step.cell {
            body.output(cell, "cell_out", ElementType::Float, &state_dims);
        }
        body.output(chosen.clone(), "previous_out", ElementType::Int64, &[BATCH]);
        if let Some(next_feed) = next_feed {
            let dims = [BATCH, Dim::Fixed(self.hidden)];
            body.output(next_feed, "feed_out", ElementType::Float, &dims);
        }
        body.output(chosen, "chosen", ElementType::Int64, &[BATCH]);
        Ok(body.into_graph())
    }
}

/// Luong attention from the decoder's output `[batch, hidden]` over the memory: the
/// attentional state `tanh(W_c [context; output])` `[batch, hidden]`.
fn attend(graph: &mut GraphBuilder, attention: &AttentionMemory, output: &Value) -> Value {
    let axis1 = graph.ints(&[1]);
    let query = graph.op("Unsqueeze", &[output, &axis1], vec![]);
    let scores = graph.op("MatMul", &[&query, &attention.keys], vec![]);
    // seqlab fills the padded steps' scores with -1e9 before the softmax; so does this.
    let floor = graph.float_scalar(-1.0e9);
    let scores = graph.op("Where", &[&attention.valid, &scores, &floor], vec![]);
    let weights = graph.op("Softmax", &[&scores], vec![("axis", 2).into()]);
    let context = graph.op("MatMul", &[&weights, &attention.memory], vec![]);
    let joined = graph.op("Concat", &[&context, &query], vec![("axis", 2).into()]);
    let combined = project(graph, &joined, 3, &attention.combine, None);
    let state = graph.op("Tanh", &[&combined], vec![]);
    graph.op("Squeeze", &[&state, &axis1], vec![])
}

/// The RNN course's hand-built copy network
/// ([`SeqEncoderDecoder`](seqlab_models::SeqEncoderDecoder)) as an ONNX graph, from its weights under the names
/// [`PytorchWeights`](seqlab_models::PytorchWeights) gives it (`encoder.i_h.`, `encoder.h_h.`,
/// `encoder.h_0`, `decoder.h_h.`, `decoder.h_o.`). Its encoder `h' = tanh(W_ih x + W_hh h)`
/// (biases included) from the learnt `h_0` is an ONNX `RNN` node with tanh; its decoder
/// `h' = tanh(W_hh h)` reads nothing, so it is an `RNN` node over zeros of width 1 with zero
/// input weights, run for as many steps as the source has.
///
/// Input: `source` int64 `[batch, time]` (symbol ids). Output: `logits` `[batch, time,
/// classes]`.
pub fn hand_built_seq2seq(
    config: &SeqEncoderDecoderConfig,
    weights: &NamedTensors,
) -> Result<OnnxModel, OnnxError> {
    let (classes, hidden) = (config.classes, config.hidden_size);
    let mut graph = GraphBuilder::new("hand_built_seq2seq");
    let source = graph.input("source", ElementType::Int64, &[BATCH, Dim::Named("time")]);
    let eye = one_hot_table(&mut graph, "one_hot", classes);
    let time_major = graph.op("Transpose", &[&source], vec![("perm", vec![1, 0]).into()]);
    let one_hot = graph.op("Gather", &[&eye, &time_major], vec![]);

    // The learnt h_0 [hidden] as [1, batch, hidden].
    let h0 = tensor(weights, "encoder.h_0", &[hidden])?;
    let h0 = graph.weight("encoder.h_0", &[1, 1, hidden], h0);
    let shape = graph.op("Shape", &[&source], vec![]);
    let zero = graph.int_scalar(0);
    let batch = graph.op("Gather", &[&shape, &zero], vec![]);
    let batch = unsqueeze0(&mut graph, &batch);
    let (one, width) = (graph.ints(&[1]), graph.ints(&[hidden as i64]));
    let state_shape = graph.op("Concat", &[&one, &batch, &width], vec![("axis", 0).into()]);
    let h0 = graph.op("Expand", &[&h0, &state_shape], vec![]);

    let tanh = vec![
        ("hidden_size", hidden as i64).into(),
        ("activations", vec!["Tanh"]).into(),
    ];
    let w = tensor(weights, "encoder.i_h.weight", &[hidden, classes])?;
    let w = graph.weight("encoder.W", &[1, hidden, classes], w);
    let r = tensor(weights, "encoder.h_h.weight", &[hidden, hidden])?;
    let r = graph.weight("encoder.R", &[1, hidden, hidden], r);
    let mut b = tensor(weights, "encoder.i_h.bias", &[hidden])?.to_vec();
    b.extend(tensor(weights, "encoder.h_h.bias", &[hidden])?);
    let b = graph.weight("encoder.B", &[1, 2 * hidden], &b);
    let inputs = [
        Some(&one_hot),
        Some(&w),
        Some(&r),
        Some(&b),
        None,
        Some(&h0),
    ];
    let encoded = graph.op_outputs("RNN", &inputs, 2, tanh.clone()).remove(1);

    // The decoder over zeros [time, batch, 1], its input weights zero.
    // Gathered at the 1-D index [1], the length is already 1-D.
    let time = graph.op("Gather", &[&shape, &one], vec![]);
    let zeros_shape = graph.op("Concat", &[&time, &batch, &one], vec![("axis", 0).into()]);
    let zeros = graph.op("ConstantOfShape", &[&zeros_shape], vec![]);
    let w = graph.weight("decoder.W", &[1, hidden, 1], &vec![0.0; hidden]);
    let r = tensor(weights, "decoder.h_h.weight", &[hidden, hidden])?;
    let r = graph.weight("decoder.R", &[1, hidden, hidden], r);
    let mut b = vec![0.0; hidden];
    b.extend(tensor(weights, "decoder.h_h.bias", &[hidden])?);
    let b = graph.weight("decoder.B", &[1, 2 * hidden], &b);
    let inputs = [
        Some(&zeros),
        Some(&w),
        Some(&r),
        Some(&b),
        None,
        Some(&encoded),
    ];
    let states = graph.op_outputs("RNN", &inputs, 2, tanh).remove(0);
    let states = graph.op("Squeeze", &[&states, &one], vec![]);
    let states = graph.op(
        "Transpose",
        &[&states],
        vec![("perm", vec![1, 0, 2]).into()],
    );
    let logits = linear(&mut graph, weights, "decoder.h_o.", &states, 3)?;
    let dims = [BATCH, Dim::Named("time"), Dim::Fixed(classes)];
    graph.output(logits, "logits", ElementType::Float, &dims);
    Ok(graph.into_model(&format!(
        "seqlab's hand-built copy network ({classes} symbols, {hidden} hidden): a tanh encoder \
         and an input-less decoder. Input: source int64 [batch, time]. Output: logits [batch, \
         time, classes]."
    )))
}
