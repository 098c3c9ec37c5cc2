//! [`SequenceEncoder`]: what a model needs of the layer between its embedding and its head, so
//! that a classifier takes a recurrent stack, a Transformer encoder or a convolution alike.

use burn::module::Module;
use burn::tensor::Tensor;
use thiserror::Error;

use crate::{Recurrent, RecurrentError};

/// Why an encoder refused its input.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EncoderError {
    /// The recurrent layers rejected the input or the lengths.
    #[error(transparent)]
    Recurrent(#[from] RecurrentError),
    /// Another encoder's own complaint.
    #[error("{0}")]
    Other(String),
}

/// A layer that reads a batch of embedded sequences `[B, T, input]` and gives features for
/// every step `[B, T, output_width]`: the part of a classifier between its embedding and its
/// pooling. seqlab's [`Recurrent`] is one; anything else that implements this trait plugs
/// into [`SequenceClassifier`](crate::SequenceClassifier) without touching it.
///
/// With `lengths`, sequence `b` is `input[b, ..lengths[b]]` and the rest is padding: the
/// features of the valid steps must not depend on it (what the padded steps hold does not
/// matter: pooling masks them).
pub trait SequenceEncoder: Module + Clone {
    /// Features per step of the output.
    fn output_width(&self) -> usize;

    /// Encodes `input` `[B, T, input]` into `[B, T, output_width]`.
    fn encode(
        &self,
        input: Tensor<3>,
        lengths: Option<&[usize]>,
    ) -> Result<Tensor<3>, EncoderError>;
}

impl SequenceEncoder for Recurrent {
    fn output_width(&self) -> usize {
        self.hidden_size() * if self.is_bidirectional() { 2 } else { 1 }
    }

    fn encode(
        &self,
        input: Tensor<3>,
        lengths: Option<&[usize]>,
    ) -> Result<Tensor<3>, EncoderError> {
        let (output, _) = match lengths {
            Some(lengths) => self.forward_padded(input, None, lengths)?,
            None => self.forward(input, None)?,
        };
        Ok(output)
    }
}
