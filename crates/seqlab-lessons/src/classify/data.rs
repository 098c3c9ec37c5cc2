//! Texts as token ids: encoding (in memory or to disk), padded batches, and fastai's sortish
//! batch order.

use super::*;
use crate::data::{DataError, LabelledTable, RowIds, table_ids_on_disk};
use std::borrow::Cow;
use std::path::{Path, PathBuf};

/// Labelled texts with their classes numbered (alphabetically): held in memory, or a table
/// read from disk a row at a time ([`TextDataset::from_table`]).
#[derive(Debug, Clone)]
pub struct TextDataset {
    texts: Texts,
    /// Each text's class index.
    pub labels: Vec<usize>,
    /// Class names, by index.
    pub classes: Vec<String>,
    /// Classes left out for having fewer than the minimum count, with their counts.
    pub dropped: Vec<(String, usize)>,
}

#[derive(Debug, Clone)]
enum Texts {
    Memory(Vec<String>),
    /// The table's rows, and the folder their encoded ids are kept in.
    Disk {
        table: LabelledTable,
        cache_dir: PathBuf,
    },
}

/// Class names, and the classes left out with their counts.
type KeptAndDropped = (Vec<String>, Vec<(String, usize)>);

/// The classes with at least `min_class_count` items (alphabetically), and those left out
/// with their counts; fewer than two kept is an error.
fn classes<'a>(
    labels: impl Iterator<Item = &'a str>,
    min_class_count: usize,
) -> Result<KeptAndDropped, LessonError> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for label in labels {
        *counts.entry(label).or_default() += 1;
    }
    let (kept, dropped): (Vec<_>, Vec<_>) = counts
        .into_iter()
        .map(|(label, count)| (label.to_string(), count))
        .partition(|(_, count)| *count >= min_class_count.max(1));
    if kept.len() < 2 {
        return Err(LessonError::Config(format!(
            "classification needs two classes with at least {min_class_count} texts each; the data has {}",
            kept.iter()
                .chain(&dropped)
                .map(|(label, count)| format!("{label:?} × {count}"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok((kept.into_iter().map(|(label, _)| label).collect(), dropped))
}

impl TextDataset {
    /// Numbers the labels of `rows`, leaving out classes with fewer than `min_class_count`
    /// texts; fewer than two classes left is an error.
    pub fn new(rows: Vec<LabelledText>, min_class_count: usize) -> Result<Self, LessonError> {
        let (classes, dropped) = classes(rows.iter().map(|r| r.label.as_str()), min_class_count)?;
        let (mut texts, mut labels) = (Vec::new(), Vec::new());
        for row in rows {
            if let Ok(index) = classes.binary_search(&row.label) {
                texts.push(row.text);
                labels.push(index);
            }
        }
        Ok(Self {
            texts: Texts::Memory(texts),
            labels,
            classes,
            dropped,
        })
    }

    /// The rows of a table on disk, numbered as [`TextDataset::new`] numbers them: only their
    /// labels are held, their texts read from the file when the dataset is encoded, into id
    /// files kept in `cache_dir` ([`table_ids_on_disk`]) and read a batch at a time.
    pub fn from_table(
        table: &LabelledTable,
        min_class_count: usize,
        cache_dir: &Path,
    ) -> Result<Self, LessonError> {
        let (classes, dropped) = classes(table.labels(), min_class_count)?;
        let (mut rows, mut labels) = (Vec::new(), Vec::new());
        for (row, label) in table.labels().enumerate() {
            if let Ok(index) = classes.binary_search_by(|class| class.as_str().cmp(label)) {
                rows.push(row);
                labels.push(index);
            }
        }
        Ok(Self {
            texts: Texts::Disk {
                table: table.select(&rows),
                cache_dir: cache_dir.to_path_buf(),
            },
            labels,
            classes,
            dropped,
        })
    }

    /// How many texts.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are none (never, for a dataset made by `new` or `from_table`).
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Text `index`, borrowed from memory or read from the table's file.
    ///
    /// # Panics
    /// If `index` is not below [`TextDataset::len`].
    pub fn text(&self, index: usize) -> Result<Cow<'_, str>, LessonError> {
        Ok(match &self.texts {
            Texts::Memory(texts) => Cow::Borrowed(&texts[index]),
            Texts::Disk { table, .. } => Cow::Owned(table.text(index)?),
        })
    }

    /// Texts per class, by class index.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        for &label in &self.labels {
            counts[label] += 1;
        }
        counts
    }

    /// For a dataset read from disk, encodes its texts as [`train_classifier`] will with
    /// `tokenizer` and `max_len`, into the id files it will find and reuse; says where they
    /// are, whether they were there already and how long it took (`None` for texts in
    /// memory, which are encoded when trained on).
    pub fn encode_on_disk(
        &self,
        tokenizer: &Tokenizer,
        max_len: usize,
    ) -> Result<Option<IdsFile>, LessonError> {
        match self.texts {
            Texts::Memory(_) => Ok(None),
            Texts::Disk { .. } => Ok(self.encode(tokenizer, max_len)?.1),
        }
    }

    /// Every text's ids as `tokenizer` reads it, truncated to `max_len`, never empty (a text
    /// with no tokens is one padding token): in memory, or in id files on disk (with whether
    /// they were there already, and the seconds it took).
    pub(super) fn encode(
        &self,
        tokenizer: &Tokenizer,
        max_len: usize,
    ) -> Result<(RowIds, Option<IdsFile>), LessonError> {
        let pad = tokenizer.pad_id();
        let encode = |text: &str| {
            let mut ids = tokenizer.encode(text)?;
            ids.truncate(max_len);
            if ids.is_empty() {
                ids.push(pad);
            }
            Ok(ids)
        };
        match &self.texts {
            Texts::Memory(texts) => Ok((
                RowIds::from_rows(
                    texts
                        .iter()
                        .map(|text| encode(text))
                        .collect::<Result<Vec<_>, DataError>>()?,
                ),
                None,
            )),
            Texts::Disk { table, cache_dir } => {
                let start = std::time::Instant::now();
                let json = tokenizer.to_json()?;
                let how = format!("classifier max_len {max_len} tokenizer {json}");
                let (rows, cache) = table_ids_on_disk(
                    table,
                    None,
                    cache_dir,
                    tokenizer.vocab_size(),
                    &how,
                    encode,
                )?;
                let file = rows.ids().file().map(Path::to_path_buf).unwrap_or_default();
                let seconds = start.elapsed().as_secs_f64();
                Ok((
                    rows,
                    Some(IdsFile {
                        file,
                        cache,
                        seconds,
                    }),
                ))
            }
        }
    }
}

pub(super) struct Batch {
    pub(super) tokens: Tensor<2, Int>,
    pub(super) lengths: Vec<usize>,
    pub(super) targets: Tensor<1, Int>,
    pub(super) labels: Vec<usize>,
}

/// Encoded texts (a share of a dataset's rows) and their labels.
pub(super) struct Encoded<'a> {
    /// Every row of the dataset.
    pub(super) all: &'a RowIds,
    /// The rows of `all` these are.
    pub(super) rows: Vec<usize>,
    pub(super) labels: Vec<usize>,
    pub(super) pad: u32,
    pub(super) fixed_len: Option<usize>,
}

impl Encoded<'_> {
    /// How many texts.
    pub(super) fn len(&self) -> usize {
        self.rows.len()
    }

    fn text_len(&self, row: usize) -> usize {
        self.all.row_len(self.rows[row])
    }

    pub(super) fn batch(&self, rows: &[usize], device: &Device) -> Batch {
        let lengths: Vec<usize> = rows.iter().map(|&r| self.text_len(r)).collect();
        let time = self
            .fixed_len
            .unwrap_or_else(|| lengths.iter().copied().max().unwrap_or(1));
        let mut flat = Vec::with_capacity(rows.len() * time);
        for (&row, &len) in rows.iter().zip(&lengths) {
            self.all.row(self.rows[row]).extend_i64(0..len, &mut flat);
            flat.extend(std::iter::repeat_n(self.pad as i64, time - len));
        }
        let labels: Vec<usize> = rows.iter().map(|&r| self.labels[r]).collect();
        Batch {
            tokens: Tensor::from_data(TensorData::new(flat, [rows.len(), time]), device),
            lengths,
            targets: Tensor::from_data(
                TensorData::new(
                    labels.iter().map(|&l| l as i64).collect::<Vec<_>>(),
                    [rows.len()],
                ),
                device,
            ),
            labels,
        }
    }

    /// Batches of similar lengths (fastai's sortish order): shuffled, sorted by length within
    /// chunks of 50 batches, the batches shuffled again. Without a seed, sorted by length.
    pub(super) fn batches(&self, batch_size: usize, seed: Option<u64>) -> Vec<Vec<usize>> {
        let mut rows: Vec<usize> = (0..self.len()).collect();
        let by_length =
            |rows: &mut [usize]| rows.sort_by_key(|&r| std::cmp::Reverse(self.text_len(r)));
        let Some(seed) = seed else {
            by_length(&mut rows);
            return rows.chunks(batch_size).map(<[usize]>::to_vec).collect();
        };
        let mut rng = StdRng::seed_from_u64(seed);
        rows.shuffle(&mut rng);
        for chunk in rows.chunks_mut(batch_size * 50) {
            by_length(chunk);
        }
        let mut batches: Vec<Vec<usize>> = rows.chunks(batch_size).map(<[usize]>::to_vec).collect();
        batches.shuffle(&mut rng);
        batches
    }
}

/// The rows `rows` of a dataset whose every text `all` holds encoded.
pub(super) fn share<'a>(
    all: &'a RowIds,
    data: &TextDataset,
    rows: Vec<usize>,
    pad: u32,
    config: &ClassifyConfig,
) -> Encoded<'a> {
    Encoded {
        all,
        labels: rows.iter().map(|&r| data.labels[r]).collect(),
        rows,
        pad,
        fixed_len: (config.arch == ClassifierArch::Mlp).then_some(config.max_len),
    }
}
