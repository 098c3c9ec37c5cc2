//! The RNN course's character-level LSTM (`PredictorLSTM`: embedding 64, 2 × 512 LSTM, a
//! linear read-out) on any UTF-8 text: trained as fastai trains language models (streams
//! carried from batch to batch), checkpointed with its vocabulary and config, and sampled one
//! character at a time.

use super::{LessonError, TrainRun};
use crate::data::CharVocab;
use crate::models::{CellKind, GenerateConfig, RecurrentLm, RecurrentLmConfig, generate_stepwise};
pub use crate::streams::CharCorpus;
use crate::streams::{check_stream_sizes, held_out_batches, stream_batches};
use crate::train::{
    AdamConfig, Checkpoint, DataLoaders, EpochRecord, Learner, OneCycle, OptimizerConfig,
    RunSettings, SavedRun, Schedule,
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
    /// Train on at most this many characters of the training head (all when `None`).
    pub max_train_chars: Option<usize>,
    /// Seed of the initialisation.
    pub seed: u64,
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
            max_train_chars: None,
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
    /// Characters trained on per epoch.
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
    /// The settings a resumed run must share with the saved one.
    fn run_settings(&self) -> RunSettings {
        RunSettings::default()
            .with("epochs", self.epochs)
            .with("lr", self.lr)
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
    .check()?;
    check_stream_sizes(config.seq_len, config.batch_size, config.epochs)?;
    let train_ids = match config.max_train_chars {
        Some(limit) => &corpus.train[..limit.min(corpus.train.len())],
        None => &corpus.train[..],
    };
    let train = stream_batches(
        train_ids,
        config.seq_len,
        config.batch_size,
        ("the training text", "characters"),
    )?;
    let valid = held_out_batches(
        &corpus.valid,
        config.seq_len,
        config.batch_size,
        ("the held-out text", "characters"),
    )?;
    let train_chars = train.iter().map(|b| b.target_tokens()).sum();
    let valid_chars = valid.iter().map(|b| b.target_tokens()).sum();
    let settings = config.run_settings();
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
    let mut learner = Learner::new(model, DataLoaders::new(train, valid)?, device)
        .with_optimizer(OptimizerConfig::Adam(AdamConfig::pytorch()));
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
            train_chars,
            valid_chars,
            parameters,
        },
    ))
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
