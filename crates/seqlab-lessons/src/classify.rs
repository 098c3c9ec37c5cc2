//! Text classification (the tglcourse lesson's MLP, RNN and LSTM classifiers, on real data):
//! labelled texts → tokenizer → padded, length-sorted batches → classifier, trained with Adam
//! under one cycle; from scratch, or from a language model's encoder (ULMFiT: the head first
//! with the encoder frozen, then everything).

use super::text_lm::TextLm;
use super::{LessonError, TOKENIZER_FILE, TrainRun, saved_tokenizer};
use crate::data::{LabelledText, Tokenizer, stratified_split};
use crate::models::{
    CellKind, ClassifierError, MlpClassifier, MlpClassifierConfig, Pooling, PytorchWeights,
    RecurrentClassifier, RecurrentClassifierConfig, RnnState,
};
use crate::train::{
    AdamConfig, Checkpoint, EpochRecord, FitLoop, OneCycle, OptimizerConfig, Phase, RunCheckpoints,
    RunSettings, SavedRun, Schedule, Scores, StepIndex, StepLoss, TrainTask, check_same_model,
    flat_cross_entropy, init_seeded, read_pytorch_weights, seed_for_step, with_pytorch_weights,
};
use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::str::FromStr;
use std::time::Instant;

/// The checkpoint kind of a text classifier.
pub const CLASSIFIER_KIND: &str = "classifier";
const CONFIG_FILE: &str = "config.json";
const CLASSES_FILE: &str = "classes.json";

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
    /// Peak learning rate of each one-cycle phase.
    pub lr: f64,
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
    /// The model's shape, as a checkpoint's `config.json` holds it.
    fn shape_json(&self, vocab_size: usize, classes: usize) -> serde_json::Value {
        serde_json::json!({
            "model": self.arch.name(),
            "vocab_size": vocab_size,
            "embedding": self.embedding,
            "hidden": self.hidden,
            "layers": self.layers,
            "bidirectional": self.bidirectional,
            "pooling": format!("{:?}", self.pooling).to_lowercase(),
            "dropout": self.dropout,
            "max_len": self.max_len,
            "classes": classes,
        })
    }

    /// The settings a resumed run must share with the saved one.
    fn run_settings(&self) -> RunSettings {
        RunSettings::default()
            .with("epochs", self.epochs)
            .with("head-epochs", self.head_epochs)
            .with("batch-size", self.batch_size)
            .with("lr", self.lr)
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
            lr_decay: 2.6,
            transfer: Transfer::Encoder,
            valid_fraction: 0.1,
            min_class_count: 10,
            seed: 0,
        }
    }
}

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

/// Where the classifier's tokenizer and encoder come from.
#[derive(Debug, Clone)]
pub enum Start {
    /// A fresh classifier over this tokenizer.
    Scratch(Tokenizer),
    /// A classifier on a language model's encoder (and its tokenizer).
    Pretrained(Box<TextLm>),
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

/// The two classifier families behind one interface.
trait Classify: Module + Clone {
    fn logits(&self, batch: &Batch) -> Result<Tensor<2>, ClassifierError>;
}

impl Classify for RecurrentClassifier {
    fn logits(&self, batch: &Batch) -> Result<Tensor<2>, ClassifierError> {
        self.forward(batch.tokens.clone(), Some(&batch.lengths))
    }
}

impl Classify for MlpClassifier {
    fn logits(&self, batch: &Batch) -> Result<Tensor<2>, ClassifierError> {
        self.forward(batch.tokens.clone())
    }
}

struct Batch {
    tokens: Tensor<2, Int>,
    lengths: Vec<usize>,
    targets: Tensor<1, Int>,
    labels: Vec<usize>,
}

/// Encoded texts (truncated to `max_len`, never empty) and their labels.
struct Encoded {
    ids: Vec<Vec<u32>>,
    labels: Vec<usize>,
    pad: u32,
    fixed_len: Option<usize>,
}

impl Encoded {
    fn batch(&self, rows: &[usize], device: &Device) -> Batch {
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
    fn batches(&self, batch_size: usize, seed: Option<u64>) -> Vec<Vec<usize>> {
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

fn encode(
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

fn check(config: &ClassifyConfig) -> Result<(), LessonError> {
    let sizes = [
        config.embedding,
        config.hidden,
        config.layers,
        config.max_len,
        config.batch_size,
        config.epochs,
    ];
    if sizes.contains(&0) {
        return Err(LessonError::Config(
            "the embedding, hidden width, layers, maximum length, batch size and epochs must be at least 1".into(),
        ));
    }
    if !(config.lr_decay.is_finite() && config.lr_decay >= 1.0) {
        return Err(LessonError::Config(format!(
            "the learning-rate decay per layer group must be at least 1, got {}",
            config.lr_decay
        )));
    }
    if !(config.lr.is_finite() && config.lr > 0.0) {
        return Err(LessonError::Config(format!(
            "the learning rate must be positive, got {}",
            config.lr
        )));
    }
    if !(0.0..1.0).contains(&config.dropout) {
        return Err(LessonError::Config(format!(
            "the dropout must be at least 0 and below 1, got {}",
            config.dropout
        )));
    }
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
    let train = encode(tokenizer, data, &train_rows, config)?;
    let valid = encode(tokenizer, data, &valid_rows, config)?;
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
    let mut base = Checkpoint::new(CLASSIFIER_KIND);
    let shape = match &start {
        Start::Pretrained(lm) => ClassifyConfig {
            embedding: lm.shape.embedding,
            hidden: lm.shape.hidden,
            layers: lm.shape.layers,
            ..config.clone()
        },
        Start::Scratch(_) => config.clone(),
    };
    let to_json = |value: &serde_json::Value| {
        serde_json::to_vec_pretty(value).expect("JSON always serialises")
    };
    base.insert(CONFIG_FILE, to_json(&shape.shape_json(vocab_size, classes)));
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
    let (records, confusion, parameters) = match (config.arch, start) {
        (ClassifierArch::Mlp, Start::Pretrained(_)) => {
            return Err(LessonError::Config(
                "a pretrained language model starts a recurrent classifier (rnn, lstm, gru), not the MLP".into(),
            ));
        }
        (ClassifierArch::Mlp, Start::Scratch(_)) => {
            let model = init_seeded(device, config.seed, || {
                MlpClassifierConfig {
                    vocab_size,
                    embedding_size: config.embedding,
                    seq_len: config.max_len,
                    hidden_size: config.hidden,
                    classes,
                }
                .init(device)
            });
            run.fit(model, &[(config.epochs, false)])?
        }
        (ClassifierArch::Recurrent(kind), Start::Scratch(_)) => {
            let model = init_seeded(device, config.seed, || {
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
                .init(device)
            });
            run.fit(model, &[(config.epochs, false)])?
        }
        (ClassifierArch::Recurrent(_), Start::Pretrained(lm)) => {
            if config.bidirectional {
                return Err(LessonError::Config(
                    "a language model's encoder runs forwards only: leave out --bidirectional"
                        .into(),
                ));
            }
            let model = pretrained_classifier(&lm, config, classes, device)?;
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
        sizes: (train_rows.len(), valid_rows.len()),
        vocab_size,
        parameters,
        seconds: start_time.elapsed().as_secs_f64(),
    })
}

/// A recurrent classifier on `lm`'s encoder, or on its embedding alone (`config.transfer`),
/// its other weights drawn with `config.seed`.
fn pretrained_classifier(
    lm: &TextLm,
    config: &ClassifyConfig,
    classes: usize,
    device: &Device,
) -> Result<RecurrentClassifier, LessonError> {
    let shape = &lm.shape;
    let kind = shape.cell_kind().map_err(LessonError::Config)?;
    let model = init_seeded(device, config.seed, || {
        RecurrentClassifierConfig::new(
            kind,
            shape.vocab_size,
            shape.embedding,
            shape.hidden,
            shape.layers,
            classes,
        )
        .with_pooling(config.pooling)
        .with_dropout(config.dropout)
        .init(device)
    });
    let (embedding, recurrent) = lm.model.encoder();
    let recurrent = match config.transfer {
        Transfer::Encoder => recurrent,
        Transfer::Embedding => model.recurrent.clone(),
    };
    Ok(model.with_encoder(embedding, recurrent)?)
}

/// The texts of the training split [`train_classifier`] will make with this config, to build
/// a word or character tokenizer from.
pub fn training_texts<'a>(
    config: &ClassifyConfig,
    data: &'a TextDataset,
) -> Result<Vec<&'a str>, LessonError> {
    let (train, _) = stratified_split(&data.labels, config.valid_fraction, config.seed)?;
    Ok(train.into_iter().map(|r| data.texts[r].as_str()).collect())
}

struct Run<'a> {
    config: &'a ClassifyConfig,
    train: &'a Encoded,
    valid: &'a Encoded,
    classes: usize,
    device: &'a Device,
    run: &'a TrainRun<'a>,
    /// The checkpoint's files but the weights.
    base: Checkpoint,
}

type Fitted = (Vec<EpochRecord>, Vec<Vec<usize>>, usize);

impl Run<'_> {
    /// Trains `model` in phases of `(epochs, encoder frozen)`, one cycle each, resuming and
    /// checkpointing as the run says. With dropout, the generator is seeded from the seed and
    /// the step before each step, so that a resumed run draws the same masks.
    fn fit<M>(&self, model: M, phases: &[(usize, bool)]) -> Result<Fitted, LessonError>
    where
        M: Classify + FreezeEncoder + PytorchWeights + 'static,
    {
        let settings = self.config.run_settings();
        let (model, saved) = match self.run.resume {
            Some(dir) => {
                let checkpoint = Checkpoint::load(dir, CLASSIFIER_KIND)?;
                check_same_model(&checkpoint, &self.base)?;
                let model = read_pytorch_weights(&checkpoint, model)?;
                let saved = SavedRun::read(&checkpoint, &settings, self.device)?;
                (model, Some(saved))
            }
            None => (model, None),
        };
        let parameters = model.num_params();
        let task = ClassifyTask {
            run: self,
            frozen: phases.iter().map(|&(_, frozen)| frozen).collect(),
            model: PhantomData,
        };
        let adam = OptimizerConfig::Adam(AdamConfig::pytorch());
        let model = model.train().fork(&self.device.clone().autodiff());
        let mut fit = FitLoop::new(task, model, self.device, adam);
        if phases.len() > 1 {
            let model = fit.model().clone();
            model.scale_encoder_lr(&mut fit, 1.0 / self.config.lr_decay);
        }
        let base = self.base.clone();
        let snapshot = move |model: &M| with_pytorch_weights(base.clone(), &model.valid());
        let schedule = Schedule::OneCycle(OneCycle::new(self.config.lr));
        let phases: Vec<Phase> = phases
            .iter()
            .map(|&(epochs, _)| Phase::new(epochs, schedule))
            .collect();
        let records = fit.run(
            &phases,
            self.run,
            Some(RunCheckpoints::new(snapshot, settings, saved)),
        )?;
        let confusion = match fit.scores() {
            Some(scores) => scores.confusion.clone(),
            None => self.evaluate(&fit.model().valid())?.1,
        };
        Ok((records, confusion, parameters))
    }

    fn evaluate<M: Classify>(&self, model: &M) -> Result<(f64, Vec<Vec<usize>>), LessonError> {
        let mut matrix = vec![vec![0; self.classes]; self.classes];
        let mut loss_sum = 0.0;
        for rows in self.valid.batches(self.config.batch_size.max(64), None) {
            let batch = self.valid.batch(&rows, self.device);
            let logits = model.logits(&batch)?;
            let n = batch.labels.len();
            let loss: f32 = class_loss(logits.clone(), batch.targets.clone()).into_scalar();
            loss_sum += f64::from(loss) * n as f64;
            let predicted: Vec<i64> = logits.argmax(1).into_data().iter::<i64>().collect();
            for (&actual, &guess) in batch.labels.iter().zip(&predicted) {
                matrix[actual][guess as usize] += 1;
            }
        }
        Ok((loss_sum / self.valid.ids.len() as f64, matrix))
    }
}

/// Classification as the one training loop runs it: sortish batches in a seeded order per
/// epoch, the encoder frozen in the phases that say so, dropout masks seeded per step.
struct ClassifyTask<'a, M> {
    run: &'a Run<'a>,
    /// Whether each phase trains with the encoder frozen.
    frozen: Vec<bool>,
    model: PhantomData<fn() -> M>,
}

/// A classifier's held-out loss and confusion matrix.
struct ClassScores {
    loss: f64,
    /// `confusion[actual][predicted]`.
    confusion: Vec<Vec<usize>>,
}

impl Scores for ClassScores {
    fn loss(&self) -> f64 {
        self.loss
    }

    fn metrics(&self) -> Vec<(String, f64)> {
        let correct: usize = (0..self.confusion.len())
            .map(|c| self.confusion[c][c])
            .sum();
        let total: usize = self.confusion.iter().flatten().sum();
        vec![("accuracy".into(), correct as f64 / total.max(1) as f64)]
    }
}

impl<M: Classify + FreezeEncoder + 'static> TrainTask for ClassifyTask<'_, M> {
    type Model = M;
    type Batch = Vec<usize>;
    type Scores = ClassScores;
    type Error = LessonError;

    fn metric_names(&self) -> Vec<&'static str> {
        vec!["accuracy"]
    }

    fn batches(&self, epoch: usize) -> Result<Vec<Vec<usize>>, LessonError> {
        let config = self.run.config;
        let seed = config.seed.wrapping_add(epoch as u64 + 1);
        Ok(self.run.train.batches(config.batch_size, Some(seed)))
    }

    fn loss(
        &self,
        model: &M,
        rows: &Vec<usize>,
        _carried: Option<RnnState>,
        device: &Device,
    ) -> Result<StepLoss, LessonError> {
        let batch = self.run.train.batch(rows, device);
        let loss = class_loss(model.logits(&batch)?, batch.targets.clone());
        Ok(StepLoss::new(loss))
    }

    fn evaluate(&self, model: &M) -> Result<ClassScores, LessonError> {
        let (loss, confusion) = self.run.evaluate(model)?;
        Ok(ClassScores { loss, confusion })
    }

    fn prepare_epoch(&self, model: M, fit: usize) -> M {
        model.with_encoder_frozen(self.frozen[fit])
    }

    fn step_seed(&self, step: StepIndex) -> Option<u64> {
        let config = self.run.config;
        (config.dropout > 0.0).then(|| seed_for_step(config.seed, step.in_run as u64))
    }
}

/// Mean cross-entropy of class `logits` `[B, C]` against `targets` `[B]`.
fn class_loss(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    let [rows, classes] = logits.dims();
    flat_cross_entropy(
        logits.reshape([rows, 1, classes]),
        targets.reshape([rows, 1]),
    )
}

/// Freezing the encoder and its learning rates: no-ops for the MLP, which never has a
/// pretrained one.
trait FreezeEncoder: Sized {
    fn with_encoder_frozen(self, frozen: bool) -> Self;

    /// Trains the top encoder layer group at `factor` times the learning rate, the next
    /// below at `factor²`.
    fn scale_encoder_lr<T: TrainTask>(&self, fit: &mut FitLoop<T>, factor: f64);
}

impl FreezeEncoder for RecurrentClassifier {
    fn with_encoder_frozen(self, frozen: bool) -> Self {
        self.freeze_encoder(frozen)
    }

    fn scale_encoder_lr<T: TrainTask>(&self, fit: &mut FitLoop<T>, factor: f64) {
        fit.scale_lr(&self.recurrent, factor);
        fit.scale_lr(&self.embedding, factor * factor);
    }
}

impl FreezeEncoder for MlpClassifier {
    fn with_encoder_frozen(self, _frozen: bool) -> Self {
        self
    }

    fn scale_encoder_lr<T: TrainTask>(&self, _fit: &mut FitLoop<T>, _factor: f64) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::LabelledText;
    use crate::models::RecurrentLmConfig;
    use crate::text_lm::TextLmShape;

    fn rows(pairs: &[(&str, &str)]) -> Vec<LabelledText> {
        pairs
            .iter()
            .map(|(text, label)| LabelledText {
                text: text.to_string(),
                label: label.to_string(),
            })
            .collect()
    }

    #[test]
    fn rare_classes_are_left_out_and_reported() {
        let data = TextDataset::new(
            rows(&[("a", "x"), ("b", "x"), ("c", "y"), ("d", "y"), ("e", "z")]),
            2,
        )
        .unwrap();
        assert_eq!(data.classes, ["x", "y"]);
        assert_eq!(data.dropped, [("z".to_string(), 1)]);
        assert_eq!(data.class_counts(), [2, 2]);
        let err = TextDataset::new(rows(&[("a", "x"), ("b", "y")]), 2).unwrap_err();
        assert!(err.to_string().contains("two classes"), "{err}");
    }

    #[test]
    fn a_transfer_takes_the_encoder_or_the_embedding_alone() {
        let device = Device::flex();
        let shape = TextLmShape {
            cell: "lstm".into(),
            vocab_size: 20,
            embedding: 6,
            hidden: 10,
            layers: 1,
        };
        let lm = TextLm {
            model: init_seeded(&device, 7, || {
                RecurrentLmConfig::new(CellKind::Lstm, 20, 10, 1)
                    .with_embedding_size(6)
                    .init(&device)
            }),
            tokenizer: Tokenizer::word(&["a b c"], 20, 1),
            shape,
        };
        let (lm_embedding, lm_recurrent) = lm.model.encoder();
        let weights = |classifier: &RecurrentClassifier| {
            (
                classifier.embedding.weight.val().into_data(),
                classifier.recurrent.weights[0].weight_hh.val().into_data(),
            )
        };
        let lm_weights = (
            lm_embedding.weight.val().into_data(),
            lm_recurrent.weights[0].weight_hh.val().into_data(),
        );
        let built = |transfer| {
            let config = ClassifyConfig {
                transfer,
                ..ClassifyConfig::default()
            };
            weights(&pretrained_classifier(&lm, &config, 2, &device).unwrap())
        };
        let (embedding, recurrent) = built(Transfer::Encoder);
        embedding.assert_eq(&lm_weights.0, true);
        recurrent.assert_eq(&lm_weights.1, true);
        let (embedding, recurrent) = built(Transfer::Embedding);
        embedding.assert_eq(&lm_weights.0, true);
        assert_ne!(recurrent, lm_weights.1);
        assert_eq!(recurrent, built(Transfer::Embedding).1, "seeded");
        assert_eq!("embedding".parse(), Ok(Transfer::Embedding));
        assert!(
            "head"
                .parse::<Transfer>()
                .unwrap_err()
                .contains("encoder, embedding")
        );
    }

    #[test]
    fn sortish_batches_cover_every_row_once() {
        let encoded = Encoded {
            ids: (0..97).map(|i| vec![1; 1 + i % 13]).collect(),
            labels: vec![0; 97],
            pad: 0,
            fixed_len: None,
        };
        for seed in [None, Some(3)] {
            let mut all: Vec<usize> = encoded.batches(8, seed).concat();
            all.sort_unstable();
            assert_eq!(all, (0..97).collect::<Vec<_>>());
        }
        let sorted = encoded.batches(8, None);
        assert!(sorted[0].iter().all(|&r| encoded.ids[r].len() >= 12));
    }
}
