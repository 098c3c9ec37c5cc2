//! The one training loop: [`FitLoop`] runs a [`TrainTask`] — what a command brings: its
//! batches, how a batch becomes a loss, how the model is scored — through the fits of a run,
//! with checkpoints and exact resumption ([`TrainRun`], [`RunCheckpoints`]).

mod engine;
mod run;
mod task;

pub use engine::{FitLoop, Position, SmoothLoss};
pub use run::{Phase, RunCheckpoints, Snapshot, TrainRun};
pub use task::{LossAccuracy, Scores, StepIndex, StepLoss, TrainTask};
