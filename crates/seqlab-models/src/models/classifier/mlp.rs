//! [`MlpClassifier`]: embedding → flatten → linear → ReLU → linear, for one fixed length.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Int, Tensor};

use super::ClassifierError;
use crate::config_check::{ConfigError, at_least};
use crate::weights::{NamedTensors, PytorchWeights, WeightReader, WeightsError};

/// Configuration of an [`MlpClassifier`].
#[derive(Config, Debug, Copy, PartialEq, Eq)]
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

    /// The config, if it can build a classifier: every size at least 1.
    pub fn check(self) -> Result<Self, ConfigError> {
        at_least("vocab_size", self.vocab_size, 1)?;
        at_least("embedding_size", self.embedding_size, 1)?;
        at_least("seq_len", self.seq_len, 1)?;
        at_least("hidden_size", self.hidden_size, 1)?;
        at_least("classes", self.classes, 1)?;
        Ok(self)
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
