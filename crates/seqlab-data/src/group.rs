//! fastai's `group_chunks`: arrange samples so that consecutive batches continue each stream.

use crate::DataError;

/// Reorders `dataset` so that, batched by `batch_size` without shuffling, row `j` of batch `i+1`
/// continues row `j` of batch `i`: the lesson's
/// `[ds[i + m*j] for i in range(m) for j in range(bs)]` with `m = len(ds) // bs`.
/// The last `len % batch_size` samples are dropped.
///
/// ```
/// let grouped = seqlab_data::group_chunks(&[0, 1, 2, 3, 4, 5, 6], 2).unwrap();
/// assert_eq!(grouped, [0, 3, 1, 4, 2, 5]);
/// ```
pub fn group_chunks<T: Clone>(dataset: &[T], batch_size: usize) -> Result<Vec<T>, DataError> {
    if batch_size == 0 {
        return Err(DataError::ZeroBatchSize);
    }
    let rows = dataset.len() / batch_size;
    Ok((0..rows)
        .flat_map(|i| (0..batch_size).map(move |j| dataset[i + rows * j].clone()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn zero_batch_size_is_an_error() {
        assert_eq!(group_chunks(&[1, 2], 0), Err(DataError::ZeroBatchSize));
    }

    #[test]
    fn fewer_samples_than_a_batch_give_nothing() {
        assert!(group_chunks(&[1, 2], 3).unwrap().is_empty());
    }

    proptest! {
        #[test]
        fn is_a_permutation_of_the_kept_samples(len in 0usize..500, batch_size in 1usize..40) {
            let data: Vec<usize> = (0..len).collect();
            let mut grouped = group_chunks(&data, batch_size).unwrap();
            let rows = len / batch_size;
            prop_assert_eq!(grouped.len(), rows * batch_size);
            grouped.sort_unstable();
            // Exactly the first rows*batch_size samples survive, each once.
            let kept: Vec<usize> = (0..rows * batch_size).collect();
            prop_assert_eq!(grouped, kept);
        }

        #[test]
        fn rows_continue_across_batches(len in 0usize..500, batch_size in 1usize..40) {
            let data: Vec<usize> = (0..len).collect();
            let grouped = group_chunks(&data, batch_size).unwrap();
            let batches: Vec<&[usize]> = grouped.chunks(batch_size).collect();
            for pair in batches.windows(2) {
                for (next, previous) in pair[1].iter().zip(pair[0]) {
                    prop_assert_eq!(*next, previous + 1);
                }
            }
        }
    }
}
