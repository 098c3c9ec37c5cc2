//! fastai's first language models (LMModel1–4, [`LmModel4`](seqlab_models::LmModel4) and its
//! siblings) as ONNX graphs. Their recurrence `h' = relu(W_hh (h + e) + b)` is an ONNX `RNN`
//! node with ReLU whose input and hidden weights are both `W_hh` (`W_hh e + W_hh h + b`), so
//! they run as one node too.

use seqlab_models::NamedTensors;

use crate::OnnxError;
use crate::graph::{Dim, ElementType, GraphBuilder, OnnxModel};
use crate::layers::{linear, tensor};

const BATCH: Dim = Dim::Named("batch");

/// Which of the four: what the graph reads and scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimpleLm {
    /// LMModel1: exactly three tokens in, the fourth scored.
    Lm1,
    /// LMModel2: any number of tokens in, the next one scored.
    Lm2,
    /// LMModel3: LMModel2 from a carried state, which it gives back.
    Lm3,
    /// LMModel4: LMModel3 scoring after every token.
    Lm4,
}

/// One of fastai's first language models as an ONNX graph, from its weights under the book's
/// names (`i_h.weight` `[vocab, hidden]`, `h_h.weight`, `h_h.bias`, `h_o.weight`, `h_o.bias`).
///
/// Inputs: `tokens` int64 `[batch, time]` (time 3 for LMModel1) and, for LMModel3 and 4,
/// `state_h` float `[1, batch, hidden]`. Outputs: `logits` `[batch, 1, vocab]` (LMModel4:
/// `[batch, time, vocab]`) and, for LMModel3 and 4, `next_state_h`.
pub fn simple_language_model(
    model: SimpleLm,
    weights: &NamedTensors,
) -> Result<OnnxModel, OnnxError> {
    let (table_dims, _) = weights
        .get("i_h.weight")
        .ok_or_else(|| OnnxError::MissingWeight("i_h.weight".into()))?;
    let (vocab, hidden) = (table_dims[0], table_dims[1]);
    let (h_h, b_h) = (
        tensor(weights, "h_h.weight", &[hidden, hidden])?,
        tensor(weights, "h_h.bias", &[hidden])?,
    );
    let stateful = matches!(model, SimpleLm::Lm3 | SimpleLm::Lm4);
    let mut graph = GraphBuilder::new("simple_language_model");
    let time = match model {
        SimpleLm::Lm1 => Dim::Fixed(3),
        _ => Dim::Named("time"),
    };
    let tokens = graph.input("tokens", ElementType::Int64, &[BATCH, time.clone()]);
    let state_dims = [Dim::Fixed(1), BATCH, Dim::Fixed(hidden)];
    let state = stateful.then(|| graph.input("state_h", ElementType::Float, &state_dims));
    let time_major = graph.op("Transpose", &[&tokens], vec![("perm", vec![1, 0]).into()]);
    let table = graph.named_weight(weights, "i_h.weight")?;
    let embedded = graph.op("Gather", &[&table, &time_major], vec![]);
    // W_hh reads both the embedding and the state; its bias once.
    let w = graph.weight("h_h.W", &[1, hidden, hidden], h_h);
    let mut bias = b_h.to_vec();
    bias.resize(2 * hidden, 0.0);
    let b = graph.weight("h_h.B", &[1, 2 * hidden], &bias);
    let attributes = vec![
        ("hidden_size", hidden as i64).into(),
        ("activations", vec!["Relu"]).into(),
    ];
    let inputs = [
        Some(&embedded),
        Some(&w),
        Some(&w),
        Some(&b),
        None,
        state.as_ref(),
    ];
    let mut out = graph.op_outputs("RNN", &inputs, 2, attributes);
    let last = out.pop().expect("an RNN node gives its final state");
    let every_step = out.pop().expect("an RNN node gives its outputs");
    let vocab_dim = Dim::Fixed(vocab);
    let (scored, logits_dims) = if model == SimpleLm::Lm4 {
        // [time, 1, batch, hidden] -> [batch, time, hidden].
        let axis1 = graph.ints(&[1]);
        let steps = graph.op("Squeeze", &[&every_step, &axis1], vec![]);
        let steps = graph.op("Transpose", &[&steps], vec![("perm", vec![1, 0, 2]).into()]);
        (steps, [BATCH, time, vocab_dim])
    } else {
        // [1, batch, hidden] -> [batch, 1, hidden].
        let last = graph.op("Transpose", &[&last], vec![("perm", vec![1, 0, 2]).into()]);
        (last, [BATCH, Dim::Fixed(1), vocab_dim])
    };
    let logits = linear(&mut graph, weights, "h_o.", &scored, 3)?;
    graph.output(logits, "logits", ElementType::Float, &logits_dims);
    if stateful {
        graph.output(last, "next_state_h", ElementType::Float, &state_dims);
    }
    Ok(graph.into_model(&format!(
        "fastai's {model:?} over {vocab} tokens, hidden {hidden}: an RNN with ReLU. Inputs: \
         tokens int64 [batch, time]{}. Outputs: logits{}.",
        if stateful {
            ", state_h float [1, batch, hidden] (zeros to start)"
        } else {
            ""
        },
        if stateful { ", next_state_h" } else { "" }
    )))
}
