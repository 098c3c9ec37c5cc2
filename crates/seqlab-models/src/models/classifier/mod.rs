//! Sequence classifiers: token ids `[B, T]` → class logits `[B, classes]`.
//!
//! - [`SequenceClassifier`]: embedding → any [`SequenceEncoder`](crate::SequenceEncoder) →
//!   pooling over time → linear. [`RecurrentClassifier`] is the one on seqlab's RNN / LSTM /
//!   GRU layers; the seed notebook's `MyRNNClassifier` and `MyLSTMClassifier` are
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

mod mlp;
mod sequence;
#[cfg(test)]
mod tests;

pub use mlp::{MlpClassifier, MlpClassifierConfig};
pub use sequence::{
    RecurrentClassifier, RecurrentClassifierConfig, SequenceClassifier, SequenceClassifierConfig,
};

use burn::tensor::{Tensor, TensorData};
use thiserror::Error;

use crate::layers::recurrent::step_mask;
use crate::{EncoderError, RecurrentError, last_valid_output};

/// Bad input to a classifier.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ClassifierError {
    /// The recurrent layers rejected the input or the lengths.
    #[error(transparent)]
    Recurrent(#[from] RecurrentError),
    /// The encoder rejected the input or the lengths.
    #[error(transparent)]
    Encoder(#[from] EncoderError),
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

/// How a [`SequenceClassifier`] summarises the outputs of every step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
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
    /// Its name on the command line and in configs: `mean`, `last` or `concat`.
    pub fn name(self) -> &'static str {
        match self {
            Pooling::Mean => "mean",
            Pooling::Last => "last",
            Pooling::Concat => "concat",
        }
    }

    /// Features per output unit of the recurrent layers: 3 for [`Pooling::Concat`], else 1.
    pub fn widths(self) -> usize {
        match self {
            Pooling::Concat => 3,
            Pooling::Mean | Pooling::Last => 1,
        }
    }
}

impl std::str::FromStr for Pooling {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        [Pooling::Mean, Pooling::Last, Pooling::Concat]
            .into_iter()
            .find(|pooling| pooling.name() == name)
            .ok_or_else(|| format!("unknown pooling {name:?}: expected mean, last or concat"))
    }
}

/// `out` `[B, T, W]` pooled over each sequence's first `lengths[b]` steps.
pub(super) fn pool(
    pooling: Pooling,
    out: Tensor<3>,
    lengths: &[usize],
) -> Result<Tensor<2>, ClassifierError> {
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

/// The mean of `out` `[B, T, W]` over each sequence's first `lengths[b]` steps: `[B, W]`.
/// The padded steps are zeroed first (seqlab's recurrent layers leave them zero already; the
/// product is exact, so their numbers do not move), so any encoder's padding is left out.
fn masked_mean(out: Tensor<3>, lengths: &[usize]) -> Tensor<2> {
    let [batch, time, width] = out.dims();
    let device = out.device();
    let out = out * step_mask(lengths, time, &device).unsqueeze_dim::<3>(2);
    let counts = TensorData::new(
        lengths.iter().map(|&l| l as f32).collect::<Vec<_>>(),
        [batch, 1],
    );
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
