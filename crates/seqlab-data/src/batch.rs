//! Batches of language-model samples as `[batch, time]` integer tensors.

use crate::{DataError, LmSample};
#[cfg(feature = "tensors")]
use burn::tensor::{Device, Int, Tensor, TensorData};

/// A batch of samples, stored row-major on the host until [`LmBatch::to_tensors`] moves it to
/// a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LmBatch {
    inputs: Vec<i64>,
    targets: Vec<i64>,
    rows: usize,
    input_len: usize,
    target_len: usize,
}

impl LmBatch {
    /// A batch of `rows` rows from row-major inputs and targets.
    pub(crate) fn from_rows(
        inputs: Vec<i64>,
        targets: Vec<i64>,
        rows: usize,
        input_len: usize,
        target_len: usize,
    ) -> Self {
        Self {
            inputs,
            targets,
            rows,
            input_len,
            target_len,
        }
    }

    /// Number of samples in the batch.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The batch of rows `rows` of this one (a process's share of a data-parallel batch).
    /// Rows past the end are left out.
    ///
    /// ```
    /// let samples = seqlab_data::fixed_windows(&(0..20).collect::<Vec<u32>>(), 3).unwrap();
    /// let batch = &seqlab_data::batches(&samples, 4, false).unwrap()[0];
    /// let half = batch.select_rows(2..4);
    /// assert_eq!(half.rows(), 2);
    /// assert_eq!(half, seqlab_data::batches(&samples[2..4], 2, false).unwrap()[0]);
    /// ```
    pub fn select_rows(&self, rows: std::ops::Range<usize>) -> LmBatch {
        let end = rows.end.min(self.rows);
        let start = rows.start.min(end);
        Self {
            inputs: self.inputs[start * self.input_len..end * self.input_len].to_vec(),
            targets: self.targets[start * self.target_len..end * self.target_len].to_vec(),
            rows: end - start,
            input_len: self.input_len,
            target_len: self.target_len,
        }
    }

    /// Number of target tokens in the batch.
    pub fn target_tokens(&self) -> usize {
        self.rows * self.target_len
    }

    /// The inputs `[rows, input_len]` and targets `[rows, target_len]` on `device`.
    #[cfg(feature = "tensors")]
    pub fn to_tensors(&self, device: &Device) -> (Tensor<2, Int>, Tensor<2, Int>) {
        let inputs = TensorData::new(self.inputs.clone(), [self.rows, self.input_len]);
        let targets = TensorData::new(self.targets.clone(), [self.rows, self.target_len]);
        (
            Tensor::from_data(inputs, device),
            Tensor::from_data(targets, device),
        )
    }
}

/// Cuts samples into batches of `batch_size` in order, as a `DataLoader` with
/// `shuffle=False` does; with `drop_last` a short final batch is left out.
///
/// ```
/// let samples = seqlab_data::fixed_windows(&(0..20).collect::<Vec<u32>>(), 3).unwrap();
/// let batches = seqlab_data::batches(&samples, 4, false).unwrap();
/// assert_eq!(batches.iter().map(|b| b.rows()).collect::<Vec<_>>(), [4, 2]);
/// ```
pub fn batches(
    samples: &[LmSample],
    batch_size: usize,
    drop_last: bool,
) -> Result<Vec<LmBatch>, DataError> {
    if batch_size == 0 {
        return Err(DataError::ZeroBatchSize);
    }
    let Some(first) = samples.first() else {
        return Ok(Vec::new());
    };
    let (input_len, target_len) = (first.input.len(), first.target.len());
    for sample in samples {
        for (what, expected, actual) in [
            ("sample inputs", input_len, sample.input.len()),
            ("sample targets", target_len, sample.target.len()),
        ] {
            if actual != expected {
                return Err(DataError::LengthMismatch {
                    what: what.into(),
                    left: expected,
                    right: actual,
                });
            }
        }
    }
    Ok(samples
        .chunks(batch_size)
        .filter(|chunk| !drop_last || chunk.len() == batch_size)
        .map(|chunk| LmBatch {
            inputs: chunk
                .iter()
                .flat_map(|s| s.input.iter().map(|&id| id as i64))
                .collect(),
            targets: chunk
                .iter()
                .flat_map(|s| s.target.iter().map(|&id| id as i64))
                .collect(),
            rows: chunk.len(),
            input_len,
            target_len,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(input: &[u32], target: &[u32]) -> LmSample {
        LmSample {
            input: input.to_vec(),
            target: target.to_vec(),
        }
    }

    #[test]
    fn drop_last_leaves_out_the_short_batch() {
        let samples = vec![sample(&[1], &[2]); 5];
        assert_eq!(batches(&samples, 2, true).unwrap().len(), 2);
        assert_eq!(batches(&samples, 2, false).unwrap().len(), 3);
        assert_eq!(batches(&samples, 0, false), Err(DataError::ZeroBatchSize));
    }

    #[test]
    fn ragged_samples_are_an_error() {
        let samples = vec![sample(&[1, 2], &[3]), sample(&[1], &[3])];
        assert!(matches!(
            batches(&samples, 2, false),
            Err(DataError::LengthMismatch { .. })
        ));
    }

    proptest::proptest! {
        #[test]
        fn batching_keeps_every_sample_in_order(
            count in 0usize..200,
            width in 1usize..6,
            batch_size in 1usize..40,
            drop_last: bool,
        ) {
            let samples: Vec<LmSample> = (0..count as u32)
                .map(|i| sample(&vec![i; width], &[i + 1]))
                .collect();
            let batched = batches(&samples, batch_size, drop_last).unwrap();
            let kept = if drop_last { count / batch_size * batch_size } else { count };
            proptest::prop_assert_eq!(batched.iter().map(LmBatch::rows).sum::<usize>(), kept);
            proptest::prop_assert!(batched.iter().all(|b| b.rows() <= batch_size));
            let targets: Vec<i64> = batched.iter().flat_map(|b| b.targets.clone()).collect();
            proptest::prop_assert_eq!(targets, (1..=kept as i64).collect::<Vec<_>>());
            proptest::prop_assert!(batched.iter().all(|b| b.inputs.len() == b.rows() * width));
        }
    }
}
