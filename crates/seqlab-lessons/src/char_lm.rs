//! The RNN course's character-level LSTM (`PredictorLSTM`: embedding 64, 2 × 512 LSTM, a
//! linear read-out) on any UTF-8 text: trained as fastai trains language models (streams
//! carried from batch to batch), checkpointed with its vocabulary and config, and sampled one
//! character at a time.

use super::{LessonError, TrainRun};
use crate::data::{CharVocab, OverlappingWindows, TokenIds};
use crate::models::{CellKind, GenerateConfig, RecurrentLm, RecurrentLmConfig, generate_stepwise};
use crate::settings::dropout;
pub use crate::streams::CharCorpus;
use crate::streams::{check_stream_sizes, held_out_batches, stream_batches};
use crate::train::{
    AdamConfig, Checkpoint, DataLoaders, EpochRecord, Learner, MemoryNeed, OneCycle,
    OptimizerConfig, RunSettings, SavedRun, Schedule,
};
use crate::train::{
    Phase, RunCheckpoints, check_same_model, config_checkpoint, init_seeded, read_config,
    read_pytorch_weights, with_pytorch_weights,
};
use burn::module::Module;
use burn::tensor::Device;
use std::path::{Path, PathBuf};

/// The checkpoint kind of a character language model.
pub const CHAR_LM_KIND: &str = "char-lm";

const VOCAB_FILE: &str = "vocab.json";

/// The fewest sequences a held-out stream holds when the held-out text allows (Shakespeare's
/// tail fills all 32 streams; a licence's 3,500 characters make 4 streams of 800).
const MIN_HELD_OUT_STREAM_SEQUENCES: usize = 8;

/// Settings of a training run. [`CharLmConfig::default`] is the notebook's model.
#[derive(Debug, Clone, PartialEq)]
pub struct CharLmConfig {
    /// The recurrence (the notebook: LSTM).
    pub cell: CellKind,
    /// Embedding width (the notebook: 64).
    pub embedding: usize,
    /// Hidden units per layer (the notebook: 512).
    pub hidden: usize,
    /// Stacked layers (the notebook: 2).
    pub layers: usize,
    /// Characters per training sequence (the notebook: 100).
    pub seq_len: usize,
    /// Sequences per batch (the notebook: 32).
    pub batch_size: usize,
    /// Passes over the training text.
    pub epochs: usize,
    /// Peak learning rate of the one-cycle schedule (Adam).
    pub lr: f64,
    /// Dropout on the recurrent output before the read-out, in training (the notebook: 0).
    pub dropout: f64,
    /// Train on at most this many characters of the training head (all when `None`).
    pub max_train_chars: Option<usize>,
    /// How the training text becomes samples; `None` chooses from its size
    /// ([`TrainWindows::for_text`]).
    pub windows: Option<TrainWindows>,
    /// Seed of the initialisation (and of the windows' order).
    pub seed: u64,
}

/// How a character model's training text becomes training samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainWindows {
    /// `batch_size` streams read in order, the state carried from batch to batch (fastai's
    /// language-model loader): each character is trained on once per epoch.
    Stream,
    /// A window starting at every character, shuffled each epoch, each from a fresh state (the
    /// RNN course's `TextDataset` + `ShiftByOne`): `seq_len` times the steps of a stream epoch,
    /// which a small text needs to be learnt.
    Overlapping,
}

impl TrainWindows {
    /// Below this many stream batches per epoch, [`TrainWindows::for_text`] chooses overlapping
    /// windows.
    pub const MIN_STREAM_BATCHES: usize = 50;

    /// The default for a training text of `chars` characters: streams when they give at least
    /// [`Self::MIN_STREAM_BATCHES`] batches of `batch_size × seq_len` per epoch (Shakespeare's
    /// million characters give 313), overlapping windows for a smaller text (a 35,000-character
    /// licence gives 9 stream batches, 109 optimiser steps in 12 epochs; as windows, 1,000 per
    /// epoch).
    pub fn for_text(chars: usize, seq_len: usize, batch_size: usize) -> Self {
        let stream_batches = chars.saturating_sub(1) / seq_len.max(1) / batch_size.max(1);
        if stream_batches < Self::MIN_STREAM_BATCHES {
            Self::Overlapping
        } else {
            Self::Stream
        }
    }

    /// The option's value: `stream` or `overlapping`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Stream => "stream",
            Self::Overlapping => "overlapping",
        }
    }
}

impl std::str::FromStr for TrainWindows {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "stream" => Ok(Self::Stream),
            "overlapping" => Ok(Self::Overlapping),
            other => Err(format!(
                "unknown windows {other:?}: expected stream or overlapping"
            )),
        }
    }
}

impl Default for CharLmConfig {
    fn default() -> Self {
        Self {
            cell: CellKind::Lstm,
            embedding: 64,
            hidden: 512,
            layers: 2,
            seq_len: 100,
            batch_size: 32,
            epochs: 1,
            lr: 2e-3,
            dropout: 0.0,
            max_train_chars: None,
            windows: None,
            seed: 0,
        }
    }
}

/// What a training run found.
#[derive(Debug, Clone)]
pub struct CharLmReport {
    /// One record per epoch (validation loss in nats; metric `bits_per_char` too).
    pub records: Vec<EpochRecord>,
    /// Every training batch's loss in this run (after a resume, from where it resumed).
    pub batch_losses: Vec<f32>,
    /// Held-out bits per character after training.
    pub valid_bits_per_char: f64,
    /// How the training text was cut (chosen from its size unless the config said).
    pub windows: TrainWindows,
    /// Optimiser steps per epoch.
    pub batches_per_epoch: usize,
    /// Characters trained on per epoch (target characters: with overlapping windows, each
    /// character of the text about `seq_len` times).
    pub train_chars: usize,
    /// Held-out characters scored.
    pub valid_chars: usize,
    /// Trainable parameters.
    pub parameters: usize,
}

/// A trained character model with its vocabulary: what a checkpoint holds.
#[derive(Debug)]
pub struct CharLm {
    /// The model's config (`config.json`).
    pub config: RecurrentLmConfig,
    /// Its characters.
    pub vocab: CharVocab,
    /// The model.
    pub model: RecurrentLm,
}

impl CharLmConfig {
    /// The characters of `corpus` a run trains on: its training head, cut to
    /// `max_train_chars`.
    fn train_ids(&self, corpus: &CharCorpus) -> TokenIds {
        match self.max_train_chars {
            Some(limit) => corpus.train.slice(0..limit),
            None => corpus.train.clone(),
        }
    }

    /// The windows a run on `corpus` trains on: `windows` when set, else the default for the
    /// size of the text it trains on ([`TrainWindows::for_text`]).
    pub fn train_windows(&self, corpus: &CharCorpus) -> TrainWindows {
        self.windows.unwrap_or_else(|| {
            TrainWindows::for_text(self.train_ids(corpus).len(), self.seq_len, self.batch_size)
        })
    }

    /// The settings a resumed run must share with the saved one.
    fn run_settings(&self, windows: TrainWindows) -> RunSettings {
        RunSettings::default()
            .with("windows", windows.name())
            .with("epochs", self.epochs)
            .with("lr", self.lr)
            .with("dropout", self.dropout)
            .with("seq-len", self.seq_len)
            .with("batch-size", self.batch_size)
            .with("max-chars", format!("{:?}", self.max_train_chars))
            .with("seed", self.seed)
    }
}

/// The model's files of a checkpoint: its config, its characters and, given a model, its
/// weights.
fn model_files(
    config: &RecurrentLmConfig,
    vocab: &CharVocab,
    model: Option<&RecurrentLm>,
) -> Checkpoint {
    let mut checkpoint = config_checkpoint(CHAR_LM_KIND, config);
    checkpoint.insert(VOCAB_FILE, vocab.to_json());
    match model {
        Some(model) => with_pytorch_weights(checkpoint, model),
        None => checkpoint,
    }
}

/// Trains a character model on `corpus` as `run` says: from scratch or from a checkpoint, to
/// the end or to `stop_after` epochs, writing a checkpoint after every epoch (and every
/// `save_every` steps). A resumed run gives the same weights and losses as one that never
/// stopped.
pub fn train_char_lm(
    config: &CharLmConfig,
    corpus: &CharCorpus,
    run: &TrainRun,
    device: &Device,
) -> Result<(CharLm, CharLmReport), LessonError> {
    let model_config = RecurrentLmConfig::new(
        config.cell,
        corpus.vocab.classes(),
        config.hidden,
        config.layers,
    )
    .with_embedding_size(Some(config.embedding))
    .with_output_dropout(config.dropout)
    .check()?;
    check_stream_sizes(config.seq_len, config.batch_size, config.epochs)?;
    dropout(config.dropout)?;
    MemoryNeed::training(
        &model_config,
        config.batch_size,
        config.seq_len,
        format!(
            "{} of {} × {} (embedding {}) over {} characters, on batches of {} × {}",
            config.cell.name(),
            config.layers,
            config.hidden,
            config.embedding,
            corpus.vocab.classes(),
            config.batch_size,
            config.seq_len
        ),
    )
    .check_here()?;
    let train_ids = config.train_ids(corpus);
    let windows = config.train_windows(corpus);
    // Each held-out stream starts cold; a short held-out text is scored in fewer, longer
    // streams, so that few of its characters are read without context.
    let valid_streams = (corpus.valid.len() / (config.seq_len * MIN_HELD_OUT_STREAM_SEQUENCES))
        .clamp(1, config.batch_size);
    let valid = held_out_batches(
        &corpus.valid,
        config.seq_len,
        valid_streams,
        ("the held-out text", "characters"),
    )?;
    if windows == TrainWindows::Overlapping {
        overlapping_windows_fit(&train_ids)?;
    }
    let data = match windows {
        TrainWindows::Stream => DataLoaders::new(
            stream_batches(
                &train_ids,
                config.seq_len,
                config.batch_size,
                ("the training text", "characters"),
            )?,
            valid,
        )?,
        TrainWindows::Overlapping => DataLoaders::shuffled_windows(
            OverlappingWindows::new(train_ids.to_vec(), config.seq_len, config.batch_size)
                .map_err(|e| LessonError::Config(format!("the training text: {e}")))?,
            config.seed,
            valid,
        )?,
    };
    let train_chars = data.train_tokens_per_epoch();
    let batches_per_epoch = data.train_batches_per_epoch();
    let valid_chars = data.valid().target_tokens();
    let settings = config.run_settings(windows);
    let (model, saved) = match run.resume {
        Some(dir) => {
            let (saved, checkpoint) = CharLm::load_checkpoint(dir, device)?;
            check_same_model(
                &checkpoint,
                &model_files(&model_config, &corpus.vocab, None),
            )?;
            let run = SavedRun::read(&checkpoint, &settings, device)?;
            (saved.model, Some(run))
        }
        None => (
            init_seeded(device, config.seed, || model_config.init(device)),
            None,
        ),
    };
    let parameters = model.num_params();
    let mut learner = Learner::new(model, data, device)
        .with_optimizer(OptimizerConfig::Adam(AdamConfig::pytorch()));
    if config.dropout > 0.0 {
        // Dropout masks drawn from the run's seed and the step: a resumed run draws the same.
        learner = learner.with_step_seed(config.seed);
    }
    let snapshot_vocab = corpus.vocab.clone();
    let snapshot = move |model: &RecurrentLm| {
        model_files(&model_config, &snapshot_vocab, Some(&model.valid()))
    };
    let records = learner.run(
        &[Phase::new(
            config.epochs,
            Schedule::OneCycle(OneCycle::new(config.lr)),
        )],
        run,
        Some(RunCheckpoints::new(snapshot, settings, saved)),
    )?;
    let valid_loss = records.last().map_or(f64::NAN, |record| record.valid_loss);
    let batch_losses = learner.batch_losses().to_vec();
    let model = learner.into_model().valid();
    Ok((
        CharLm {
            config: model_config,
            vocab: corpus.vocab.clone(),
            model,
        },
        CharLmReport {
            records,
            batch_losses,
            valid_bits_per_char: valid_loss / std::f64::consts::LN_2,
            windows,
            batches_per_epoch,
            train_chars,
            valid_chars,
            parameters,
        },
    ))
}

/// The most memory that overlapping windows may take, in bytes: each character of the text
/// they are cut from is held with its place in the shuffled order, 8 bytes in all.
const MAX_OVERLAPPING_BYTES: usize = 1 << 30;

/// Refuses overlapping windows over a text (read from disk, say) whose windows would take
/// more than [`MAX_OVERLAPPING_BYTES`] of memory.
fn overlapping_windows_fit(train: &TokenIds) -> Result<(), LessonError> {
    let bytes = train.len().saturating_mul(8);
    if bytes > MAX_OVERLAPPING_BYTES {
        return Err(LessonError::Config(format!(
            "overlapping windows over {} training characters would hold {} MB in memory (the \
             text and a shuffled order of its windows, more than {} MB): train this corpus as \
             streams (--windows stream), or on part of it (--max-chars)",
            train.len(),
            bytes / 1_000_000,
            MAX_OVERLAPPING_BYTES / 1_000_000
        )));
    }
    Ok(())
}

impl CharLm {
    /// Reads a checkpoint written by [`train_char_lm`] onto `device`, checking that it is a
    /// character model and that its config, vocabulary and weights agree.
    pub fn load(dir: &Path, device: &Device) -> Result<Self, LessonError> {
        Ok(Self::load_checkpoint(dir, device)?.0)
    }

    /// [`CharLm::load`], keeping the checkpoint's other files.
    fn load_checkpoint(dir: &Path, device: &Device) -> Result<(Self, Checkpoint), LessonError> {
        let checkpoint = Checkpoint::load(dir, CHAR_LM_KIND)?;
        let config = read_config(&checkpoint, RecurrentLmConfig::check)?;
        let vocab = CharVocab::from_json(
            checkpoint.file(VOCAB_FILE)?,
            &checkpoint.path_of(VOCAB_FILE),
        )?;
        if vocab.classes() != config.vocab_size {
            return Err(checkpoint
                .contents_error(
                    VOCAB_FILE,
                    format!(
                        "{} classes, the config says {}",
                        vocab.classes(),
                        config.vocab_size
                    ),
                )
                .into());
        }
        let model = read_pytorch_weights(&checkpoint, config.init(device))?;
        Ok((
            Self {
                config,
                vocab,
                model,
            },
            checkpoint,
        ))
    }

    /// Writes the model as a checkpoint in `dir` (atomically), for sampling (it holds no
    /// optimizer state to resume training from).
    pub fn save(&self, dir: &Path) -> Result<(), LessonError> {
        Ok(model_files(&self.config, &self.vocab, Some(&self.model)).save(dir)?)
    }

    /// Generates `config.length` characters after `prime`, one step at a time; padding is
    /// never produced. A prime character outside the vocabulary is an error naming it.
    pub fn sample(
        &self,
        prime: &str,
        config: &GenerateConfig,
        device: &Device,
    ) -> Result<String, LessonError> {
        let prime_ids = self.vocab.encode(prime)?;
        let mut config = config.clone();
        config.banned.push(0);
        let ids = generate_stepwise(&self.model, &prime_ids, &config, device)?;
        Ok(self.vocab.decode(&ids)?)
    }
}

/// The text files a `--text` argument names: a file as is, a directory as its `*.txt` files
/// in name order.
pub fn text_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, LessonError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| LessonError::Config(format!("{}: {e}", path.display())))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "txt"))
                .collect();
            if inside.is_empty() {
                return Err(LessonError::Config(format!(
                    "{} has no .txt files",
                    path.display()
                )));
            }
            inside.sort();
            files.extend(inside);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_windows_over_a_text_larger_than_memory_allows_are_refused() {
        let small = TokenIds::from(vec![1; 1000]);
        assert!(overlapping_windows_fit(&small).is_ok());
        let path = std::env::temp_dir().join(format!("seqlab-overlap-{}.ids", std::process::id()));
        // A sparse id file of 200 million ids (of one byte each) takes no disk.
        let mut writer = crate::data::IdFileWriter::create(&path, 2, "").unwrap();
        writer.push(&[1]).unwrap();
        writer.finish().unwrap();
        let large_count: u64 = 200_000_000;
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[16..24].copy_from_slice(&large_count.to_le_bytes());
        let header = bytes.len() - 1;
        let file = std::fs::File::create(&path).unwrap();
        std::io::Write::write_all(&mut &file, &bytes[..header]).unwrap();
        file.set_len(header as u64 + large_count).unwrap();
        let (large, _) = TokenIds::open(&path).unwrap();
        let message = overlapping_windows_fit(&large).unwrap_err().to_string();
        std::fs::remove_file(&path).unwrap();
        assert!(
            message.contains("200000000 training characters would hold 1600 MB"),
            "{message}"
        );
    }
}
