//! seqlab's models as whole ONNX graphs, from their config and their weights under PyTorch's
//! names: the recurrent language models (LMModel5–7, the character and text models), the
//! recurrent classifiers (mean, last and concat pooling), the MLP classifier and the
//! part-of-speech tagger (with its character-level word features).

use seqlab_models::{
    MlpClassifierConfig, NamedTensors, Pooling, RecurrentClassifierConfig, RecurrentConfig,
    RecurrentLmConfig, TaggerConfig,
};

use crate::OnnxError;
use crate::graph::{Dim, ElementType, GraphBuilder, OnnxModel, Value};
use crate::layers::{InitialState, StepMask, embedding, linear, project, recurrent, step_mask};

const BATCH: Dim = Dim::Named("batch");
const TIME: Dim = Dim::Named("time");

/// Token ids `[batch, time]` → embedded `[time, batch, width]`: the ids are transposed, not
/// the embedded floats.
fn embed_time_major(
    graph: &mut GraphBuilder,
    weights: &NamedTensors,
    prefix: &str,
    tokens: &Value,
) -> Result<Value, OnnxError> {
    let time_major = graph.op("Transpose", &[tokens], vec![("perm", vec![1, 0]).into()]);
    embedding(graph, weights, prefix, &time_major)
}

/// `[time, batch, width]` → `[batch, time, width]`.
fn batch_major(graph: &mut GraphBuilder, value: &Value) -> Value {
    graph.op("Transpose", &[value], vec![("perm", vec![1, 0, 2]).into()])
}

/// A [`RecurrentLm`](seqlab_models::RecurrentLm) (LMModel5–7, the character and text
/// language models) as an ONNX graph, from its config and its weights as
/// [`PytorchWeights::save_pytorch`](seqlab_models::PytorchWeights) writes them with an empty
/// prefix (`i_h.weight`, `rnn.weight_ih_l0`, …, `h_o.weight`, `h_o.bias`).
///
/// Inputs: `tokens` int64 `[batch, time]`, `state_h` float `[layers, batch, hidden]` (and
/// `state_c` for an LSTM): zeros to start, the last call's `next_state_h`/`next_state_c` to
/// go on from where it stopped. Outputs: `logits` `[batch, time, vocab]`, the scores of the
/// token after each input token, and `next_state_h` (`next_state_c`). A tied model's output
/// layer reads the embedding's weights, stored once.
///
/// ```
/// use burn::tensor::Device;
/// use seqlab_models::{CellKind, NamedTensors, PytorchWeights, RecurrentLmConfig};
///
/// let config = RecurrentLmConfig::new(CellKind::Lstm, 30, 16, 2);
/// let model = config.init(&Device::flex());
/// let mut weights = NamedTensors::default();
/// model.save_pytorch("", &mut weights);
/// let onnx = seqlab_onnx::language_model(&config, &weights)?;
/// let graph = onnx.0.graph.as_ref().unwrap();
/// let ops: Vec<_> = graph.node.iter().filter_map(|n| n.op_type.as_deref()).collect();
/// assert_eq!(ops.iter().filter(|op| **op == "LSTM").count(), 2);
/// # Ok::<(), seqlab_onnx::OnnxError>(())
/// ```
pub fn language_model(
    config: &RecurrentLmConfig,
    weights: &NamedTensors,
) -> Result<OnnxModel, OnnxError> {
    let mut graph = GraphBuilder::new("language_model");
    let tokens = graph.input("tokens", ElementType::Int64, &[BATCH, TIME]);
    let state_shape = [
        Dim::Fixed(config.num_layers),
        BATCH,
        Dim::Fixed(config.hidden_size),
    ];
    let lstm = config.kind == seqlab_models::CellKind::Lstm;
    let state_h = graph.input("state_h", ElementType::Float, &state_shape);
    let state_c = lstm.then(|| graph.input("state_c", ElementType::Float, &state_shape));
    let embedded = embed_time_major(&mut graph, weights, "i_h.", &tokens)?;
    let layers = RecurrentConfig::new(config.kind, config.embedding_width(), config.hidden_size)
        .with_num_layers(config.num_layers);
    let state = InitialState {
        hidden: &state_h,
        cell: state_c.as_ref(),
    };
    let out = recurrent(
        &mut graph,
        weights,
        "rnn.",
        &layers,
        &embedded,
        None,
        Some(state),
    )?;
    let out_bt = batch_major(&mut graph, &out.output);
    let logits = if config.tie_weights {
        let table = graph.named_weight(weights, "i_h.weight")?;
        let bias = graph.named_weight(weights, "h_o.bias")?;
        project(&mut graph, &out_bt, 3, &table, Some(&bias))
    } else {
        linear(&mut graph, weights, "h_o.", &out_bt, 3)?
    };
    let vocab = Dim::Fixed(config.vocab_size);
    graph.output(logits, "logits", ElementType::Float, &[BATCH, TIME, vocab]);
    graph.output(out.hidden, "next_state_h", ElementType::Float, &state_shape);
    if let Some(cell) = out.cell {
        graph.output(cell, "next_state_c", ElementType::Float, &state_shape);
    }
    Ok(graph.into_model(&format!(
        "seqlab language model: {}, {} layer(s) of {} over {} tokens. Inputs: tokens int64 \
         [batch, time], state_h{} float [layers, batch, hidden] (zeros to start). Outputs: \
         logits [batch, time, vocab] (the next token's scores after each token), \
         next_state_h{}.",
        config.kind.name(),
        config.num_layers,
        config.hidden_size,
        config.vocab_size,
        if lstm { " and state_c" } else { "" },
        if lstm { " and next_state_c" } else { "" },
    )))
}

/// A [`RecurrentClassifier`](seqlab_models::RecurrentClassifier) as an ONNX graph, from its
/// config and its weights under PyTorch's names (`emb_layer.`, `rnn.`, `mlp.`).
///
/// Inputs: `tokens` int64 `[batch, time]` and `lengths` int64 `[batch]`: sequence `b` is its
/// first `lengths[b]` tokens and the rest is padding, which changes nothing (pass `time` for
/// every sequence of an unpadded batch). Output: `logits` `[batch, classes]`. The recurrent
/// layers read `lengths` as `sequence_lens`; the pooling (mean, last or concat) masks the
/// padded steps as seqlab does.
pub fn classifier(
    config: &RecurrentClassifierConfig,
    weights: &NamedTensors,
) -> Result<OnnxModel, OnnxError> {
    let mut graph = GraphBuilder::new("classifier");
    let tokens = graph.input("tokens", ElementType::Int64, &[BATCH, TIME]);
    let lengths = graph.input("lengths", ElementType::Int64, &[BATCH]);
    let embedded = embed_time_major(&mut graph, weights, "emb_layer.", &tokens)?;
    let lengths_i32 = graph.op("Cast", &[&lengths], vec![("to", 6).into()]);
    let out = recurrent(
        &mut graph,
        weights,
        "rnn.",
        &config.recurrent,
        &embedded,
        Some(&lengths_i32),
        None,
    )?;
    let out = batch_major(&mut graph, &out.output);
    let pooled = pool(
        &mut graph,
        config.classifier.pooling,
        &tokens,
        &lengths,
        &out,
    );
    let logits = linear(&mut graph, weights, "mlp.", &pooled, 2)?;
    let classes = Dim::Fixed(config.classifier.classes);
    graph.output(logits, "logits", ElementType::Float, &[BATCH, classes]);
    Ok(graph.into_model(&format!(
        "seqlab classifier: {}, {} layer(s) of {}{}, {} pooling, {} classes. Inputs: tokens int64 \
         [batch, time], lengths int64 [batch]. Output: logits [batch, classes].",
        config.recurrent.kind.name(),
        config.recurrent.num_layers,
        config.recurrent.hidden_size,
        if config.recurrent.bidirectional {
            ", bidirectional"
        } else {
            ""
        },
        config.classifier.pooling.name(),
        config.classifier.classes
    )))
}

/// `out` `[batch, time, width]` pooled over each sequence's first `lengths[b]` steps.
fn pool(
    graph: &mut GraphBuilder,
    pooling: Pooling,
    tokens: &Value,
    lengths: &Value,
    out: &Value,
) -> Value {
    let StepMask {
        steps,
        lengths: lengths_col,
        valid,
    } = step_mask(graph, tokens, lengths);
    let (one, axis1, axis2) = (graph.int_scalar(1), graph.ints(&[1]), graph.ints(&[2]));
    let valid = graph.op("Unsqueeze", &[&valid, &axis2], vec![]);
    // The sum over time of `out` times a 0/1 mask [batch, time, 1].
    let masked_sum = |graph: &mut GraphBuilder, mask: &Value| {
        let mask = graph.op("Cast", &[mask], vec![("to", 1).into()]);
        let masked = graph.op("Mul", &[out, &mask], vec![]);
        graph.op(
            "ReduceSum",
            &[&masked, &axis1],
            vec![("keepdims", 0).into()],
        )
    };
    let mean = |graph: &mut GraphBuilder| {
        let sum = masked_sum(graph, &valid);
        let counts = graph.op("Cast", &[&lengths_col], vec![("to", 1).into()]);
        graph.op("Div", &[&sum, &counts], vec![])
    };
    let last = |graph: &mut GraphBuilder| {
        let last_step = graph.op("Sub", &[&lengths_col, &one], vec![]);
        let is_last = graph.op("Equal", &[&steps, &last_step], vec![]);
        let is_last = graph.op("Unsqueeze", &[&is_last, &axis2], vec![]);
        masked_sum(graph, &is_last)
    };
    match pooling {
        Pooling::Mean => mean(graph),
        Pooling::Last => last(graph),
        Pooling::Concat => {
            let last = last(graph);
            // seqlab pushes padded steps to -1e30 before the maximum; so does this.
            let floor = graph.float_scalar(-1e30);
            let kept = graph.op("Where", &[&valid, out, &floor], vec![]);
            let max = graph.op(
                "ReduceMax",
                &[&kept],
                vec![("axes", vec![1]).into(), ("keepdims", 0).into()],
            );
            let mean = mean(graph);
            graph.op("Concat", &[&last, &max, &mean], vec![("axis", 1).into()])
        }
    }
}

/// An [`MlpClassifier`](seqlab_models::MlpClassifier) as an ONNX graph: `tokens` int64
/// `[batch, seq_len]` (exactly the length it was built for) → `logits` `[batch, classes]`,
/// its weights under PyTorch's `nn.Sequential` names (`0.`, `2.`, `4.`).
pub fn mlp_classifier(
    config: &MlpClassifierConfig,
    weights: &NamedTensors,
) -> Result<OnnxModel, OnnxError> {
    let mut graph = GraphBuilder::new("mlp_classifier");
    let tokens = graph.input(
        "tokens",
        ElementType::Int64,
        &[BATCH, Dim::Fixed(config.seq_len)],
    );
    let embedded = embedding(&mut graph, weights, "0.", &tokens)?;
    let flat_shape = graph.ints(&[0, -1]);
    let flat = graph.op("Reshape", &[&embedded, &flat_shape], vec![]);
    let hidden = linear(&mut graph, weights, "2.", &flat, 2)?;
    let hidden = graph.op("Relu", &[&hidden], vec![]);
    let logits = linear(&mut graph, weights, "4.", &hidden, 2)?;
    let classes = Dim::Fixed(config.classes);
    graph.output(logits, "logits", ElementType::Float, &[BATCH, classes]);
    Ok(graph.into_model(&format!(
        "seqlab MLP classifier over {} tokens, {} classes. Input: tokens int64 [batch, {}]. \
         Output: logits [batch, classes].",
        config.seq_len, config.classes, config.seq_len
    )))
}

/// A [`Tagger`](seqlab_models::Tagger) (the part-of-speech tutorial's `LSTMTag` and its
/// exercise) as an ONNX graph, from its config and its weights under PyTorch's names
/// (`embeddings.`, `char_embeddings.`, `char_lstm.`, `lstm.`, `hidden2tag.`).
///
/// Inputs: `words` int64 `[batch, time]` and `lengths` int64 `[batch]` (sentence `b` is its
/// first `lengths[b]` words); a tagger with character features also takes `chars` int64
/// `[batch, time, chars]`, each word slot's character ids padded after its
/// `char_lengths[b, t]` (int64 `[batch, time]`, each at least 1, padding slots included).
/// Output: `scores` `[batch, time, tags]`, the tag scores before the softmax. The character
/// LSTM runs over all `batch × time` word slots at once, each its own length
/// (`sequence_lens`), and its final state joins the word's embedding, as in seqlab.
pub fn tagger(config: &TaggerConfig, weights: &NamedTensors) -> Result<OnnxModel, OnnxError> {
    let mut graph = GraphBuilder::new("tagger");
    let words = graph.input("words", ElementType::Int64, &[BATCH, TIME]);
    let lengths = graph.input("lengths", ElementType::Int64, &[BATCH]);
    let mut features = embed_time_major(&mut graph, weights, "embeddings.", &words)?;
    if let Some(chars) = config.chars {
        let ids = graph.input(
            "chars",
            ElementType::Int64,
            &[BATCH, TIME, Dim::Named("chars")],
        );
        let char_lengths = graph.input("char_lengths", ElementType::Int64, &[BATCH, TIME]);
        // Every word slot a sequence of characters: [slots, chars] -> [chars, slots, width].
        let slots = graph.op("Flatten", &[&ids], vec![("axis", 2).into()]);
        let embedded = embed_time_major(&mut graph, weights, "char_embeddings.", &slots)?;
        let flat = graph.ints(&[-1]);
        let slot_lengths = graph.op("Reshape", &[&char_lengths, &flat], vec![]);
        let slot_lengths = graph.op("Cast", &[&slot_lengths], vec![("to", 6).into()]);
        let char_lstm = RecurrentConfig::lstm(chars.embedding, chars.hidden);
        let spelled = recurrent(
            &mut graph,
            weights,
            "char_lstm.",
            &char_lstm,
            &embedded,
            Some(&slot_lengths),
            None,
        )?;
        // [1, slots, hidden] -> [batch, time, hidden] -> [time, batch, hidden].
        let batch_time = graph.op("Shape", &[&words], vec![]);
        let width = graph.ints(&[chars.hidden as i64]);
        let shape = graph.op("Concat", &[&batch_time, &width], vec![("axis", 0).into()]);
        let spelling = graph.op("Reshape", &[&spelled.hidden, &shape], vec![]);
        let spelling = batch_major(&mut graph, &spelling);
        features = graph.op("Concat", &[&features, &spelling], vec![("axis", 2).into()]);
    }
    let lengths_i32 = graph.op("Cast", &[&lengths], vec![("to", 6).into()]);
    let encoder = RecurrentConfig::new(config.cell, config.encoder_input_width(), config.hidden)
        .with_bidirectional(config.bidirectional);
    let out = recurrent(
        &mut graph,
        weights,
        "lstm.",
        &encoder,
        &features,
        Some(&lengths_i32),
        None,
    )?;
    let out = batch_major(&mut graph, &out.output);
    let scores = linear(&mut graph, weights, "hidden2tag.", &out, 3)?;
    let tags = Dim::Fixed(config.tags);
    graph.output(scores, "scores", ElementType::Float, &[BATCH, TIME, tags]);
    Ok(graph.into_model(&format!(
        "seqlab tagger: {} of {}{}{} over {} words, {} tags. Inputs: words int64 [batch, \
         time], lengths int64 [batch]{}. Output: scores [batch, time, tags].",
        config.cell.name(),
        config.hidden,
        if config.bidirectional {
            ", bidirectional"
        } else {
            ""
        },
        if config.chars.is_some() {
            ", with character features"
        } else {
            ""
        },
        config.words,
        config.tags,
        if config.chars.is_some() {
            ", chars int64 [batch, time, chars], char_lengths int64 [batch, time]"
        } else {
            ""
        }
    )))
}
