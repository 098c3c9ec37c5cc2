//! Part-of-speech tagging: the PyTorch tutorial's `LSTMTag` on its two toy sentences, and a
//! real tagger (bidirectional LSTM over word embeddings and each word's spelling) on the Brown
//! corpus or CoNLL-U files, against the most-frequent-tag baseline.

use super::{LessonError, TrainRun};
use crate::data::{CharVocab, TaggedSentence, Vocab, VocabOrder, batch_rows};
use crate::models::{CharFeaturesConfig, RecurrentState, Tagger, TaggerConfig, WordChars};
use crate::settings::{in_range, sizes_at_least_one};
use crate::train::MemoryNeed;
use crate::train::{
    AdamConfig, CONFIG_FILE, Checkpoint, EpochRecord, FitLoop, LossAccuracy, OptimizerConfig,
    Phase, RunCheckpoints, RunSettings, SavedRun, Schedule, SgdConfig, StepLoss, TrainTask,
    check_same_model, config_checkpoint, init_seeded, masked_accuracy_counts, masked_cross_entropy,
    read_config, read_pytorch_weights, with_pytorch_weights,
};
use burn::module::Module;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;

mod tagger;

/// The checkpoint kind of a tagger.
pub const POS_TAGGER_KIND: &str = "pos-tagger";

/// The word that stands for every word the tagger did not see often enough in training.
pub const UNKNOWN_WORD: &str = "<unk>";

const WORDS_FILE: &str = "words.json";
const TAGS_FILE: &str = "tags.json";
const CHARS_FILE: &str = "chars.json";

/// Settings of a tagging run. [`TaggingConfig::tutorial`] is the tutorial's; the default is
/// the real tagger.
#[derive(Debug, Clone, PartialEq)]
pub struct TaggingConfig {
    /// Word embedding width.
    pub embedding: usize,
    /// Hidden units per direction.
    pub hidden: usize,
    /// Read sentences both ways.
    pub bidirectional: bool,
    /// Character embedding width; 0 leaves out the spelling features.
    pub char_embedding: usize,
    /// The character LSTM's width.
    pub char_hidden: usize,
    /// Passes over the training sentences.
    pub epochs: usize,
    /// Sentences per batch.
    pub batch_size: usize,
    /// Learning rate (Adam; SGD for the tutorial).
    pub lr: f64,
    /// Plain SGD, as the tutorial, instead of Adam.
    pub sgd: bool,
    /// Fraction of the sentences held out (a seeded shuffle); 0 trains and scores on all, as
    /// the tutorial does with its two sentences.
    pub valid_fraction: f64,
    /// Words seen fewer times in training become [`UNKNOWN_WORD`].
    pub min_word_freq: usize,
    /// Keep an [`UNKNOWN_WORD`] for words the tagger has not seen (the tutorial has none: its
    /// vocabulary is exactly its nine words).
    pub unknown_word: bool,
    /// Use at most this many sentences.
    pub max_sentences: Option<usize>,
    /// Seed of the split, the initialisation and the batch order.
    pub seed: u64,
}

impl Default for TaggingConfig {
    fn default() -> Self {
        Self {
            embedding: 100,
            hidden: 128,
            bidirectional: true,
            char_embedding: 25,
            char_hidden: 50,
            epochs: 3,
            batch_size: 32,
            lr: 2e-3,
            sgd: false,
            valid_fraction: 0.1,
            min_word_freq: 2,
            unknown_word: true,
            max_sentences: None,
            seed: 0,
        }
    }
}

impl TaggingConfig {
    /// The tutorial: `LSTMTag(6, 6)`, one forward LSTM, SGD at 0.1, 300 epochs of one
    /// sentence at a time, trained and scored on the same two sentences.
    pub fn tutorial() -> Self {
        Self {
            embedding: 6,
            hidden: 6,
            bidirectional: false,
            char_embedding: 0,
            char_hidden: 0,
            epochs: 300,
            batch_size: 1,
            lr: 0.1,
            sgd: true,
            valid_fraction: 0.0,
            min_word_freq: 1,
            unknown_word: false,
            max_sentences: None,
            seed: 0,
        }
    }
}

/// A trained tagger with its vocabularies: what a checkpoint holds.
#[derive(Debug, Clone)]
pub struct PosTagger {
    /// The model's config (`config.json`).
    pub config: TaggerConfig,
    /// Words (with [`UNKNOWN_WORD`]).
    pub words: Vocab,
    /// Tags, in id order.
    pub tags: Vocab,
    /// Characters of the training words (id 0 for others), when the tagger reads spelling.
    pub chars: Option<CharVocab>,
    /// The model.
    pub model: Tagger,
}

/// What a tagging run found.
#[derive(Debug, Clone)]
pub struct TaggingReport {
    /// One record per epoch (held-out loss and `accuracy`).
    pub records: Vec<EpochRecord>,
    /// Held-out token accuracy after training.
    pub accuracy: f64,
    /// The most-frequent-tag baseline's held-out accuracy.
    pub baseline_accuracy: f64,
    /// Sentences trained on, and held out.
    pub train_sentences: usize,
    /// Sentences held out.
    pub valid_sentences: usize,
    /// Trainable parameters.
    pub parameters: usize,
}

/// Splits sentences into training and held-out parts by a seeded shuffle (all in both when
/// `valid_fraction` is 0).
pub fn split_sentences(
    sentences: &[TaggedSentence],
    valid_fraction: f64,
    seed: u64,
) -> Result<(Vec<TaggedSentence>, Vec<TaggedSentence>), LessonError> {
    if valid_fraction == 0.0 {
        return Ok((sentences.to_vec(), sentences.to_vec()));
    }
    let share = valid_fraction > 0.0 && valid_fraction < 1.0;
    let requirement = "0 or strictly between 0 and 1";
    in_range(
        "the validation fraction",
        requirement,
        valid_fraction,
        share,
    )?;
    let order: Vec<usize> =
        batch_rows(sentences.len(), sentences.len().max(1), Some(seed))?.concat();
    let held_out = ((sentences.len() as f64) * valid_fraction).round() as usize;
    if held_out == 0 || held_out == sentences.len() {
        return Err(LessonError::Config(format!(
            "{} sentences are too few to hold out {valid_fraction} of them",
            sentences.len()
        )));
    }
    let pick = |rows: &[usize]| rows.iter().map(|&i| sentences[i].clone()).collect();
    Ok((pick(&order[held_out..]), pick(&order[..held_out])))
}

/// The most-frequent-tag baseline: each training word's commonest tag, and the commonest tag
/// of all for words never seen. Returns its token accuracy on `valid`.
pub fn most_frequent_tag_accuracy(train: &[TaggedSentence], valid: &[TaggedSentence]) -> f64 {
    let mut by_word: HashMap<&str, HashMap<&str, usize>> = HashMap::new();
    let mut overall: HashMap<&str, usize> = HashMap::new();
    for sentence in train {
        for (word, tag) in sentence.words.iter().zip(&sentence.tags) {
            *by_word.entry(word).or_default().entry(tag).or_default() += 1;
            *overall.entry(tag).or_default() += 1;
        }
    }
    let commonest = |counts: &HashMap<&str, usize>| -> Option<String> {
        counts
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(tag, _)| tag.to_string())
    };
    let fallback = commonest(&overall).unwrap_or_default();
    let best: HashMap<&str, String> = by_word
        .iter()
        .filter_map(|(word, counts)| Some((*word, commonest(counts)?)))
        .collect();
    let (mut right, mut total) = (0usize, 0usize);
    for sentence in valid {
        for (word, tag) in sentence.words.iter().zip(&sentence.tags) {
            let guess = best.get(word.as_str()).unwrap_or(&fallback);
            right += usize::from(guess == tag);
            total += 1;
        }
    }
    right as f64 / total.max(1) as f64
}

/// Builds vocabularies and an untrained tagger for them on `device`: words and characters
/// from `train`, tags from `train` and `valid` (a tag seen only in held-out data is a tag the
/// tagger cannot get right, not an error); `tag_order` fixes the tag ids (the tutorial's
/// `{"V": 0, "NN": 1, "DET": 2}`), otherwise tags are ordered by frequency.
pub fn new_tagger(
    config: &TaggingConfig,
    train: &[TaggedSentence],
    valid: &[TaggedSentence],
    tag_order: Option<&[&str]>,
    device: &Device,
) -> Result<PosTagger, LessonError> {
    let char_hidden = if config.char_embedding > 0 {
        config.char_hidden
    } else {
        1
    };
    sizes_at_least_one(&[
        ("the embedding", config.embedding),
        ("the hidden size", config.hidden),
        ("the character LSTM's width", char_hidden),
    ])?;
    let all_words: Vec<&str> = train
        .iter()
        .flat_map(|s| s.words.iter().map(String::as_str))
        .collect();
    let builder = Vocab::builder()
        .order(VocabOrder::FirstSeen)
        .min_freq(config.min_word_freq.max(1));
    let words = if config.unknown_word {
        builder
            .specials([UNKNOWN_WORD])
            .unknown(UNKNOWN_WORD)
            .build(&all_words)
    } else {
        builder.build(&all_words)
    };
    let tags = match tag_order {
        Some(order) => Vocab::from_tokens(order.iter().copied(), None),
        None => {
            let all_tags: Vec<&str> = train
                .iter()
                .chain(valid)
                .flat_map(|s| s.tags.iter().map(String::as_str))
                .collect();
            Vocab::builder().build(&all_tags)
        }
    };
    let chars = (config.char_embedding > 0).then(|| CharVocab::from_text(&all_words.concat()));
    let mut model_config =
        TaggerConfig::new(words.len(), tags.len(), config.embedding, config.hidden)
            .with_bidirectional(config.bidirectional);
    if let Some(chars) = &chars {
        model_config = model_config.with_chars(Some(CharFeaturesConfig {
            classes: chars.classes(),
            embedding: config.char_embedding,
            hidden: config.char_hidden,
        }));
    }
    let model_config = model_config.check()?;
    let longest = train.iter().map(|s| s.words.len()).max().unwrap_or(1);
    MemoryNeed::training(
        &model_config,
        config.batch_size,
        longest,
        format!(
            "a tagger of hidden size {} (embedding {}) over {} words and {} tags, on batches of {} sentences of up to {longest} words",
            config.hidden,
            config.embedding,
            words.len(),
            tags.len(),
            config.batch_size
        ),
    )
    .check_here()?;
    let model = init_seeded(device, config.seed, || model_config.init(device));
    Ok(PosTagger {
        config: model_config,
        words,
        tags,
        chars,
        model,
    })
}

impl TaggingConfig {
    /// The settings a resumed run must share with the saved one.
    fn run_settings(&self) -> RunSettings {
        RunSettings::default()
            .with("epochs", self.epochs)
            .with("batch-size", self.batch_size)
            .with("lr", self.lr)
            .with("sgd", self.sgd)
            .with("valid-fraction", self.valid_fraction)
            .with("min-word-freq", self.min_word_freq)
            .with("max-sentences", format!("{:?}", self.max_sentences))
            .with("seed", self.seed)
    }
}

/// Trains `tagger` (from [`new_tagger`]) on `train`, scoring `valid` after each epoch, as
/// `run` says: from scratch or from the checkpoint of an earlier part of the same run (the
/// same sentences and settings), writing a checkpoint after every epoch (and every
/// `save_every` steps). A resumed run ends with the same weights as one that never stopped.
pub fn train_tagger(
    tagger: PosTagger,
    config: &TaggingConfig,
    train: &[TaggedSentence],
    valid: &[TaggedSentence],
    run: &TrainRun,
    device: &Device,
) -> Result<(PosTagger, TaggingReport), LessonError> {
    if train.is_empty() || valid.is_empty() {
        return Err(LessonError::Config(
            "there are no sentences to train on".into(),
        ));
    }
    sizes_at_least_one(&[
        ("the epochs", config.epochs),
        ("the batch size", config.batch_size),
    ])?;
    let optimizer = if config.sgd {
        OptimizerConfig::Sgd(SgdConfig {
            momentum: 0.0,
            weight_decay: 0.0,
        })
    } else {
        OptimizerConfig::Adam(AdamConfig::pytorch())
    };
    let parameters = tagger.model.num_params();
    let baseline_accuracy = most_frequent_tag_accuracy(train, valid);
    let settings = config.run_settings();
    let mut tagger = tagger;
    let base = tagger.model_files();
    let saved = match run.resume {
        Some(dir) => {
            let (saved, checkpoint) = PosTagger::load_checkpoint(dir, device)?;
            check_same_model(&checkpoint, &base)?;
            tagger.model = saved.model;
            Some(SavedRun::read(&checkpoint, &settings, device)?)
        }
        None => None,
    };
    let task = TaggingTask {
        tagger: &tagger,
        train,
        valid,
        batch_size: config.batch_size,
        seed: config.seed,
        device: device.clone(),
    };
    let model = tagger
        .model
        .clone()
        .train()
        .fork(&device.clone().autodiff());
    let mut fit = FitLoop::new(task, model, device, optimizer);
    let snapshot = move |model: &Tagger| with_pytorch_weights(base.clone(), &model.valid());
    let records = fit.run(
        &[Phase::new(config.epochs, Schedule::Constant(config.lr))],
        run,
        Some(RunCheckpoints::new(snapshot, settings, saved)),
    )?;
    let model = fit.into_model().valid();
    tagger.model = model;
    let accuracy = records
        .last()
        .map_or(0.0, |r| r.metric("accuracy").unwrap_or(0.0));
    Ok((
        tagger,
        TaggingReport {
            records,
            accuracy,
            baseline_accuracy,
            train_sentences: train.len(),
            valid_sentences: valid.len(),
            parameters,
        },
    ))
}

/// Tagging as the one training loop runs it: batches of sentences in a seeded order per
/// epoch, the masked loss over real words, held-out token accuracy.
struct TaggingTask<'a> {
    tagger: &'a PosTagger,
    train: &'a [TaggedSentence],
    valid: &'a [TaggedSentence],
    batch_size: usize,
    seed: u64,
    device: Device,
}

impl TrainTask for TaggingTask<'_> {
    type Model = Tagger;
    type Batch = Vec<usize>;
    type Scores = LossAccuracy;
    type Error = LessonError;

    fn metric_names(&self) -> Vec<&'static str> {
        vec!["accuracy"]
    }

    fn batches(&self, epoch: usize) -> Result<Vec<Vec<usize>>, LessonError> {
        let seed = self.seed.wrapping_add(epoch as u64);
        Ok(batch_rows(self.train.len(), self.batch_size, Some(seed))?)
    }

    fn loss(
        &self,
        model: &Tagger,
        rows: &Vec<usize>,
        _carried: Option<RecurrentState>,
        device: &Device,
    ) -> Result<StepLoss, LessonError> {
        let sentences: Vec<&TaggedSentence> = rows.iter().map(|&r| &self.train[r]).collect();
        let batch = self.tagger.batch(&sentences, device)?;
        let scores = PosTagger::scores_of(model, &batch)?;
        let words = sentences.iter().map(|s| s.words.len()).sum();
        Ok(StepLoss::new(masked_cross_entropy(scores, batch.targets, batch.mask)).mean_of(words))
    }

    fn evaluate(&self, model: &Tagger) -> Result<LossAccuracy, LessonError> {
        let (loss, accuracy) = self.tagger.evaluate(model, self.valid, &self.device)?;
        Ok(LossAccuracy { loss, accuracy })
    }
}
