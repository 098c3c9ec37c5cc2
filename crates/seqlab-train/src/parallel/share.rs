//! [`Shard`]: dividing a training batch among the processes of a group, by rows.

use std::ops::Range;

/// A training batch that data-parallel training divides among processes by rows.
pub trait Shard: Sized {
    /// The batch's rows (sequences, examples).
    fn rows(&self) -> usize;

    /// The batch of rows `rows` of this one alone.
    fn select(self, rows: Range<usize>) -> Self;
}

/// The rows that process `rank` of `size` trains on, of a batch of `rows` rows: contiguous,
/// in rank order, the first `rows % size` processes holding one row more than the others.
///
/// ```
/// use seqlab_train::parallel::share_rows;
/// assert_eq!(share_rows(64, 1, 2), 32..64);
/// assert_eq!((0..3).map(|r| share_rows(10, r, 3)).collect::<Vec<_>>(), [0..4, 4..7, 7..10]);
/// assert_eq!(share_rows(1, 1, 2), 1..1);
/// ```
pub fn share_rows(rows: usize, rank: usize, size: usize) -> Range<usize> {
    let size = size.max(1);
    let (base, extra) = (rows / size, rows % size);
    let start = rank * base + rank.min(extra);
    let len = base + usize::from(rank < extra);
    start.min(rows)..(start + len).min(rows)
}

/// Row indices (or any list of examples): each process takes its contiguous part.
impl<T> Shard for Vec<T> {
    fn rows(&self) -> usize {
        self.len()
    }

    fn select(mut self, rows: Range<usize>) -> Self {
        let end = rows.end.min(self.len());
        self.truncate(end);
        self.drain(..rows.start.min(end));
        self
    }
}

/// A batch the task makes by itself: one row, trained by the first process.
impl Shard for () {
    fn rows(&self) -> usize {
        1
    }

    fn select(self, _rows: Range<usize>) -> Self {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The shares of every process cover every row once, in order, and differ in size by
        /// one row at most.
        #[test]
        fn shares_cover_each_row_once(rows in 0usize..500, size in 1usize..70) {
            let shares: Vec<Range<usize>> = (0..size).map(|r| share_rows(rows, r, size)).collect();
            let all: Vec<usize> = shares.iter().cloned().flatten().collect();
            prop_assert_eq!(all, (0..rows).collect::<Vec<_>>());
            let lens: Vec<usize> = shares.iter().map(|s| s.len()).collect();
            prop_assert!(lens.iter().max().unwrap() - lens.iter().min().unwrap() <= 1);
            let batch: Vec<usize> = (100..100 + rows).collect();
            for share in shares {
                let part = batch.clone().select(share.clone());
                prop_assert_eq!(part, (100 + share.start..100 + share.end).collect::<Vec<_>>());
            }
        }
    }
}
