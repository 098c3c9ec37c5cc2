//! The interface the training loop uses for every language model.

use crate::RecurrentState;
use burn::module::Module;
use burn::tensor::{Int, Tensor};

/// What a language model returns for a batch.
#[derive(Debug, Clone)]
pub struct LmOutput {
    /// Scores over the vocabulary, `[batch, predicted steps, vocab]`: one predicted step for a
    /// model that predicts only the token after its input, `time` steps for one that predicts
    /// after every token.
    pub logits: Tensor<3>,
    /// The hidden state to pass to the next call, for models that keep state across batches.
    pub state: Option<RecurrentState>,
    /// A regularisation term to add to the training loss (e.g. AWD-LSTM's activation and
    /// temporal activation regularisation); models give one only while training.
    pub penalty: Option<Tensor<1>>,
}

/// A model that reads `[batch, time]` token ids and scores the next token(s).
///
/// Stateless models ignore `state` and return `None`; stateful ones (LMModel3, LMModel4 and the
/// recurrent models) start from `state` when it is given and return the state after the batch.
/// The caller decides when to reset (pass `None`) and detaches between batches.
pub trait LanguageModel: Module {
    /// Scores the next token(s) for each row of `tokens`.
    fn forward_lm(&self, tokens: Tensor<2, Int>, state: Option<RecurrentState>) -> LmOutput;

    /// The size of the vocabulary the model scores.
    fn vocab_size(&self) -> usize;

    /// The global gradient norm a `Learner` clips to unless told otherwise: `None` (no
    /// clipping) by default, as the lessons' hand-written models train.
    fn default_grad_clip(&self) -> Option<f64> {
        None
    }

    /// Generation's fast path: the model for one sequence, from `state`, with its weights on
    /// the host, stepping one token per call without tensor operations. `None` (the default,
    /// and on devices without one) makes [`generate_stepwise`](crate::generate_stepwise)
    /// call [`LanguageModel::forward_lm`] once per token instead.
    fn token_stepper(&self, state: Option<RecurrentState>) -> Option<Box<dyn TokenStepper>> {
        let _ = state;
        None
    }
}

/// A language model for one sequence held on the host, stepped one token at a time (see
/// [`LanguageModel::token_stepper`]).
pub trait TokenStepper: Send {
    /// Reads `token` and returns the scores of the next token, `[vocab]`.
    fn step(&mut self, token: u32) -> &[f32];
}
