//! Where a run stands inside a fit: fastai's smoothed loss, and the place inside an epoch
//! that a checkpoint continues from.

use seqlab_models::RecurrentState;

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

    pub(super) fn add(&mut self, loss: f64) {
        self.count += 1;
        self.average = Self::BETA * self.average + (1.0 - Self::BETA) * loss;
    }

    /// The smoothed loss so far (NaN before the first batch).
    pub fn value(&self) -> f64 {
        if self.count == 0 {
            return f64::NAN;
        }
        self.average / (1.0 - Self::BETA.powi(self.count))
    }
}

/// A place inside an epoch: the next training batch, and the state carried into it.
#[derive(Debug, Clone)]
pub struct Position {
    /// The epoch, counted across the run.
    pub epoch: usize,
    /// The next batch to train on.
    pub next_batch: usize,
    /// The (detached) state the previous batch left, for stateful models.
    pub state: Option<RecurrentState>,
}
