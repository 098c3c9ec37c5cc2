//! [`FitLoop`]: the one training loop that every seqlab command runs on.

use super::losses::{EpochLosses, GPU_LOSS_READ_EVERY};
use super::position::{Position, SmoothLoss};
use super::run::{Phase, RunCheckpoints, Snapshot, TrainRun};
use super::task::{Scores, StepIndex, StepLoss, TrainTask};
use crate::parallel::{
    LocalStep, ProcessGroup, Shard, agree_on_settings, broadcast_model, current_group,
    end_together, exchange_gradients, gather_state, select_state_rows, share_rows, with_group_size,
};
use crate::progress::epoch_bar;
use crate::reads::read_values;
use crate::record::{EpochRecord, format_table_header, format_table_row};
use crate::resume::{RunProgress, RunSettings, SavedRun};
use crate::seeding::{seed_device, seed_for_step};
use crate::{OptimizerConfig, TrainError, Trainer};
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};
use indicatif::ProgressBar;
use seqlab_models::RecurrentState;
use seqlab_models::host::is_host_device;
use std::ops::Range;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// The one training loop: runs a [`TrainTask`]'s fits epoch by epoch — the schedule's
/// learning rate at every step, gradient clipping, the optimizer, carried recurrent state,
/// a progress bar, fastai's epoch table — and, given a [`TrainRun`], writes checkpoints after
/// every epoch, every `save_every` steps and at Ctrl-C, and continues a saved run exactly
/// where it stopped. Built on a thread where a group of processes is current
/// ([`parallel::join_group`](crate::parallel::join_group)), it trains data-parallel with
/// them (see [`parallel`](crate::parallel)).
pub struct FitLoop<T: TrainTask> {
    task: T,
    trainer: Trainer,
    model: Option<T::Model>,
    smoothed_loss: bool,
    smooth: SmoothLoss,
    loss_read_every: usize,
    history: Vec<EpochRecord>,
    batch_losses: Vec<f32>,
    fits: usize,
    print_table: bool,
    show_progress: bool,
    stop: Option<Arc<AtomicBool>>,
    scores: Option<T::Scores>,
    group: Option<Rc<dyn ProcessGroup>>,
    /// Whether the group agreed, at the last step, to stop.
    group_stop: bool,
}

/// Where checkpoints go and what they hold, for one call of [`FitLoop::run`].
struct Writer<'a, M> {
    dir: &'a Path,
    snapshot: &'a Snapshot<M>,
}

impl<T: TrainTask> FitLoop<T> {
    /// A loop training `model` for `task` on `device.autodiff()` with a fresh `optimizer`, no
    /// gradient clipping, each epoch's mean batch loss as its training loss, the table and
    /// progress bars on, the loss read back every step on the CPU and every
    /// [`GPU_LOSS_READ_EVERY`] steps elsewhere ([`with_loss_read_every`](Self::with_loss_read_every)). A model built on `device` is moved to `device.autodiff()`; one built
    /// there already is left as it is (Burn draws a lazily initialised parameter when it is
    /// first touched, so moving it would change the order of a seeded model's draws).
    pub fn new(task: T, model: T::Model, device: &Device, optimizer: OptimizerConfig) -> Self {
        let trainer = Trainer::new(device, optimizer);
        let model = if on_autodiff(&model) {
            model
        } else {
            model.train().fork(trainer.device())
        };
        Self {
            task,
            trainer,
            model: Some(model),
            smoothed_loss: false,
            smooth: SmoothLoss::default(),
            loss_read_every: if is_host_device(device) {
                1
            } else {
                GPU_LOSS_READ_EVERY
            },
            history: Vec::new(),
            batch_losses: Vec::new(),
            fits: 0,
            print_table: true,
            show_progress: true,
            stop: None,
            scores: None,
            group: current_group(),
            group_stop: false,
        }
    }

    /// Clips the gradients to this global L2 norm before each step (PyTorch's
    /// `clip_grad_norm_`), or not at all (`None`).
    pub fn with_grad_clip(mut self, max_norm: Option<f64>) -> Self {
        self.trainer = self.trainer.with_grad_clip(max_norm);
        self
    }

    /// Reports fastai's smoothed loss ([`SmoothLoss`]) as each epoch's training loss, rather
    /// than the mean of its batch losses.
    pub fn with_smoothed_loss(mut self, smoothed: bool) -> Self {
        self.smoothed_loss = smoothed;
        self
    }

    /// Reads the training losses back from the device every `steps` steps (at least 1), in
    /// one read, and at the end of each epoch and before each checkpoint. On a GPU each read
    /// waits for everything queued before it, so reading every step keeps the device idle
    /// between steps. The loss's finiteness is checked when it is read: a non-finite loss
    /// read late still ends the run with [`TrainError::NonFiniteLoss`] naming its batch, but
    /// the steps after it have been taken (nothing is saved from them).
    pub fn with_loss_read_every(mut self, steps: usize) -> Self {
        self.loss_read_every = steps.max(1);
        self
    }

    /// Prints fastai's per-epoch table to stdout (default) or not, in [`FitLoop::fit`].
    pub fn with_table(mut self, print_table: bool) -> Self {
        self.print_table = print_table;
        self
    }

    /// Shows a progress bar on stderr during each epoch when it is a terminal (default) or
    /// not, in [`FitLoop::fit`].
    pub fn with_progress(mut self, show_progress: bool) -> Self {
        self.show_progress = show_progress;
        self
    }

    /// Stops training at the next step boundary once `flag` is set (by a Ctrl-C handler,
    /// say): the fit returns [`TrainError::Interrupted`].
    pub fn with_stop_flag(mut self, flag: Arc<AtomicBool>) -> Self {
        self.stop = Some(flag);
        self
    }

    /// Uses another optimizer (its state starts empty), keeping the clipping.
    pub fn with_optimizer(mut self, config: OptimizerConfig) -> Self {
        let grad_clip = self.trainer.grad_clip();
        self.trainer = Trainer::new(self.trainer.device(), config).with_grad_clip(grad_clip);
        self
    }

    /// The task, to change its settings.
    pub fn task_mut(&mut self) -> &mut T {
        &mut self.task
    }

    /// Trains the parameters of `part` (of the model) at `factor` times the learning rate.
    pub fn scale_lr<P: Module>(&mut self, part: &P, factor: f64) {
        self.trainer.scale_lr(part, factor);
    }

    /// The task.
    pub fn task(&self) -> &T {
        &self.task
    }

    /// The model being trained.
    pub fn model(&self) -> &T::Model {
        self.model
            .as_ref()
            .expect("the model is only taken during a step")
    }

    /// Gives back the trained model.
    pub fn into_model(self) -> T::Model {
        self.model.expect("the model is only taken during a step")
    }

    /// The autodiff device training runs on.
    pub fn device(&self) -> &Device {
        self.trainer.device()
    }

    /// The global gradient norm each step clips to, if any.
    pub fn grad_clip(&self) -> Option<f64> {
        self.trainer.grad_clip()
    }

    /// Every epoch's numbers so far, across fits and calls.
    pub fn history(&self) -> &[EpochRecord] {
        &self.history
    }

    /// Every training batch's loss so far (fastai's `recorder.losses`, unsmoothed).
    pub fn batch_losses(&self) -> &[f32] {
        &self.batch_losses
    }

    /// The last epoch's scores, if an epoch has ended.
    pub fn scores(&self) -> Option<&T::Scores> {
        self.scores.as_ref()
    }

    /// Trains through `phases`, one fit after another, without checkpoints; fits are numbered
    /// on from earlier calls. Returns this call's epochs.
    pub fn fit(&mut self, phases: &[Phase]) -> Result<Vec<EpochRecord>, T::Error> {
        let stop = self.stop.clone();
        let run = TrainRun {
            stop: stop.as_ref(),
            print_table: self.print_table,
            show_progress: self.show_progress,
            ..TrainRun::default()
        };
        self.run(phases, &run, None)
    }

    /// Trains through `phases` as `run` says: the epochs the run has not done yet (all of
    /// them, or those after the saved run of `checkpoints`), up to `run.stop_after`. With
    /// `run.out` it writes a checkpoint there (the model's files, the run's progress, the
    /// optimizer's state, the carried state) after every epoch, every `run.save_every` steps
    /// and when `run.stop` stops it with [`TrainError::Interrupted`]. The learning rate at
    /// every step, the batches, the carried state and the random draws of a seeded task are
    /// where a run that never stopped has them, so a resumed run ends with its weights.
    /// Returns every epoch's numbers since the run began (the saved ones first).
    pub fn run(
        &mut self,
        phases: &[Phase],
        run: &TrainRun,
        checkpoints: Option<RunCheckpoints<T::Model>>,
    ) -> Result<Vec<EpochRecord>, T::Error> {
        if let Some(max_norm) = self.grad_clip() {
            TrainError::check_max_norm(max_norm)?;
        }
        for phase in phases {
            TrainError::check_lr(phase.schedule.max_lr())?;
        }
        let (snapshot, mut progress, mut inside) = match checkpoints {
            Some(RunCheckpoints {
                snapshot,
                saved: Some(saved),
                ..
            }) => {
                self.restore(&saved)?;
                (Some(snapshot), saved.progress, saved.position)
            }
            Some(RunCheckpoints {
                snapshot, settings, ..
            }) => (Some(snapshot), RunProgress::new(settings), None),
            None => (None, RunProgress::new(RunSettings::default()), None),
        };
        if progress.epochs_done == 0 && progress.next_batch.is_none() {
            progress.settings = with_group_size(&progress.settings);
        }
        let print_table = run.print_table && self.leads();
        if let Some(group) = self.group.clone() {
            self.join(group.as_ref(), phases, &progress)?;
        }
        let writer = snapshot
            .as_ref()
            .zip(run.out)
            .map(|(snapshot, dir)| Writer { dir, snapshot });
        let total: usize = phases.iter().map(|phase| phase.epochs).sum();
        let first = progress.epochs_done;
        let last = run.stop_after.unwrap_or(total).min(total).max(first);
        let mut phase_start = 0;
        for (index, phase) in phases.iter().enumerate() {
            let (begin, end) = (first.max(phase_start), last.min(phase_start + phase.epochs));
            if begin < end {
                let resumed = inside.take().filter(|position| position.epoch == begin);
                if begin == phase_start && resumed.is_none() {
                    self.smooth = SmoothLoss::default();
                }
                if print_table {
                    println!("{}", format_table_header(&self.task.metric_names()));
                }
                let mut resumed = resumed;
                for epoch in begin..end {
                    let fit = FitPlace {
                        index,
                        number: self.fits + index,
                        phase: *phase,
                        start: phase_start,
                    };
                    let place = EpochPlace {
                        epoch,
                        last,
                        resumed: resumed.take(),
                    };
                    self.epoch(fit, place, run, writer.as_ref(), &mut progress)?;
                }
            }
            phase_start += phase.epochs;
        }
        self.fits += phases.len();
        Ok(progress.records)
    }

    /// Gives the optimizer back its saved averages and the smoothed loss.
    fn restore(&mut self, saved: &SavedRun) -> Result<(), TrainError> {
        let model = self.model.as_ref().expect("the model is present");
        self.trainer.restore(model, &saved.optimizer)?;
        self.smooth = saved.progress.smooth_loss;
        Ok(())
    }

    fn stop_requested(run: &TrainRun) -> bool {
        run.stop.is_some_and(|flag| flag.load(Ordering::SeqCst))
    }

    /// Whether this process prints and writes: alone, or rank 0 of its group.
    fn leads(&self) -> bool {
        self.group.as_ref().is_none_or(|group| group.rank() == 0)
    }

    /// Whether to stop now: asked to (Ctrl-C), or, in a group, the group agreed to at the
    /// last step.
    fn stopping(&self, run: &TrainRun) -> bool {
        match self.group {
            Some(_) => self.group_stop,
            None => Self::stop_requested(run),
        }
    }

    /// Starts data-parallel training in `group`: checks that every process has rank 0's
    /// settings (the run's, its fits, its clipping, its model's size and its batches per
    /// epoch) and gives every process rank 0's weights.
    fn join(
        &mut self,
        group: &dyn ProcessGroup,
        phases: &[Phase],
        progress: &RunProgress,
    ) -> Result<(), T::Error> {
        // The command's settings first, so that a difference there is named as the user
        // wrote it; then what the loop derives from them.
        agree_on_settings(group, &progress.settings).inspect_err(|_| end_together())?;
        let batches = self.task.batches(progress.epochs_done)?;
        let derived = RunSettings::default()
            .with("fits", format!("{phases:?}"))
            .with("grad-clip", format!("{:?}", self.grad_clip()))
            .with("parameters", self.model().num_params())
            .with("epochs-done", progress.epochs_done)
            .with("batches", batches.len());
        if let Some(first) = batches.into_iter().next() {
            self.draw_lazy_parameters(first)?;
        }
        let model = self.model.take().expect("the model is present");
        let agreed = agree_on_settings(group, &derived).inspect_err(|_| end_together());
        self.model = Some(broadcast_model(group, model));
        Ok(agreed?)
    }

    /// Trains and scores one epoch, records it and checkpoints after it.
    fn epoch(
        &mut self,
        fit: FitPlace,
        place: EpochPlace,
        run: &TrainRun,
        writer: Option<&Writer<'_, T::Model>>,
        progress: &mut RunProgress,
    ) -> Result<(), T::Error> {
        let EpochPlace {
            epoch,
            last,
            resumed,
        } = place;
        let start = Instant::now();
        let model = self.model.take().expect("the model is present");
        self.model = Some(self.task.prepare_epoch(model, fit.index));
        let batches = self.task.batches(epoch)?;
        if batches.is_empty() {
            return Err(TrainError::NoBatches("the training set").into());
        }
        let count = batches.len();
        let (first, loss_sum, mut state) = match resumed {
            Some(position) => (position.next_batch, progress.epoch_loss_sum, position.state),
            None => (0, 0.0, None),
        };
        let bar = epoch_bar(count, epoch, run.show_progress && self.leads());
        let mut losses = EpochLosses::new(epoch, loss_sum, bar.clone());
        bar.inc(first as u64);
        let epoch_in_fit = epoch - fit.start;
        let fit_steps = fit.phase.epochs * count;
        for (index, batch) in batches.into_iter().enumerate().skip(first) {
            let in_fit = epoch_in_fit * count + index;
            let step = StepIndex {
                fit: fit.number,
                in_fit,
                in_run: epoch * count + index,
            };
            if let Some(seed) = self.task.step_seed(step) {
                // In a group each process draws its own rows' masks.
                let seed = match &self.group {
                    Some(group) => seed_for_step(seed, group.rank() as u64),
                    None => seed,
                };
                seed_device(self.trainer.device(), seed);
            }
            let hyper = fit.phase.schedule.at(in_fit as f64 / fit_steps as f64);
            let (carried, rows) = match self.group.clone() {
                Some(group) => {
                    let rows = share_rows(batch.rows(), group.rank(), group.size());
                    let whole = batch.rows();
                    let share = batch.select(rows.clone());
                    let place = GroupPlace {
                        rows: rows.clone(),
                        whole,
                        stop: Self::stop_requested(run),
                    };
                    let (value, carried) = self
                        .group_step(
                            group.as_ref(),
                            &share,
                            state.take(),
                            place,
                            hyper,
                            (epoch, index),
                        )
                        .inspect_err(|_| bar.finish_and_clear())?;
                    losses.add(value);
                    self.record_loss(value, progress, &bar);
                    (carried, Some((rows, whole)))
                }
                None => {
                    let carried = self
                        .step(&batch, state.take(), hyper, index, &mut losses, progress)
                        .inspect_err(|_| bar.finish_and_clear())?;
                    (carried, None)
                }
            };
            state = carried;
            bar.inc(1);
            let next = index + 1;
            if next == count {
                break;
            }
            let stop = self.stopping(run);
            let due = run
                .save_every
                .is_some_and(|every| (epoch * count + next).is_multiple_of(every.max(1)));
            if stop || due {
                self.read_losses(&mut losses, progress)
                    .inspect_err(|_| bar.finish_and_clear())?;
            }
            let mut saved_in = None;
            if let Some(writer) = writer
                && (stop || due)
            {
                let mut at = progress.clone();
                at.epochs_done = epoch;
                at.next_batch = Some(next);
                at.smooth_loss = self.smooth;
                at.epoch_loss_sum = losses.sum();
                let whole_state = match (&self.group, rows) {
                    (Some(group), Some((rows, whole))) => {
                        gather_state(group.as_ref(), state.as_ref(), rows, whole)
                    }
                    _ => state.clone(),
                };
                self.save(writer, &at, whole_state.as_ref())
                    .inspect_err(|_| bar.finish_and_clear())?;
                saved_in = Some(writer.dir.display().to_string());
            }
            if stop {
                bar.finish_and_clear();
                return Err(self.interrupted(epoch, next, saved_in).into());
            }
        }
        self.read_losses(&mut losses, progress)
            .inspect_err(|_| bar.finish_and_clear())?;
        bar.finish_and_clear();
        let scores = self.task.evaluate(&self.model().valid())?;
        let record = EpochRecord {
            fit: fit.number,
            epoch: epoch_in_fit,
            train_loss: if self.smoothed_loss {
                self.smooth.value()
            } else {
                losses.sum() / count as f64
            },
            valid_loss: scores.loss(),
            metrics: scores.metrics(),
            time_s: start.elapsed().as_secs_f64(),
        };
        if run.print_table && self.leads() {
            println!("{}", format_table_row(&record));
        }
        progress.epochs_done = epoch + 1;
        progress.next_batch = None;
        progress.smooth_loss = self.smooth;
        progress.epoch_loss_sum = 0.0;
        progress.records.push(record.clone());
        let mut saved_in = None;
        if let Some(writer) = writer {
            self.save(writer, progress, None)?;
            saved_in = Some(writer.dir.display().to_string());
        }
        self.history.push(record);
        self.scores = Some(scores);
        if self.stopping(run) && epoch + 1 < last {
            return Err(self.interrupted(epoch + 1, 0, saved_in).into());
        }
        Ok(())
    }

    /// The task's loss of `batch`: what to back-propagate, what to record, and what to carry.
    fn loss_values(
        &self,
        model: &T::Model,
        batch: &T::Batch,
        carried: Option<RecurrentState>,
    ) -> Result<ComputedLoss, T::Error> {
        let StepLoss {
            loss,
            penalty,
            state,
            weight,
        } = self
            .task
            .loss(model, batch, carried, self.trainer.device())?;
        // Like fastai's RNNRegularizer: the penalty is back-propagated, not recorded.
        Ok(ComputedLoss {
            total: match &penalty {
                Some(penalty) => loss.clone() + penalty.clone(),
                None => loss.clone(),
            },
            loss,
            penalty,
            state: state.map(RecurrentState::detach),
            weight,
        })
    }

    /// Reads the losses `losses` holds and records them, in step order.
    fn read_losses(
        &mut self,
        losses: &mut EpochLosses,
        progress: &mut RunProgress,
    ) -> Result<(), TrainError> {
        let bar = losses.bar().clone();
        losses.read(|value| self.record_loss(value, progress, &bar))
    }

    /// Records a step's loss: the batch losses, the smoothed loss, the progress bar.
    fn record_loss(&mut self, value: f32, progress: &mut RunProgress, bar: &ProgressBar) {
        self.batch_losses.push(value);
        progress.batch_losses.push(value);
        self.smooth.add(f64::from(value));
        let shown = if self.smoothed_loss {
            self.smooth.value()
        } else {
            f64::from(value)
        };
        bar.set_message(format!("loss {shown:.4}"));
    }

    /// The error that ends a run asked to stop, before `batch` of `epoch`; in a group, every
    /// process meets it at the same step.
    fn interrupted(&self, epoch: usize, batch: usize, checkpoint: Option<String>) -> TrainError {
        if self.group.is_some() {
            end_together();
        }
        TrainError::Interrupted {
            epoch,
            batch,
            checkpoint,
        }
    }

    /// One optimisation step on batch `index`: the loss, its gradients, clipping and the
    /// update. The loss joins `losses`; when they are due to be read, they are read and
    /// recorded first, and a non-finite one is refused before this update. Returns the
    /// state to carry on.
    fn step(
        &mut self,
        batch: &T::Batch,
        carried: Option<RecurrentState>,
        hyper: crate::StepHyper,
        index: usize,
        losses: &mut EpochLosses,
        progress: &mut RunProgress,
    ) -> Result<Option<RecurrentState>, T::Error> {
        let model = self
            .model
            .take()
            .expect("the model is present between steps");
        let computed = match self.loss_values(&model, batch, carried) {
            Ok(computed) => computed,
            Err(error) => {
                self.model = Some(model);
                return Err(error);
            }
        };
        losses.push(index, computed.values());
        if losses.pending() >= self.loss_read_every
            && let Err(error) = self.read_losses(losses, progress)
        {
            self.model = Some(model);
            return Err(error.into());
        }
        self.model = Some(self.trainer.update(model, computed.total, hyper)?);
        Ok(computed.state)
    }

    /// Draws the parameters Burn initialises at their first use as a lone process draws them:
    /// in the order the first step's forward pass uses them, from the generator as seeded for
    /// that step (one forward pass of `batch`, its graph dropped). Rank 0's are then copied
    /// to all, and the model is the one a lone process would train.
    fn draw_lazy_parameters(&mut self, batch: T::Batch) -> Result<(), T::Error> {
        struct Lazy(bool);
        impl ModuleVisitor for Lazy {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                self.0 |= !param.is_initialized();
            }
        }
        let mut lazy = Lazy(false);
        self.model().visit(&mut lazy);
        if !lazy.0 {
            return Ok(());
        }
        let first = StepIndex {
            fit: self.fits,
            in_fit: 0,
            in_run: 0,
        };
        if let Some(seed) = self.task.step_seed(first) {
            seed_device(self.trainer.device(), seed);
        }
        self.task
            .loss(self.model(), &batch, None, self.trainer.device())
            .map(drop)
    }

    /// One data-parallel step: this process's loss and gradients on its `share` of the batch,
    /// summed with the group's, then the same update on every process. Returns the group's
    /// loss and this process's state to carry on.
    fn group_step(
        &mut self,
        group: &dyn ProcessGroup,
        share: &T::Batch,
        carried: Option<RecurrentState>,
        place: GroupPlace,
        hyper: crate::StepHyper,
        (epoch, index): (usize, usize),
    ) -> Result<(f32, Option<RecurrentState>), T::Error> {
        let model = self
            .model
            .take()
            .expect("the model is present between steps");
        // A resumed run's state is the whole batch's: keep this process's rows.
        let carried = carried.map(|state| {
            if state.batch_size() == place.whole && place.rows.len() != place.whole {
                select_state_rows(state, place.rows.clone())
            } else {
                state
            }
        });
        let mut local = LocalStep {
            grads: None,
            weight: 0.0,
            loss: 0.0,
            finite: true,
            stop: place.stop,
        };
        let mut state = None;
        if !place.rows.is_empty() {
            let computed = match self.loss_values(&model, share, carried) {
                Ok(computed) => computed,
                Err(error) => {
                    self.model = Some(model);
                    return Err(error);
                }
            };
            local.weight = computed.weight.unwrap_or(place.rows.len() as f64);
            let [value, with_penalty] = match computed.read() {
                Ok(values) => values,
                Err(error) => {
                    self.model = Some(model);
                    return Err(error.into());
                }
            };
            local.loss = value;
            local.finite = with_penalty.is_finite();
            if local.finite {
                let grads = computed.total.backward();
                local.grads = Some(GradientsParams::from_grads(grads, &model));
            }
            state = computed.state;
        }
        let inner = self.trainer.device().clone().inner();
        let summed = match exchange_gradients(group, &model, local, &inner) {
            Ok(summed) => summed,
            Err(error) => {
                self.model = Some(model);
                return Err(error.into());
            }
        };
        self.group_stop = summed.stop;
        if !summed.finite || !summed.loss.is_finite() {
            end_together();
            self.model = Some(model);
            return Err(TrainError::NonFiniteLoss {
                epoch,
                batch: index,
                value: if summed.loss.is_finite() {
                    f32::NAN
                } else {
                    summed.loss
                },
            }
            .into());
        }
        self.model = Some(self.trainer.apply(model, summed.grads, hyper)?);
        Ok((summed.loss, state))
    }

    fn save(
        &self,
        writer: &Writer<'_, T::Model>,
        progress: &RunProgress,
        state: Option<&RecurrentState>,
    ) -> Result<(), TrainError> {
        if !self.leads() {
            return Ok(());
        }
        let model = self.model();
        let mut checkpoint = (writer.snapshot)(model);
        let optimizer = self.trainer.optimizer().state_of(model);
        SavedRun::insert_into(&mut checkpoint, progress, optimizer, state);
        Ok(checkpoint.save(writer.dir)?)
    }
}

/// Whether every parameter of `model` is on an autodiff device, asked without drawing a
/// lazily initialised one.
fn on_autodiff<M: Module>(model: &M) -> bool {
    struct Check(bool);
    impl ModuleVisitor for Check {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0 &= param.lazy_device().is_autodiff();
        }
    }
    let mut check = Check(true);
    model.visit(&mut check);
    check.0
}

/// The fit an epoch belongs to.
#[derive(Clone, Copy)]
struct FitPlace {
    /// Its index among the call's phases.
    index: usize,
    /// Its number, counted on from earlier calls.
    number: usize,
    phase: Phase,
    /// The run's epoch where it starts.
    start: usize,
}

/// A step's loss as the loop uses it.
struct ComputedLoss {
    /// The loss with any penalty, to back-propagate.
    total: Tensor<1>,
    /// The loss as recorded (without the penalty).
    loss: Tensor<1>,
    /// The task's penalty, if any.
    penalty: Option<Tensor<1>>,
    /// The detached state to carry on.
    state: Option<RecurrentState>,
    /// How many predictions the loss averages ([`StepLoss::weight`]).
    weight: Option<f64>,
}

impl ComputedLoss {
    /// `[loss, loss + penalty]`, detached: the value to record, and the one that must be
    /// finite.
    fn values(&self) -> Tensor<1> {
        let loss = self.loss.clone().detach();
        let with_penalty = match &self.penalty {
            Some(penalty) => loss.clone() + penalty.clone().detach(),
            None => loss.clone(),
        };
        Tensor::cat(vec![loss, with_penalty], 0)
    }

    /// [`values`](Self::values), read now.
    fn read(&self) -> Result<[f32; 2], TrainError> {
        let values = read_values(self.values())?;
        Ok([values[0], values[1]])
    }
}

/// A process's share of a data-parallel batch, and whether it was asked to stop.
struct GroupPlace {
    /// Its rows of the batch.
    rows: Range<usize>,
    /// The batch's rows.
    whole: usize,
    stop: bool,
}

/// An epoch of a run: its number, the run's last epoch to train, and where inside it a saved
/// run stopped.
struct EpochPlace {
    epoch: usize,
    last: usize,
    resumed: Option<Position>,
}
