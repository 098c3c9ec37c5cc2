//! [`SequenceEncoder`]: what a model needs of the layer between its embedding and its head, so
//! that a classifier takes a recurrent stack, a Transformer encoder or a convolution alike.

use burn::module::{Module, ModuleDisplay};
use burn::nn::Embedding;
use burn::tensor::{Int, Tensor};
use thiserror::Error;

use crate::layers::recurrent::fused::HostRecurrent;
use crate::{Recurrent, RecurrentError, RecurrentState};

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
/// every step `[B, T, output_width]`: the part of a model between its embedding and its head.
/// seqlab's [`Recurrent`] is one; anything else that implements this trait plugs into
/// [`SequenceClassifier`](crate::SequenceClassifier),
/// [`SequenceTagger`](crate::SequenceTagger) and [`EncoderLm`](crate::EncoderLm) without
/// touching them.
///
/// With `lengths`, sequence `b` is `input[b, ..lengths[b]]` and the rest is padding: the
/// features of the valid steps must not depend on it (what the padded steps hold does not
/// matter: pooling masks them).
pub trait SequenceEncoder: Module + ModuleDisplay + Clone {
    /// Features per step of the output.
    fn output_width(&self) -> usize;

    /// Encodes `input` `[B, T, input]` into `[B, T, output_width]`.
    fn encode(
        &self,
        input: Tensor<3>,
        lengths: Option<&[usize]>,
    ) -> Result<Tensor<3>, EncoderError>;

    /// Encodes a batch that continues the one before from `state`, and returns the state
    /// after it: what a language model carries from batch to batch. An encoder without state
    /// (the default) reads the batch on its own and returns `None`; a language model on it
    /// sees each batch alone, so generate from it with
    /// [`generate_by_prefix`](crate::generate_by_prefix). A language model's encoder must be
    /// causal: step `t`'s features may not depend on later steps.
    fn encode_carrying(
        &self,
        input: Tensor<3>,
        state: Option<RecurrentState>,
    ) -> Result<(Tensor<3>, Option<RecurrentState>), EncoderError> {
        let _ = state;
        Ok((self.encode(input, None)?, None))
    }

    /// [`encode_carrying`](Self::encode_carrying) over `tokens` `[batch, time]` looked up in
    /// `embedding`. The default looks them up and encodes the result; seqlab's recurrent
    /// layers may look up projected rows instead ([`Recurrent::forward_tokens`]).
    fn encode_tokens_carrying(
        &self,
        embedding: &Embedding,
        tokens: Tensor<2, Int>,
        state: Option<RecurrentState>,
    ) -> Result<(Tensor<3>, Option<RecurrentState>), EncoderError> {
        self.encode_carrying(embedding.forward(tokens), state)
    }

    /// Generation's fast path: the encoder for one sequence from `state`, its weights copied
    /// to the host, stepped one input vector per call. `None` (the default) makes a language
    /// model step through tensor operations instead.
    fn step_on_host(&self, state: Option<RecurrentState>) -> Option<Box<dyn HostStepper>> {
        let _ = state;
        None
    }
}

/// An encoder for one sequence on the host (see [`SequenceEncoder::step_on_host`]).
pub trait HostStepper: Send {
    /// Reads the features of one step and returns the encoder's output for it.
    fn step(&mut self, input: &[f32]) -> &[f32];
}

impl HostStepper for HostRecurrent {
    fn step(&mut self, input: &[f32]) -> &[f32] {
        HostRecurrent::step(self, input)
    }
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

    fn encode_carrying(
        &self,
        input: Tensor<3>,
        state: Option<RecurrentState>,
    ) -> Result<(Tensor<3>, Option<RecurrentState>), EncoderError> {
        let (output, state) = self.forward(input, state)?;
        Ok((output, Some(state)))
    }

    fn encode_tokens_carrying(
        &self,
        embedding: &Embedding,
        tokens: Tensor<2, Int>,
        state: Option<RecurrentState>,
    ) -> Result<(Tensor<3>, Option<RecurrentState>), EncoderError> {
        let (output, state) = self.forward_tokens(embedding, tokens, state)?;
        Ok((output, Some(state)))
    }

    fn step_on_host(&self, state: Option<RecurrentState>) -> Option<Box<dyn HostStepper>> {
        Some(Box::new(self.host_stepper(state)?))
    }
}
