//! ONNX import: a graph of an embedding (`Gather`), ONNX `RNN` / `LSTM` / `GRU` nodes and a
//! linear head (`MatMul` + `Add`, or `Gemm`), as `torch.onnx.export` writes recurrent
//! language models and classifiers, read into seqlab's configs and weights under PyTorch's
//! names, from which seqlab builds the model for inference, sampling and fine-tuning.
//!
//! The graph is read for its weights and its structure, not run: the nodes that only move
//! data around (transposes, reshapes, slices of the state, shapes, casts, constants) are
//! passed over, and any other node is refused, named with its op type. Between the last
//! recurrent node and the head, the mean over each sequence's valid steps (`ReduceSum` then
//! `Div` by the lengths, with `sequence_lens` on the recurrent nodes) or over all steps
//! (`ReduceMean`, without) makes a classifier; no pooling makes a language model.

use std::collections::BTreeMap;
use std::path::Path;

use prost::Message;
use seqlab_models::{
    CellKind, NamedTensors, Nonlinearity, Pooling, RecurrentClassifierConfig, RecurrentLmConfig,
};

use crate::OnnxError;
use crate::layers::onnx_gate_order;
use crate::proto::{
    AttributeProto, ModelProto, NodeProto, TensorProto,
    tensor_proto::{DataLocation, DataType},
};

/// A model read from an ONNX file: its config and its weights under PyTorch's names, which
/// [`PytorchWeights::load_pytorch`](seqlab_models::PytorchWeights::load_pytorch) loads into
/// the model `config.init(&device)` builds.
#[derive(Debug, Clone)]
pub enum ImportedModel {
    /// A language model: logits for every step (`i_h.`, `rnn.`, `h_o.`).
    LanguageModel {
        /// Its config.
        config: RecurrentLmConfig,
        /// Its weights.
        weights: NamedTensors,
    },
    /// A classifier: logits for each sequence (`emb_layer.`, `rnn.`, `mlp.`).
    Classifier {
        /// Its config.
        config: RecurrentClassifierConfig,
        /// Its weights.
        weights: NamedTensors,
    },
}

/// A constant tensor of the graph: an initializer or a `Constant` node's value.
#[derive(Debug, Clone)]
struct Constant {
    dims: Vec<usize>,
    floats: Option<Vec<f32>>,
}

/// Reads the ONNX file at `path`.
pub fn import_file(path: &Path) -> Result<ImportedModel, OnnxError> {
    let bytes = std::fs::read(path).map_err(|e| OnnxError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    import(&bytes, &path.display().to_string())
}

/// Reads an ONNX model's bytes (`path` names it in errors).
///
/// ```
/// use burn::tensor::Device;
/// use seqlab_models::{CellKind, NamedTensors, PytorchWeights, RecurrentLmConfig};
/// use seqlab_onnx::ImportedModel;
///
/// let config = RecurrentLmConfig::new(CellKind::Gru, 30, 16, 2);
/// let mut weights = NamedTensors::default();
/// config.init(&Device::flex()).save_pytorch("", &mut weights);
/// let bytes = seqlab_onnx::language_model(&config, &weights)?.to_bytes();
/// match seqlab_onnx::import(&bytes, "lm.onnx")? {
///     ImportedModel::LanguageModel { config: read, weights: read_weights } => {
///         assert_eq!(read, config);
///         assert_eq!(read_weights.get("rnn.weight_hh_l1"), weights.get("rnn.weight_hh_l1"));
///     }
///     other => panic!("not a language model: {other:?}"),
/// }
/// # Ok::<(), seqlab_onnx::OnnxError>(())
/// ```
pub fn import(bytes: &[u8], path: &str) -> Result<ImportedModel, OnnxError> {
    let not_onnx = |message: String| OnnxError::NotOnnx {
        path: path.into(),
        message,
    };
    let model = ModelProto::decode(bytes).map_err(|e| not_onnx(e.to_string()))?;
    let graph = match &model.graph {
        Some(graph) if !graph.node.is_empty() => graph,
        _ => return Err(not_onnx("it holds no graph".into())),
    };
    let mut constants = BTreeMap::new();
    for tensor in &graph.initializer {
        constants.insert(tensor.name.clone().unwrap_or_default(), constant(tensor)?);
    }
    let mut reader = GraphReader {
        path,
        constants,
        embedding: None,
        layers: Vec::new(),
        lengths: false,
        pooling: None,
        head: None,
    };
    for node in &graph.node {
        reader.read(node)?;
    }
    reader.finish()
}

/// One recurrent node: its cell, width and directions, and its weights in ONNX's layout.
struct Layer {
    kind: CellKind,
    hidden: usize,
    directions: usize,
    input: usize,
    w: Vec<f32>,
    r: Vec<f32>,
    b: Option<Vec<f32>>,
}

/// The pooling between the recurrent nodes and the head, as far as it has been read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PoolingSeen {
    /// `ReduceSum` over time, waiting for its `Div` by the lengths.
    Sum,
    /// The mean over each sequence's valid steps.
    MaskedMean,
    /// `ReduceMean` over all steps.
    Mean,
}

struct GraphReader<'a> {
    path: &'a str,
    constants: BTreeMap<String, Constant>,
    /// `[vocab, width]` and its values.
    embedding: Option<(Vec<usize>, Vec<f32>)>,
    layers: Vec<Layer>,
    lengths: bool,
    pooling: Option<PoolingSeen>,
    head: Option<Head>,
}

/// The linear head in PyTorch's layout.
#[derive(Clone)]
struct Head {
    /// `[out, in]`.
    dims: Vec<usize>,
    weight: Vec<f32>,
    /// `[out]`, if it has one.
    bias: Option<Vec<f32>>,
}

/// The nodes that only move, reshape or cast data, or build shapes, masks and constants.
const DATA_MOVEMENT: [&str; 14] = [
    "Identity",
    "Transpose",
    "Reshape",
    "Squeeze",
    "Unsqueeze",
    "Slice",
    "Concat",
    "Shape",
    "Cast",
    "ConstantOfShape",
    "Expand",
    "Dropout",
    "Range",
    "Less",
];

fn attribute<'n>(node: &'n NodeProto, name: &str) -> Option<&'n AttributeProto> {
    node.attribute
        .iter()
        .find(|a| a.name.as_deref() == Some(name))
}

fn constant(tensor: &TensorProto) -> Result<Constant, OnnxError> {
    let name = tensor.name.clone().unwrap_or_default();
    if tensor.data_location == Some(DataLocation::External as i32) {
        return Err(OnnxError::ExternalData(name));
    }
    let dims = tensor.dims.iter().map(|&d| d.max(0) as usize).collect();
    let floats =
        (tensor.data_type == Some(DataType::Float as i32)).then(|| match &tensor.raw_data {
            Some(raw) if !raw.is_empty() => raw
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            _ => tensor.float_data.clone(),
        });
    Ok(Constant { dims, floats })
}

impl GraphReader<'_> {
    fn node_name(node: &NodeProto) -> String {
        node.name
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| node.output.first().cloned().unwrap_or_default())
    }

    fn unsupported(&self, node: &NodeProto, why: &str) -> OnnxError {
        OnnxError::UnsupportedNode {
            path: self.path.into(),
            node: Self::node_name(node),
            op_type: node.op_type.clone().unwrap_or_default(),
            why: why.into(),
        }
    }

    /// The float constant `name` (an initializer or a `Constant` node's output).
    fn floats(&self, node: &NodeProto, index: usize) -> Result<(Vec<usize>, Vec<f32>), OnnxError> {
        let name = node.input.get(index).filter(|n| !n.is_empty());
        match name.and_then(|n| self.constants.get(n)) {
            Some(Constant {
                dims,
                floats: Some(values),
            }) if Some(values.len()) == element_count(dims) => Ok((dims.clone(), values.clone())),
            _ => Err(self.unsupported(
                node,
                &format!("its input {index} is not a float weight stored in the file"),
            )),
        }
    }

    fn read(&mut self, node: &NodeProto) -> Result<(), OnnxError> {
        let op = node.op_type.as_deref().unwrap_or_default();
        match op {
            "Constant" => {
                let value = attribute(node, "value")
                    .and_then(|a| a.t.as_ref())
                    .ok_or_else(|| self.unsupported(node, "a Constant other than a tensor"))?;
                let output = node.output.first().cloned().unwrap_or_default();
                let value = constant(value)?;
                self.constants.insert(output, value);
            }
            "Gather" if self.embedding.is_none() && self.is_float_table(node) => {
                let (dims, values) = self.floats(node, 0)?;
                self.embedding = Some((dims, values));
            }
            "Gather" if !self.is_float_table(node) => {}
            "Transpose" => self.fold_transpose(node),
            // The 0/1 mask of the valid steps, before the sum over time.
            "Mul" if !self.layers.is_empty() && self.pooling.is_none() && self.lengths => {}
            "RNN" | "LSTM" | "GRU" => self.read_recurrent(node)?,
            "ReduceSum" if !self.layers.is_empty() && self.pooling.is_none() => {
                self.pooling = Some(PoolingSeen::Sum);
            }
            "Div" if self.pooling == Some(PoolingSeen::Sum) && self.lengths => {
                self.pooling = Some(PoolingSeen::MaskedMean);
            }
            "ReduceMean" if !self.layers.is_empty() && self.pooling.is_none() && !self.lengths => {
                self.pooling = Some(PoolingSeen::Mean);
            }
            "MatMul" | "Gemm" if !self.layers.is_empty() && self.head.is_none() => {
                self.read_head(node, op)?;
            }
            "Add" if self.head.as_ref().is_some_and(|h| h.bias.is_none()) => {
                let bias = node
                    .input
                    .iter()
                    .position(|name| self.constants.contains_key(name))
                    .ok_or_else(|| {
                        self.unsupported(node, "an Add after the head without a bias")
                    })?;
                let (dims, values) = self.floats(node, bias)?;
                let head = self.head.as_mut().expect("checked above");
                if dims != [head.dims[0]] {
                    return Err(self.unsupported(node, "a bias of another width than the head"));
                }
                head.bias = Some(values);
            }
            op if DATA_MOVEMENT.contains(&op) => {}
            _ => {
                return Err(self.unsupported(
                    node,
                    "seqlab imports an embedding, RNN/LSTM/GRU nodes, a mean over time and a \
                     linear head",
                ));
            }
        }
        Ok(())
    }

    /// A `Transpose` of a 2-D float weight (a head's weight stored `[out, in]`) is that weight
    /// transposed; other transposes move activations and are passed over.
    fn fold_transpose(&mut self, node: &NodeProto) {
        let Ok((dims, values)) = self.floats(node, 0) else {
            return;
        };
        let perm = attribute(node, "perm").map(|a| a.ints.clone());
        if dims.len() != 2 || perm.is_some_and(|p| p != [1, 0]) {
            return;
        }
        let (rows, cols) = (dims[0], dims[1]);
        let transposed = transpose(&values, rows, cols);
        let output = node.output.first().cloned().unwrap_or_default();
        self.constants.insert(
            output,
            Constant {
                dims: vec![cols, rows],
                floats: Some(transposed),
            },
        );
    }

    /// Whether `node` (a `Gather`) reads rows of a 2-D float weight.
    fn is_float_table(&self, node: &NodeProto) -> bool {
        node.input
            .first()
            .and_then(|name| self.constants.get(name))
            .is_some_and(|c| c.floats.is_some() && c.dims.len() == 2)
    }

    fn read_recurrent(&mut self, node: &NodeProto) -> Result<(), OnnxError> {
        let op = node.op_type.as_deref().unwrap_or_default();
        let int = |name: &str| attribute(node, name).and_then(|a| a.i);
        let text = |name: &str| {
            attribute(node, name)
                .and_then(|a| a.s.as_ref())
                .map(|s| String::from_utf8_lossy(s).into_owned())
        };
        let activations: Vec<String> = attribute(node, "activations")
            .map(|a| {
                a.strings
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect()
            })
            .unwrap_or_default();
        if attribute(node, "clip").is_some() || int("input_forget").unwrap_or(0) != 0 {
            return Err(self.unsupported(node, "cell clipping and coupled input-forget gates"));
        }
        let kind = match op {
            "LSTM" if activations.is_empty() => CellKind::Lstm,
            "GRU" if activations.is_empty() => {
                if int("linear_before_reset").unwrap_or(0) != 1 {
                    return Err(self.unsupported(
                        node,
                        "a GRU with linear_before_reset = 0: PyTorch's and seqlab's GRU apply \
                         the reset gate after the linear map (linear_before_reset = 1)",
                    ));
                }
                CellKind::Gru
            }
            "RNN" if activations.iter().all(|a| a == "Tanh") => CellKind::Rnn(Nonlinearity::Tanh),
            "RNN" if activations.iter().all(|a| a == "Relu") => CellKind::Rnn(Nonlinearity::Relu),
            _ => return Err(self.unsupported(node, "activations other than PyTorch's")),
        };
        let directions = match text("direction").as_deref() {
            None | Some("forward") => 1,
            Some("bidirectional") => 2,
            Some(_) => {
                return Err(self.unsupported(node, "a reverse-only layer"));
            }
        };
        let hidden = int("hidden_size").unwrap_or(0).max(0) as usize;
        let gates = kind.gates();
        // A hidden size no weight can have is refused here, before any size is computed
        // from it.
        let rows = gates
            .checked_mul(hidden)
            .filter(|rows| rows.checked_mul(2).is_some());
        let Some(rows) = rows else {
            return Err(self.unsupported(node, "a hidden size beyond any weight's"));
        };
        let (w_dims, w) = self.floats(node, 1)?;
        let (r_dims, r) = self.floats(node, 2)?;
        let input = w_dims.get(2).copied().unwrap_or(0);
        if hidden == 0
            || w_dims != [directions, rows, input]
            || r_dims != [directions, rows, hidden]
        {
            return Err(self.unsupported(node, "weights of other shapes than its hidden size"));
        }
        let b = match node.input.get(3).filter(|n| !n.is_empty()) {
            Some(_) => {
                let (dims, b) = self.floats(node, 3)?;
                if dims != [directions, 2 * rows] {
                    return Err(self.unsupported(node, "a bias of another shape"));
                }
                Some(b)
            }
            None => None,
        };
        self.lengths |= node.input.get(4).is_some_and(|n| !n.is_empty());
        if let Some(previous) = self.layers.last() {
            let expected = previous.directions * previous.hidden;
            if (previous.kind, previous.hidden, previous.directions) != (kind, hidden, directions)
                || input != expected
            {
                return Err(self.unsupported(
                    node,
                    "a layer of another cell, width or direction than the layer before",
                ));
            }
        }
        self.layers.push(Layer {
            kind,
            hidden,
            directions,
            input,
            w,
            r,
            b,
        });
        Ok(())
    }

    fn read_head(&mut self, node: &NodeProto, op: &str) -> Result<(), OnnxError> {
        let (dims, values) = self.floats(node, 1)?;
        if dims.len() != 2 {
            return Err(self.unsupported(node, "a head whose weight is not a matrix"));
        }
        let float_attr = |name: &str| attribute(node, name).and_then(|a| a.f).unwrap_or(1.0);
        let transposed = attribute(node, "transB").and_then(|a| a.i).unwrap_or(0) == 1;
        if op == "Gemm"
            && (float_attr("alpha") != 1.0
                || float_attr("beta") != 1.0
                || attribute(node, "transA").and_then(|a| a.i).unwrap_or(0) != 0)
        {
            return Err(self.unsupported(node, "a Gemm with alpha, beta or transA"));
        }
        // PyTorch's layout is [out, in]: MatMul and Gemm without transB hold [in, out].
        let (weight_dims, weight) = if op == "Gemm" && transposed {
            (dims, values)
        } else {
            (vec![dims[1], dims[0]], transpose(&values, dims[0], dims[1]))
        };
        let bias = if op == "Gemm" && node.input.get(2).is_some_and(|n| !n.is_empty()) {
            let (bias_dims, bias) = self.floats(node, 2)?;
            if bias_dims != [weight_dims[0]] {
                return Err(self.unsupported(node, "a bias of another width than the head"));
            }
            Some(bias)
        } else {
            None
        };
        self.head = Some(Head {
            dims: weight_dims,
            weight,
            bias,
        });
        Ok(())
    }

    fn finish(self) -> Result<ImportedModel, OnnxError> {
        let incomplete = |what: &str| OnnxError::NotImportable {
            path: self.path.into(),
            message: format!("it has no {what}"),
        };
        let (table_dims, table) = self
            .embedding
            .clone()
            .ok_or_else(|| incomplete("embedding (a Gather from a weight)"))?;
        let first = self
            .layers
            .first()
            .ok_or_else(|| incomplete("RNN, LSTM or GRU node"))?;
        let Head {
            dims: head_dims,
            weight: head_weight,
            bias: head_bias,
        } = self
            .head
            .clone()
            .ok_or_else(|| incomplete("linear head (MatMul or Gemm) after its recurrent nodes"))?;
        let (kind, hidden, directions) = (first.kind, first.hidden, first.directions);
        let (vocab, width) = (table_dims[0], table_dims[1]);
        let mismatch = |message: String| OnnxError::NotImportable {
            path: self.path.into(),
            message,
        };
        if first.input != width {
            return Err(mismatch(format!(
                "its first recurrent node reads {} features, its embedding gives {width}",
                first.input
            )));
        }
        if head_dims[1] != directions * hidden {
            return Err(mismatch(format!(
                "its head reads {} features, its recurrent nodes give {}",
                head_dims[1],
                directions * hidden
            )));
        }
        let (embedding, output) = match self.pooling {
            None => ("i_h.", "h_o."),
            Some(PoolingSeen::MaskedMean | PoolingSeen::Mean) => ("emb_layer.", "mlp."),
            Some(PoolingSeen::Sum) => {
                return Err(mismatch(
                    "it sums its outputs over time without dividing by the lengths".into(),
                ));
            }
        };
        let mut weights = NamedTensors::default();
        weights.insert(format!("{embedding}weight"), table_dims.clone(), table);
        let outputs = head_dims[0];
        weights.insert(format!("{output}weight"), head_dims, head_weight);
        weights.insert(
            format!("{output}bias"),
            vec![outputs],
            head_bias.unwrap_or_else(|| vec![0.0; outputs]),
        );
        for (index, layer) in self.layers.iter().enumerate() {
            layer.pytorch_weights(index, &mut weights);
        }
        let layers = self.layers.len();
        match self.pooling {
            None => {
                if directions != 1 {
                    return Err(mismatch(
                        "a language model's recurrent nodes run forward only; these are \
                         bidirectional"
                            .into(),
                    ));
                }
                if outputs != vocab {
                    return Err(mismatch(format!(
                        "a language model scores its {vocab} tokens; its head gives {outputs}"
                    )));
                }
                let config = RecurrentLmConfig::new(kind, vocab, hidden, layers)
                    .with_embedding_size((width != hidden).then_some(width));
                Ok(ImportedModel::LanguageModel { config, weights })
            }
            Some(_) => {
                let config =
                    RecurrentClassifierConfig::new(kind, vocab, width, hidden, layers, outputs)
                        .with_bidirectional(directions == 2)
                        .with_pooling(Pooling::Mean);
                Ok(ImportedModel::Classifier { config, weights })
            }
        }
    }
}

impl Layer {
    /// Adds this layer's weights under PyTorch's names, its gates put back in PyTorch's order
    /// and its bias split into `bias_ih` and `bias_hh` (zeros when it has none).
    fn pytorch_weights(&self, layer: usize, out: &mut NamedTensors) {
        let gates = self.kind.gates();
        let rows = gates * self.hidden;
        for direction in 0..self.directions {
            let suffix = if direction == 1 { "_reverse" } else { "" };
            let name = |what: &str| format!("rnn.{what}_l{layer}{suffix}");
            let w = &self.w[direction * rows * self.input..][..rows * self.input];
            let r = &self.r[direction * rows * self.hidden..][..rows * self.hidden];
            let w = pytorch_gates(w, self.kind, self.hidden, self.input);
            let r = pytorch_gates(r, self.kind, self.hidden, self.hidden);
            out.insert(name("weight_ih"), vec![rows, self.input], w);
            out.insert(name("weight_hh"), vec![rows, self.hidden], r);
            let zeros = vec![0.0; 2 * rows];
            let b = match &self.b {
                Some(b) => &b[direction * 2 * rows..][..2 * rows],
                None => &zeros,
            };
            let bias_ih = pytorch_gates(&b[..rows], self.kind, self.hidden, 1);
            let bias_hh = pytorch_gates(&b[rows..], self.kind, self.hidden, 1);
            out.insert(name("bias_ih"), vec![rows], bias_ih);
            out.insert(name("bias_hh"), vec![rows], bias_hh);
        }
    }
}

/// The number of elements of a tensor of shape `dims`, if it fits in a `usize`.
fn element_count(dims: &[usize]) -> Option<usize> {
    dims.iter()
        .try_fold(1usize, |count, &d| count.checked_mul(d))
}

/// A `[rows, cols]` matrix transposed.
fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for i in 0..rows {
        for j in 0..cols {
            out[j * rows + i] = values[i * cols + j];
        }
    }
    out
}

/// `values` in ONNX's gate order put back in PyTorch's.
fn pytorch_gates(values: &[f32], kind: CellKind, hidden: usize, width: usize) -> Vec<f32> {
    let order = onnx_gate_order(kind);
    let block = hidden * width;
    (0..order.len())
        .flat_map(|gate| {
            let at = order
                .iter()
                .position(|&g| g == gate)
                .expect("each gate has a place");
            &values[at * block..(at + 1) * block]
        })
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::reorder_gates;
    use proptest::prelude::*;

    /// A small exported language model's bytes.
    fn model_bytes() -> Vec<u8> {
        let config = RecurrentLmConfig::new(CellKind::Gru, 7, 3, 2).with_embedding_size(Some(2));
        let mut weights = NamedTensors::default();
        for (name, shape) in [
            ("i_h.weight", vec![7, 2]),
            ("rnn.weight_ih_l0", vec![9, 2]),
            ("rnn.weight_hh_l0", vec![9, 3]),
            ("rnn.bias_ih_l0", vec![9]),
            ("rnn.bias_hh_l0", vec![9]),
            ("rnn.weight_ih_l1", vec![9, 3]),
            ("rnn.weight_hh_l1", vec![9, 3]),
            ("rnn.bias_ih_l1", vec![9]),
            ("rnn.bias_hh_l1", vec![9]),
            ("h_o.weight", vec![7, 3]),
            ("h_o.bias", vec![7]),
        ] {
            let count = shape.iter().product::<usize>();
            weights.insert(name, shape, (0..count).map(|i| i as f32 / 10.0).collect());
        }
        crate::language_model(&config, &weights).unwrap().to_bytes()
    }

    proptest! {
        /// Whatever the bytes — a model with bytes changed, cut short or grown — import gives
        /// a model or an error, never a panic.
        #[test]
        fn import_never_panics(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
            cut in any::<prop::sample::Index>(),
            junk in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut bytes = model_bytes();
            for (at, byte) in edits {
                let at = at.index(bytes.len());
                bytes[at] = byte;
            }
            bytes.truncate(cut.index(bytes.len() + 1));
            bytes.extend(junk);
            let _ = import(&bytes, "fuzzed.onnx");
        }
    }

    #[test]
    fn gates_go_back_to_pytorch_order() {
        for kind in [
            CellKind::Lstm,
            CellKind::Gru,
            CellKind::Rnn(Nonlinearity::Tanh),
        ] {
            let values: Vec<f32> = (0..kind.gates() * 2 * 3).map(|v| v as f32).collect();
            let onnx = reorder_gates(&values, kind, 2, 3);
            assert_eq!(pytorch_gates(&onnx, kind, 2, 3), values, "{kind:?}");
        }
    }
}
