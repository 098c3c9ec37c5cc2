//! Language-model samples: fixed windows (predict the next token) and shifted sequences
//! (predict every token), split into training and validation sets as the lesson does.

use crate::{DataError, group_chunks};

/// One language-model sample: input ids and the ids to predict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LmSample {
    /// Input token ids.
    pub input: Vec<u32>,
    /// Target token ids: one for a fixed window, `input.len()` for a shifted sequence.
    pub target: Vec<u32>,
}

/// Fixed windows of `context` tokens, each followed by the token to predict, stepping by
/// `context`: the lesson's `[(nums[i:i+3], nums[i+3]) for i in range(0, len(nums)-4, 3)]`.
///
/// ```
/// let samples = seqlab_data::fixed_windows(&[0, 1, 2, 3, 4, 5, 6, 7], 3).unwrap();
/// assert_eq!(samples.len(), 2);
/// assert_eq!((samples[1].input.as_slice(), samples[1].target.as_slice()), (&[3, 4, 5][..], &[6][..]));
/// ```
pub fn fixed_windows(ids: &[u32], context: usize) -> Result<Vec<LmSample>, DataError> {
    windows(ids, context, |start| LmSample {
        input: ids[start..start + context].to_vec(),
        target: vec![ids[start + context]],
    })
}

/// Sequences of `seq_len` tokens with targets shifted by one, stepping by `seq_len`: the
/// lesson's `[(nums[i:i+sl], nums[i+1:i+sl+1]) for i in range(0, len(nums)-sl-1, sl)]`.
///
/// ```
/// let samples = seqlab_data::sequence_windows(&[0, 1, 2, 3, 4, 5], 2).unwrap();
/// assert_eq!(samples.len(), 2);
/// assert_eq!(samples[1].target, [3, 4]);
/// ```
pub fn sequence_windows(ids: &[u32], seq_len: usize) -> Result<Vec<LmSample>, DataError> {
    windows(ids, seq_len, |start| LmSample {
        input: ids[start..start + seq_len].to_vec(),
        target: ids[start + 1..start + seq_len + 1].to_vec(),
    })
}

fn windows(
    ids: &[u32],
    len: usize,
    sample: impl Fn(usize) -> LmSample,
) -> Result<Vec<LmSample>, DataError> {
    if len == 0 {
        return Err(DataError::ZeroSequenceLength);
    }
    // The lesson's `range(0, n - len - 1, len)`: needs at least len + 2 tokens for one sample.
    let needed = len + 2;
    if ids.len() < needed {
        return Err(DataError::SequenceTooLong {
            seq_len: len,
            needed,
            available: ids.len(),
        });
    }
    Ok((0..ids.len() - len - 1).step_by(len).map(sample).collect())
}

/// Splits samples at `floor(len * (1 - valid_fraction))`, the lesson's `cut`, keeping order.
pub fn split_train_valid<T: Clone>(
    samples: &[T],
    valid_fraction: f64,
) -> Result<(Vec<T>, Vec<T>), DataError> {
    if !(valid_fraction > 0.0 && valid_fraction < 1.0) {
        return Err(DataError::BadFraction(valid_fraction));
    }
    let cut = (samples.len() as f64 * (1.0 - valid_fraction)) as usize;
    Ok((samples[..cut].to_vec(), samples[cut..].to_vec()))
}

/// What a language model is asked to predict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LmTask {
    /// The token after a fixed window of `context` tokens (LMModel1–3).
    NextToken {
        /// Tokens of context.
        context: usize,
    },
    /// Every next token of a sequence of `seq_len` tokens (LMModel4 and later).
    EveryToken {
        /// Tokens per sequence.
        seq_len: usize,
    },
}

/// Training and validation samples ready to batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LmSplit {
    /// Training samples, in batching order.
    pub train: Vec<LmSample>,
    /// Validation samples, in batching order.
    pub valid: Vec<LmSample>,
}

impl LmSplit {
    /// Cuts `ids` into samples for `task`, splits off the last `valid_fraction`, and, when
    /// `group_for_batch_size` is given, arranges both halves with [`group_chunks`] so that a
    /// stateful model sees each stream continue from batch to batch.
    pub fn new(
        ids: &[u32],
        task: LmTask,
        valid_fraction: f64,
        group_for_batch_size: Option<usize>,
    ) -> Result<Self, DataError> {
        let samples = match task {
            LmTask::NextToken { context } => fixed_windows(ids, context)?,
            LmTask::EveryToken { seq_len } => sequence_windows(ids, seq_len)?,
        };
        let (mut train, mut valid) = split_train_valid(&samples, valid_fraction)?;
        if let Some(batch_size) = group_for_batch_size {
            train = group_chunks(&train, batch_size)?;
            valid = group_chunks(&valid, batch_size)?;
        }
        for (what, set) in [("the training set", &train), ("the validation set", &valid)] {
            if set.is_empty() {
                return Err(DataError::Empty {
                    what: what.into(),
                    why: format!(
                        "{} samples in all are too few for this split and batch size",
                        samples.len()
                    ),
                });
            }
        }
        Ok(Self { train, valid })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_short_data_is_an_error() {
        assert_eq!(
            sequence_windows(&[1, 2, 3], 2),
            Err(DataError::SequenceTooLong {
                seq_len: 2,
                needed: 4,
                available: 3
            })
        );
        assert_eq!(
            fixed_windows(&[1, 2, 3], 0),
            Err(DataError::ZeroSequenceLength)
        );
    }

    #[test]
    fn split_cuts_like_the_lesson() {
        let (train, valid) = split_train_valid(&(0..21031).collect::<Vec<_>>(), 0.2).unwrap();
        assert_eq!((train.len(), valid.len()), (16824, 4207));
        assert_eq!(
            split_train_valid(&[1], 1.0),
            Err(DataError::BadFraction(1.0))
        );
    }

    #[test]
    fn grouping_that_leaves_nothing_is_an_error() {
        let ids: Vec<u32> = (0..40).collect();
        let err = LmSplit::new(&ids, LmTask::EveryToken { seq_len: 4 }, 0.2, Some(64)).unwrap_err();
        assert!(matches!(err, DataError::Empty { .. }), "{err}");
    }
}
