//! The one training loop: [`FitLoop`] runs a [`TrainTask`] — what a command brings: its
//! batches, how a batch becomes a loss, how the model is scored — through the fits of a run,
//! with checkpoints and exact resumption ([`TrainRun`], [`RunCheckpoints`]).

mod engine;
mod losses;
mod position;
mod run;
mod task;
#[cfg(test)]
mod tests;

pub use engine::FitLoop;
pub use losses::GPU_LOSS_READ_EVERY;
pub use position::{Position, SmoothLoss};
pub use run::{Phase, RunCheckpoints, Snapshot, TrainRun};
pub use task::{LossAccuracy, Scores, StepIndex, StepLoss, TrainTask};
