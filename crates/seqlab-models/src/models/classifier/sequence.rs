//! [`SequenceClassifier`]: embedding → a [`SequenceEncoder`] → pooling over time → linear;
//! [`RecurrentClassifier`] is the one on seqlab's recurrent layers.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor};

use super::{ClassifierError, Pooling, pool};
use crate::config_check::{ConfigError, at_least};
use crate::weights::{NamedTensors, PytorchWeights, WeightReader, WeightsError};
use crate::{CellKind, Recurrent, RecurrentConfig, SequenceEncoder};

/// The parts of a [`SequenceClassifier`] around its encoder: the embedding, the pooling and
/// the head.
///
/// ```
/// use burn::tensor::{Device, Int, Tensor};
/// use seqlab_models::{Pooling, RecurrentConfig, SequenceClassifierConfig};
///
/// let device = Device::flex();
/// let encoder = RecurrentConfig::gru(8, 16).init(&device);
/// let classifier = SequenceClassifierConfig::new(100, 8, 3)
///     .with_pooling(Pooling::Concat)
///     .init(encoder, &device);
/// let logits = classifier.forward(Tensor::<2, Int>::zeros([2, 5], &device), Some(&[5, 3]))?;
/// assert_eq!(logits.dims(), [2, 3]);
/// # Ok::<(), seqlab_models::ClassifierError>(())
/// ```
#[derive(Config, Debug, Copy, PartialEq)]
pub struct SequenceClassifierConfig {
    /// Tokens in the vocabulary.
    pub vocab_size: usize,
    /// Embedding width: the encoder's input width.
    pub embedding_size: usize,
    /// Pooling over time.
    #[config(default = "Pooling::Mean")]
    pub pooling: Pooling,
    /// Dropout on the pooled features before the head, while training (0 for none).
    #[config(default = 0.0)]
    pub dropout: f64,
    /// Output classes.
    pub classes: usize,
}

impl SequenceClassifierConfig {
    /// Builds the classifier around `encoder` (which reads `embedding_size` features a step)
    /// on `device`.
    pub fn init<E: SequenceEncoder>(&self, encoder: E, device: &Device) -> SequenceClassifier<E> {
        let embedding = EmbeddingConfig::new(self.vocab_size, self.embedding_size).init(device);
        self.assemble(embedding, encoder, device)
    }

    fn assemble<E: SequenceEncoder>(
        &self,
        embedding: Embedding,
        encoder: E,
        device: &Device,
    ) -> SequenceClassifier<E> {
        let features = self.pooling.widths() * encoder.output_width();
        SequenceClassifier {
            embedding,
            encoder,
            dropout: DropoutConfig::new(self.dropout).init(),
            output: LinearConfig::new(features, self.classes).init(device),
            pooling: self.pooling,
        }
    }
}

/// Embedding → encoder → pooling over time → linear. Build it with
/// [`SequenceClassifierConfig`], or [`RecurrentClassifierConfig`] for seqlab's recurrent
/// layers.
#[derive(Module, Debug)]
pub struct SequenceClassifier<E: SequenceEncoder> {
    /// Token embedding, PyTorch's `emb_layer`.
    pub embedding: Embedding,
    /// The encoder (for a [`RecurrentClassifier`], PyTorch's `rnn`).
    pub encoder: E,
    /// Dropout on the pooled features (active on an autodiff device only).
    pub dropout: Dropout,
    /// The classification head, PyTorch's `mlp`.
    pub output: Linear,
    #[module(skip)]
    pooling: Pooling,
}

impl<E: SequenceEncoder> SequenceClassifier<E> {
    /// Freezes (`true`) or unfreezes the embedding and the encoder: frozen, they get no
    /// gradients and only the head trains (ULMFiT's first stage of fine-tuning).
    pub fn freeze_encoder(mut self, frozen: bool) -> Self {
        self.embedding = self.embedding.set_require_grad(!frozen);
        self.encoder = self.encoder.set_require_grad(!frozen);
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
        let out = self
            .encoder
            .encode(self.embedding.forward(tokens), lengths)?;
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

/// A classifier on seqlab's recurrent layers: the seed notebook's `MyRNNClassifier` and
/// `MyLSTMClassifier`, and the text-classification lesson's.
pub type RecurrentClassifier = SequenceClassifier<Recurrent>;

/// Configuration of a [`RecurrentClassifier`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RecurrentClassifierConfig {
    /// The embedding, pooling and head.
    pub classifier: SequenceClassifierConfig,
    /// The recurrent layers (their `input_size` is the embedding width).
    pub recurrent: RecurrentConfig,
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
            classifier: SequenceClassifierConfig::new(vocab_size, embedding_size, classes),
            recurrent: RecurrentConfig::new(kind, embedding_size, hidden_size)
                .with_num_layers(num_layers),
        }
    }

    /// The config, if it can build a classifier: every size at least 1.
    pub fn check(self) -> Result<Self, ConfigError> {
        at_least("vocab_size", self.classifier.vocab_size, 1)?;
        at_least("embedding_size", self.classifier.embedding_size, 1)?;
        at_least("classes", self.classifier.classes, 1)?;
        self.recurrent.check()?;
        Ok(self)
    }

    /// The seed notebook's `MyRNNClassifier` (`kind` = tanh RNN) and `MyLSTMClassifier`
    /// (`kind` = LSTM): Embedding(vocab, 10), two layers of 20, mean pooling, Linear(20, 2).
    /// With the bert-base-uncased vocabulary (30522) they have 306742 and 311182 parameters.
    pub fn tglcourse(kind: CellKind, vocab_size: usize) -> Self {
        Self::new(kind, vocab_size, 10, 20, 2, 2)
    }

    /// Sets the pooling.
    pub fn with_pooling(mut self, pooling: Pooling) -> Self {
        self.classifier = self.classifier.with_pooling(pooling);
        self
    }

    /// Sets the dropout on the pooled features.
    pub fn with_dropout(mut self, dropout: f64) -> Self {
        self.classifier = self.classifier.with_dropout(dropout);
        self
    }

    /// Sets whether the recurrent layers run in both directions.
    pub fn with_bidirectional(mut self, bidirectional: bool) -> Self {
        self.recurrent = self.recurrent.with_bidirectional(bidirectional);
        self
    }

    /// Builds the classifier on `device`.
    pub fn init(&self, device: &Device) -> RecurrentClassifier {
        let c = &self.classifier;
        let embedding = EmbeddingConfig::new(c.vocab_size, c.embedding_size).init(device);
        let recurrent = self.recurrent.init(device);
        c.assemble(embedding, recurrent, device)
    }
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
            shape(&self.embedding, &self.encoder),
            shape(&embedding, &recurrent),
        );
        if expected != got {
            return Err(ClassifierError::EncoderShape {
                expected: format!("{expected:?}"),
                got: format!("{got:?}"),
            });
        }
        self.embedding = embedding;
        self.encoder = recurrent;
        Ok(self)
    }
}

/// The notebook's names: `emb_layer`, `rnn`, `mlp`.
impl PytorchWeights for RecurrentClassifier {
    fn save_pytorch(&self, prefix: &str, out: &mut NamedTensors) {
        self.embedding
            .save_pytorch(&format!("{prefix}emb_layer."), out);
        self.encoder.save_pytorch(&format!("{prefix}rnn."), out);
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
        self.encoder = self
            .encoder
            .load_pytorch(&format!("{prefix}rnn."), reader)?;
        self.output = self.output.load_pytorch(&format!("{prefix}mlp."), reader)?;
        Ok(self)
    }
}
