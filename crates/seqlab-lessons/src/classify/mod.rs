//! Text classification (the tglcourse lesson's MLP, RNN and LSTM classifiers, on real data):
//! labelled texts → tokenizer → padded, length-sorted batches → classifier, trained with Adam
//! under one cycle; from scratch, or from a language model's encoder (ULMFiT: the head first
//! with the encoder frozen, then everything).

use super::text_lm::TextLm;
use super::{LessonError, TOKENIZER_FILE, TrainRun, saved_tokenizer};
use crate::data::{CacheUse, LabelledText, Tokenizer, stratified_split};
use crate::models::{
    CellKind, ClassifierError, Footprint, MlpClassifier, MlpClassifierConfig, Pooling,
    PytorchWeights, RecurrentClassifier, RecurrentClassifierConfig, RecurrentState,
};
use crate::settings::{dropout, in_range, sizes_at_least_one};
use crate::train::MemoryNeed;
use crate::train::TrainError;
use crate::train::{
    AdamConfig, Checkpoint, EpochRecord, FitLoop, OptimizerConfig, Phase, RunCheckpoints,
    RunSettings, SavedRun, SchedulePolicy, Scores, StepIndex, StepLoss, TrainTask,
    check_same_model, config_checkpoint, flat_cross_entropy, init_seeded, read_pytorch_weights,
    seed_for_step, with_pytorch_weights,
};
use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Instant;

mod data;
mod task;

pub use data::TextDataset;
use data::share;
use task::Run;

/// The checkpoint kind of a text classifier.
pub const CLASSIFIER_KIND: &str = "classifier";
const CLASSES_FILE: &str = "classes.json";

/// The model a classifier checkpoint holds, its config as it is (`config.json`'s `model`).
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ClassifierModelConfig {
    /// [`MlpClassifier`].
    Mlp(MlpClassifierConfig),
    /// [`RecurrentClassifier`].
    Recurrent(RecurrentClassifierConfig),
}

/// Which classifier to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassifierArch {
    /// Embedding → flatten → linear → ReLU → linear over exactly `max_len` tokens.
    Mlp,
    /// Embedding → recurrent layers → pooling → linear.
    Recurrent(CellKind),
}

impl ClassifierArch {
    /// `mlp`, `rnn`, `lstm` or `gru`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Mlp => "mlp",
            Self::Recurrent(kind) => kind.name(),
        }
    }
}

impl FromStr for ClassifierArch {
    type Err = String;

    /// `mlp`, `rnn`, `lstm` or `gru`.
    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "mlp" => Ok(Self::Mlp),
            other => other
                .parse()
                .map(Self::Recurrent)
                .map_err(|_| format!("unknown model {other:?} (known: mlp, rnn, lstm, gru)")),
        }
    }
}

/// What a classifier started from a language model takes from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transfer {
    /// The whole encoder: the embedding and the recurrent layers (ULMFiT).
    Encoder,
    /// The embedding only; the recurrent layers start from fresh weights.
    Embedding,
}

impl Transfer {
    /// `encoder` or `embedding`.
    pub fn name(self) -> &'static str {
        match self {
            Transfer::Encoder => "encoder",
            Transfer::Embedding => "embedding",
        }
    }
}

impl FromStr for Transfer {
    type Err = String;

    /// `encoder` or `embedding`.
    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "encoder" => Ok(Self::Encoder),
            "embedding" => Ok(Self::Embedding),
            other => Err(format!(
                "unknown transfer {other:?} (known: encoder, embedding)"
            )),
        }
    }
}

/// Settings of [`train_classifier`].
#[derive(Debug, Clone, PartialEq)]
pub struct ClassifyConfig {
    /// The classifier.
    pub arch: ClassifierArch,
    /// Embedding width (a pretrained encoder brings its own).
    pub embedding: usize,
    /// Hidden width of the recurrent layers or the MLP (likewise).
    pub hidden: usize,
    /// Stacked recurrent layers (likewise).
    pub layers: usize,
    /// Whether the recurrent layers also run backwards (not with a pretrained encoder).
    pub bidirectional: bool,
    /// Pooling over time.
    pub pooling: Pooling,
    /// Dropout on the pooled features before the head of a recurrent classifier.
    pub dropout: f64,
    /// Tokens kept per text (the first ones); the MLP pads every text to this length.
    pub max_len: usize,
    /// Texts per batch.
    pub batch_size: usize,
    /// Epochs (with a pretrained encoder: after the head-only epochs).
    pub epochs: usize,
    /// Epochs with the pretrained encoder frozen, before the others.
    pub head_epochs: usize,
    /// Peak learning rate of each one-cycle phase (the rate, under a constant schedule).
    pub lr: f64,
    /// The learning rate's shape over each phase (fastai's one-cycle by default).
    pub schedule: SchedulePolicy,
    /// Clip the gradients to this global L2 norm before each step (`None`: no clipping).
    pub grad_clip: Option<f64>,
    /// Fine-tuning a pretrained encoder, each layer group below the head trains at the
    /// learning rate divided by this once more (ULMFiT's discriminative rates, 2.6: the
    /// recurrent layers at lr / 2.6, the embedding at lr / 2.6²); 1 trains all alike.
    pub lr_decay: f64,
    /// What a classifier started from a language model takes from it.
    pub transfer: Transfer,
    /// Share of every class held out for validation.
    pub valid_fraction: f64,
    /// Classes with fewer texts than this are left out (and reported).
    pub min_class_count: usize,
    /// Seed of the split, the shuffles and the initialisation.
    pub seed: u64,
}

impl ClassifyConfig {
    /// The settings a resumed run must share with the saved one.
    fn run_settings(&self) -> RunSettings {
        RunSettings::default()
            .with("epochs", self.epochs)
            .with("head-epochs", self.head_epochs)
            .with("batch-size", self.batch_size)
            .with("lr", self.lr)
            .with("schedule", self.schedule.name())
            .with("grad-clip", format!("{:?}", self.grad_clip))
            .with("lr-decay", self.lr_decay)
            .with("transfer", self.transfer.name())
            .with("valid-fraction", self.valid_fraction)
            .with("min-class-count", self.min_class_count)
            .with("seed", self.seed)
    }
}

impl Default for ClassifyConfig {
    /// An LSTM 64 → 128, one layer, mean pooling, 256 tokens, batches of 32, 4 epochs at
    /// 3e-3 (one head-only epoch first with a pretrained encoder), 10% held out.
    fn default() -> Self {
        Self {
            arch: ClassifierArch::Recurrent(CellKind::Lstm),
            embedding: 64,
            hidden: 128,
            layers: 1,
            bidirectional: false,
            pooling: Pooling::Mean,
            dropout: 0.0,
            max_len: 256,
            batch_size: 32,
            epochs: 4,
            head_epochs: 1,
            lr: 3e-3,
            schedule: SchedulePolicy::OneCycle,
            grad_clip: None,
            lr_decay: 2.6,
            transfer: Transfer::Encoder,
            valid_fraction: 0.1,
            min_class_count: 10,
            seed: 0,
        }
    }
}

/// Where the classifier's tokenizer and encoder come from.
#[derive(Debug, Clone)]
pub enum Start {
    /// A fresh classifier over this tokenizer.
    Scratch(Tokenizer),
    /// A classifier on a language model's encoder (and its tokenizer).
    Pretrained(Box<TextLm>),
}

/// The id file a dataset read from disk was encoded into ([`TextDataset::encode_on_disk`]).
#[derive(Debug, Clone)]
pub struct IdsFile {
    /// Where it is.
    pub file: PathBuf,
    /// Whether it was there already.
    pub cache: CacheUse,
    /// Seconds finding or writing it took.
    pub seconds: f64,
}

/// What [`train_classifier`] measured.
#[derive(Debug, Clone)]
pub struct ClassifyReport {
    /// One row per epoch.
    pub records: Vec<EpochRecord>,
    /// Held-out accuracy after the last epoch.
    pub accuracy: f64,
    /// The mean over classes of each class's held-out recall.
    pub balanced_accuracy: f64,
    /// Accuracy of always answering the most frequent training class.
    pub majority_accuracy: f64,
    /// `confusion[actual][predicted]` counts on the held-out texts.
    pub confusion: Vec<Vec<usize>>,
    /// Class names.
    pub classes: Vec<String>,
    /// Training and held-out texts.
    pub sizes: (usize, usize),
    /// Tokens in the vocabulary.
    pub vocab_size: usize,
    /// Trainable parameters.
    pub parameters: usize,
    /// Wall time of training, seconds.
    pub seconds: f64,
}

impl ClassifyReport {
    /// The confusion matrix as text: one row per actual class, one column per prediction.
    pub fn confusion_table(&self) -> String {
        let width = self
            .classes
            .iter()
            .map(String::len)
            .max()
            .unwrap_or(0)
            .max(6);
        let mut out = format!("{:>width$}  predicted →\n{:>width$}", "actual ↓", "");
        for class in &self.classes {
            out.push_str(&format!(" {class:>width$}"));
        }
        for (class, row) in self.classes.iter().zip(&self.confusion) {
            out.push_str(&format!("\n{class:>width$}"));
            for count in row {
                out.push_str(&format!(" {count:>width$}"));
            }
        }
        out
    }
}

fn check(config: &ClassifyConfig) -> Result<(), LessonError> {
    sizes_at_least_one(&[
        ("the embedding", config.embedding),
        ("the hidden width", config.hidden),
        ("the layers", config.layers),
        ("the maximum length", config.max_len),
        ("the batch size", config.batch_size),
        ("the epochs", config.epochs),
    ])?;
    let decay = config.lr_decay;
    let decay_ok = decay.is_finite() && decay >= 1.0;
    in_range(
        "the learning-rate decay per layer group",
        "at least 1",
        decay,
        decay_ok,
    )?;
    TrainError::check_lr(config.lr)?;
    if let Some(max_norm) = config.grad_clip {
        TrainError::check_max_norm(max_norm)?;
    }
    dropout(config.dropout)?;
    Ok(())
}

/// Splits `data` (stratified, seeded), tokenizes it, and trains the classifier `start` says,
/// as `run` says: printing fastai's epoch table, writing a checkpoint (the classifier with
/// its tokenizer and class names) after every epoch, resuming a saved run. A word or
/// character tokenizer passed in `Start::Scratch` should be built from the training texts
/// only ([`training_texts`]).
pub fn train_classifier(
    config: &ClassifyConfig,
    data: &TextDataset,
    start: Start,
    run: &TrainRun,
    device: &Device,
) -> Result<ClassifyReport, LessonError> {
    check(config)?;
    // A resumed run reads the texts with the tokenizer it saved.
    let start = match (start, run.resume) {
        (Start::Scratch(_), Some(dir)) => Start::Scratch(saved_tokenizer(dir, CLASSIFIER_KIND)?),
        (start, _) => start,
    };
    let (train_rows, valid_rows) =
        stratified_split(&data.labels, config.valid_fraction, config.seed)?;
    let tokenizer = match &start {
        Start::Scratch(tokenizer) => tokenizer,
        Start::Pretrained(lm) => &lm.tokenizer,
    };
    let (all, _) = data.encode(tokenizer, config.max_len)?;
    let pad = tokenizer.pad_id();
    let sizes = (train_rows.len(), valid_rows.len());
    let train = share(&all, data, train_rows, pad, config);
    let valid = share(&all, data, valid_rows, pad, config);
    let vocab_size = tokenizer.vocab_size();
    let classes = data.classes.len();
    let majority = {
        let mut counts = vec![0usize; classes];
        train.labels.iter().for_each(|&l| counts[l] += 1);
        let top = (0..classes)
            .max_by_key(|&c| (counts[c], std::cmp::Reverse(c)))
            .unwrap_or(0);
        valid.labels.iter().filter(|&&l| l == top).count() as f64 / valid.labels.len() as f64
    };
    let model_config = match (config.arch, &start) {
        (ClassifierArch::Mlp, Start::Pretrained(_)) => {
            return Err(LessonError::Config(
                "a pretrained language model starts a recurrent classifier (rnn, lstm, gru), not the MLP".into(),
            ));
        }
        (ClassifierArch::Recurrent(_), Start::Pretrained(_)) if config.bidirectional => {
            return Err(LessonError::Config(
                "a language model's encoder runs forwards only: leave out --bidirectional".into(),
            ));
        }
        (ClassifierArch::Mlp, Start::Scratch(_)) => ClassifierModelConfig::Mlp(
            MlpClassifierConfig {
                vocab_size,
                embedding_size: config.embedding,
                seq_len: config.max_len,
                hidden_size: config.hidden,
                classes,
            }
            .check()?,
        ),
        (ClassifierArch::Recurrent(kind), Start::Scratch(_)) => ClassifierModelConfig::Recurrent(
            RecurrentClassifierConfig::new(
                kind,
                vocab_size,
                config.embedding,
                config.hidden,
                config.layers,
                classes,
            )
            .with_bidirectional(config.bidirectional)
            .with_pooling(config.pooling)
            .with_dropout(config.dropout)
            .check()?,
        ),
        (ClassifierArch::Recurrent(_), Start::Pretrained(lm)) => {
            ClassifierModelConfig::Recurrent(classifier_on_lm(lm, config, classes)?)
        }
    };
    let footprint: &dyn Footprint = match &model_config {
        ClassifierModelConfig::Mlp(model_config) => model_config,
        ClassifierModelConfig::Recurrent(model_config) => model_config,
    };
    MemoryNeed::training(
        footprint,
        config.batch_size,
        config.max_len,
        format!(
            "a classifier of hidden size {} × {} layers (embedding {}) over {vocab_size} tokens, on batches of {} × {}",
            config.hidden, config.layers, config.embedding, config.batch_size, config.max_len
        ),
    )
    .check_here()?;
    let mut base = config_checkpoint(
        CLASSIFIER_KIND,
        &serde_json::json!({ "model": model_config, "max_len": config.max_len }),
    );
    let to_json = |value: &serde_json::Value| {
        serde_json::to_vec_pretty(value).expect("JSON always serialises")
    };
    base.insert(TOKENIZER_FILE, tokenizer.to_json()?.into_bytes());
    base.insert(CLASSES_FILE, to_json(&serde_json::json!(data.classes)));
    let run = Run {
        config,
        train: &train,
        valid: &valid,
        classes,
        device,
        run,
        base,
    };
    let start_time = Instant::now();
    let (records, confusion, parameters) = match (model_config, start) {
        (ClassifierModelConfig::Mlp(model_config), _) => {
            let model = init_seeded(device, config.seed, || model_config.init(device));
            run.fit(model, &[(config.epochs, false)])?
        }
        (ClassifierModelConfig::Recurrent(model_config), Start::Scratch(_)) => {
            let model = init_seeded(device, config.seed, || model_config.init(device));
            run.fit(model, &[(config.epochs, false)])?
        }
        (ClassifierModelConfig::Recurrent(model_config), Start::Pretrained(lm)) => {
            let model = pretrained_classifier(&lm, &model_config, config, device)?;
            run.fit(model, &[(config.head_epochs, true), (config.epochs, false)])?
        }
    };
    let correct: usize = (0..classes).map(|c| confusion[c][c]).sum();
    let total: usize = confusion.iter().flatten().sum();
    let recalls: Vec<f64> = confusion
        .iter()
        .enumerate()
        .filter(|(_, row)| row.iter().sum::<usize>() > 0)
        .map(|(c, row)| row[c] as f64 / row.iter().sum::<usize>() as f64)
        .collect();
    Ok(ClassifyReport {
        records,
        accuracy: correct as f64 / total.max(1) as f64,
        balanced_accuracy: recalls.iter().sum::<f64>() / recalls.len().max(1) as f64,
        majority_accuracy: majority,
        confusion,
        classes: data.classes.clone(),
        sizes,
        vocab_size,
        parameters,
        seconds: start_time.elapsed().as_secs_f64(),
    })
}

/// The config of a classifier on `lm`'s encoder: its cell and sizes, `config`'s pooling and
/// dropout.
fn classifier_on_lm(
    lm: &TextLm,
    config: &ClassifyConfig,
    classes: usize,
) -> Result<RecurrentClassifierConfig, LessonError> {
    let lm = &lm.config;
    Ok(RecurrentClassifierConfig::new(
        lm.kind,
        lm.vocab_size,
        lm.embedding_width(),
        lm.hidden_size,
        lm.num_layers,
        classes,
    )
    .with_pooling(config.pooling)
    .with_dropout(config.dropout)
    .check()?)
}

/// A recurrent classifier of `model_config` on `lm`'s encoder, or on its embedding alone
/// (`config.transfer`), its other weights drawn with `config.seed`.
fn pretrained_classifier(
    lm: &TextLm,
    model_config: &RecurrentClassifierConfig,
    config: &ClassifyConfig,
    device: &Device,
) -> Result<RecurrentClassifier, LessonError> {
    let model = init_seeded(device, config.seed, || model_config.init(device));
    let (embedding, recurrent) = lm.model.encoder();
    let recurrent = match config.transfer {
        Transfer::Encoder => recurrent,
        Transfer::Embedding => model.encoder.clone(),
    };
    Ok(model.with_encoder(embedding, recurrent)?)
}

/// The texts of the training split [`train_classifier`] will make with this config, to build
/// a word or character tokenizer from.
/// Of a dataset read from disk, only the first texts, up to `max_bytes`, are read (all of
/// them when `None`).
pub fn training_texts<'a>(
    config: &ClassifyConfig,
    data: &'a TextDataset,
    max_bytes: Option<usize>,
) -> Result<Vec<Cow<'a, str>>, LessonError> {
    let (train, _) = stratified_split(&data.labels, config.valid_fraction, config.seed)?;
    let mut texts = Vec::new();
    let mut bytes = 0;
    for row in train {
        if max_bytes.is_some_and(|max| bytes >= max) {
            break;
        }
        let text = data.text(row)?;
        bytes += text.len();
        texts.push(text);
    }
    Ok(texts)
}

#[cfg(test)]
mod tests;
