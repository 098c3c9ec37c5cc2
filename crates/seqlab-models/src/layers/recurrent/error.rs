//! Bad input to a recurrent layer.

use thiserror::Error;

/// Bad input to a recurrent layer: each variant names the shapes involved.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RecurrentError {
    /// The input's last dimension is not the layer's input size.
    #[error("input has {got} features per step, the layer expects {expected}")]
    InputSize {
        /// The layer's input size.
        expected: usize,
        /// The input's.
        got: usize,
    },
    /// The input has no time steps or no rows.
    #[error("input of shape {0:?} is empty")]
    EmptyInput([usize; 3]),
    /// A state tensor's shape does not fit the layer and the input.
    #[error("{name} state has shape {got:?}, expected {expected:?}")]
    StateShape {
        /// `hidden` or `cell`.
        name: &'static str,
        /// What the layer needs.
        expected: [usize; 3],
        /// What was given.
        got: [usize; 3],
    },
    /// An LSTM state without its cell, or a cell given to an RNN or GRU.
    #[error("an LSTM state needs a cell tensor, and only an LSTM state has one")]
    CellMismatch,
    /// Sequence lengths that do not fit the input: one per sequence, each in `1..=time`.
    #[error("lengths {lengths:?} do not fit a batch of {batch} sequences of {time} steps")]
    Lengths {
        /// The lengths given.
        lengths: Vec<usize>,
        /// Sequences in the batch.
        batch: usize,
        /// Steps in the input.
        time: usize,
    },
    /// A model was called without an input it needs, or with one that does not fit.
    #[error("{0}")]
    MissingInput(&'static str),
}
