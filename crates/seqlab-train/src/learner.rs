//! fastai's `Learner` for language models, on the one training loop.

use crate::fit::{
    FitLoop, LossAccuracy, Phase, RunCheckpoints, StepIndex, StepLoss, TrainRun, TrainTask,
};
use crate::loss::{correct_positions, flat_cross_entropy};
use crate::parallel::Shard;
use crate::record::EpochRecord;
use crate::schedule::{FlatCos, OneCycle, Schedule};
use crate::seeding::seed_for_step;
use crate::{OptimizerConfig, TrainError};
use burn::tensor::{Device, Tensor};
use seqlab_data::{LmStreams, OverlappingWindows};
use seqlab_models::{LanguageModel, RecurrentState};
use std::borrow::Cow;
use std::marker::PhantomData;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// Training and validation batches: stateful streams fed in order (fastai's language-model
/// loader), or every window of a text in a fresh random order each epoch (the RNN course's
/// `TextDataset` + `ShiftByOne` with `shuffle=True`). Validation batches are always fed in
/// order, one stream per row, from a fresh state.
#[derive(Debug, Clone)]
pub struct DataLoaders {
    train: TrainBatches,
    valid: LmStreams,
}

/// How the training set is served.
#[derive(Debug, Clone)]
enum TrainBatches {
    /// Stream batches in order, the state carried from one to the next.
    Streams(LmStreams),
    /// Windows in a seeded random order per epoch, each from a fresh state.
    Windows {
        windows: OverlappingWindows,
        seed: u64,
    },
}

impl DataLoaders {
    /// Pairs training and validation batches, prepared (`Vec<LmBatch>`) or cut from a
    /// corpus as they are needed ([`StreamBatches`](seqlab_data::StreamBatches)); both must
    /// be non-empty.
    pub fn new(
        train: impl Into<LmStreams>,
        valid: impl Into<LmStreams>,
    ) -> Result<Self, TrainError> {
        let train = train.into();
        if train.is_empty() {
            return Err(TrainError::NoBatches("the training set"));
        }
        Self::with_valid(TrainBatches::Streams(train), valid)
    }

    /// Trains on every window of `train`, shuffled each epoch from `seed` (the same order when
    /// a run resumes), and validates on `valid` in order.
    pub fn shuffled_windows(
        train: OverlappingWindows,
        seed: u64,
        valid: impl Into<LmStreams>,
    ) -> Result<Self, TrainError> {
        Self::with_valid(
            TrainBatches::Windows {
                windows: train,
                seed,
            },
            valid,
        )
    }

    fn with_valid(train: TrainBatches, valid: impl Into<LmStreams>) -> Result<Self, TrainError> {
        let valid = valid.into();
        if valid.is_empty() {
            return Err(TrainError::NoBatches("the validation set"));
        }
        Ok(Self { train, valid })
    }

    /// The training batches when they are streams (`None` for windows, which are batched
    /// afresh each epoch).
    pub fn stream_batches(&self) -> Option<&LmStreams> {
        match &self.train {
            TrainBatches::Streams(batches) => Some(batches),
            TrainBatches::Windows { .. } => None,
        }
    }

    /// Training batches per epoch.
    pub fn train_batches_per_epoch(&self) -> usize {
        match &self.train {
            TrainBatches::Streams(batches) => batches.len(),
            TrainBatches::Windows { windows, .. } => windows.batches_per_epoch(),
        }
    }

    /// Target tokens trained on per epoch.
    pub fn train_tokens_per_epoch(&self) -> usize {
        match &self.train {
            TrainBatches::Streams(batches) => batches.target_tokens(),
            TrainBatches::Windows { windows, .. } => windows.target_tokens_per_epoch(),
        }
    }

    /// The validation batches.
    pub fn valid(&self) -> &LmStreams {
        &self.valid
    }
}

/// One training batch of an epoch's order, as [`LmTask`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LmTrainBatch {
    /// Rows `rows` of the stream batch at `index` (all of them, but in data-parallel
    /// training), continuing the previous batch's state of those rows.
    Stream {
        /// The batch's place in the epoch.
        index: usize,
        /// Its rows trained here.
        rows: Range<usize>,
    },
    /// The windows starting at these positions, from a fresh state.
    Windows(Vec<u32>),
}

impl Shard for LmTrainBatch {
    fn rows(&self) -> usize {
        match self {
            Self::Stream { rows, .. } => rows.len(),
            Self::Windows(starts) => starts.len(),
        }
    }

    fn select(self, selected: Range<usize>) -> Self {
        match self {
            Self::Stream { index, rows } => {
                let end = (rows.start + selected.end).min(rows.end);
                Self::Stream {
                    index,
                    rows: (rows.start + selected.start).min(end)..end,
                }
            }
            Self::Windows(starts) => Self::Windows(starts.select(selected)),
        }
    }
}

/// The language-model task behind [`Learner`]: each training batch's rows are streams (or
/// windows) scored on every next token, the state carried from batch to batch; the validation
/// set is scored the same way from a fresh state.
pub struct LmTask<M> {
    data: DataLoaders,
    device: Device,
    step_seed: Option<u64>,
    model: PhantomData<fn() -> M>,
}

impl<M> LmTask<M> {
    /// The task of `data`, scored on `device`.
    pub fn new(data: DataLoaders, device: &Device) -> Self {
        Self {
            data,
            device: device.clone().inner(),
            step_seed: None,
            model: PhantomData,
        }
    }

    /// Seeds every step's random draws (dropout masks) from `seed`, the fit and the step, so
    /// that they are the same whether or not the run stopped and resumed before it.
    pub fn with_step_seed(mut self, seed: u64) -> Self {
        self.step_seed = Some(seed);
        self
    }

    /// The batches.
    pub fn data(&self) -> &DataLoaders {
        &self.data
    }
}

impl<M: LanguageModel + Clone> TrainTask for LmTask<M> {
    type Model = M;
    type Batch = LmTrainBatch;
    type Scores = LossAccuracy;
    type Error = TrainError;

    fn metric_names(&self) -> Vec<&'static str> {
        vec!["accuracy"]
    }

    /// Streams in their order (language models need them so); windows shuffled per epoch.
    fn batches(&self, epoch: usize) -> Result<Vec<LmTrainBatch>, TrainError> {
        Ok(match &self.data.train {
            TrainBatches::Streams(batches) => (0..batches.len())
                .map(|index| LmTrainBatch::Stream {
                    index,
                    rows: 0..batches.rows(index),
                })
                .collect(),
            TrainBatches::Windows { windows, seed } => windows
                .epoch_order(*seed, epoch)
                .into_iter()
                .map(LmTrainBatch::Windows)
                .collect(),
        })
    }

    fn loss(
        &self,
        model: &M,
        batch: &LmTrainBatch,
        carried: Option<RecurrentState>,
        device: &Device,
    ) -> Result<StepLoss, TrainError> {
        let (batch, carried) = match (&self.data.train, batch) {
            (TrainBatches::Streams(batches), LmTrainBatch::Stream { index, rows }) => {
                let batch = batches
                    .batch(*index, rows.clone())
                    .ok_or(TrainError::NoBatches("the stream batch asked for"))?;
                // A state made for another batch size cannot continue: start afresh.
                let carried = carried.filter(|s| s.batch_size() == batch.rows());
                (batch, carried)
            }
            (TrainBatches::Windows { windows, .. }, LmTrainBatch::Windows(starts)) => {
                (Cow::Owned(windows.batch(starts)?), None)
            }
            _ => {
                return Err(TrainError::NoBatches(
                    "a batch of another kind of training set",
                ));
            }
        };
        let (inputs, targets) = batch.to_tensors(device);
        let output = model.forward_lm(inputs, carried);
        Ok(StepLoss {
            loss: flat_cross_entropy(output.logits, targets),
            penalty: output.penalty,
            state: output.state,
            weight: None,
        })
    }

    fn evaluate(&self, model: &M) -> Result<LossAccuracy, TrainError> {
        let (loss, accuracy) = evaluate_lm(model, &self.data.valid, &self.device);
        Ok(LossAccuracy { loss, accuracy })
    }

    fn step_seed(&self, step: StepIndex) -> Option<u64> {
        let step = ((step.fit as u64) << 40) | step.in_fit as u64;
        self.step_seed.map(|seed| seed_for_step(seed, step))
    }
}

/// Trains a [`LanguageModel`] as fastai's `Learner` does, on the one training loop
/// ([`FitLoop`]), with the `ModelResetter` behaviour built in: stateful models start each
/// epoch and each validation from a fresh state, and carry their (detached) state from batch
/// to batch in between. Each epoch's training loss is fastai's smoothed loss.
pub struct Learner<M: LanguageModel + Clone> {
    fit: FitLoop<LmTask<M>>,
}

impl<M: LanguageModel + Clone> Learner<M> {
    /// A learner for `model` on `device` (autodiff is switched on for training), with fastai's
    /// Adam and the model's own gradient clipping ([`LanguageModel::default_grad_clip`]: on for
    /// models on recurrent layers). The model may have been built on `device` or on
    /// `device.autodiff()`.
    pub fn new(model: M, data: DataLoaders, device: &Device) -> Self {
        let grad_clip = model.default_grad_clip();
        let task = LmTask::new(data, device);
        let model = model.train().fork(&device.clone().autodiff());
        let fit = FitLoop::new(task, model, device, OptimizerConfig::default())
            .with_grad_clip(grad_clip)
            .with_smoothed_loss(true);
        Self { fit }
    }

    /// Seeds the device's generator before every step from `seed`, the fit and the step, so
    /// that the step's random draws (dropout masks) are the same whether or not the run
    /// stopped and resumed before it. Without it, draws continue the generator's sequence.
    pub fn with_step_seed(mut self, seed: u64) -> Self {
        self.fit.task_mut().step_seed = Some(seed);
        self
    }

    /// Uses another optimizer (its state starts empty).
    pub fn with_optimizer(mut self, config: OptimizerConfig) -> Self {
        self.fit = self.fit.with_optimizer(config);
        self
    }

    /// Clips the gradients to this global L2 norm before each step (PyTorch's
    /// `clip_grad_norm_`), or not at all (`None`), instead of the model's default.
    pub fn with_grad_clip(mut self, max_norm: Option<f64>) -> Self {
        self.fit = self.fit.with_grad_clip(max_norm);
        self
    }

    /// The global gradient norm each step clips to, if any.
    pub fn grad_clip(&self) -> Option<f64> {
        self.fit.grad_clip()
    }

    /// Prints fastai's per-epoch table to stdout (default) or not.
    pub fn with_table(mut self, print_table: bool) -> Self {
        self.fit = self.fit.with_table(print_table);
        self
    }

    /// Reads the training losses back from the device every `steps` steps (see
    /// [`FitLoop::with_loss_read_every`]; by default every step on the CPU and every
    /// [`GPU_LOSS_READ_EVERY`](crate::GPU_LOSS_READ_EVERY) steps on a GPU).
    pub fn with_loss_read_every(mut self, steps: usize) -> Self {
        self.fit = self.fit.with_loss_read_every(steps);
        self
    }

    /// Shows a progress bar on stderr during each epoch when it is a terminal (default) or not.
    pub fn with_progress(mut self, show_progress: bool) -> Self {
        self.fit = self.fit.with_progress(show_progress);
        self
    }

    /// Stops training at the next step boundary once `flag` is set (by a Ctrl-C handler, say):
    /// the fit returns [`TrainError::Interrupted`].
    pub fn with_stop_flag(mut self, flag: Arc<AtomicBool>) -> Self {
        self.fit = self.fit.with_stop_flag(flag);
        self
    }

    /// The model being trained.
    pub fn model(&self) -> &M {
        self.fit.model()
    }

    /// Gives back the trained model.
    pub fn into_model(self) -> M {
        self.fit.into_model()
    }

    /// Every epoch's numbers so far, across fits.
    pub fn history(&self) -> &[EpochRecord] {
        self.fit.history()
    }

    /// Every training batch's loss so far, across fits (fastai's `recorder.losses`, unsmoothed).
    pub fn batch_losses(&self) -> &[f32] {
        self.fit.batch_losses()
    }

    /// fastai's `fit(epochs, lr)`: a constant learning rate.
    pub fn fit(&mut self, epochs: usize, lr: f64) -> Result<&[EpochRecord], TrainError> {
        self.fit_with(epochs, Schedule::Constant(lr))
    }

    /// fastai's `fit_one_cycle(epochs, max_lr)`; see [`OneCycle`].
    pub fn fit_one_cycle(
        &mut self,
        epochs: usize,
        max_lr: f64,
    ) -> Result<&[EpochRecord], TrainError> {
        self.fit_with(epochs, Schedule::OneCycle(OneCycle::new(max_lr)))
    }

    /// fastai's `fit_flat_cos(epochs, lr)`; see [`FlatCos`].
    pub fn fit_flat_cos(&mut self, epochs: usize, lr: f64) -> Result<&[EpochRecord], TrainError> {
        self.fit_with(epochs, Schedule::FlatCos(FlatCos::new(lr)))
    }

    /// Trains for `epochs` epochs under `schedule`, validating after each; returns this fit's
    /// epochs.
    pub fn fit_with(
        &mut self,
        epochs: usize,
        schedule: Schedule,
    ) -> Result<&[EpochRecord], TrainError> {
        let trained = self.fit.fit(&[Phase::new(epochs, schedule)])?.len();
        let history = self.fit.history();
        Ok(&history[history.len() - trained..])
    }

    /// Trains through the fits `phases` lists as `run` says, checkpointing and resuming (see
    /// [`FitLoop::run`]); returns every epoch's numbers since the run began.
    pub fn run(
        &mut self,
        phases: &[Phase],
        run: &TrainRun,
        checkpoints: Option<RunCheckpoints<M>>,
    ) -> Result<Vec<EpochRecord>, TrainError> {
        self.fit.run(phases, run, checkpoints)
    }

    /// Mean loss and accuracy over the validation set, without autodiff, from a fresh state.
    pub fn validate(&self) -> (f64, f64) {
        let task = self.fit.task();
        evaluate_lm(&self.model().valid(), &task.data.valid, &task.device)
    }
}

/// Mean loss per target token and accuracy of `model` over `batches` on `device`, from a
/// fresh state carried from batch to batch (stateful batches are one stream per row), as
/// [`Learner::validate`] scores the validation set; for a held-out test set, say. Each batch's
/// loss and hits stay on the device until the end, read in one go (a GPU is not waited for
/// batch by batch); the sums are then taken on the host in batch order, in `f64`.
pub fn evaluate_lm<M: LanguageModel>(
    model: &M,
    batches: &LmStreams,
    device: &Device,
) -> (f64, f64) {
    let mut state: Option<RecurrentState> = None;
    let (mut losses, mut hits, mut counts) = (Vec::new(), Vec::new(), Vec::new());
    for batch in batches.iter() {
        let (inputs, targets) = batch.to_tensors(device);
        let carried = state.take().filter(|s| s.batch_size() == batch.rows());
        let output = model.forward_lm(inputs, carried);
        losses.push(flat_cross_entropy(output.logits.clone(), targets.clone()));
        let [rows, steps] = targets.dims();
        hits.push(correct_positions(output.logits, targets));
        counts.push((rows * steps) as u64);
        state = output.state;
    }
    if losses.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let losses: Vec<f32> = Tensor::cat(losses, 0)
        .into_data()
        .convert::<f32>()
        .try_into_vec()
        .expect("converted to f32");
    let hits: Vec<i64> = Tensor::cat(hits, 0)
        .into_data()
        .convert::<i64>()
        .try_into_vec()
        .expect("converted to i64");
    let (mut loss_sum, mut correct, mut count) = (0.0f64, 0u64, 0u64);
    for ((loss, hit), batch_count) in losses.into_iter().zip(hits).zip(counts) {
        loss_sum += loss as f64 * batch_count as f64;
        correct += hit as u64;
        count += batch_count;
    }
    (loss_sum / count as f64, correct as f64 / count as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use seqlab_data::{LmSplit, LmTask, batches};
    use seqlab_models::{CellKind, LmModel4Config, RECURRENT_GRAD_CLIP, RecurrentLmConfig};

    fn tiny_data() -> DataLoaders {
        // A repeating pattern that a model can learn: 0 1 2 3 0 1 2 3 ...
        let ids: Vec<u32> = (0..800).map(|i| (i % 4) as u32).collect();
        let split = LmSplit::new(&ids, LmTask::EveryToken { seq_len: 8 }, 0.2, Some(8)).unwrap();
        DataLoaders::new(
            batches(&split.train, 8, true).unwrap(),
            batches(&split.valid, 8, true).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn learns_a_repeating_pattern_from_a_plain_device_model() {
        let device = Device::flex();
        device.seed(1);
        let model = LmModel4Config::new(4, 16).init(&device);
        let mut learner = Learner::new(model, tiny_data(), &device).with_table(false);
        learner.fit(4, 1e-2).unwrap();
        let last = learner.history().last().unwrap();
        assert!(last.metric("accuracy").unwrap() > 0.95, "{last:?}");
        assert!(
            learner.batch_losses()[0] > 1.0 && last.valid_loss < 0.2,
            "{last:?}"
        );
    }

    #[test]
    fn an_exploding_loss_stops_training_with_an_error() {
        let device = Device::flex();
        let model = LmModel4Config::new(4, 16).init(&device);
        let mut learner = Learner::new(model, tiny_data(), &device)
            .with_table(false)
            .with_optimizer(OptimizerConfig::Sgd(crate::SgdConfig::default()));
        let err = learner.fit(2, 1e30).unwrap_err();
        assert!(matches!(err, TrainError::NonFiniteLoss { .. }), "{err}");
        assert!(matches!(
            learner.fit(1, f64::NAN),
            Err(TrainError::BadHyperparameter { .. })
        ));
    }

    #[test]
    fn models_on_recurrent_layers_clip_by_default() {
        let device = Device::flex();
        let lstm = RecurrentLmConfig::new(CellKind::Lstm, 4, 8, 1).init(&device);
        let learner = Learner::new(lstm, tiny_data(), &device);
        assert_eq!(learner.grad_clip(), Some(RECURRENT_GRAD_CLIP));
        assert_eq!(learner.with_grad_clip(None).grad_clip(), None);
        let lesson = LmModel4Config::new(4, 16).init(&device);
        assert_eq!(Learner::new(lesson, tiny_data(), &device).grad_clip(), None);
    }

    #[test]
    fn clipped_gradients_hold_the_weights_almost_still() {
        let device = Device::flex();
        let model = LmModel4Config::new(4, 16).init(&device);
        let mut learner = Learner::new(model, tiny_data(), &device)
            .with_table(false)
            .with_optimizer(OptimizerConfig::Sgd(crate::SgdConfig::default()))
            .with_grad_clip(Some(1e-6));
        let (before, _) = learner.validate();
        learner.fit(1, 1.0).unwrap();
        // Each step moves the weights by at most lr * 1e-6 in norm.
        let after = learner.history()[0].valid_loss;
        assert!((before - after).abs() < 1e-3, "{before} vs {after}");
    }

    #[test]
    fn empty_data_is_refused() {
        assert!(matches!(
            DataLoaders::new(vec![], vec![]),
            Err(TrainError::NoBatches(_))
        ));
    }
}
