//! [`PosTagger`]: a tagger with its vocabularies — batches of sentences, scores and tags,
//! its checkpoint.

use super::*;

/// A batch of sentences as tensors.
pub(super) struct TagBatch {
    pub(super) words: Tensor<2, Int>,
    pub(super) targets: Tensor<2, Int>,
    pub(super) mask: Tensor<2, Bool>,
    pub(super) lengths: Vec<usize>,
    pub(super) chars: Option<(Tensor<2, Int>, Vec<usize>)>,
}

impl PosTagger {
    pub(super) fn word_ids(&self, words: &[String]) -> Result<Vec<u32>, LessonError> {
        Ok(self.words.encode(words)?)
    }

    /// Tensors for sentences `rows`: words and tags padded to the longest, its mask, and each
    /// word slot's characters. Tags outside the tag vocabulary are an error.
    pub(super) fn batch(
        &self,
        sentences: &[&TaggedSentence],
        device: &Device,
    ) -> Result<TagBatch, LessonError> {
        let lengths: Vec<usize> = sentences.iter().map(|s| s.words.len()).collect();
        let time = lengths.iter().copied().max().unwrap_or(1).max(1);
        let rows = sentences.len();
        let (mut words, mut targets, mut mask) = (
            vec![0i64; rows * time],
            vec![0i64; rows * time],
            vec![false; rows * time],
        );
        for (row, sentence) in sentences.iter().enumerate() {
            for (t, id) in self.word_ids(&sentence.words)?.into_iter().enumerate() {
                words[row * time + t] = i64::from(id);
                mask[row * time + t] = true;
            }
            for (t, tag) in sentence.tags.iter().enumerate() {
                let id = self.tags.id(tag).ok_or_else(|| {
                    LessonError::Config(format!("tag {tag:?} is not among the training tags"))
                })?;
                targets[row * time + t] = i64::from(id);
            }
        }
        let chars = self.chars.as_ref().map(|chars| {
            let spelled: Vec<Vec<u32>> = (0..rows * time)
                .map(|slot| {
                    let (row, t) = (slot / time, slot % time);
                    match sentences[row].words.get(t) {
                        Some(word) if !word.is_empty() => chars.encode_or(word, 0),
                        _ => vec![0],
                    }
                })
                .collect();
            let width = spelled.iter().map(Vec::len).max().unwrap_or(1);
            let mut ids = vec![0i64; rows * time * width];
            for (slot, word) in spelled.iter().enumerate() {
                for (k, &id) in word.iter().enumerate() {
                    ids[slot * width + k] = i64::from(id);
                }
            }
            let lengths = spelled.iter().map(Vec::len).collect();
            (
                Tensor::from_data(TensorData::new(ids, [rows * time, width]), device),
                lengths,
            )
        });
        Ok(TagBatch {
            words: Tensor::from_data(TensorData::new(words, [rows, time]), device),
            targets: Tensor::from_data(TensorData::new(targets, [rows, time]), device),
            mask: Tensor::from_data(TensorData::new(mask, [rows, time]), device),
            lengths,
            chars,
        })
    }

    pub(super) fn scores_of(model: &Tagger, batch: &TagBatch) -> Result<Tensor<3>, LessonError> {
        let chars = batch.chars.as_ref().map(|(ids, lengths)| WordChars {
            ids: ids.clone(),
            lengths,
        });
        Ok(model.forward(batch.words.clone(), Some(&batch.lengths), chars)?)
    }

    /// Log-probabilities of each tag for each word `[words][tags]` (the tutorial's printed
    /// score matrix).
    pub fn scores(&self, words: &[String], device: &Device) -> Result<Vec<Vec<f32>>, LessonError> {
        if words.is_empty() {
            return Err(LessonError::Config("there are no words to tag".into()));
        }
        let sentence = TaggedSentence {
            words: words.to_vec(),
            tags: Vec::new(),
        };
        let batch = self.batch(&[&sentence], device)?;
        let scores = log_softmax(Self::scores_of(&self.model, &batch)?, 2);
        let [_, time, tags] = scores.dims();
        let values = scores
            .into_data()
            .try_into_vec::<f32>()
            .expect("scores are floats");
        Ok((0..time)
            .map(|t| values[t * tags..(t + 1) * tags].to_vec())
            .collect())
    }

    /// The most likely tag of each word.
    pub fn tag(&self, words: &[String], device: &Device) -> Result<Vec<String>, LessonError> {
        Ok(self
            .scores(words, device)?
            .iter()
            .map(|row| {
                let best = row
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map_or(0, |(id, _)| id);
                self.tags.token(best as u32).unwrap_or("?").to_string()
            })
            .collect())
    }

    /// Held-out loss and token accuracy on `sentences`.
    pub(super) fn evaluate(
        &self,
        model: &Tagger,
        sentences: &[TaggedSentence],
        device: &Device,
    ) -> Result<(f64, f64), LessonError> {
        let (mut loss_sum, mut right, mut total) = (0.0f64, 0u64, 0u64);
        for chunk in sentences.chunks(256) {
            let rows: Vec<&TaggedSentence> = chunk.iter().collect();
            let batch = self.batch(&rows, device)?;
            let scores = Self::scores_of(model, &batch)?;
            let (hits, count) =
                masked_accuracy_counts(scores.clone(), batch.targets.clone(), batch.mask.clone());
            let loss: f32 = masked_cross_entropy(scores, batch.targets, batch.mask).into_scalar();
            loss_sum += f64::from(loss) * count as f64;
            right += hits;
            total += count;
        }
        Ok((
            loss_sum / total.max(1) as f64,
            right as f64 / total.max(1) as f64,
        ))
    }

    /// The tagger's files of a checkpoint: its config and vocabularies.
    pub(super) fn model_files(&self) -> Checkpoint {
        let mut checkpoint = config_checkpoint(POS_TAGGER_KIND, &self.config);
        checkpoint.insert(WORDS_FILE, to_json(&self.words));
        checkpoint.insert(TAGS_FILE, to_json(&self.tags));
        if let Some(chars) = &self.chars {
            checkpoint.insert(CHARS_FILE, chars.to_json());
        }
        checkpoint
    }

    /// Writes the tagger as a checkpoint in `dir` (atomically).
    pub fn save(&self, dir: &Path) -> Result<(), LessonError> {
        Ok(with_pytorch_weights(self.model_files(), &self.model).save(dir)?)
    }

    /// Reads a tagger written by [`PosTagger::save`] or [`train_tagger`] onto `device`,
    /// checking that its config, vocabularies and weights agree.
    pub fn load(dir: &Path, device: &Device) -> Result<Self, LessonError> {
        Ok(Self::load_checkpoint(dir, device)?.0)
    }

    /// [`PosTagger::load`], keeping the checkpoint's other files.
    pub(super) fn load_checkpoint(
        dir: &Path,
        device: &Device,
    ) -> Result<(Self, Checkpoint), LessonError> {
        let checkpoint = Checkpoint::load(dir, POS_TAGGER_KIND)?;
        let parse = |name: &str| -> Result<serde_json::Value, LessonError> {
            serde_json::from_slice(checkpoint.file(name)?)
                .map_err(|e| checkpoint.contents_error(name, e).into())
        };
        let config = read_config(&checkpoint, TaggerConfig::check)?;
        let words: Vocab = serde_json::from_value(parse(WORDS_FILE)?)
            .map_err(|e| checkpoint.contents_error(WORDS_FILE, e))?;
        let tags: Vocab = serde_json::from_value(parse(TAGS_FILE)?)
            .map_err(|e| checkpoint.contents_error(TAGS_FILE, e))?;
        let chars = if config.chars.is_some() {
            Some(CharVocab::from_json(
                checkpoint.file(CHARS_FILE)?,
                &checkpoint.path_of(CHARS_FILE),
            )?)
        } else {
            None
        };
        let sizes = (
            words.len(),
            tags.len(),
            chars.as_ref().map(CharVocab::classes),
        );
        let expected = (config.words, config.tags, config.chars.map(|c| c.classes));
        if sizes != expected {
            return Err(checkpoint
                .contents_error(
                    CONFIG_FILE,
                    format!(
                        "the vocabularies hold (words, tags, characters) {sizes:?}, the config says {expected:?}"
                    ),
                )
                .into());
        }
        let model = read_pytorch_weights(&checkpoint, config.init(device))?;
        Ok((
            Self {
                config,
                words,
                tags,
                chars,
                model,
            },
            checkpoint,
        ))
    }
}

/// A checkpoint's small file as pretty JSON.
fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec_pretty(value).expect("checkpoint metadata always serialises")
}
