//! Sequence classifiers: token ids `[B, T]` → class logits `[B, classes]`.
//!
//! - [`RecurrentClassifier`]: embedding → RNN / LSTM / GRU → pooling over time → linear; the
//!   seed notebook's `MyRNNClassifier` and `MyLSTMClassifier` are
//!   [`RecurrentClassifierConfig::tglcourse`]. Pooling is mask-aware: with lengths, padded
//!   steps count neither in the mean nor as the last step.
//! - [`MlpClassifier`]: embedding → flatten → linear → ReLU → linear, for fixed-length input
//!   (the notebook's first model).
//!
//! ```
//! use burn::module::Module;
//! use burn::tensor::{Device, Int, Tensor};
//! use seqlab_models::{CellKind, RecurrentClassifierConfig};
//!
//! let device = Device::flex();
//! let net = RecurrentClassifierConfig::tglcourse(CellKind::Lstm, 30522).init(&device);
//! assert_eq!(net.num_params(), 311182); // as the notebook prints
//! let logits = net.forward(Tensor::<2, Int>::zeros([32, 64], &device), None).unwrap();
//! assert_eq!(logits.dims(), [32, 2]);
//! ```

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Int, Tensor, TensorData};
use thiserror::Error;

use crate::weights::{NamedTensors, PytorchWeights, WeightReader, WeightsError};
use crate::{CellKind, Recurrent, RecurrentConfig, RecurrentError, last_valid_output};

/// Bad input to a classifier.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ClassifierError {
    /// The recurrent layers rejected the input or the lengths.
    #[error(transparent)]
    Recurrent(#[from] RecurrentError),
    /// An encoder of another shape than the classifier's.
    #[error(
        "the encoder (vocabulary, embedding, cell, hidden, layers, bidirectional) is {got}, the classifier was built for {expected}"
    )]
    EncoderShape {
        /// The classifier's shape.
        expected: String,
        /// The encoder's.
        got: String,
    },
    /// The MLP classifier was built for another sequence length.
    #[error("sequences have {got} tokens, the MLP classifier was built for {expected}")]
    SequenceLength {
        /// The length it was built for.
        expected: usize,
        /// The input's.
        got: usize,
    },
}

/// How a [`RecurrentClassifier`] summarises the outputs of every step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// The mean over the valid steps (the notebook's `mean(dim=1)`).
    Mean,
    /// The output at each sequence's last valid step.
    Last,
    /// ULMFiT's concat pooling: the last valid output, the maximum and the mean over the valid
    /// steps, side by side (three times the width).
    Concat,
}

impl Pooling {
    /// Features per output unit of the recurrent layers: 3 for [`Pooling::Concat`], else 1.
    pub fn widths(self) -> usize {
        match self {
            Pooling::Concat => 3,
            Pooling::Mean | Pooling::Last => 1,
        }
    }
}

/// Configuration of a [`RecurrentClassifier`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecurrentClassifierConfig {
    /// Tokens in the vocabulary.
    pub vocab_size: usize,
    /// Embedding width.
    pub embedding_size: usize,
    /// The recurrent layers (their `input_size` is `embedding_size`).
    pub recurrent: RecurrentConfig,
    /// Pooling over time.
    pub pooling: Pooling,
    /// Dropout on the pooled features before the head, while training (ULMFiT's classifier
    /// head; 0 for none).
    pub dropout: f64,
    /// Output classes.
    pub classes: usize,
}

impl RecurrentClassifierConfig {
    /// Embedding(vocab, embedding) → `kind`(embedding, hidden, layers) → mean → Linear(hidden,
    /// classes).
    pub fn new(
        kind: CellKind,
        vocab_size: usize,
        embedding_size: usize,
        hidden_size: usize,
        num_layers: usize,
        classes: usize,
    ) -> Self {
        Self {
            vocab_size,
            embedding_size,
            recurrent: RecurrentConfig::new(kind, embedding_size, hidden_size)
                .with_num_layers(num_layers),
            pooling: Pooling::Mean,
            dropout: 0.0,
            classes,
        }
    }

    /// The seed notebook's `MyRNNClassifier` (`kind` = tanh RNN) and `MyLSTMClassifier`
    /// (`kind` = LSTM): Embedding(vocab, 10), two layers of 20, mean pooling, Linear(20, 2).
    /// With the bert-base-uncased vocabulary (30522) they have 306742 and 311182 parameters.
    pub fn tglcourse(kind: CellKind, vocab_size: usize) -> Self {
        Self::new(kind, vocab_size, 10, 20, 2, 2)
    }

    /// Sets the pooling.
    pub fn with_pooling(mut self, pooling: Pooling) -> Self {
        self.pooling = pooling;
        self
    }

    /// Sets the dropout on the pooled features.
    pub fn with_dropout(mut self, dropout: f64) -> Self {
        self.dropout = dropout;
        self
    }

    /// Sets whether the recurrent layers run in both directions.
    pub fn with_bidirectional(mut self, bidirectional: bool) -> Self {
        self.recurrent = self.recurrent.with_bidirectional(bidirectional);
        self
    }

    /// Builds the classifier on `device`.
    pub fn init(&self, device: &Device) -> RecurrentClassifier {
        let directions = if self.recurrent.bidirectional { 2 } else { 1 };
        RecurrentClassifier {
            embedding: EmbeddingConfig::new(self.vocab_size, self.embedding_size).init(device),
            recurrent: self.recurrent.init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            output: LinearConfig::new(
                self.pooling.widths() * directions * self.recurrent.hidden_size,
                self.classes,
            )
            .init(device),
            pooling: self.pooling,
        }
    }
}

/// Embedding → recurrent layers → pooling → linear. Build it with
/// [`RecurrentClassifierConfig`].
#[derive(Module, Debug)]
pub struct RecurrentClassifier {
    /// Token embedding, PyTorch's `emb_layer`.
    pub embedding: Embedding,
    /// The recurrent layers, PyTorch's `rnn`.
    pub recurrent: Recurrent,
    /// Dropout on the pooled features (active on an autodiff device only).
    pub dropout: Dropout,
    /// The classification head, PyTorch's `mlp`.
    pub output: Linear,
    #[module(skip)]
    pooling: Pooling,
}

impl RecurrentClassifier {
    /// The classifier with `embedding` and `recurrent` (a language model's encoder, see
    /// [`RecurrentLm::encoder`](crate::RecurrentLm::encoder)) in place of its own, keeping its
    /// head. Their shapes must be the ones the classifier was built with.
    pub fn with_encoder(
        mut self,
        embedding: Embedding,
        recurrent: Recurrent,
    ) -> Result<Self, ClassifierError> {
        let shape = |e: &Embedding, r: &Recurrent| {
            let [vocab, width] = e.weight.dims();
            (
                vocab,
                width,
                r.kind(),
                r.hidden_size(),
                r.num_layers(),
                r.is_bidirectional(),
            )
        };
        let (expected, got) = (
            shape(&self.embedding, &self.recurrent),
            shape(&embedding, &recurrent),
        );
        if expected != got {
            return Err(ClassifierError::EncoderShape {
                expected: format!("{expected:?}"),
                got: format!("{got:?}"),
            });
        }
        self.embedding = embedding;
        self.recurrent = recurrent;
        Ok(self)
    }

    /// Freezes (`true`) or unfreezes the embedding and recurrent layers: frozen, they get no
    /// gradients and only the head trains (ULMFiT's first stage of fine-tuning).
    pub fn freeze_encoder(mut self, frozen: bool) -> Self {
        self.embedding = self.embedding.set_require_grad(!frozen);
        self.recurrent = self.recurrent.set_require_grad(!frozen);
        self
    }

    /// Class logits `[B, classes]` for `tokens` `[B, T]`; with `lengths`, sequence `b` is
    /// `tokens[b, ..lengths[b]]` and the rest is padding that changes nothing.
    pub fn forward(
        &self,
        tokens: Tensor<2, Int>,
        lengths: Option<&[usize]>,
    ) -> Result<Tensor<2>, ClassifierError> {
        let [batch, time] = tokens.dims();
        let x = self.embedding.forward(tokens);
        let (out, _) = match lengths {
            Some(lengths) => self.recurrent.forward_padded(x, None, lengths)?,
            None => self.recurrent.forward(x, None)?,
        };
        let full = vec![time; batch];
        let pooled = match (self.pooling, lengths) {
            (Pooling::Mean, None) => {
                let width = out.dims()[2];
                out.mean_dim(1).reshape([batch, width])
            }
            (pooling, lengths) => pool(pooling, out, lengths.unwrap_or(&full))?,
        };
        Ok(self.output.forward(self.dropout.forward(pooled)))
    }
}

/// `out` `[B, T, W]` pooled over each sequence's first `lengths[b]` steps.
fn pool(pooling: Pooling, out: Tensor<3>, lengths: &[usize]) -> Result<Tensor<2>, ClassifierError> {
    Ok(match pooling {
        Pooling::Mean => masked_mean(out, lengths),
        Pooling::Last => last_valid_output(out, lengths)?,
        Pooling::Concat => Tensor::cat(
            vec![
                last_valid_output(out.clone(), lengths)?,
                masked_max(out.clone(), lengths),
                masked_mean(out, lengths),
            ],
            1,
        ),
    })
}

/// The mean of `out` `[B, T, W]` over each sequence's first `lengths[b]` steps (the padded
/// outputs are zero): `[B, W]`.
fn masked_mean(out: Tensor<3>, lengths: &[usize]) -> Tensor<2> {
    let [batch, _, width] = out.dims();
    let counts = TensorData::new(
        lengths.iter().map(|&l| l as f32).collect::<Vec<_>>(),
        [batch, 1],
    );
    let device = out.device();
    out.sum_dim(1).reshape([batch, width]) / Tensor::<2>::from_data(counts, &device)
}

/// The maximum of `out` `[B, T, W]` over each sequence's first `lengths[b]` steps: `[B, W]`.
fn masked_max(out: Tensor<3>, lengths: &[usize]) -> Tensor<2> {
    let [batch, time, width] = out.dims();
    // Padded steps are pushed far below any output before taking the maximum.
    let offsets: Vec<f32> = lengths
        .iter()
        .flat_map(|&length| (0..time).map(move |t| if t < length { 0.0 } else { -1e30 }))
        .collect();
    let device = out.device();
    let offsets = Tensor::<3>::from_data(TensorData::new(offsets, [batch, time, 1]), &device);
    (out + offsets).max_dim(1).reshape([batch, width])
}

/// Configuration of an [`MlpClassifier`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MlpClassifierConfig {
    /// Tokens in the vocabulary.
    pub vocab_size: usize,
    /// Embedding width.
    pub embedding_size: usize,
    /// Tokens per sequence (fixed: pad or truncate to it).
    pub seq_len: usize,
    /// Width of the hidden layer.
    pub hidden_size: usize,
    /// Output classes.
    pub classes: usize,
}

impl MlpClassifierConfig {
    /// The seed notebook's MLP: Embedding(vocab, 256) → Flatten → Linear(256·64, 64) → ReLU →
    /// Linear(64, 2), for sequences of 64 tokens.
    pub fn tglcourse(vocab_size: usize) -> Self {
        Self {
            vocab_size,
            embedding_size: 256,
            seq_len: 64,
            hidden_size: 64,
            classes: 2,
        }
    }

    /// Builds the classifier on `device`.
    pub fn init(&self, device: &Device) -> MlpClassifier {
        MlpClassifier {
            embedding: EmbeddingConfig::new(self.vocab_size, self.embedding_size).init(device),
            hidden: LinearConfig::new(self.embedding_size * self.seq_len, self.hidden_size)
                .init(device),
            output: LinearConfig::new(self.hidden_size, self.classes).init(device),
            seq_len: self.seq_len,
        }
    }
}

/// Embedding → flatten → linear → ReLU → linear, for sequences of one fixed length.
#[derive(Module, Debug)]
pub struct MlpClassifier {
    /// Token embedding.
    pub embedding: Embedding,
    /// The hidden layer over the flattened embeddings.
    pub hidden: Linear,
    /// The classification head.
    pub output: Linear,
    seq_len: usize,
}

impl MlpClassifier {
    /// Class logits `[B, classes]` for `tokens` `[B, seq_len]`.
    pub fn forward(&self, tokens: Tensor<2, Int>) -> Result<Tensor<2>, ClassifierError> {
        let [batch, time] = tokens.dims();
        if time != self.seq_len {
            return Err(ClassifierError::SequenceLength {
                expected: self.seq_len,
                got: time,
            });
        }
        let flat = self.embedding.forward(tokens).reshape([batch as i64, -1]);
        Ok(self.output.forward(relu(self.hidden.forward(flat))))
    }
}

/// The notebook's names: `emb_layer`, `rnn`, `mlp`.
impl PytorchWeights for RecurrentClassifier {
    fn save_pytorch(&self, prefix: &str, out: &mut NamedTensors) {
        self.embedding
            .save_pytorch(&format!("{prefix}emb_layer."), out);
        self.recurrent.save_pytorch(&format!("{prefix}rnn."), out);
        self.output.save_pytorch(&format!("{prefix}mlp."), out);
    }

    fn load_pytorch(
        mut self,
        prefix: &str,
        reader: &mut WeightReader,
    ) -> Result<Self, WeightsError> {
        self.embedding = self
            .embedding
            .load_pytorch(&format!("{prefix}emb_layer."), reader)?;
        self.recurrent = self
            .recurrent
            .load_pytorch(&format!("{prefix}rnn."), reader)?;
        self.output = self.output.load_pytorch(&format!("{prefix}mlp."), reader)?;
        Ok(self)
    }
}

/// The names of the notebook's `nn.Sequential`: `0` (embedding), `2` and `4` (linear).
impl PytorchWeights for MlpClassifier {
    fn save_pytorch(&self, prefix: &str, out: &mut NamedTensors) {
        self.embedding.save_pytorch(&format!("{prefix}0."), out);
        self.hidden.save_pytorch(&format!("{prefix}2."), out);
        self.output.save_pytorch(&format!("{prefix}4."), out);
    }

    fn load_pytorch(
        mut self,
        prefix: &str,
        reader: &mut WeightReader,
    ) -> Result<Self, WeightsError> {
        self.embedding = self
            .embedding
            .load_pytorch(&format!("{prefix}0."), reader)?;
        self.hidden = self.hidden.load_pytorch(&format!("{prefix}2."), reader)?;
        self.output = self.output.load_pytorch(&format!("{prefix}4."), reader)?;
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Nonlinearity;
    use burn::tensor::Distribution;

    #[test]
    fn the_notebooks_classifiers_have_its_shapes_and_parameter_counts() {
        let device = Device::flex();
        let ids = Tensor::<2>::random([32, 64], Distribution::Uniform(0.0, 30522.0), &device).int();
        let rnn = RecurrentClassifierConfig::tglcourse(CellKind::Rnn(Nonlinearity::Tanh), 30522)
            .init(&device);
        assert_eq!(rnn.num_params(), 306742);
        assert_eq!(rnn.forward(ids.clone(), None).unwrap().dims(), [32, 2]);
        let lstm = RecurrentClassifierConfig::tglcourse(CellKind::Lstm, 30522).init(&device);
        assert_eq!(lstm.num_params(), 311182);
        assert_eq!(lstm.forward(ids.clone(), None).unwrap().dims(), [32, 2]);
        let mlp = MlpClassifierConfig::tglcourse(30522).init(&device);
        assert_eq!(
            mlp.num_params(),
            30522 * 256 + (256 * 64 * 64 + 64) + (64 * 2 + 2)
        );
        assert_eq!(mlp.forward(ids.clone()).unwrap().dims(), [32, 2]);
        assert_eq!(
            mlp.forward(ids.slice([0..32, 0..10])).unwrap_err(),
            ClassifierError::SequenceLength {
                expected: 64,
                got: 10
            }
        );
    }

    #[test]
    fn concat_pooling_is_last_max_and_mean_over_the_valid_steps() {
        let device = Device::flex();
        // Two sequences of 3 steps, width 2; the second has 2 valid steps and a padded zero.
        let out = Tensor::<3>::from_data(
            [
                [[1.0, -3.0], [4.0, -1.0], [-2.0, -2.0]],
                [[-5.0, -4.0], [-1.0, -6.0], [0.0, 0.0]],
            ],
            &device,
        );
        let pooled = pool(Pooling::Concat, out, &[3, 2]).unwrap();
        let expected = [
            [-2.0, -2.0, 4.0, -1.0, 1.0, -2.0],
            [-1.0, -6.0, -1.0, -4.0, -3.0, -5.0],
        ];
        pooled
            .into_data()
            .assert_approx_eq::<f32>(&TensorData::from(expected), Default::default());
    }

    #[test]
    fn padding_does_not_change_a_prediction() {
        let device = Device::flex();
        device.seed(2);
        for pooling in [Pooling::Mean, Pooling::Last, Pooling::Concat] {
            let net = RecurrentClassifierConfig::new(CellKind::Gru, 50, 8, 12, 2, 3)
                .with_bidirectional(true)
                .with_pooling(pooling)
                .init(&device);
            let short = Tensor::<2, Int>::from_data([[5, 9, 11, 3]], &device);
            let padded = Tensor::<2, Int>::from_data([[5, 9, 11, 3, 0, 0, 0]], &device);
            let alone = net.forward(short, None).unwrap();
            let with_pad = net.forward(padded.clone(), Some(&[4])).unwrap();
            alone
                .into_data()
                .assert_approx_eq::<f32>(&with_pad.into_data(), Default::default());
            assert!(net.forward(padded, Some(&[8])).is_err());
        }
    }
}
