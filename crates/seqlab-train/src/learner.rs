//! The training loop: fastai's `Learner` for language models.

use crate::error::read_scalar;
use crate::loss::{accuracy_counts, flat_cross_entropy};
use crate::progress::epoch_bar;
use crate::record::{EpochRecord, format_table_header, format_table_row};
use crate::schedule::{FlatCos, OneCycle, Schedule};
use crate::{Optimizer, OptimizerConfig, TrainError, clip_grad_norm};
use burn::optim::GradientsParams;
use burn::tensor::Device;
use seqlab_data::LmBatch;
use seqlab_models::{LanguageModel, NamedTensors, RnnState};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Training and validation batches, in the order they are fed (no shuffling: language models
/// need their streams in order).
#[derive(Debug, Clone)]
pub struct DataLoaders {
    train: Vec<LmBatch>,
    valid: Vec<LmBatch>,
}

impl DataLoaders {
    /// Pairs training and validation batches; both must be non-empty.
    pub fn new(train: Vec<LmBatch>, valid: Vec<LmBatch>) -> Result<Self, TrainError> {
        if train.is_empty() {
            return Err(TrainError::NoBatches("the training set"));
        }
        if valid.is_empty() {
            return Err(TrainError::NoBatches("the validation set"));
        }
        Ok(Self { train, valid })
    }

    /// The training batches.
    pub fn train(&self) -> &[LmBatch] {
        &self.train
    }

    /// The validation batches.
    pub fn valid(&self) -> &[LmBatch] {
        &self.valid
    }
}

/// fastai's debiased exponential moving average of the batch losses (`AvgSmoothLoss`),
/// restarted with each fit; part of what a checkpoint saves, so that a resumed fit reports
/// the same training losses.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SmoothLoss {
    average: f64,
    count: i32,
}

impl SmoothLoss {
    const BETA: f64 = 0.98;

    fn add(&mut self, loss: f64) -> f64 {
        self.count += 1;
        self.average = Self::BETA * self.average + (1.0 - Self::BETA) * loss;
        self.average / (1.0 - Self::BETA.powi(self.count))
    }
}

/// Trains a [`LanguageModel`] as fastai's `Learner` does, with the `ModelResetter` behaviour
/// built in: stateful models start each epoch and each validation from a fresh state, and carry
/// their (detached) state from batch to batch in between.
pub struct Learner<M: LanguageModel> {
    model: Option<M>,
    data: DataLoaders,
    device: Device,
    optimizer: Optimizer,
    grad_clip: Option<f64>,
    history: Vec<EpochRecord>,
    batch_losses: Vec<f32>,
    fits: usize,
    print_table: bool,
    show_progress: bool,
    epoch_end: Option<EpochHook<M>>,
    step_end: Option<(usize, StepHook<M>)>,
    smooth: SmoothLoss,
    stop: Option<Arc<AtomicBool>>,
    position: Option<Position>,
    step_seed: Option<u64>,
}

/// A place inside an epoch: the next training batch, and the state carried into it.
#[derive(Debug, Clone)]
pub struct Position {
    /// The epoch.
    pub epoch: usize,
    /// The next batch to train on.
    pub next_batch: usize,
    /// The (detached) state the previous batch left, for stateful models.
    pub state: Option<RnnState>,
}

/// What [`Learner::with_epoch_end`] calls after each epoch.
type EpochHook<M> = Box<dyn FnMut(EpochEnd<'_, M>) -> Result<(), TrainError>>;

/// Where training stands after an epoch: what a checkpoint needs to resume from it.
pub struct EpochEnd<'a, M> {
    /// The model.
    pub model: &'a M,
    /// The optimizer, with its running averages.
    pub optimizer: &'a Optimizer,
    /// The epoch's numbers.
    pub record: &'a EpochRecord,
    /// The smoothed training loss so far in this fit.
    pub smooth_loss: SmoothLoss,
}

/// What [`Learner::with_step_end`] calls every so many steps inside an epoch.
type StepHook<M> = Box<dyn FnMut(StepEnd<'_, M>) -> Result<(), TrainError>>;

/// Where training stands between two steps of an epoch: what a checkpoint needs to resume
/// from the next one.
pub struct StepEnd<'a, M> {
    /// The model.
    pub model: &'a M,
    /// The optimizer, with its running averages.
    pub optimizer: &'a Optimizer,
    /// The next batch and the state carried into it.
    pub position: &'a Position,
    /// The smoothed training loss so far in this fit.
    pub smooth_loss: SmoothLoss,
}

impl<M: LanguageModel> Learner<M> {
    /// A learner for `model` on `device` (autodiff is switched on for training), with fastai's
    /// Adam and the model's own gradient clipping ([`LanguageModel::default_grad_clip`]: on for
    /// models on recurrent layers). The model may have been built on `device` or on
    /// `device.autodiff()`.
    pub fn new(model: M, data: DataLoaders, device: &Device) -> Self {
        let device = device.clone().autodiff();
        let grad_clip = model.default_grad_clip();
        Self {
            model: Some(model.train().fork(&device)),
            data,
            device,
            optimizer: OptimizerConfig::default().init(),
            grad_clip,
            history: Vec::new(),
            batch_losses: Vec::new(),
            fits: 0,
            print_table: true,
            show_progress: true,
            epoch_end: None,
            step_end: None,
            smooth: SmoothLoss::default(),
            stop: None,
            position: None,
            step_seed: None,
        }
    }

    /// Calls `hook` with where training stands after every epoch (to save a checkpoint, say);
    /// an error from it stops training and is returned by the fit.
    pub fn with_epoch_end(
        mut self,
        hook: impl FnMut(EpochEnd<'_, M>) -> Result<(), TrainError> + 'static,
    ) -> Self {
        self.epoch_end = Some(Box::new(hook));
        self
    }

    /// Calls `hook` after every `steps` optimisation steps of the fit (counted from its
    /// start, so a resumed fit calls it at the same steps), except after an epoch's last
    /// step, where [`Learner::with_epoch_end`]'s hook runs: to save a checkpoint inside long
    /// epochs, say. An error from it stops training and is returned by the fit.
    pub fn with_step_end(
        mut self,
        steps: usize,
        hook: impl FnMut(StepEnd<'_, M>) -> Result<(), TrainError> + 'static,
    ) -> Self {
        self.step_end = Some((steps.max(1), Box::new(hook)));
        self
    }

    /// Seeds the device's generator before every step from `seed`, the fit and the step, so
    /// that the step's random draws (dropout masks) are the same whether or not the run
    /// stopped and resumed before it. Without it, draws continue the generator's sequence.
    pub fn with_step_seed(mut self, seed: u64) -> Self {
        self.step_seed = Some(seed);
        self
    }

    /// Numbers the next fit `fit` in its epochs' records (fits count from 0 and go up by one
    /// per fit): a run resumed in its second fit numbers it as the run that never stopped.
    pub fn set_fit_number(&mut self, fit: usize) {
        self.fits = fit;
    }

    /// Uses another optimizer (its state starts empty).
    pub fn with_optimizer(mut self, config: OptimizerConfig) -> Self {
        self.optimizer = config.init();
        self
    }

    /// Clips the gradients to this global L2 norm before each step (PyTorch's
    /// `clip_grad_norm_`), or not at all (`None`), instead of the model's default.
    pub fn with_grad_clip(mut self, max_norm: Option<f64>) -> Self {
        self.grad_clip = max_norm;
        self
    }

    /// The global gradient norm each step clips to, if any.
    pub fn grad_clip(&self) -> Option<f64> {
        self.grad_clip
    }

    /// Prints fastai's per-epoch table to stdout (default) or not.
    pub fn with_table(mut self, print_table: bool) -> Self {
        self.print_table = print_table;
        self
    }

    /// Shows a progress bar on stderr during each epoch when it is a terminal (default) or not.
    pub fn with_progress(mut self, show_progress: bool) -> Self {
        self.show_progress = show_progress;
        self
    }

    /// The model being trained.
    pub fn model(&self) -> &M {
        self.model
            .as_ref()
            .expect("the model is only taken during a step")
    }

    /// Gives back the trained model.
    pub fn into_model(self) -> M {
        self.model.expect("the model is only taken during a step")
    }

    /// Every epoch's numbers so far, across fits.
    pub fn history(&self) -> &[EpochRecord] {
        &self.history
    }

    /// Every training batch's loss so far, across fits (fastai's `recorder.losses`, unsmoothed).
    pub fn batch_losses(&self) -> &[f32] {
        &self.batch_losses
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

    /// Stops training at the next step boundary once `flag` is set (by a Ctrl-C handler, say):
    /// the fit returns [`TrainError::Interrupted`] and [`Learner::position`] says where, so
    /// that a checkpoint written then resumes exactly there.
    pub fn with_stop_flag(mut self, flag: Arc<AtomicBool>) -> Self {
        self.stop = Some(flag);
        self
    }

    /// fastai's smoothed training loss so far in the current fit.
    pub fn smooth_loss(&self) -> SmoothLoss {
        self.smooth
    }

    /// Where an interrupted fit stopped (set when a fit returns [`TrainError::Interrupted`]).
    pub fn position(&self) -> Option<&Position> {
        self.position.as_ref()
    }

    /// Makes the next [`Learner::fit_epochs`] start inside `position.epoch`, at its next batch
    /// with its carried state, as an interrupted fit left it.
    pub fn resume_at(&mut self, position: Position) {
        self.position = Some(position);
    }

    fn stop_requested(&self) -> bool {
        self.stop
            .as_ref()
            .is_some_and(|flag| flag.load(Ordering::SeqCst))
    }

    /// The optimizer, with its running averages.
    pub fn optimizer(&self) -> &Optimizer {
        &self.optimizer
    }

    /// Gives the optimizer back the averages it had when a checkpoint was saved (see
    /// [`Optimizer::state_of`]), and the smoothed loss; the model must hold that checkpoint's
    /// weights. The next [`Learner::fit_epochs`] that does not start at epoch 0 continues
    /// from there.
    pub fn restore(
        &mut self,
        optimizer: &NamedTensors,
        smooth_loss: SmoothLoss,
    ) -> Result<(), TrainError> {
        let model = self
            .model
            .as_ref()
            .expect("the model is present between fits");
        self.optimizer.load_state(model, optimizer, &self.device)?;
        self.smooth = smooth_loss;
        Ok(())
    }

    /// Trains for `epochs` epochs under `schedule`, validating after each; returns this fit's
    /// epochs.
    pub fn fit_with(
        &mut self,
        epochs: usize,
        schedule: Schedule,
    ) -> Result<&[EpochRecord], TrainError> {
        self.fit_epochs(0..epochs, epochs, schedule)
    }

    /// Runs epochs `range` of a fit of `total` epochs under `schedule`: the learning rate at
    /// each step is where an uninterrupted fit would have it, so that a fit stopped after
    /// epoch `k` and continued with `k + 1..total` (the model and optimizer restored from a
    /// checkpoint) trains exactly as one that never stopped.
    pub fn fit_epochs(
        &mut self,
        range: std::ops::Range<usize>,
        total: usize,
        schedule: Schedule,
    ) -> Result<&[EpochRecord], TrainError> {
        let epochs = total;
        if range.end > total {
            return Err(TrainError::BadHyperparameter {
                name: "the last epoch to run",
                requirement: "within the fit's epochs",
                value: range.end as f64,
            });
        }
        let lr = schedule.max_lr();
        if !(lr.is_finite() && lr > 0.0) {
            return Err(TrainError::BadHyperparameter {
                name: "the learning rate",
                requirement: "positive",
                value: lr,
            });
        }
        let first = self.history.len();
        let total_steps = epochs * self.data.train.len();
        let resumed_inside = self
            .position
            .take()
            .filter(|position| position.epoch == range.start);
        if range.start == 0 && resumed_inside.is_none() {
            self.smooth = SmoothLoss::default();
        }
        if self.print_table && !range.is_empty() {
            println!("{}", format_table_header(&["accuracy"]));
        }
        let first_epoch = range.start;
        for epoch in range {
            // A stop asked for before the fit begins still trains one step.
            if epoch > first_epoch && self.stop_requested() {
                self.position = Some(Position {
                    epoch,
                    next_batch: 0,
                    state: None,
                });
                return Err(TrainError::Interrupted { epoch, batch: 0 });
            }
            let start = Instant::now();
            let inside = resumed_inside.clone().filter(|p| p.epoch == epoch);
            let train_loss = self.train_epoch(
                epoch,
                epoch * self.data.train.len(),
                total_steps,
                schedule,
                inside,
            )?;
            let (valid_loss, accuracy) = self.validate();
            let record = EpochRecord {
                fit: self.fits,
                epoch,
                train_loss,
                valid_loss,
                metrics: vec![("accuracy".into(), accuracy)],
                time_s: start.elapsed().as_secs_f64(),
            };
            if self.print_table {
                println!("{}", format_table_row(&record));
            }
            if let Some(hook) = self.epoch_end.as_mut() {
                let model = self
                    .model
                    .as_ref()
                    .expect("the model is present between epochs");
                hook(EpochEnd {
                    model,
                    optimizer: &self.optimizer,
                    record: &record,
                    smooth_loss: self.smooth,
                })?;
            }
            self.history.push(record);
        }
        self.fits += 1;
        Ok(&self.history[first..])
    }

    fn train_epoch(
        &mut self,
        epoch: usize,
        first_step: usize,
        total_steps: usize,
        schedule: Schedule,
        resume: Option<Position>,
    ) -> Result<f64, TrainError> {
        let bar = epoch_bar(self.data.train.len(), epoch, self.show_progress);
        let (first, mut state) = resume.map_or((0, None), |p| (p.next_batch, p.state));
        bar.inc(first as u64);
        let mut smoothed = f64::NAN;
        let batches = self.data.train.len();
        for (index, batch) in self.data.train.iter().enumerate().skip(first) {
            let hyper = schedule.at((first_step + index) as f64 / total_steps as f64);
            if let Some(seed) = self.step_seed {
                let step = ((self.fits as u64) << 40) | (first_step + index) as u64;
                self.device.clone().inner().seed(seed_for_step(seed, step));
            }
            let (inputs, targets) = batch.to_tensors(&self.device);
            let model = self
                .model
                .take()
                .expect("the model is present between steps");
            // A state made for another batch size cannot continue: start afresh.
            let carried = state
                .take()
                .filter(|s| s.batch_size() == Some(batch.rows()));
            let output = model.forward_lm(inputs, carried);
            let loss = flat_cross_entropy(output.logits, targets);
            let value = read_scalar(loss.clone())?;
            // Like fastai's RNNRegularizer: the penalty is back-propagated, not recorded.
            let (loss, penalty) = match output.penalty {
                Some(penalty) => (loss + penalty.clone(), read_scalar(penalty)?),
                None => (loss, 0.0f32),
            };
            if !(value + penalty).is_finite() {
                self.model = Some(model);
                bar.finish_and_clear();
                return Err(TrainError::NonFiniteLoss {
                    epoch,
                    batch: index,
                    value: value + penalty,
                });
            }
            let mut grads = GradientsParams::from_grads(loss.backward(), &model);
            if let Some(max_norm) = self.grad_clip {
                clip_grad_norm(&model, &mut grads, max_norm)?;
            }
            self.model = Some(self.optimizer.step(hyper, model, grads));
            state = output.state.map(RnnState::detach);
            self.batch_losses.push(value);
            smoothed = self.smooth.add(value as f64);
            bar.set_message(format!("loss {smoothed:.4}"));
            bar.inc(1);
            if let Some((every, hook)) = self.step_end.as_mut()
                && index + 1 < batches
                && (first_step + index + 1).is_multiple_of(*every)
            {
                let position = Position {
                    epoch,
                    next_batch: index + 1,
                    state: state.clone(),
                };
                let saved = hook(StepEnd {
                    model: self
                        .model
                        .as_ref()
                        .expect("the model is back after the step"),
                    optimizer: &self.optimizer,
                    position: &position,
                    smooth_loss: self.smooth,
                });
                if let Err(error) = saved {
                    bar.finish_and_clear();
                    return Err(error);
                }
            }
            // The epoch's last batch finishes the epoch (validation, its hook) first.
            if index + 1 < batches && self.stop_requested() {
                bar.finish_and_clear();
                self.position = Some(Position {
                    epoch,
                    next_batch: index + 1,
                    state,
                });
                return Err(TrainError::Interrupted {
                    epoch,
                    batch: index + 1,
                });
            }
        }
        bar.finish_and_clear();
        Ok(smoothed)
    }

    /// Mean loss and accuracy over the validation set, without autodiff, from a fresh state.
    pub fn validate(&self) -> (f64, f64) {
        evaluate_lm(
            &self.model().valid(),
            &self.data.valid,
            &self.device.clone().inner(),
        )
    }
}

/// The generator seed of training step `step` of a run seeded with `seed`: what
/// [`Learner::with_step_seed`] and hand-written loops seed the device with before a step, so
/// that a resumed run draws the same dropout masks as one that never stopped.
pub fn seed_for_step(seed: u64, step: u64) -> u64 {
    seed.wrapping_add((step + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Mean loss per target token and accuracy of `model` over `batches` on `device`, from a
/// fresh state carried from batch to batch (stateful batches are one stream per row), as
/// [`Learner::validate`] scores the validation set; for a held-out test set, say.
pub fn evaluate_lm<M: LanguageModel>(
    model: &M,
    batches: &[LmBatch],
    device: &Device,
) -> (f64, f64) {
    let mut state: Option<RnnState> = None;
    let (mut loss_sum, mut correct, mut count) = (0.0f64, 0u64, 0u64);
    for batch in batches {
        let (inputs, targets) = batch.to_tensors(device);
        let carried = state
            .take()
            .filter(|s| s.batch_size() == Some(batch.rows()));
        let output = model.forward_lm(inputs, carried);
        let loss: f32 = flat_cross_entropy(output.logits.clone(), targets.clone()).into_scalar();
        let (batch_correct, batch_count) = accuracy_counts(output.logits, targets);
        loss_sum += loss as f64 * batch_count as f64;
        correct += batch_correct;
        count += batch_count;
        state = output.state;
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
