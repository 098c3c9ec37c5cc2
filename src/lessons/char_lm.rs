//! The RNN course's character-level LSTM (`PredictorLSTM`: embedding 64, 2 × 512 LSTM, a
//! linear read-out) on any UTF-8 text: trained as fastai trains language models (streams
//! carried from batch to batch), checkpointed with its vocabulary and config, and sampled one
//! character at a time.

use super::{LessonError, init_seeded, read_weights};
use crate::data::{CharVocab, batches, group_chunks, sequence_windows};
use crate::models::{
    CellKind, GenerateConfig, NamedTensors, PytorchWeights, RecurrentLm, RecurrentLmConfig,
    RnnState, generate_stepwise,
};
use crate::train::{
    AdamConfig, Checkpoint, DataLoaders, EpochRecord, Learner, OneCycle, OptimizerConfig, Position,
    Schedule, SmoothLoss, TrainError,
};
use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// The checkpoint kind of a character language model.
pub const CHAR_LM_KIND: &str = "char-lm";

const CONFIG_FILE: &str = "config.json";
const VOCAB_FILE: &str = "vocab.json";
const WEIGHTS_FILE: &str = "weights.safetensors";
const TRAINING_FILE: &str = "training.json";
const OPTIMIZER_FILE: &str = "optimizer.safetensors";
const STATE_FILE: &str = "state.safetensors";

/// The model's shape, as saved in a checkpoint's `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CharLmShape {
    /// The recurrence (`lstm`, `gru`, `rnn`).
    pub cell: String,
    /// Output classes: the characters and padding id 0.
    pub classes: usize,
    /// Embedding width.
    pub embedding: usize,
    /// Hidden units per layer.
    pub hidden: usize,
    /// Stacked layers.
    pub layers: usize,
}

impl CharLmShape {
    fn model_config(&self) -> Result<RecurrentLmConfig, String> {
        let cell: CellKind = self.cell.parse()?;
        if self.classes < 2 || self.embedding == 0 || self.hidden == 0 || self.layers == 0 {
            return Err(format!(
                "sizes must be at least 1 (and 2 classes): {self:?}"
            ));
        }
        Ok(
            RecurrentLmConfig::new(cell, self.classes, self.hidden, self.layers)
                .with_embedding_size(self.embedding),
        )
    }
}

/// A text cut into a training head and a held-out tail, as ids over the whole text's
/// characters.
#[derive(Debug, Clone)]
pub struct CharCorpus {
    /// The characters.
    pub vocab: CharVocab,
    /// The first `1 − valid_fraction` of the text.
    pub train: Vec<u32>,
    /// The rest.
    pub valid: Vec<u32>,
}

impl CharCorpus {
    /// Splits `text` at `floor(chars × (1 − valid_fraction))`.
    pub fn split(text: &str, valid_fraction: f64) -> Result<Self, LessonError> {
        if !(valid_fraction > 0.0 && valid_fraction < 1.0) {
            return Err(LessonError::Config(format!(
                "the validation fraction must be strictly between 0 and 1, got {valid_fraction}"
            )));
        }
        let vocab = CharVocab::from_text(text);
        let mut train = vocab.encode(text)?;
        let cut = (train.len() as f64 * (1.0 - valid_fraction)) as usize;
        let valid = train.split_off(cut);
        if train.is_empty() || valid.is_empty() {
            return Err(LessonError::Config(format!(
                "a text of {} characters is too short to split",
                train.len() + valid.len()
            )));
        }
        Ok(Self {
            vocab,
            train,
            valid,
        })
    }
}

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
    /// The model's shape.
    pub shape: CharLmShape,
    /// Its characters.
    pub vocab: CharVocab,
    /// The model.
    pub model: RecurrentLm,
}

/// Stateful LM batches of `batch_size` streams × `seq_len` tokens from `ids` (`what` names
/// the text, `unit` its tokens, in the error when it is too short for one batch).
pub(crate) fn stream_batches(
    ids: &[u32],
    seq_len: usize,
    batch_size: usize,
    what: &'static str,
    unit: &'static str,
) -> Result<Vec<crate::data::LmBatch>, LessonError> {
    let too_short = || {
        LessonError::Config(format!(
            "{what} ({} {unit}) is too short for one batch of {batch_size} × {seq_len}",
            ids.len()
        ))
    };
    if ids.len() <= seq_len {
        return Err(too_short());
    }
    let windows = sequence_windows(ids, seq_len)?;
    let batched = batches(&group_chunks(&windows, batch_size)?, batch_size, true)?;
    if batched.is_empty() {
        return Err(too_short());
    }
    Ok(batched)
}

/// Held-out batches: as [`stream_batches`], with fewer streams when the held-out text is too
/// short to fill `batch_size` of them, so that a small corpus still gets a held-out score
/// (the loss is a mean per token either way).
pub(crate) fn held_out_batches(
    ids: &[u32],
    seq_len: usize,
    batch_size: usize,
    what: &'static str,
    unit: &'static str,
) -> Result<Vec<crate::data::LmBatch>, LessonError> {
    let streams = (ids.len().saturating_sub(1) / seq_len.max(1)).clamp(1, batch_size.max(1));
    stream_batches(ids, seq_len, streams, what, unit)
}

/// Where a training run stands, as saved in a checkpoint's `training.json`: enough to check
/// that a resumed run is the same run and to continue its schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CharLmProgress {
    /// Epochs finished.
    pub epochs_done: usize,
    /// Epochs of the whole run (the schedule's length).
    pub epochs: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Characters per sequence.
    pub seq_len: usize,
    /// Sequences per batch.
    pub batch_size: usize,
    /// The limit on training characters, if any.
    pub max_train_chars: Option<usize>,
    /// The seed of the initialisation.
    pub seed: u64,
    /// The smoothed training loss, to report the same numbers after resuming.
    pub smooth_loss: SmoothLoss,
    /// The next batch of epoch `epochs_done`, when the run stopped inside it (the state it
    /// carried is saved as `state.safetensors`).
    pub next_batch: Option<usize>,
    /// Every finished epoch's numbers.
    pub records: Vec<EpochRecord>,
}

impl CharLmProgress {
    fn new(config: &CharLmConfig) -> Self {
        Self {
            epochs_done: 0,
            epochs: config.epochs,
            lr: config.lr,
            seq_len: config.seq_len,
            batch_size: config.batch_size,
            max_train_chars: config.max_train_chars,
            seed: config.seed,
            smooth_loss: SmoothLoss::default(),
            next_batch: None,
            records: Vec::new(),
        }
    }

    /// What differs between the run that wrote the checkpoint and `config`, if anything.
    fn differences(&self, config: &CharLmConfig) -> Vec<String> {
        let mut differences = Vec::new();
        let mut check = |name: &str, saved: String, asked: String| {
            if saved != asked {
                differences.push(format!("{name} {saved} (asked {asked})"));
            }
        };
        check("epochs", self.epochs.to_string(), config.epochs.to_string());
        check("lr", self.lr.to_string(), config.lr.to_string());
        check(
            "seq-len",
            self.seq_len.to_string(),
            config.seq_len.to_string(),
        );
        check(
            "batch-size",
            self.batch_size.to_string(),
            config.batch_size.to_string(),
        );
        check(
            "max-chars",
            format!("{:?}", self.max_train_chars),
            format!("{:?}", config.max_train_chars),
        );
        check("seed", self.seed.to_string(), config.seed.to_string());
        differences
    }
}

/// The checkpoint of `model` with its vocabulary, shape, optimizer state, progress and, inside
/// an epoch, the state carried into the next batch.
fn checkpoint_of(
    model: &RecurrentLm,
    optimizer: Option<NamedTensors>,
    shape: &CharLmShape,
    vocab: &CharVocab,
    progress: &CharLmProgress,
    carried: Option<&RnnState>,
) -> Checkpoint {
    let mut named = NamedTensors::default();
    model.save_pytorch("", &mut named);
    let mut checkpoint = Checkpoint::new(CHAR_LM_KIND);
    checkpoint.insert(
        CONFIG_FILE,
        serde_json::to_vec_pretty(shape).expect("a shape always serialises"),
    );
    checkpoint.insert(VOCAB_FILE, vocab.to_json());
    checkpoint.insert(WEIGHTS_FILE, named.to_safetensors_bytes());
    if let Some(optimizer) = optimizer {
        checkpoint.insert(OPTIMIZER_FILE, optimizer.to_safetensors_bytes());
    }
    if let Some(carried) = carried {
        let mut state = NamedTensors::default();
        for (index, tensor) in carried.tensors.iter().enumerate() {
            state.insert_tensor(index.to_string(), tensor.clone());
        }
        checkpoint.insert(STATE_FILE, state.to_safetensors_bytes());
    }
    checkpoint.insert(
        TRAINING_FILE,
        serde_json::to_vec_pretty(progress).expect("progress always serialises"),
    );
    checkpoint
}

/// Where a training run writes and what it continues from.
#[derive(Debug, Clone, Copy, Default)]
pub struct CharLmRun<'a> {
    /// Write a checkpoint here after every epoch.
    pub out: Option<&'a Path>,
    /// Continue the run saved in this checkpoint (same corpus and settings).
    pub resume: Option<&'a Path>,
    /// Stop after this many epochs of the run (the schedule still spans all of them).
    pub stop_after: Option<usize>,
    /// Stop at the next step boundary once this is set (a Ctrl-C handler sets it), writing a
    /// checkpoint that continues the run from that step.
    pub stop: Option<&'a Arc<AtomicBool>>,
    /// Print fastai's table.
    pub print_table: bool,
    /// Show progress bars.
    pub show_progress: bool,
}

/// Trains a character model on `corpus` as `run` says: from scratch or from a checkpoint, to
/// the end or to `stop_after` epochs, writing a checkpoint after every epoch. A resumed run
/// gives the same weights and losses as one that never stopped.
pub fn train_char_lm(
    config: &CharLmConfig,
    corpus: &CharCorpus,
    run: &CharLmRun,
    device: &Device,
) -> Result<(CharLm, CharLmReport), LessonError> {
    let shape = CharLmShape {
        cell: config.cell.name().into(),
        classes: corpus.vocab.classes(),
        embedding: config.embedding,
        hidden: config.hidden,
        layers: config.layers,
    };
    let model_config = shape.model_config().map_err(LessonError::Config)?;
    if config.seq_len == 0 || config.batch_size == 0 || config.epochs == 0 {
        return Err(LessonError::Config(
            "the sequence length, batch size and epochs must be at least 1".into(),
        ));
    }
    let train_ids = match config.max_train_chars {
        Some(limit) => &corpus.train[..limit.min(corpus.train.len())],
        None => &corpus.train[..],
    };
    let train = stream_batches(
        train_ids,
        config.seq_len,
        config.batch_size,
        "the training text",
        "characters",
    )?;
    let valid = held_out_batches(
        &corpus.valid,
        config.seq_len,
        config.batch_size,
        "the held-out text",
        "characters",
    )?;
    let train_chars = train.iter().map(|b| b.target_tokens()).sum();
    let valid_chars = valid.iter().map(|b| b.target_tokens()).sum();
    let (model, optimizer, carried, mut progress) = match run.resume {
        Some(dir) => resume_from(dir, config, &shape, &corpus.vocab, device)?,
        None => (
            init_seeded(device, config.seed, || model_config.init(device)),
            None,
            None,
            CharLmProgress::new(config),
        ),
    };
    let parameters = model.num_params();
    let mut learner = Learner::new(model, DataLoaders::new(train, valid)?, device)
        .with_optimizer(OptimizerConfig::Adam(AdamConfig::pytorch()))
        .with_table(run.print_table)
        .with_progress(run.show_progress);
    if let Some(optimizer) = &optimizer {
        learner.restore(optimizer, progress.smooth_loss)?;
    }
    if let Some(next_batch) = progress.next_batch {
        learner.resume_at(Position {
            epoch: progress.epochs_done,
            next_batch,
            state: carried,
        });
    }
    if let Some(stop) = run.stop {
        learner = learner.with_stop_flag(Arc::clone(stop));
    }
    let previous = progress.records.clone();
    if let Some(out) = run.out {
        let (out, shape, vocab) = (out.to_path_buf(), shape.clone(), corpus.vocab.clone());
        let mut progress = progress.clone();
        learner = learner.with_epoch_end(move |end| {
            progress.epochs_done = end.record.epoch + 1;
            progress.next_batch = None;
            progress.smooth_loss = end.smooth_loss;
            progress.records.push(end.record.clone());
            let optimizer = end.optimizer.state_of(end.model);
            checkpoint_of(
                &end.model.valid(),
                Some(optimizer),
                &shape,
                &vocab,
                &progress,
                None,
            )
            .save(&out)
            .map_err(TrainError::from)
        });
    }
    let last = run.stop_after.unwrap_or(config.epochs).min(config.epochs);
    let fitted = learner
        .fit_epochs(
            progress.epochs_done..last.max(progress.epochs_done),
            config.epochs,
            Schedule::OneCycle(OneCycle::new(config.lr)),
        )
        .map(|_| ());
    progress.records = previous;
    progress.records.extend(learner.history().iter().cloned());
    if let Err(TrainError::Interrupted { epoch, batch }) = fitted {
        let checkpoint = match run.out {
            Some(out) => {
                let position = learner.position().cloned();
                progress.epochs_done = epoch;
                progress.next_batch = (batch > 0).then_some(batch);
                progress.smooth_loss = learner.smooth_loss();
                let model = learner.model();
                checkpoint_of(
                    &model.valid(),
                    Some(learner.optimizer().state_of(model)),
                    &shape,
                    &corpus.vocab,
                    &progress,
                    position.as_ref().and_then(|p| p.state.as_ref()),
                )
                .save(out)?;
                Some(out.display().to_string())
            }
            None => None,
        };
        return Err(LessonError::Interrupted {
            epoch,
            batch,
            checkpoint,
        });
    }
    fitted?;
    let records = progress.records;
    let valid_loss = records.last().map_or(f64::NAN, |record| record.valid_loss);
    let batch_losses = learner.batch_losses().to_vec();
    let model = learner.into_model().valid();
    Ok((
        CharLm {
            shape,
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

/// What a resumed run starts from: the model, the optimizer state, the state carried into the
/// next batch (when it stopped inside an epoch) and the progress.
type Resumed = (
    RecurrentLm,
    Option<NamedTensors>,
    Option<RnnState>,
    CharLmProgress,
);

/// The run saved in `dir`, after checking that it is the run `config` describes on a corpus
/// with the same characters.
fn resume_from(
    dir: &Path,
    config: &CharLmConfig,
    shape: &CharLmShape,
    vocab: &CharVocab,
    device: &Device,
) -> Result<Resumed, LessonError> {
    let (saved, checkpoint) = CharLm::load_checkpoint(dir, device)?;
    if &saved.shape != shape {
        return Err(checkpoint
            .contents_error(
                CONFIG_FILE,
                format!(
                    "the checkpoint's model is {:?}, this run asks for {shape:?}",
                    saved.shape
                ),
            )
            .into());
    }
    if &saved.vocab != vocab {
        return Err(checkpoint
            .contents_error(
                VOCAB_FILE,
                "the text's characters are not the checkpoint's: resume on the same text",
            )
            .into());
    }
    let progress: CharLmProgress = serde_json::from_slice(checkpoint.file(TRAINING_FILE)?)
        .map_err(|e| checkpoint.contents_error(TRAINING_FILE, e))?;
    let differences = progress.differences(config);
    if !differences.is_empty() {
        return Err(checkpoint
            .contents_error(
                TRAINING_FILE,
                format!("the saved run differs: {}", differences.join(", ")),
            )
            .into());
    }
    let optimizer = NamedTensors::from_safetensors_bytes(
        checkpoint.file(OPTIMIZER_FILE)?,
        &checkpoint.path_of(OPTIMIZER_FILE),
    )
    .map_err(|e| checkpoint.contents_error(OPTIMIZER_FILE, e))?;
    let carried = match progress.next_batch {
        Some(_) => {
            let named = NamedTensors::from_safetensors_bytes(
                checkpoint.file(STATE_FILE)?,
                &checkpoint.path_of(STATE_FILE),
            )
            .map_err(|e| checkpoint.contents_error(STATE_FILE, e))?;
            let autodiff = device.clone().autodiff();
            let tensors = (0..named.len())
                .map(|index| {
                    let (shape, values) = named.get(&index.to_string()).ok_or_else(|| {
                        checkpoint.contents_error(STATE_FILE, format!("no tensor {index}"))
                    })?;
                    let [rows, width] = <[usize; 2]>::try_from(shape).map_err(|_| {
                        checkpoint.contents_error(STATE_FILE, format!("tensor {index} is not 2-D"))
                    })?;
                    Ok(Tensor::from_data(
                        TensorData::new(values.to_vec(), [rows, width]),
                        &autodiff,
                    ))
                })
                .collect::<Result<Vec<Tensor<2>>, LessonError>>()?;
            Some(RnnState::new(tensors))
        }
        None => None,
    };
    Ok((saved.model, Some(optimizer), carried, progress))
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
        let shape: CharLmShape = serde_json::from_slice(checkpoint.file(CONFIG_FILE)?)
            .map_err(|e| checkpoint.contents_error(CONFIG_FILE, e))?;
        let model_config = shape
            .model_config()
            .map_err(|e| checkpoint.contents_error(CONFIG_FILE, e))?;
        let vocab = CharVocab::from_json(
            checkpoint.file(VOCAB_FILE)?,
            &checkpoint.path_of(VOCAB_FILE),
        )?;
        if vocab.classes() != shape.classes {
            return Err(checkpoint
                .contents_error(
                    VOCAB_FILE,
                    format!(
                        "{} classes, the config says {}",
                        vocab.classes(),
                        shape.classes
                    ),
                )
                .into());
        }
        let model = read_weights(&checkpoint, WEIGHTS_FILE, model_config.init(device))?;
        Ok((
            Self {
                shape,
                vocab,
                model,
            },
            checkpoint,
        ))
    }

    /// Writes the model as a checkpoint in `dir` (atomically), for sampling (it holds no
    /// optimizer state to resume training from).
    pub fn save(&self, dir: &Path) -> Result<(), LessonError> {
        let progress = CharLmProgress::new(&CharLmConfig::default());
        Ok(
            checkpoint_of(&self.model, None, &self.shape, &self.vocab, &progress, None)
                .save(dir)?,
        )
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
