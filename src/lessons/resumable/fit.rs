//! [`fit_resumable`]: the [`Learner`]'s fits, checkpointed and resumable.

use super::{Snapshot, TrainRun};
use crate::lessons::LessonError;
use crate::models::LanguageModel;
use crate::train::{
    EpochRecord, Learner, RunProgress, RunSettings, SavedRun, Schedule, TrainError,
};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

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
