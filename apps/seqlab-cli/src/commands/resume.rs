//! Options of the training commands that checkpoint as they go: `--out`, `--resume`,
//! `--stop-after`, `--save-every`, and Ctrl-C stopping with a checkpoint.

use super::common::{RunArgs, check_writable, parent_of};
use clap::Args as ClapArgs;
use seqlab::lessons::{LessonError, TrainRun};
use seqlab::train::TrainError;
use std::error::Error;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Where a training run checkpoints, and how it stops and continues.
#[derive(ClapArgs, Debug)]
pub struct CheckpointArgs {
    /// Write the checkpoint here after every epoch: the model, its settings (and tokenizer or
    /// labels) and what --resume needs to continue the run (default: the --resume folder).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Continue the run saved in this checkpoint, on the same data with the same settings;
    /// it ends with the same weights as a run that never stopped.
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
    /// Stop after this many epochs of the run (resume later with --resume).
    #[arg(long, value_name = "EPOCHS")]
    pub stop_after: Option<NonZeroUsize>,
    /// Also write the checkpoint every N optimisation steps (it is always written after every
    /// epoch), so that a killed run loses at most N steps.
    #[arg(long, value_name = "STEPS")]
    pub save_every: Option<NonZeroUsize>,
}

impl CheckpointArgs {
    /// The folder the checkpoint goes to: `--out`, else the `--resume` folder (the run goes
    /// on in its own folder), else none.
    pub fn out_dir(&self) -> Option<&Path> {
        self.out.as_deref().or(self.resume.as_deref())
    }

    /// Runs `train` with checkpoints written to [`CheckpointArgs::out_dir`], if any; the first
    /// Ctrl-C stops it at the next step (with a checkpoint), and the error then says how to go
    /// on.
    pub fn train<T>(
        &self,
        run: &RunArgs,
        train: impl FnOnce(&TrainRun) -> Result<T, LessonError>,
    ) -> Result<T, Box<dyn Error>> {
        self.train_into(self.out_dir(), run, train)
    }

    /// [`CheckpointArgs::train`] with checkpoints written to `out`, if given.
    pub fn train_into<T>(
        &self,
        out: Option<&Path>,
        run: &RunArgs,
        train: impl FnOnce(&TrainRun) -> Result<T, LessonError>,
    ) -> Result<T, Box<dyn Error>> {
        match out {
            Some(out) => check_writable(parent_of(out), "the checkpoint")?,
            None if self.save_every.is_some() => {
                return Err(
                    "--save-every needs --out, the folder to write the checkpoint to".into(),
                );
            }
            None => {}
        }
        let stop = stop_on_ctrl_c()?;
        let train_run = TrainRun {
            out,
            resume: self.resume.as_deref(),
            stop_after: self.stop_after.map(NonZeroUsize::get),
            save_every: self.save_every.map(NonZeroUsize::get),
            stop: Some(&stop),
            print_table: true,
            show_progress: !run.no_progress,
        };
        match (train(&train_run), out) {
            (Err(error @ LessonError::Train(TrainError::Interrupted { .. })), Some(out)) => {
                Err(format!(
                    "{error}: run the same command with --resume {} to go on",
                    out.display()
                )
                .into())
            }
            (other, _) => Ok(other?),
        }
    }
}

/// A flag that the first Ctrl-C sets (training stops at the next step and checkpoints); a
/// second one quits at once.
fn stop_on_ctrl_c() -> Result<Arc<AtomicBool>, Box<dyn Error>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    // In a data-parallel job every process gets the signal; the first says so for all.
    let quiet = seqlab::train::parallel::current_group().is_some_and(|g| g.rank() > 0);
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        if !quiet {
            eprintln!(
                "seqlab: stopping after this step to write a checkpoint (Ctrl-C again quits at once)"
            );
        }
    })?;
    Ok(stop)
}
