//! Training and evaluating encoder–decoders on pairs of symbol sequences: the loop the copy
//! and addition lessons share (the notebook's `train_epoch`, `train_epoch_var_smart` and its
//! accuracy checks).

use super::{LessonError, TrainRun};
use crate::data::{Padded, STOP, batch_rows, pad_with_stop_to};
use crate::models::{RecurrentState, Seq2Seq, SeqEncoderDecoder};
use crate::settings::sizes_at_least_one;
use crate::train::TrainError;
use crate::train::parallel::Shard;
use crate::train::{
    Checkpoint, EpochRecord, FitLoop, OptimizerConfig, Phase, RunCheckpoints, RunSettings,
    Schedule, Scores, StepLoss, TrainTask, flat_cross_entropy, masked_cross_entropy, resume_module,
    with_module_weights,
};
use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
use std::marker::PhantomData;

/// Source and target sequences of symbol ids, pair by pair: from 1 when 0 is the stop symbol
/// that pads variable lengths (`trailing_stops > 0` in [`PairTraining`]), from 0 when every
/// sequence has one length and there is no stop symbol.
#[derive(Debug, Clone, PartialEq)]
pub struct SymbolPairs {
    /// The inputs.
    pub sources: Vec<Vec<u32>>,
    /// The outputs to produce.
    pub targets: Vec<Vec<u32>>,
    /// One-hot width of the sources (symbols + stop).
    pub source_classes: usize,
    /// Number of target ids (symbols + stop).
    pub target_classes: usize,
}

impl SymbolPairs {
    /// The longest source or target: the steps a batch may run for.
    pub fn longest(&self) -> usize {
        self.sources
            .iter()
            .chain(&self.targets)
            .map(Vec::len)
            .max()
            .unwrap_or(1)
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.sources.len()
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }
}

/// A model that maps one-hot sources to target scores; both the hand-built encoder–decoder
/// and [`Seq2Seq`] are.
pub trait PairModel: Module {
    /// Scores `[B, Tt, target_classes]` for `targets` `[B, Tt]` (teacher forcing where the
    /// decoder reads its previous symbol).
    fn logits(
        &self,
        source: Tensor<3>,
        lengths: Option<&[usize]>,
        targets: Tensor<2, Int>,
    ) -> Result<Tensor<3>, LessonError>;

    /// Greedy predictions `[B, steps]`.
    fn predict(
        &self,
        source: Tensor<3>,
        lengths: Option<&[usize]>,
        steps: usize,
    ) -> Result<Tensor<2, Int>, LessonError>;
}

impl PairModel for Seq2Seq {
    fn logits(
        &self,
        source: Tensor<3>,
        lengths: Option<&[usize]>,
        targets: Tensor<2, Int>,
    ) -> Result<Tensor<3>, LessonError> {
        Ok(self.forward(source, lengths, targets)?)
    }

    fn predict(
        &self,
        source: Tensor<3>,
        lengths: Option<&[usize]>,
        steps: usize,
    ) -> Result<Tensor<2, Int>, LessonError> {
        Ok(self.greedy(source, lengths, steps)?)
    }
}

/// The hand-built model reads every source step and ignores lengths, as the notebook's.
impl PairModel for SeqEncoderDecoder {
    fn logits(
        &self,
        source: Tensor<3>,
        _lengths: Option<&[usize]>,
        targets: Tensor<2, Int>,
    ) -> Result<Tensor<3>, LessonError> {
        let [_, steps] = targets.dims();
        Ok(self.decoder.forward(self.encoder.forward(source), steps))
    }

    fn predict(
        &self,
        source: Tensor<3>,
        _lengths: Option<&[usize]>,
        steps: usize,
    ) -> Result<Tensor<2, Int>, LessonError> {
        let [batch, _, _] = source.dims();
        let logits = self.decoder.forward(self.encoder.forward(source), steps);
        Ok(logits.argmax(2).reshape([batch, steps]))
    }
}

/// How to train on [`SymbolPairs`].
#[derive(Debug, Clone, PartialEq)]
pub struct PairTraining {
    /// Passes over the training pairs.
    pub epochs: usize,
    /// Pairs per batch (the notebook: 32).
    pub batch_size: usize,
    /// The optimizer (the notebook: `torch.optim.Adam` defaults).
    pub optimizer: OptimizerConfig,
    /// The learning rate over training: constant (the notebook: 1e-3) or one-cycle.
    pub schedule: Schedule,
    /// Stop symbols after the longest sequence of a batch: 0 for fixed-length tasks, 1 for
    /// variable-length ones (every sequence then ends with one).
    pub trailing_stops: usize,
    /// What padding is kept out of: the encoder's state, the loss, both (the masked recipe) or
    /// neither.
    pub masking: Masking,
    /// Global gradient-norm clipping.
    pub grad_clip: Option<f64>,
    /// Seed for the batch order.
    pub seed: u64,
    /// Print a row per epoch.
    pub print_table: bool,
    /// Show a progress bar on a terminal.
    pub show_progress: bool,
}

impl PairTraining {
    /// The settings a resumed run must share with the saved one (the lesson adds those of
    /// its data).
    pub(crate) fn run_settings(&self) -> RunSettings {
        RunSettings::default()
            .with("epochs", self.epochs)
            .with("batch-size", self.batch_size)
            .with("optimizer", format!("{:?}", self.optimizer))
            .with("schedule", format!("{:?}", self.schedule))
            .with("masking", self.masking.name())
            .with("grad-clip", format!("{:?}", self.grad_clip))
            .with("seed", self.seed)
    }
}

/// How well a model reproduces the targets, greedy decoding.
#[derive(Debug, Clone, PartialEq)]
pub struct PairEvaluation {
    /// Share of target symbols predicted right (padding not counted).
    pub token_accuracy: f64,
    /// Share of pairs whose whole target is right (and, with stop symbols, followed by one).
    pub exact_match: f64,
    /// Mean teacher-forced loss per batch, as in training.
    pub loss: f64,
    /// Each pair's predicted ids: up to the first stop symbol, or every step for fixed-length
    /// tasks (no stop symbols; ids count from 0).
    pub predictions: Vec<Vec<u32>>,
}

/// What a pair lesson's checkpoints are: where and when (`run`), the model's files but the
/// weights, and the settings a resumed run must share with the saved one.
pub(crate) struct Resumable<'a> {
    /// Where and when.
    pub(crate) run: &'a TrainRun<'a>,
    /// The checkpoint's kind and files but the weights.
    pub(crate) model_files: Checkpoint,
    /// The run's settings.
    pub(crate) settings: RunSettings,
}

/// Training on symbol pairs, as the one training loop runs it.
struct PairTask<'a, M> {
    train: &'a SymbolPairs,
    valid: &'a SymbolPairs,
    settings: &'a PairTraining,
    device: Device,
    model: PhantomData<fn() -> M>,
}

impl Scores for PairEvaluation {
    fn loss(&self) -> f64 {
        self.loss
    }

    fn metrics(&self) -> Vec<(String, f64)> {
        vec![
            ("accuracy".into(), self.token_accuracy),
            ("exact_match".into(), self.exact_match),
        ]
    }
}

impl<M: PairModel + Clone + 'static> TrainTask for PairTask<'_, M> {
    type Model = M;
    type Batch = PairRows;
    type Scores = PairEvaluation;
    type Error = LessonError;

    fn metric_names(&self) -> Vec<&'static str> {
        vec!["accuracy", "exact"]
    }

    fn batches(&self, epoch: usize) -> Result<Vec<PairRows>, LessonError> {
        let seed = self.settings.seed.wrapping_add(epoch as u64);
        let batches = batch_rows(self.train.len(), self.settings.batch_size, Some(seed))?;
        Ok(batches
            .into_iter()
            .map(|rows| PairRows::of(self.train, rows))
            .collect())
    }

    fn loss(
        &self,
        model: &M,
        batch: &PairRows,
        _carried: Option<RecurrentState>,
        device: &Device,
    ) -> Result<StepLoss, LessonError> {
        let source = one_hot_sources(self.train, batch, self.settings, device)?;
        let targets = padded_targets(self.train, batch, self.settings)?;
        let loss = batch_loss(model, source, &targets, self.settings, device)?;
        let loss = StepLoss::new(loss);
        Ok(if self.settings.masking.loss {
            let counted = targets.mask(self.settings.trailing_stops > 0);
            loss.mean_of(counted.iter().filter(|&&counted| counted).count())
        } else {
            loss
        })
    }

    fn evaluate(&self, model: &M) -> Result<PairEvaluation, LessonError> {
        evaluate_pairs(model, self.valid, self.settings, &self.device)
    }
}

/// Trains `model` (built on `device.autodiff()`) on `train`, evaluating on `valid` after each
/// epoch, checkpointing and resuming as `resumable` says. Returns the trained model, every
/// epoch's records since the run began and the losses of the batches this call trained.
pub(crate) fn train_pairs<M: PairModel + Clone + 'static>(
    model: M,
    train: &SymbolPairs,
    valid: &SymbolPairs,
    settings: &PairTraining,
    resumable: Resumable,
    device: &Device,
) -> Result<(M, Vec<EpochRecord>, Vec<f32>), LessonError> {
    check(settings)?;
    let Resumable {
        run,
        model_files,
        settings: run_settings,
    } = resumable;
    let (model, saved) = resume_module(run.resume, &model_files, &run_settings, model, device)?;
    let task = PairTask {
        train,
        valid,
        settings,
        device: device.clone(),
        model: PhantomData,
    };
    let mut fit =
        FitLoop::new(task, model, device, settings.optimizer).with_grad_clip(settings.grad_clip);
    let snapshot = move |model: &M| with_module_weights(model_files.clone(), &model.valid());
    let run = TrainRun {
        print_table: settings.print_table,
        show_progress: settings.show_progress,
        ..*run
    };
    let records = fit.run(
        &[Phase::new(settings.epochs, settings.schedule)],
        &run,
        Some(RunCheckpoints::new(snapshot, run_settings, saved)),
    )?;
    let losses = fit.batch_losses().to_vec();
    Ok((fit.into_model(), records, losses))
}

/// Greedy-decodes every source of `pairs` and compares with the targets.
pub fn evaluate_pairs<M: PairModel>(
    model: &M,
    pairs: &SymbolPairs,
    settings: &PairTraining,
    device: &Device,
) -> Result<PairEvaluation, LessonError> {
    let model = model.valid();
    let (mut right, mut symbols, mut exact, mut loss_sum) = (0usize, 0usize, 0usize, 0.0f64);
    let mut predictions = Vec::with_capacity(pairs.len());
    let order = batch_rows(pairs.len(), settings.batch_size.max(256), None)?;
    let batches = order.len();
    for rows in order {
        // One encoding of the batch serves the teacher-forced loss and greedy decoding.
        let batch = PairRows::of(pairs, rows);
        let (source, lengths) = one_hot_sources(pairs, &batch, settings, device)?;
        let padded = padded_targets(pairs, &batch, settings)?;
        let source_for_loss = (source.clone(), lengths.clone());
        loss_sum += batch_loss(&model, source_for_loss, &padded, settings, device)?
            .into_scalar::<f32>() as f64;
        let steps = padded.time();
        let predicted = model.predict(source, lengths.as_deref(), steps)?;
        let targets: Vec<&Vec<u32>> = batch.rows.iter().map(|&row| &pairs.targets[row]).collect();
        let predicted: Vec<u32> = predicted
            .into_data()
            .iter::<i64>()
            .map(|id| id as u32)
            .collect();
        for (index, target) in targets.iter().enumerate() {
            let row = &predicted[index * steps..(index + 1) * steps];
            let hits = row
                .iter()
                .zip(target.iter())
                .filter(|(p, t)| p == t)
                .count();
            right += hits;
            symbols += target.len();
            let stops_right = settings.trailing_stops == 0 || row.get(target.len()) == Some(&STOP);
            exact += usize::from(hits == target.len() && stops_right);
            let predicted = row.iter().copied();
            predictions.push(if settings.trailing_stops > 0 {
                predicted.take_while(|&id| id != STOP).collect()
            } else {
                predicted.collect()
            });
        }
    }
    Ok(PairEvaluation {
        token_accuracy: right as f64 / symbols.max(1) as f64,
        exact_match: exact as f64 / pairs.len().max(1) as f64,
        loss: loss_sum / batches.max(1) as f64,
        predictions,
    })
}

/// Which halves of the RNN course's masked recipe a run uses (the notebook's progression:
/// `SeqEncoderDecoderRNN` with neither, `SeqEncoderRNNMasked` trained by `train_epoch_var`
/// with the encoder's half, `train_epoch_var_smart` with both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Masking {
    /// The encoder's state is taken at each source's length, not after the padding.
    pub encoder: bool,
    /// The loss counts only target steps up to the first stop symbol, not the padding.
    pub loss: bool,
}

impl Masking {
    /// Both halves: the masked recipe.
    pub const BOTH: Masking = Masking {
        encoder: true,
        loss: true,
    };
    /// Neither: the encoder reads the padding and every padded step counts.
    pub const NONE: Masking = Masking {
        encoder: false,
        loss: false,
    };

    /// `masked`, `unmasked`, `encoder masked` or `loss masked`.
    pub fn name(self) -> &'static str {
        match (self.encoder, self.loss) {
            (true, true) => "masked",
            (false, false) => "unmasked",
            (true, false) => "encoder masked",
            (false, true) => "loss masked",
        }
    }
}

fn check(settings: &PairTraining) -> Result<(), LessonError> {
    sizes_at_least_one(&[("the number of epochs", settings.epochs)])?;
    Ok(TrainError::check_lr(settings.schedule.max_lr())?)
}

/// The one-hot sources of `rows` `[B, Ts, classes]` and, for the masked recipe, their lengths.
fn one_hot_sources(
    pairs: &SymbolPairs,
    batch: &PairRows,
    settings: &PairTraining,
    device: &Device,
) -> Result<(Tensor<3>, Option<Vec<usize>>), LessonError> {
    let sources: Vec<&Vec<u32>> = batch.rows.iter().map(|&row| &pairs.sources[row]).collect();
    let padded = pad_with_stop_to(&sources, batch.longest_source, settings.trailing_stops)?;
    let lengths = settings.masking.encoder.then(|| padded.lengths().to_vec());
    Ok((padded.to_one_hot(pairs.source_classes, device)?, lengths))
}

/// The padded targets of `rows`.
fn padded_targets(
    pairs: &SymbolPairs,
    batch: &PairRows,
    settings: &PairTraining,
) -> Result<Padded, LessonError> {
    let targets: Vec<&Vec<u32>> = batch.rows.iter().map(|&row| &pairs.targets[row]).collect();
    Ok(pad_with_stop_to(
        &targets,
        batch.longest_target,
        settings.trailing_stops,
    )?)
}

/// The rows of a training batch of pairs, and the longest source and target of the whole
/// batch: a process's share of it is padded as the whole batch is, so that it trains as one
/// process does (the unmasked recipe reads and scores the padding).
pub struct PairRows {
    rows: Vec<usize>,
    longest_source: usize,
    longest_target: usize,
}

impl PairRows {
    /// The batch of `rows` of `pairs`.
    fn of(pairs: &SymbolPairs, rows: Vec<usize>) -> Self {
        let longest = |sequences: &[Vec<u32>]| {
            rows.iter()
                .filter_map(|&row| sequences.get(row).map(Vec::len))
                .max()
                .unwrap_or(0)
        };
        Self {
            longest_source: longest(&pairs.sources),
            longest_target: longest(&pairs.targets),
            rows,
        }
    }
}

impl Shard for PairRows {
    fn rows(&self) -> usize {
        self.rows.len()
    }

    fn select(self, rows: std::ops::Range<usize>) -> Self {
        Self {
            rows: self.rows.select(rows),
            ..self
        }
    }
}

/// The training loss of one batch: one-hot `source` (with `lengths` for the masked recipe)
/// against the padded `targets`.
fn batch_loss<M: PairModel>(
    model: &M,
    (source, lengths): (Tensor<3>, Option<Vec<usize>>),
    targets: &Padded,
    settings: &PairTraining,
    device: &Device,
) -> Result<Tensor<1>, LessonError> {
    let ids = targets.to_ids(device);
    let logits = model.logits(source, lengths.as_deref(), ids.clone())?;
    Ok(if settings.masking.loss {
        let mask = targets.to_mask(settings.trailing_stops > 0, device);
        masked_cross_entropy(logits, ids, mask)
    } else {
        flat_cross_entropy(logits, ids)
    })
}
