//! ULMFiT's first stage, simplified: a recurrent language model trained on a corpus of texts
//! with any [`Tokenizer`], saved with its tokenizer so that a classifier can start from its
//! encoder ([`crate::classify`]).

use super::{LessonError, TOKENIZER_FILE, TrainRun, saved_tokenizer};
use crate::data::{TokenIds, Tokenizer};
use crate::models::{CellKind, RecurrentLm, RecurrentLmConfig};
use crate::settings::fraction;
use crate::streams::{check_stream_sizes, held_out_batches, stream_batches};
use crate::train::{
    AdamConfig, Checkpoint, DataLoaders, EpochRecord, Learner, MemoryNeed, OneCycle,
    OptimizerConfig, RunSettings, SavedRun, Schedule, SgdConfig, StepDecay, evaluate_lm,
};
use crate::train::{
    Phase, RunCheckpoints, check_same_model, config_checkpoint, init_seeded, read_config,
    read_pytorch_weights, with_pytorch_weights,
};
use burn::module::Module;
use burn::tensor::Device;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use std::path::Path;
use std::time::Instant;

/// The checkpoint kind of a text language model.
pub const TEXT_LM_KIND: &str = "text-lm";

/// Settings of [`train_text_lm`].
#[derive(Debug, Clone, PartialEq)]
pub struct TextLmConfig {
    /// The recurrence (LSTM, as ULMFiT's AWD-LSTM).
    pub cell: CellKind,
    /// Embedding width.
    pub embedding: usize,
    /// Hidden width.
    pub hidden: usize,
    /// Stacked layers.
    pub layers: usize,
    /// Tokens per sequence (back-propagation through time).
    pub seq_len: usize,
    /// Streams per batch.
    pub batch_size: usize,
    /// Epochs.
    pub epochs: usize,
    /// The (peak) learning rate.
    pub lr: f64,
    /// Plain SGD, as Zaremba et al. train, instead of Adam.
    pub sgd: bool,
    /// How the learning rate moves over the epochs.
    pub schedule: LmSchedule,
    /// Clip the gradients to this global norm (`None`: the model's default, 5).
    pub grad_clip: Option<f64>,
    /// The tail of the shuffled corpus held out for validation ([`LmTexts::Shuffled`]).
    pub valid_fraction: f64,
    /// Train on at most this many tokens of the training part (the held-out tail stays
    /// whole): a large corpus with a large vocabulary costs a softmax over the vocabulary
    /// per token.
    pub max_train_tokens: Option<usize>,
    /// Seed of the shuffle and the initialisation.
    pub seed: u64,
}

/// How the learning rate of [`train_text_lm`] moves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LmSchedule {
    /// fastai's one cycle over all the epochs (with Adam, its momentum too).
    OneCycle,
    /// Zaremba et al.'s: `lr` for `flat_epochs` epochs, then times `factor` each epoch.
    StepDecay {
        /// Epochs at the full rate.
        flat_epochs: usize,
        /// The factor per later epoch.
        factor: f64,
    },
}

impl TextLmConfig {
    /// The schedule of the whole run.
    fn schedule(&self) -> Schedule {
        match self.schedule {
            LmSchedule::OneCycle => Schedule::OneCycle(OneCycle::new(self.lr)),
            LmSchedule::StepDecay {
                flat_epochs,
                factor,
            } => Schedule::StepDecay(StepDecay {
                lr: self.lr,
                flat_epochs,
                factor,
                epochs: self.epochs,
            }),
        }
    }

    /// The optimizer: PyTorch's Adam, or plain SGD.
    fn optimizer(&self) -> OptimizerConfig {
        if self.sgd {
            OptimizerConfig::Sgd(SgdConfig {
                momentum: 0.0,
                weight_decay: 0.0,
            })
        } else {
            OptimizerConfig::Adam(AdamConfig::pytorch())
        }
    }

    /// The settings a resumed run must share with the saved one.
    fn run_settings(&self) -> RunSettings {
        RunSettings::default()
            .with("epochs", self.epochs)
            .with("lr", self.lr)
            .with("optimizer", if self.sgd { "sgd" } else { "adam" })
            .with("schedule", format!("{:?}", self.schedule))
            .with("grad-clip", format!("{:?}", self.grad_clip))
            .with("seq-len", self.seq_len)
            .with("batch-size", self.batch_size)
            .with("valid-fraction", self.valid_fraction)
            .with("max-train-tokens", format!("{:?}", self.max_train_tokens))
            .with("seed", self.seed)
    }
}

impl Default for TextLmConfig {
    /// An LSTM 64 → 128, one layer, 64-token sequences, batches of 32, 3 epochs at 3e-3.
    fn default() -> Self {
        Self {
            cell: CellKind::Lstm,
            embedding: 64,
            hidden: 128,
            layers: 1,
            seq_len: 64,
            batch_size: 32,
            epochs: 3,
            lr: 3e-3,
            sgd: false,
            schedule: LmSchedule::OneCycle,
            grad_clip: None,
            valid_fraction: 0.1,
            max_train_tokens: None,
            seed: 0,
        }
    }
}

/// A trained text language model with the tokenizer it reads.
#[derive(Debug, Clone)]
pub struct TextLm {
    /// The model's config (`config.json`).
    pub config: RecurrentLmConfig,
    /// Its tokenizer.
    pub tokenizer: Tokenizer,
    /// The model.
    pub model: RecurrentLm,
}

/// What [`train_text_lm`] measured.
#[derive(Debug, Clone)]
pub struct TextLmReport {
    /// One row per epoch (`accuracy` is next-token accuracy).
    pub records: Vec<EpochRecord>,
    /// Every training batch's loss.
    pub batch_losses: Vec<f32>,
    /// Held-out cross-entropy after the last epoch, nats per token.
    pub valid_loss: f64,
    /// `exp(valid_loss)`.
    pub perplexity: f64,
    /// Perplexity on the test part of an [`LmTexts::Split`] corpus, after training.
    pub test_perplexity: Option<f64>,
    /// Training and held-out tokens.
    pub tokens: (usize, usize),
    /// Trainable parameters.
    pub parameters: usize,
    /// Wall time of training, seconds.
    pub seconds: f64,
}

/// The texts a language model is trained and scored on.
#[derive(Debug, Clone, Copy)]
pub enum LmTexts<'a> {
    /// Texts shuffled with the seed and concatenated; the tail, `valid_fraction` of the
    /// tokens, is held out.
    Shuffled(&'a [String]),
    /// One text already encoded, in memory or on disk ([`TokenIds`]), read in order; the
    /// tail, `valid_fraction` of the tokens, is held out.
    Encoded(&'a TokenIds),
    /// A corpus split already, each part read in its order: the Penn Treebank's train, valid
    /// and test files.
    Split {
        /// Trained on.
        train: &'a str,
        /// Scored after every epoch.
        valid: &'a str,
        /// Scored once, after training.
        test: &'a str,
    },
}

/// The order [`LmTexts::Shuffled`] puts `count` texts in with `seed`: what a corpus of texts
/// encoded elsewhere (a table read from disk) must follow to train as the same texts would.
///
/// ```
/// let order = seqlab_lessons::text_lm::shuffled_order(5, 0);
/// let mut sorted = order.clone();
/// sorted.sort_unstable();
/// assert_eq!(sorted, [0, 1, 2, 3, 4]);
/// ```
pub fn shuffled_order(count: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..count).collect();
    order.shuffle(&mut StdRng::seed_from_u64(seed));
    order
}

/// `ids` cut into a head trained on and a tail of `valid_fraction` held out.
fn tail_held_out(ids: TokenIds, valid_fraction: f64) -> Result<(TokenIds, TokenIds), LessonError> {
    fraction("the validation fraction", valid_fraction)?;
    let cut = ((ids.len() as f64) * (1.0 - valid_fraction)) as usize;
    Ok((ids.slice(0..cut), ids.slice(cut..ids.len())))
}

/// Trains a language model on `texts` read with `tokenizer`, with Adam under one cycle, as
/// `run` says: from scratch or from a checkpoint, to the end or to `stop_after` epochs,
/// writing a checkpoint after every epoch (and every `save_every` steps). A resumed run gives
/// the same weights and losses as one that never stopped.
pub fn train_text_lm(
    config: &TextLmConfig,
    texts: LmTexts,
    tokenizer: Tokenizer,
    run: &TrainRun,
    device: &Device,
) -> Result<(TextLm, TextLmReport), LessonError> {
    check_stream_sizes(config.seq_len, config.batch_size, config.epochs)?;
    // A resumed run reads the texts with the tokenizer it saved.
    let tokenizer = match run.resume {
        Some(dir) => {
            let saved = saved_tokenizer(dir, TEXT_LM_KIND)?;
            // Encoded texts were read with the tokenizer given: it must be the saved one.
            if matches!(texts, LmTexts::Encoded(_)) && saved.to_json()? != tokenizer.to_json()? {
                return Err(LessonError::Config(format!(
                    "the text was encoded with another tokenizer than the one saved in {}",
                    dir.display()
                )));
            }
            saved
        }
        None => tokenizer,
    };
    let (train_ids, valid_ids, test_ids) = match texts {
        LmTexts::Shuffled(texts) => {
            fraction("the validation fraction", config.valid_fraction)?;
            let mut ids = Vec::new();
            for index in shuffled_order(texts.len(), config.seed) {
                ids.extend(tokenizer.encode(&texts[index])?);
            }
            let (train, valid) = tail_held_out(ids.into(), config.valid_fraction)?;
            (train, valid, None)
        }
        LmTexts::Encoded(ids) => {
            let (train, valid) = tail_held_out(ids.clone(), config.valid_fraction)?;
            (train, valid, None)
        }
        LmTexts::Split { train, valid, test } => (
            tokenizer.encode(train)?.into(),
            tokenizer.encode(valid)?.into(),
            Some(tokenizer.encode(test)?),
        ),
    };
    let train_ids = match config.max_train_tokens {
        Some(limit) => train_ids.slice(0..limit),
        None => train_ids,
    };
    let tokens = (train_ids.len(), valid_ids.len());
    let train = stream_batches(
        &train_ids,
        config.seq_len,
        config.batch_size,
        ("the training texts", "tokens"),
    )?;
    let valid = held_out_batches(
        &valid_ids,
        config.seq_len,
        config.batch_size,
        ("the held-out texts", "tokens"),
    )?;
    let test = test_ids
        .map(|ids| {
            held_out_batches(
                &ids.into(),
                config.seq_len,
                config.batch_size,
                ("the test texts", "tokens"),
            )
        })
        .transpose()?;
    let model_config = RecurrentLmConfig::new(
        config.cell,
        tokenizer.vocab_size(),
        config.hidden,
        config.layers,
    )
    .with_embedding_size(Some(config.embedding))
    .check()?;
    MemoryNeed::training(
        &model_config,
        config.batch_size,
        config.seq_len,
        format!(
            "{} of {} × {} (embedding {}) over {} tokens, on batches of {} × {}",
            config.cell.name(),
            config.layers,
            config.hidden,
            config.embedding,
            tokenizer.vocab_size(),
            config.batch_size,
            config.seq_len
        ),
    )
    .check_here()?;
    let settings = config.run_settings();
    let (model, saved) = match run.resume {
        Some(dir) => {
            let (saved, checkpoint) = TextLm::load_checkpoint(dir, device)?;
            check_same_model(&checkpoint, &model_files(&model_config, &tokenizer, None)?)?;
            let run = SavedRun::read(&checkpoint, &settings, device)?;
            (saved.model, Some(run))
        }
        None => (
            init_seeded(device, config.seed, || model_config.init(device)),
            None,
        ),
    };
    let parameters = model.num_params();
    let start = Instant::now();
    let mut learner = Learner::new(model, DataLoaders::new(train, valid)?, device)
        .with_optimizer(config.optimizer());
    if let Some(max_norm) = config.grad_clip {
        learner = learner.with_grad_clip(Some(max_norm));
    }
    // The tokenizer's JSON is written once, not at every save.
    let base = model_files(&model_config, &tokenizer, None)?;
    let snapshot = move |model: &RecurrentLm| with_pytorch_weights(base.clone(), &model.valid());
    let records = learner.run(
        &[Phase::new(config.epochs, config.schedule())],
        run,
        Some(RunCheckpoints::new(snapshot, settings, saved)),
    )?;
    let valid_loss = records.last().map_or(f64::NAN, |r| r.valid_loss);
    let test_perplexity = test.map(|batches| {
        evaluate_lm(
            &learner.model().valid(),
            &batches.into(),
            &device.clone().inner(),
        )
        .0
        .exp()
    });
    let report = TextLmReport {
        perplexity: valid_loss.exp(),
        test_perplexity,
        valid_loss,
        records,
        batch_losses: learner.batch_losses().to_vec(),
        tokens,
        parameters,
        seconds: start.elapsed().as_secs_f64(),
    };
    let lm = TextLm {
        config: model_config,
        tokenizer,
        model: learner.into_model().valid(),
    };
    Ok((lm, report))
}

/// The model's files of a checkpoint: its config and tokenizer and, given a model, its
/// weights.
fn model_files(
    config: &RecurrentLmConfig,
    tokenizer: &Tokenizer,
    model: Option<&RecurrentLm>,
) -> Result<Checkpoint, LessonError> {
    let mut checkpoint = config_checkpoint(TEXT_LM_KIND, config);
    checkpoint.insert(TOKENIZER_FILE, tokenizer.to_json()?.into_bytes());
    Ok(match model {
        Some(model) => with_pytorch_weights(checkpoint, model),
        None => checkpoint,
    })
}

impl TextLm {
    /// Writes the model, its config and its tokenizer as a checkpoint in `dir`, atomically.
    pub fn save(&self, dir: &Path) -> Result<(), LessonError> {
        Ok(model_files(&self.config, &self.tokenizer, Some(&self.model))?.save(dir)?)
    }

    /// Reads a checkpoint written by [`TextLm::save`] or [`train_text_lm`] onto `device`,
    /// checking its kind and that its config, tokenizer and weights agree.
    pub fn load(dir: &Path, device: &Device) -> Result<Self, LessonError> {
        Ok(Self::load_checkpoint(dir, device)?.0)
    }

    /// [`TextLm::load`], keeping the checkpoint's other files.
    fn load_checkpoint(dir: &Path, device: &Device) -> Result<(Self, Checkpoint), LessonError> {
        let checkpoint = Checkpoint::load(dir, TEXT_LM_KIND)?;
        let config = read_config(&checkpoint, RecurrentLmConfig::check)?;
        let tokenizer = Tokenizer::from_json(checkpoint.file(TOKENIZER_FILE)?)
            .map_err(|e| checkpoint.contents_error(TOKENIZER_FILE, e))?;
        if tokenizer.vocab_size() != config.vocab_size {
            return Err(checkpoint
                .contents_error(
                    TOKENIZER_FILE,
                    format!(
                        "{} tokens, the config says {}",
                        tokenizer.vocab_size(),
                        config.vocab_size
                    ),
                )
                .into());
        }
        let model = read_pytorch_weights(&checkpoint, config.init(device))?;
        Ok((
            Self {
                config,
                tokenizer,
                model,
            },
            checkpoint,
        ))
    }
}
