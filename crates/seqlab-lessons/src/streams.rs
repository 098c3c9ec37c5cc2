//! Text as stateful language-model streams, shared by the character and text language models
//! and the Markov baseline: a character corpus cut into a training head and a held-out tail,
//! and the batches of streams both language models train on.

use crate::LessonError;
use crate::data::{CharVocab, StreamBatches, TokenIds};
use crate::settings::{fraction, sizes_at_least_one};

/// A text cut into a training head and a held-out tail, as ids over the whole text's
/// characters: in memory, or memory-mapped from an id file for a corpus larger than memory
/// ([`char_ids_on_disk`](crate::data::char_ids_on_disk)).
#[derive(Debug, Clone)]
pub struct CharCorpus {
    /// The characters.
    pub vocab: CharVocab,
    /// The first `1 − valid_fraction` of the text.
    pub train: TokenIds,
    /// The rest.
    pub valid: TokenIds,
}

impl CharCorpus {
    /// Splits `text` at `floor(chars × (1 − valid_fraction))`.
    pub fn split(text: &str, valid_fraction: f64) -> Result<Self, LessonError> {
        let vocab = CharVocab::from_text(text);
        let ids = vocab.encode(text)?;
        Self::from_ids(vocab, ids.into(), valid_fraction)
    }

    /// Splits a text's ids over `vocab` at `floor(ids × (1 − valid_fraction))`.
    pub fn from_ids(
        vocab: CharVocab,
        ids: TokenIds,
        valid_fraction: f64,
    ) -> Result<Self, LessonError> {
        fraction("the validation fraction", valid_fraction)?;
        let cut = (ids.len() as f64 * (1.0 - valid_fraction)) as usize;
        let (train, valid) = (ids.slice(0..cut), ids.slice(cut..ids.len()));
        if train.is_empty() || valid.is_empty() {
            return Err(LessonError::Config(format!(
                "a text of {} characters is too short to split",
                ids.len()
            )));
        }
        Ok(Self {
            vocab,
            train,
            valid,
        })
    }
}

/// Checks the sizes of a run on stream batches: sequence length, batch size and epochs each
/// at least 1.
pub(crate) fn check_stream_sizes(
    seq_len: usize,
    batch_size: usize,
    epochs: usize,
) -> Result<(), LessonError> {
    Ok(sizes_at_least_one(&[
        ("the sequence length", seq_len),
        ("the batch size", batch_size),
        ("the epochs", epochs),
    ])?)
}

/// Stateful LM batches of `batch_size` streams × `seq_len` tokens from `ids`, cut as they are
/// needed (`what` names the text and `unit` its tokens in the error when it is too short for
/// one batch).
pub(crate) fn stream_batches(
    ids: &TokenIds,
    seq_len: usize,
    batch_size: usize,
    (what, unit): (&'static str, &'static str),
) -> Result<StreamBatches, LessonError> {
    let too_short = || {
        LessonError::Config(format!(
            "{what} ({} {unit}) is too short for one batch of {batch_size} × {seq_len}",
            ids.len()
        ))
    };
    if ids.len() <= seq_len {
        return Err(too_short());
    }
    let batched = StreamBatches::new(ids.clone(), seq_len, batch_size)?;
    if batched.is_empty() {
        return Err(too_short());
    }
    Ok(batched)
}

/// Held-out batches: as [`stream_batches`], with fewer streams when the held-out text is too
/// short to fill `batch_size` of them, so that a small corpus still gets a held-out score
/// (the loss is a mean per token either way).
pub(crate) fn held_out_batches(
    ids: &TokenIds,
    seq_len: usize,
    batch_size: usize,
    (what, unit): (&'static str, &'static str),
) -> Result<StreamBatches, LessonError> {
    let streams = (ids.len().saturating_sub(1) / seq_len.max(1)).clamp(1, batch_size.max(1));
    stream_batches(ids, seq_len, streams, (what, unit))
}
