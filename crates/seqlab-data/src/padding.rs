//! Variable-length sequences padded with the stop symbol, their length masks and one-hot
//! encodings, and shuffled batch orders.

use crate::DataError;
use crate::symbols::STOP;
#[cfg(feature = "tensors")]
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// Sequences padded with [`STOP`] to one length, row-major `[rows, time]`, with each
/// sequence's own length.
///
/// ```
/// use seqlab_data::pad_with_stop;
///
/// let padded = pad_with_stop(&[vec![1, 2, 3], vec![2]], 1).unwrap();
/// assert_eq!((padded.rows(), padded.time()), (2, 4));
/// assert_eq!(padded.ids(), [1, 2, 3, 0, 2, 0, 0, 0]);
/// assert_eq!(padded.lengths(), [3, 1]);
/// assert_eq!(padded.mask(false), [true, true, true, false, true, false, false, false]);
/// // With the first stop symbol, as a loss that teaches where to stop needs.
/// assert_eq!(padded.mask(true), [true, true, true, true, true, true, false, false]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Padded {
    ids: Vec<u32>,
    lengths: Vec<usize>,
    time: usize,
}

/// Pads `sequences` with [`STOP`] to the longest one's length plus `trailing_stops` (1 makes
/// every sequence end with a stop symbol). Every sequence must be non-empty.
pub fn pad_with_stop<S: AsRef<[u32]>>(
    sequences: &[S],
    trailing_stops: usize,
) -> Result<Padded, DataError> {
    pad_with_stop_to(sequences, 0, trailing_stops)
}

/// [`pad_with_stop`] to at least `longest` symbols before the trailing stops: a part of a
/// batch padded as the whole batch is (data-parallel training pads each process's rows to
/// the whole batch's longest sequence, as one process would).
///
/// ```
/// let part = seqlab_data::pad_with_stop_to(&[vec![5, 6]], 4, 1).unwrap();
/// assert_eq!(part.time(), 5);
/// assert_eq!(part.lengths(), [2]);
/// ```
pub fn pad_with_stop_to<S: AsRef<[u32]>>(
    sequences: &[S],
    longest: usize,
    trailing_stops: usize,
) -> Result<Padded, DataError> {
    if sequences.is_empty() {
        return Err(DataError::Empty {
            what: "the batch".into(),
            why: "there are no sequences to pad".into(),
        });
    }
    if let Some(index) = sequences.iter().position(|s| s.as_ref().is_empty()) {
        return Err(DataError::InvalidSetting(format!(
            "sequence {index} is empty: every sequence needs at least one symbol"
        )));
    }
    let own = sequences.iter().map(|s| s.as_ref().len()).max();
    let time = own.unwrap_or(0).max(longest) + trailing_stops;
    let mut ids = vec![STOP; sequences.len() * time];
    for (row, sequence) in sequences.iter().enumerate() {
        let sequence = sequence.as_ref();
        ids[row * time..row * time + sequence.len()].copy_from_slice(sequence);
    }
    Ok(Padded {
        ids,
        lengths: sequences.iter().map(|s| s.as_ref().len()).collect(),
        time,
    })
}

impl Padded {
    /// Number of sequences.
    pub fn rows(&self) -> usize {
        self.lengths.len()
    }

    /// Steps per padded row.
    pub fn time(&self) -> usize {
        self.time
    }

    /// The ids, row-major `[rows, time]`.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// Each sequence's length before padding.
    pub fn lengths(&self) -> &[usize] {
        &self.lengths
    }

    /// Row `row`'s ids without padding.
    pub fn sequence(&self, row: usize) -> &[u32] {
        &self.ids[row * self.time..row * self.time + self.lengths[row]]
    }

    /// `[rows, time]` row-major: true at a sequence's own steps, and with `with_stop` also at
    /// the first stop symbol after it (the notebook's `l >= arange(T)`).
    pub fn mask(&self, with_stop: bool) -> Vec<bool> {
        let extra = usize::from(with_stop);
        self.lengths
            .iter()
            .flat_map(|&length| (0..self.time).map(move |t| t < length + extra))
            .collect()
    }

    /// The ids as an integer tensor `[rows, time]`.
    #[cfg(feature = "tensors")]
    pub fn to_ids(&self, device: &Device) -> Tensor<2, Int> {
        let ids = self.ids.iter().map(|&id| id as i64).collect::<Vec<_>>();
        Tensor::from_data(TensorData::new(ids, [self.rows(), self.time]), device)
    }

    /// One-hot vectors `[rows, time, classes]` (the notebook's inputs); `classes` must exceed
    /// every id.
    #[cfg(feature = "tensors")]
    pub fn to_one_hot(&self, classes: usize, device: &Device) -> Result<Tensor<3>, DataError> {
        if let Some(&id) = self.ids.iter().find(|&&id| id as usize >= classes) {
            return Err(DataError::UnknownId {
                id: id as usize,
                size: classes,
            });
        }
        let mut values = vec![0.0f32; self.ids.len() * classes];
        for (position, &id) in self.ids.iter().enumerate() {
            values[position * classes + id as usize] = 1.0;
        }
        Ok(Tensor::from_data(
            TensorData::new(values, [self.rows(), self.time, classes]),
            device,
        ))
    }

    /// [`mask`](Self::mask) as a boolean tensor `[rows, time]`.
    #[cfg(feature = "tensors")]
    pub fn to_mask(&self, with_stop: bool, device: &Device) -> Tensor<2, Bool> {
        Tensor::from_data(
            TensorData::new(self.mask(with_stop), [self.rows(), self.time]),
            device,
        )
    }
}

/// The rows of each batch: `0..count` cut into batches of `batch_size` (the last may be
/// short), shuffled first when `shuffle_seed` is given (a `DataLoader` with `shuffle=True`).
///
/// ```
/// let batches = seqlab_data::batch_rows(5, 2, None).unwrap();
/// assert_eq!(batches, [vec![0, 1], vec![2, 3], vec![4]]);
/// ```
pub fn batch_rows(
    count: usize,
    batch_size: usize,
    shuffle_seed: Option<u64>,
) -> Result<Vec<Vec<usize>>, DataError> {
    if batch_size == 0 {
        return Err(DataError::ZeroBatchSize);
    }
    let mut rows: Vec<usize> = (0..count).collect();
    if let Some(seed) = shuffle_seed {
        rows.shuffle(&mut StdRng::seed_from_u64(seed));
    }
    Ok(rows.chunks(batch_size).map(<[usize]>::to_vec).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn empty_input_is_refused() {
        assert!(pad_with_stop::<Vec<u32>>(&[], 0).is_err());
        assert!(pad_with_stop(&[vec![1], vec![]], 0).is_err());
        assert!(batch_rows(3, 0, None).is_err());
        let padded = pad_with_stop(&[vec![3]], 0).unwrap();
        assert!(padded.to_one_hot(3, &Device::flex()).is_err());
    }

    #[test]
    fn one_hot_puts_a_one_at_each_id() {
        let device = Device::flex();
        let padded = pad_with_stop(&[vec![2, 1], vec![1]], 0).unwrap();
        let one_hot = padded.to_one_hot(3, &device).unwrap();
        let values = one_hot.into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(
            values,
            [0., 0., 1., 0., 1., 0., 0., 1., 0., 1., 0., 0.],
            "rows [2 1] and [1 0]"
        );
    }

    proptest! {
        #[test]
        fn padding_keeps_every_sequence_and_masks_match_lengths(
            sequences in prop::collection::vec(prop::collection::vec(1u32..5, 1..12), 1..8),
            trailing in 0usize..3,
        ) {
            let padded = pad_with_stop(&sequences, trailing).unwrap();
            let longest = sequences.iter().map(Vec::len).max().unwrap();
            prop_assert_eq!(padded.time(), longest + trailing);
            let mask = padded.mask(false);
            for (row, sequence) in sequences.iter().enumerate() {
                prop_assert_eq!(padded.sequence(row), sequence.as_slice());
                let row_ids = &padded.ids()[row * padded.time()..(row + 1) * padded.time()];
                prop_assert!(row_ids[sequence.len()..].iter().all(|&id| id == STOP));
                let row_mask = &mask[row * padded.time()..(row + 1) * padded.time()];
                prop_assert_eq!(row_mask.iter().filter(|&&m| m).count(), sequence.len());
            }
        }

        #[test]
        fn batch_rows_is_a_partition(count in 0usize..50, batch_size in 1usize..9, seed in any::<u64>()) {
            let batches = batch_rows(count, batch_size, Some(seed)).unwrap();
            let mut all: Vec<usize> = batches.iter().flatten().copied().collect();
            all.sort_unstable();
            prop_assert_eq!(all, (0..count).collect::<Vec<_>>());
            prop_assert!(batches.iter().all(|b| !b.is_empty() && b.len() <= batch_size));
        }
    }
}
