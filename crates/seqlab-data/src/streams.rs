//! Stateful language-model batches (fastai's language-model loader): prepared in memory, or
//! cut from a corpus's token ids when each is asked for, so that a corpus on disk is never
//! held whole and a data-parallel process reads only its own rows.

use crate::{DataError, LmBatch, TokenIds};
use std::borrow::Cow;
use std::ops::Range;

/// The batches of `streams` rows × `seq_len` tokens that
/// `batches(&group_chunks(&sequence_windows(ids, seq_len)?, streams)?, streams, true)` makes,
/// cut from `ids` when asked for: row `j` of batch `i` is the window starting at token
/// `(i + m·j)·seq_len`, with `m` batches in all, so each row reads on through the text from
/// one batch to the next.
///
/// ```
/// use seqlab_data::{StreamBatches, TokenIds, batches, group_chunks, sequence_windows};
/// let ids: Vec<u32> = (0..50).collect();
/// let cut = StreamBatches::new(TokenIds::from(ids.clone()), 4, 3)?;
/// let prepared = batches(&group_chunks(&sequence_windows(&ids, 4)?, 3)?, 3, true)?;
/// assert_eq!(cut.len(), prepared.len());
/// assert_eq!(cut.batch(2, 0..3), Some(prepared[2].clone()));
/// # Ok::<(), seqlab_data::DataError>(())
/// ```
#[derive(Debug, Clone)]
pub struct StreamBatches {
    ids: TokenIds,
    seq_len: usize,
    streams: usize,
    batches: usize,
}

impl StreamBatches {
    /// The stream batches of `ids`. Errors as [`sequence_windows`](crate::sequence_windows)
    /// and [`group_chunks`](crate::group_chunks) give them: a zero length or stream count, or
    /// too few ids for one window. Too few windows for one batch give no batches.
    pub fn new(ids: TokenIds, seq_len: usize, streams: usize) -> Result<Self, DataError> {
        if seq_len == 0 {
            return Err(DataError::ZeroSequenceLength);
        }
        let needed = seq_len + 2;
        if ids.len() < needed {
            return Err(DataError::SequenceTooLong {
                seq_len,
                needed,
                available: ids.len(),
            });
        }
        if streams == 0 {
            return Err(DataError::ZeroBatchSize);
        }
        // `sequence_windows`' `range(0, n − seq_len − 1, seq_len)`.
        let windows = (ids.len() - seq_len - 1).div_ceil(seq_len);
        Ok(Self {
            ids,
            seq_len,
            streams,
            batches: windows / streams,
        })
    }

    /// Batches per epoch.
    pub fn len(&self) -> usize {
        self.batches
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.batches == 0
    }

    /// Rows (streams) per batch.
    pub fn streams(&self) -> usize {
        self.streams
    }

    /// Rows `rows` of batch `index` (`None` past the last batch; rows past the last stream
    /// are left out).
    pub fn batch(&self, index: usize, rows: Range<usize>) -> Option<LmBatch> {
        if index >= self.batches {
            return None;
        }
        let end = rows.end.min(self.streams);
        let rows = rows.start.min(end)..end;
        let mut inputs = Vec::with_capacity(rows.len() * self.seq_len);
        let mut targets = Vec::with_capacity(rows.len() * self.seq_len);
        for row in rows.clone() {
            let start = (index + self.batches * row) * self.seq_len;
            self.ids
                .extend_i64(start..start + self.seq_len, &mut inputs);
            self.ids
                .extend_i64(start + 1..start + self.seq_len + 1, &mut targets);
        }
        Some(LmBatch::from_rows(
            inputs,
            targets,
            rows.len(),
            self.seq_len,
            self.seq_len,
        ))
    }

    /// Target tokens per epoch.
    pub fn target_tokens(&self) -> usize {
        self.batches * self.streams * self.seq_len
    }
}

/// Stateful language-model batches fed in order, each row continuing the same row of the batch
/// before: prepared in memory, or cut from token ids as they are needed.
#[derive(Debug, Clone)]
pub enum LmStreams {
    /// Batches prepared in memory (any layout: fixed windows, grouped samples, …).
    Prepared(Vec<LmBatch>),
    /// Batches cut from a corpus's ids when asked for ([`StreamBatches`]).
    Cut(StreamBatches),
}

impl From<Vec<LmBatch>> for LmStreams {
    fn from(batches: Vec<LmBatch>) -> Self {
        Self::Prepared(batches)
    }
}

impl From<StreamBatches> for LmStreams {
    fn from(batches: StreamBatches) -> Self {
        Self::Cut(batches)
    }
}

impl LmStreams {
    /// Batches per epoch.
    pub fn len(&self) -> usize {
        match self {
            Self::Prepared(batches) => batches.len(),
            Self::Cut(batches) => batches.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows of batch `index` (0 past the last).
    pub fn rows(&self, index: usize) -> usize {
        match self {
            Self::Prepared(batches) => batches.get(index).map_or(0, LmBatch::rows),
            Self::Cut(batches) if index < batches.len() => batches.streams(),
            Self::Cut(_) => 0,
        }
    }

    /// Rows `rows` of batch `index` (`None` past the last batch).
    pub fn batch(&self, index: usize, rows: Range<usize>) -> Option<Cow<'_, LmBatch>> {
        match self {
            Self::Prepared(batches) => {
                let batch = batches.get(index)?;
                Some(if rows == (0..batch.rows()) {
                    Cow::Borrowed(batch)
                } else {
                    Cow::Owned(batch.select_rows(rows))
                })
            }
            Self::Cut(batches) => batches.batch(index, rows).map(Cow::Owned),
        }
    }

    /// Every batch, whole, in order.
    pub fn iter(&self) -> impl Iterator<Item = Cow<'_, LmBatch>> {
        (0..self.len()).filter_map(|index| self.batch(index, 0..self.rows(index)))
    }

    /// Target tokens over all the batches.
    pub fn target_tokens(&self) -> usize {
        match self {
            Self::Prepared(batches) => batches.iter().map(LmBatch::target_tokens).sum(),
            Self::Cut(batches) => batches.target_tokens(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{IdFileWriter, batches, group_chunks, sequence_windows};
    use proptest::prelude::*;

    fn prepared(ids: &[u32], seq_len: usize, streams: usize) -> Result<Vec<LmBatch>, DataError> {
        batches(
            &group_chunks(&sequence_windows(ids, seq_len)?, streams)?,
            streams,
            true,
        )
    }

    #[test]
    fn bad_sizes_are_the_errors_the_prepared_path_gives() {
        let ids: Vec<u32> = (0..10).collect();
        for (seq_len, streams) in [(0, 2), (2, 0), (9, 1), (20, 1)] {
            assert_eq!(
                StreamBatches::new(TokenIds::from(ids.clone()), seq_len, streams).err(),
                prepared(&ids, seq_len, streams).err(),
                "{seq_len} {streams}"
            );
        }
        let few = StreamBatches::new(TokenIds::from(ids), 4, 3).unwrap();
        assert!(few.is_empty() && few.batch(0, 0..3).is_none());
    }

    proptest! {
        /// The streamed corpus gives the batches of the in-memory reader, from memory and from
        /// an id file, whole and by shares of rows.
        #[test]
        fn cut_batches_are_the_prepared_ones(
            len in 2usize..400,
            seq_len in 1usize..12,
            streams in 1usize..9,
            classes in prop::sample::select(vec![3usize, 300, 70_000]),
            seed in 0u32..1000,
        ) {
            let ids: Vec<u32> =
                (0..len as u32).map(|i| (i.wrapping_mul(2_654_435_761) ^ seed) % classes as u32).collect();
            let path = std::env::temp_dir().join(format!(
                "seqlab-streams-{}-{len}-{seq_len}-{streams}-{classes}-{seed}.ids",
                std::process::id()
            ));
            let mut writer = IdFileWriter::create(&path, classes, "").unwrap();
            writer.push(&ids).unwrap();
            writer.finish().unwrap();
            let (mapped, _) = TokenIds::open(&path).unwrap();
            std::fs::remove_file(&path).unwrap();
            let expected = prepared(&ids, seq_len, streams);
            for source in [TokenIds::from(ids.clone()), mapped] {
                let cut = StreamBatches::new(source, seq_len, streams);
                let (Ok(expected), Ok(cut)) = (&expected, &cut) else {
                    prop_assert_eq!(expected.as_ref().err(), cut.as_ref().err());
                    continue;
                };
                let streams_cut = LmStreams::from(cut.clone());
                prop_assert_eq!(streams_cut.len(), expected.len());
                prop_assert_eq!(
                    streams_cut.target_tokens(),
                    expected.iter().map(LmBatch::target_tokens).sum::<usize>()
                );
                for (index, batch) in expected.iter().enumerate() {
                    prop_assert_eq!(&cut.batch(index, 0..streams).unwrap(), batch);
                    let half = streams / 2;
                    prop_assert_eq!(
                        cut.batch(index, half..streams).unwrap(),
                        batch.select_rows(half..streams)
                    );
                }
                prop_assert!(cut.batch(expected.len(), 0..streams).is_none());
            }
        }
    }
}
