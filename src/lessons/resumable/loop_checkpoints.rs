//! [`LoopCheckpoints`]: checkpoints for training loops written by hand around a [`Trainer`].

use super::{Snapshot, TrainRun};
use crate::lessons::LessonError;
use crate::train::{EpochRecord, RunProgress, RunSettings, SavedRun, Trainer};
use burn::module::Module;
use std::ops::Range;
use std::path::Path;

/// What [`fit_resumable`](super::fit_resumable) does for the
/// [`Learner`](crate::train::Learner), for a loop written by hand around a [`Trainer`]: it
/// restores a saved run, says which epochs and batches are left, and writes the checkpoint
/// after every epoch, every `save_every` steps and at a stop. The loop must draw each epoch's
/// batch order from the seed and the epoch alone, so that a resumed epoch sees the same
/// batches.
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
