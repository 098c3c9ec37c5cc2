//! Training runs that checkpoint as they go and continue where they stopped: what the
//! training commands share behind `--out`, `--resume`, `--stop-after`, `--save-every` and
//! Ctrl-C.

use super::LessonError;
use crate::models::{LanguageModel, NamedTensors, load_module_tensors, module_tensors};
use crate::train::{
    Checkpoint, EpochRecord, Learner, RunProgress, RunSettings, SavedRun, Schedule, TrainError,
    Trainer,
};
use burn::module::Module;
use burn::tensor::Device;
use std::cell::{Cell, RefCell};
use std::ops::Range;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// Where a training run writes checkpoints, what it continues from and when it stops.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrainRun<'a> {
    /// Write a checkpoint here after every epoch (and every `save_every` steps).
    pub out: Option<&'a Path>,
    /// Continue the run saved in this checkpoint (same data and settings).
    pub resume: Option<&'a Path>,
    /// Stop after this many epochs of the run (the schedule still spans all of them).
    pub stop_after: Option<usize>,
    /// Also write the checkpoint every this many optimisation steps, inside epochs.
    pub save_every: Option<usize>,
    /// Stop at the next step boundary once this is set (a Ctrl-C handler sets it), writing a
    /// checkpoint that continues the run from that step.
    pub stop: Option<&'a Arc<AtomicBool>>,
    /// Print fastai's table.
    pub print_table: bool,
    /// Show progress bars.
    pub show_progress: bool,
}

/// The file of a checkpoint that holds a model's parameters by their paths in the model.
const PARAM_FILE: &str = "weights.safetensors";

/// What a training run checkpoints and resumes: where it writes and what it continues from
/// (`run`), the checkpoint's files beside the weights (its kind and the model's config), and
/// the settings a resumed run must share with the saved one.
pub(crate) struct Resumable<'a> {
    /// Where and when.
    pub(crate) run: &'a TrainRun<'a>,
    /// The checkpoint's kind and files but the weights.
    pub(crate) model_files: Checkpoint,
    /// The run's settings.
    pub(crate) settings: RunSettings,
}

impl Resumable<'_> {
    /// `model` as it is, or with the weights of the run saved in `run.resume` (with
    /// [`with_param_file`]) and that run's progress, after checking that the checkpoint is of
    /// this kind, holds this model and was written by a run with these settings.
    pub(crate) fn start_from<M: Module>(
        &self,
        model: M,
        device: &Device,
    ) -> Result<(M, Option<SavedRun>), LessonError> {
        let Some(dir) = self.run.resume else {
            return Ok((model, None));
        };
        let checkpoint = Checkpoint::load(dir, self.model_files.kind())?;
        check_same_model(&checkpoint, &self.model_files)?;
        let model = read_param_file(&checkpoint, model)?;
        let saved = SavedRun::read(&checkpoint, &self.settings, device)?;
        Ok((model, Some(saved)))
    }
}

/// The model's files of a checkpoint (config, vocabulary, weights) for the model as it stands.
pub(crate) type Snapshot<M> = Rc<dyn Fn(&M) -> Checkpoint>;

/// Checks that the checkpoint a run resumes from holds this run's model: every file of
/// `this_run` (its config, vocabulary or tokenizer) byte for byte.
pub(crate) fn check_same_model(
    saved: &Checkpoint,
    this_run: &Checkpoint,
) -> Result<(), LessonError> {
    for name in this_run.names() {
        let ours = this_run.file(name)?;
        let theirs = saved.file(name)?;
        if ours == theirs {
            continue;
        }
        let message = if name == "config.json" {
            let compact = |bytes: &[u8]| {
                serde_json::from_slice::<serde_json::Value>(bytes).map_or_else(
                    |_| String::from_utf8_lossy(bytes).into_owned(),
                    |v| v.to_string(),
                )
            };
            format!(
                "the checkpoint's model is {}, this run asks for {}",
                compact(theirs),
                compact(ours)
            )
        } else {
            "differs from this run's: resume on the same data with the same settings".to_string()
        };
        return Err(saved.contents_error(name, message).into());
    }
    Ok(())
}

/// Trains `learner` through the fits `phases` lists, `(epochs, schedule)` each, numbering
/// epochs across them: the epochs the run has not done yet (all of them, or those after
/// `saved`), up to `run.stop_after`. With `run.out` it writes `snapshot(model)` with the run's
/// progress and optimizer state there after every epoch, every `run.save_every` steps and
/// when `run.stop` stops it. Returns the learner and every epoch's numbers since the run
/// began (the saved epochs first).
pub(crate) fn fit_resumable<M: LanguageModel + 'static>(
    mut learner: Learner<M>,
    saved: Option<SavedRun>,
    settings: RunSettings,
    phases: &[(usize, Schedule)],
    snapshot: Snapshot<M>,
    run: &TrainRun,
) -> Result<(Learner<M>, Vec<EpochRecord>), LessonError> {
    let (progress, mut inside) = match saved {
        Some(saved) => {
            learner.restore(&saved.optimizer, saved.progress.smooth_loss)?;
            (saved.progress, saved.position)
        }
        None => (RunProgress::new(settings), None),
    };
    if let Some(stop) = run.stop {
        learner = learner.with_stop_flag(Arc::clone(stop));
    }
    let first = progress.epochs_done;
    let earlier = progress.records.clone();
    let shared = Rc::new(RefCell::new(progress));
    // The run's epoch where the fit under way starts.
    let offset = Rc::new(Cell::new(0));
    if let Some(out) = run.out {
        let (dir, snap, progress, start) = (
            out.to_path_buf(),
            Rc::clone(&snapshot),
            Rc::clone(&shared),
            Rc::clone(&offset),
        );
        learner = learner.with_epoch_end(move |end| {
            let mut progress = progress.borrow_mut();
            progress.epochs_done = start.get() + end.record.epoch + 1;
            progress.next_batch = None;
            progress.smooth_loss = end.smooth_loss;
            progress.records.push(end.record.clone());
            let mut checkpoint = snap(end.model);
            let optimizer = end.optimizer.state_of(end.model);
            SavedRun::insert_into(&mut checkpoint, &progress, optimizer, None);
            checkpoint.save(&dir).map_err(TrainError::from)
        });
        if let Some(every) = run.save_every {
            let (dir, snap, progress, start) = (
                out.to_path_buf(),
                Rc::clone(&snapshot),
                Rc::clone(&shared),
                Rc::clone(&offset),
            );
            learner = learner.with_step_end(every, move |step| {
                let mut progress = progress.borrow().clone();
                progress.epochs_done = start.get() + step.position.epoch;
                progress.next_batch = Some(step.position.next_batch);
                progress.smooth_loss = step.smooth_loss;
                let mut checkpoint = snap(step.model);
                let optimizer = step.optimizer.state_of(step.model);
                let state = step.position.state.as_ref();
                SavedRun::insert_into(&mut checkpoint, &progress, optimizer, state);
                checkpoint.save(&dir).map_err(TrainError::from)
            });
        }
    }
    let total: usize = phases.iter().map(|&(epochs, _)| epochs).sum();
    let last = run.stop_after.unwrap_or(total).min(total).max(first);
    let mut phase_start = 0;
    let mut fitted = Ok(());
    for (fit, &(epochs, schedule)) in phases.iter().enumerate() {
        let (begin, end) = (first.max(phase_start), last.min(phase_start + epochs));
        if begin < end {
            offset.set(phase_start);
            learner.set_fit_number(fit);
            if let Some(mut position) = inside.take() {
                position.epoch -= phase_start;
                learner.resume_at(position);
            }
            let range = begin - phase_start..end - phase_start;
            fitted = learner.fit_epochs(range, epochs, schedule).map(|_| ());
            if fitted.is_err() {
                break;
            }
        }
        phase_start += epochs;
    }
    let mut records = earlier;
    records.extend(learner.history().iter().cloned());
    if let Err(TrainError::Interrupted { epoch, batch }) = fitted {
        let epoch = offset.get() + epoch;
        let checkpoint = match run.out {
            Some(out) => {
                let mut progress = shared.borrow().clone();
                progress.epochs_done = epoch;
                progress.next_batch = (batch > 0).then_some(batch);
                progress.smooth_loss = learner.smooth_loss();
                let model = learner.model();
                let mut checkpoint = snapshot(model);
                let state = learner.position().and_then(|p| p.state.as_ref());
                let optimizer = learner.optimizer().state_of(model);
                SavedRun::insert_into(&mut checkpoint, &progress, optimizer, state);
                checkpoint.save(out)?;
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
    Ok((learner, records))
}

/// `checkpoint` with `model`'s parameters added by their paths in the model
/// ([`module_tensors`]), for models that have no PyTorch names.
pub(crate) fn with_param_file<M: Module>(mut checkpoint: Checkpoint, model: &M) -> Checkpoint {
    checkpoint.insert(PARAM_FILE, module_tensors(model).to_safetensors_bytes());
    checkpoint
}

/// Loads the parameters that [`with_param_file`] wrote into `model`, every tensor checked.
pub(crate) fn read_param_file<M: Module>(
    checkpoint: &Checkpoint,
    model: M,
) -> Result<M, LessonError> {
    let error = |e: &dyn std::fmt::Display| checkpoint.contents_error(PARAM_FILE, e);
    let named = NamedTensors::from_safetensors_bytes(
        checkpoint.file(PARAM_FILE)?,
        &checkpoint.path_of(PARAM_FILE),
    )
    .map_err(|e| error(&e))?;
    load_module_tensors(model, &named).map_err(|e| error(&e).into())
}

/// What [`fit_resumable`] does for the [`Learner`], for a loop written by hand around a
/// [`Trainer`]: it restores a saved run, says which epochs and batches are left, and writes
/// the checkpoint after every epoch, every `save_every` steps and at a stop. The loop must
/// draw each epoch's batch order from the seed and the epoch alone, so that a resumed epoch
/// sees the same batches.
pub(crate) struct LoopCheckpoints<'a, M> {
    run: &'a TrainRun<'a>,
    progress: RunProgress,
    snapshot: Snapshot<M>,
    epochs: usize,
}

impl<'a, M: Module> LoopCheckpoints<'a, M> {
    /// Starts a run of `epochs` epochs, or continues `saved` (restoring the optimizer's state
    /// into `trainer` for `model`, which holds the saved weights).
    pub(crate) fn start(
        run: &'a TrainRun<'a>,
        saved: Option<SavedRun>,
        settings: RunSettings,
        epochs: usize,
        snapshot: Snapshot<M>,
        trainer: &mut Trainer,
        model: &M,
    ) -> Result<Self, LessonError> {
        let progress = match saved {
            Some(saved) => {
                trainer.restore(model, &saved.optimizer)?;
                saved.progress
            }
            None => RunProgress::new(settings),
        };
        Ok(Self {
            run,
            progress,
            snapshot,
            epochs,
        })
    }

    /// The epochs left to run (up to `stop_after`).
    pub(crate) fn epochs_left(&self) -> Range<usize> {
        let last = self.run.stop_after.unwrap_or(self.epochs).min(self.epochs);
        self.progress.epochs_done..last.max(self.progress.epochs_done)
    }

    /// The first batch of `epoch` to train on and the sum of the losses of those before it:
    /// inside the epoch a saved run stopped in, where it stopped; otherwise `(0, 0.0)`.
    pub(crate) fn epoch_start(&self, epoch: usize) -> (usize, f64) {
        match self.progress.next_batch {
            Some(next) if epoch == self.progress.epochs_done => {
                (next, self.progress.epoch_loss_sum)
            }
            _ => (0, 0.0),
        }
    }

    /// After the step that trained batch `next_batch - 1` of `epoch` (of `batches`): writes the
    /// checkpoint every `save_every` steps, and when a stop was asked for, writes it and stops
    /// the run with [`LessonError::Interrupted`]. The epoch's last batch is left to
    /// [`LoopCheckpoints::end_epoch`].
    pub(crate) fn after_step(
        &mut self,
        model: &M,
        trainer: &Trainer,
        (epoch, next_batch, batches): (usize, usize, usize),
        epoch_loss_sum: f64,
    ) -> Result<(), LessonError> {
        if next_batch >= batches {
            return Ok(());
        }
        let stop = self.stop_requested();
        let due = self
            .run
            .save_every
            .is_some_and(|every| (epoch * batches + next_batch).is_multiple_of(every.max(1)));
        if !(stop || due) {
            return Ok(());
        }
        let checkpoint = match self.run.out {
            Some(out) => {
                let mut progress = self.progress.clone();
                progress.epochs_done = epoch;
                progress.next_batch = Some(next_batch);
                progress.epoch_loss_sum = epoch_loss_sum;
                self.save(out, &progress, model, trainer)?;
                Some(out.display().to_string())
            }
            None => None,
        };
        if stop {
            return Err(LessonError::Interrupted {
                epoch,
                batch: next_batch,
                checkpoint,
            });
        }
        Ok(())
    }

    /// Records a finished epoch and writes the checkpoint; a stop asked for during its last
    /// step stops the run here.
    pub(crate) fn end_epoch(
        &mut self,
        record: EpochRecord,
        model: &M,
        trainer: &Trainer,
    ) -> Result<(), LessonError> {
        self.progress.epochs_done = record.epoch + 1;
        self.progress.next_batch = None;
        self.progress.epoch_loss_sum = 0.0;
        self.progress.records.push(record);
        let checkpoint = match self.run.out {
            Some(out) => {
                self.save(out, &self.progress, model, trainer)?;
                Some(out.display().to_string())
            }
            None => None,
        };
        let epoch = self.progress.epochs_done;
        if self.stop_requested() && epoch < self.epochs_left().end {
            return Err(LessonError::Interrupted {
                epoch,
                batch: 0,
                checkpoint,
            });
        }
        Ok(())
    }

    /// Every epoch's numbers since the run began.
    pub(crate) fn records(&self) -> &[EpochRecord] {
        &self.progress.records
    }

    fn stop_requested(&self) -> bool {
        self.run
            .stop
            .is_some_and(|flag| flag.load(std::sync::atomic::Ordering::SeqCst))
    }

    fn save(
        &self,
        out: &Path,
        progress: &RunProgress,
        model: &M,
        trainer: &Trainer,
    ) -> Result<(), LessonError> {
        let mut checkpoint = (self.snapshot)(model);
        let optimizer = trainer.optimizer().state_of(model);
        SavedRun::insert_into(&mut checkpoint, progress, optimizer, None);
        Ok(checkpoint.save(out)?)
    }
}
