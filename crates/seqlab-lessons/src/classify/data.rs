//! Texts as token ids: encoding, padded batches, and fastai's sortish batch order.

use super::*;

/// Labelled texts with their classes numbered (alphabetically).
#[derive(Debug, Clone)]
pub struct TextDataset {
    /// The texts.
    pub texts: Vec<String>,
    /// Each text's class index.
    pub labels: Vec<usize>,
    /// Class names, by index.
    pub classes: Vec<String>,
    /// Classes left out for having fewer than the minimum count, with their counts.
    pub dropped: Vec<(String, usize)>,
}

impl TextDataset {
    /// Numbers the labels of `rows`, leaving out classes with fewer than `min_class_count`
    /// texts; fewer than two classes left is an error.
    pub fn new(rows: Vec<LabelledText>, min_class_count: usize) -> Result<Self, LessonError> {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for row in &rows {
            *counts.entry(row.label.clone()).or_default() += 1;
        }
        let (kept, dropped): (Vec<_>, Vec<_>) = counts
            .into_iter()
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
        let classes: Vec<String> = kept.into_iter().map(|(label, _)| label).collect();
        let (mut texts, mut labels) = (Vec::new(), Vec::new());
        for row in rows {
            if let Ok(index) = classes.binary_search(&row.label) {
                texts.push(row.text);
                labels.push(index);
            }
        }
        Ok(Self {
            texts,
            labels,
            classes,
            dropped,
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
}

pub(super) struct Batch {
    pub(super) tokens: Tensor<2, Int>,
    pub(super) lengths: Vec<usize>,
    pub(super) targets: Tensor<1, Int>,
    pub(super) labels: Vec<usize>,
}

/// Encoded texts (truncated to `max_len`, never empty) and their labels.
pub(super) struct Encoded {
    pub(super) ids: Vec<Vec<u32>>,
    pub(super) labels: Vec<usize>,
    pub(super) pad: u32,
    pub(super) fixed_len: Option<usize>,
}

impl Encoded {
    pub(super) fn batch(&self, rows: &[usize], device: &Device) -> Batch {
        let lengths: Vec<usize> = rows.iter().map(|&r| self.ids[r].len()).collect();
        let time = self
            .fixed_len
            .unwrap_or_else(|| lengths.iter().copied().max().unwrap_or(1));
        let mut flat = Vec::with_capacity(rows.len() * time);
        for &row in rows {
            let ids = &self.ids[row];
            flat.extend(ids.iter().map(|&id| id as i64));
            flat.extend(std::iter::repeat_n(self.pad as i64, time - ids.len()));
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
        let mut rows: Vec<usize> = (0..self.ids.len()).collect();
        let by_length =
            |rows: &mut [usize]| rows.sort_by_key(|&r| std::cmp::Reverse(self.ids[r].len()));
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

pub(super) fn encode(
    tokenizer: &Tokenizer,
    data: &TextDataset,
    rows: &[usize],
    config: &ClassifyConfig,
) -> Result<Encoded, LessonError> {
    let pad = tokenizer.pad_id();
    let ids = rows
        .iter()
        .map(|&r| {
            let mut ids = tokenizer.encode(&data.texts[r])?;
            ids.truncate(config.max_len);
            if ids.is_empty() {
                ids.push(pad);
            }
            Ok(ids)
        })
        .collect::<Result<Vec<_>, LessonError>>()?;
    Ok(Encoded {
        ids,
        labels: rows.iter().map(|&r| data.labels[r]).collect(),
        pad,
        fixed_len: (config.arch == ClassifierArch::Mlp).then_some(config.max_len),
    })
}
