//! The RNN course's `TextDataset` + `ShiftByOne` on a `DataLoader(shuffle=True)`: a window of
//! `seq_len` tokens starting at every position of a text, its target the same window shifted by
//! one, served in a fresh random order each epoch. Each window is a sample of its own (no state
//! is carried between them), so a small text gives `seq_len` times as many training steps per
//! epoch as stateful streams over it do.

use crate::{DataError, LmBatch, LmSample, batches};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// Every window of a text, batched in a seeded random order per epoch.
///
/// ```
/// use seqlab_data::OverlappingWindows;
///
/// let windows = OverlappingWindows::new((0..10).collect(), 3, 4).unwrap();
/// assert_eq!(windows.windows(), 7); // starts 0..=6: inputs 0 1 2 … 6 7 8, targets up to 9
/// assert_eq!(windows.batches_per_epoch(), 2);
/// let order = windows.epoch_order(0, 0);
/// let first = windows.batch(&order[0]).unwrap();
/// assert_eq!((first.rows(), first.target_tokens()), (4, 12));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlappingWindows {
    ids: Vec<u32>,
    seq_len: usize,
    batch_size: usize,
}

impl OverlappingWindows {
    /// The windows of `seq_len` tokens over `ids`, `batch_size` to a batch (the last batch of
    /// an epoch may be shorter, as PyTorch's `DataLoader` keeps it). `ids` must hold at least
    /// `seq_len + 1` tokens: one window and its shifted target.
    pub fn new(ids: Vec<u32>, seq_len: usize, batch_size: usize) -> Result<Self, DataError> {
        if seq_len == 0 {
            return Err(DataError::ZeroSequenceLength);
        }
        if batch_size == 0 {
            return Err(DataError::ZeroBatchSize);
        }
        if ids.len() <= seq_len {
            return Err(DataError::SequenceTooLong {
                seq_len,
                needed: seq_len + 1,
                available: ids.len(),
            });
        }
        Ok(Self {
            ids,
            seq_len,
            batch_size,
        })
    }

    /// How many windows there are: one per start position, `tokens − seq_len`.
    pub fn windows(&self) -> usize {
        self.ids.len() - self.seq_len
    }

    /// Batches per epoch (every window once).
    pub fn batches_per_epoch(&self) -> usize {
        self.windows().div_ceil(self.batch_size)
    }

    /// Target tokens per epoch: `windows × seq_len`.
    pub fn target_tokens_per_epoch(&self) -> usize {
        self.windows() * self.seq_len
    }

    /// The window starts of each batch of `epoch`, in training order: every start once, in an
    /// order drawn from `seed` and `epoch` alone (so a resumed epoch sees the same batches).
    pub fn epoch_order(&self, seed: u64, epoch: usize) -> Vec<Vec<u32>> {
        let mut starts: Vec<u32> = (0..self.windows() as u32).collect();
        let mut rng =
            StdRng::seed_from_u64(seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        starts.shuffle(&mut rng);
        starts
            .chunks(self.batch_size)
            .map(<[u32]>::to_vec)
            .collect()
    }

    /// The batch of the windows starting at `starts`.
    pub fn batch(&self, starts: &[u32]) -> Result<LmBatch, DataError> {
        let samples: Vec<LmSample> = starts
            .iter()
            .map(|&start| {
                let start = start as usize;
                let window = self.ids.get(start..start + self.seq_len + 1).ok_or(
                    DataError::SequenceTooLong {
                        seq_len: self.seq_len,
                        needed: start + self.seq_len + 1,
                        available: self.ids.len(),
                    },
                )?;
                Ok(LmSample {
                    input: window[..self.seq_len].to_vec(),
                    target: window[1..].to_vec(),
                })
            })
            .collect::<Result<_, DataError>>()?;
        batches(&samples, starts.len().max(1), false)?
            .pop()
            .ok_or_else(|| DataError::Empty {
                what: "a batch of windows".into(),
                why: "no window starts were given".into(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_little_text_and_zero_sizes_are_errors() {
        assert_eq!(
            OverlappingWindows::new(vec![1, 2, 3], 3, 2),
            Err(DataError::SequenceTooLong {
                seq_len: 3,
                needed: 4,
                available: 3
            })
        );
        assert_eq!(
            OverlappingWindows::new(vec![1, 2, 3], 0, 2),
            Err(DataError::ZeroSequenceLength)
        );
        assert_eq!(
            OverlappingWindows::new(vec![1, 2, 3], 1, 0),
            Err(DataError::ZeroBatchSize)
        );
        let windows = OverlappingWindows::new(vec![1, 2, 3], 2, 2).unwrap();
        assert!(windows.batch(&[1]).is_err());
        assert!(windows.batch(&[]).is_err());
    }

    #[test]
    fn a_window_is_the_text_at_its_start_and_its_target_the_next_tokens() {
        let windows = OverlappingWindows::new((10..20).collect(), 4, 3).unwrap();
        let batch = windows.batch(&[5, 0]).unwrap();
        let samples = [
            LmSample {
                input: vec![15, 16, 17, 18],
                target: vec![16, 17, 18, 19],
            },
            LmSample {
                input: vec![10, 11, 12, 13],
                target: vec![11, 12, 13, 14],
            },
        ];
        assert_eq!(batch, batches(&samples, 2, false).unwrap()[0]);
    }

    #[test]
    fn epochs_differ_in_order_and_repeat_for_the_same_seed() {
        let windows = OverlappingWindows::new((0..200).collect(), 5, 8).unwrap();
        assert_eq!(windows.epoch_order(3, 1), windows.epoch_order(3, 1));
        assert_ne!(windows.epoch_order(3, 1), windows.epoch_order(3, 2));
        assert_ne!(windows.epoch_order(3, 1), windows.epoch_order(4, 1));
    }

    proptest::proptest! {
        #[test]
        fn an_epoch_serves_every_window_once_in_full_batches_but_the_last(
            tokens in 2usize..300,
            seq_len in 1usize..20,
            batch_size in 1usize..40,
            seed: u64,
            epoch in 0usize..5,
        ) {
            proptest::prop_assume!(tokens > seq_len);
            let windows = OverlappingWindows::new((0..tokens as u32).collect(), seq_len, batch_size).unwrap();
            let order = windows.epoch_order(seed, epoch);
            proptest::prop_assert_eq!(order.len(), windows.batches_per_epoch());
            let (last, full) = order.split_last().unwrap();
            proptest::prop_assert!(full.iter().all(|b| b.len() == batch_size));
            proptest::prop_assert!(!last.is_empty() && last.len() <= batch_size);
            let mut starts: Vec<u32> = order.concat();
            starts.sort_unstable();
            proptest::prop_assert_eq!(starts, (0..windows.windows() as u32).collect::<Vec<_>>());
            let tokens_served: usize = order.iter().map(|b| windows.batch(b).unwrap().target_tokens()).sum();
            proptest::prop_assert_eq!(tokens_served, windows.target_tokens_per_epoch());
        }
    }
}
