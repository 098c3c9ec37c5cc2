//! What a run is made of: its fits ([`Phase`]), where it checkpoints and when it stops
//! ([`TrainRun`]), and what its checkpoints hold beside the optimizer ([`RunCheckpoints`]).

use crate::resume::{RunSettings, SavedRun};
use crate::{Checkpoint, Schedule};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// One fit of a run: fastai's `fit(epochs, lr)`, `fit_one_cycle(epochs, lr)`, ….
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phase {
    /// Epochs of the fit.
    pub epochs: usize,
    /// The learning rate (and momentum) over the fit.
    pub schedule: Schedule,
}

impl Phase {
    /// A fit of `epochs` epochs under `schedule`.
    pub fn new(epochs: usize, schedule: Schedule) -> Self {
        Self { epochs, schedule }
    }
}

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
pub type Snapshot<M> = Box<dyn Fn(&M) -> Checkpoint>;

/// What a run's checkpoints hold beside the optimizer and the run's progress, and the run
/// they continue.
pub struct RunCheckpoints<M> {
    /// The model's files, written with every checkpoint.
    pub snapshot: Snapshot<M>,
    /// The settings a resumed run must share with the saved one.
    pub settings: RunSettings,
    /// The saved run to continue (its model's weights already loaded into the model).
    pub saved: Option<SavedRun>,
}

impl<M> RunCheckpoints<M> {
    /// Checkpoints of the model's files that `snapshot` makes, for a run with `settings`,
    /// continuing `saved` if given.
    pub fn new(
        snapshot: impl Fn(&M) -> Checkpoint + 'static,
        settings: RunSettings,
        saved: Option<SavedRun>,
    ) -> Self {
        Self {
            snapshot: Box::new(snapshot),
            settings,
            saved,
        }
    }
}
