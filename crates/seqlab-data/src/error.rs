//! The one error type of the data crate.

use thiserror::Error;

/// What can go wrong while preparing data. Every variant names the offending value.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum DataError {
    /// A batch size of zero was asked for.
    #[error("batch size must be at least 1")]
    ZeroBatchSize,
    /// A window or sequence length of zero was asked for.
    #[error("sequence length must be at least 1")]
    ZeroSequenceLength,
    /// The token stream is too short to make even one sample of the asked length.
    #[error(
        "sequence length {seq_len} needs at least {needed} tokens, but the data has {available}"
    )]
    SequenceTooLong {
        /// The length asked for.
        seq_len: usize,
        /// Tokens needed for one sample.
        needed: usize,
        /// Tokens available.
        available: usize,
    },
    /// A split or batching step left no samples.
    #[error("{what} is empty: {why}")]
    Empty {
        /// What is empty (e.g. "the training set").
        what: String,
        /// Why, in words.
        why: String,
    },
    /// A token is not in the vocabulary and the vocabulary has no unknown token.
    #[error("token {token:?} is not in the vocabulary (and the vocabulary has no unknown token)")]
    UnknownToken {
        /// The token.
        token: String,
    },
    /// A character is not in a character vocabulary.
    #[error("character {character:?} (at position {position}) is not in the vocabulary")]
    UnknownChar {
        /// The character.
        character: char,
        /// Its position in the text, in characters.
        position: usize,
    },
    /// An id is outside the vocabulary.
    #[error("token id {id} is outside the vocabulary of size {size}")]
    UnknownId {
        /// The id.
        id: usize,
        /// The vocabulary's size.
        size: usize,
    },
    /// A fraction outside (0, 1).
    #[error("the validation fraction must be strictly between 0 and 1, got {0}")]
    BadFraction(f64),
    /// Two sequences that must have the same length do not.
    #[error("{what}: lengths differ ({left} vs {right})")]
    LengthMismatch {
        /// What was compared.
        what: String,
        /// First length.
        left: usize,
        /// Second length.
        right: usize,
    },
    /// A setting that cannot make data (an empty alphabet, a range with min > max, a count of
    /// zero, …), with what is wrong in words.
    #[error("{0}")]
    InvalidSetting(String),
    /// A text file could not be used.
    #[error("{path}: {message}")]
    TextFile {
        /// The file.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// An id file (a corpus's token ids on disk) could not be written or read.
    #[error("id file {path}: {message}")]
    IdFile {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A tokenizer could not be read, trained or used.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A saved vocabulary could not be read or written.
    #[error("vocabulary file {path}: {message}")]
    VocabFile {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
}
