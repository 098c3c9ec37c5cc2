//! Training runs that checkpoint as they go and continue where they stopped: what the
//! training commands share behind `--out`, `--resume`, `--stop-after`, `--save-every` and
//! Ctrl-C.

use super::LessonError;
use crate::models::LanguageModel;
use crate::train::{
    Checkpoint, EpochRecord, Learner, RunProgress, RunSettings, SavedRun, Schedule, TrainError,
    Trainer,
};
use burn::module::Module;
use std::cell::RefCell;
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

/// Trains `learner` through the epochs of a fit of `epochs` under `schedule` that the run has
/// not done yet (all of them, or those after `saved`), up to `run.stop_after`. With `run.out`
/// it writes `snapshot(model)` with the run's progress and optimizer state there after every
/// epoch, every `run.save_every` steps and when `run.stop` stops it. Returns the learner and
/// every epoch's numbers since the run began (the saved epochs first).
pub(crate) fn fit_resumable<M: LanguageModel + 'static>(
    mut learner: Learner<M>,
    saved: Option<SavedRun>,
    settings: RunSettings,
    epochs: usize,
    schedule: Schedule,
    snapshot: Snapshot<M>,
    run: &TrainRun,
) -> Result<(Learner<M>, Vec<EpochRecord>), LessonError> {
    let progress = match saved {
        Some(saved) => {
            learner.restore(&saved.optimizer, saved.progress.smooth_loss)?;
            if let Some(position) = saved.position {
                learner.resume_at(position);
            }
            saved.progress
        }
        None => RunProgress::new(settings),
    };
    if let Some(stop) = run.stop {
        learner = learner.with_stop_flag(Arc::clone(stop));
    }
    let first = progress.epochs_done;
    let earlier = progress.records.clone();
    let shared = Rc::new(RefCell::new(progress));
    if let Some(out) = run.out {
        let (dir, snap, progress) = (out.to_path_buf(), Rc::clone(&snapshot), Rc::clone(&shared));
        learner = learner.with_epoch_end(move |end| {
            let mut progress = progress.borrow_mut();
            progress.epochs_done = end.record.epoch + 1;
            progress.next_batch = None;
            progress.smooth_loss = end.smooth_loss;
            progress.records.push(end.record.clone());
            let mut checkpoint = snap(end.model);
            let optimizer = end.optimizer.state_of(end.model);
            SavedRun::insert_into(&mut checkpoint, &progress, optimizer, None);
            checkpoint.save(&dir).map_err(TrainError::from)
        });
        if let Some(every) = run.save_every {
            let (dir, snap, progress) =
                (out.to_path_buf(), Rc::clone(&snapshot), Rc::clone(&shared));
            learner = learner.with_step_end(every, move |step| {
                let mut progress = progress.borrow().clone();
                progress.epochs_done = step.position.epoch;
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
    let last = run.stop_after.unwrap_or(epochs).min(epochs).max(first);
    let fitted = learner
        .fit_epochs(first..last, epochs, schedule)
        .map(|_| ());
    let mut records = earlier;
    records.extend(learner.history().iter().cloned());
    if let Err(TrainError::Interrupted { epoch, batch }) = fitted {
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
