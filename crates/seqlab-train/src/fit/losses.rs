//! An epoch's training losses as the loop reads them: each step's loss stays on the device
//! until the loop reads a block of them in one go (every step on the CPU, where a read costs
//! nothing; every [`GPU_LOSS_READ_EVERY`] steps elsewhere, where each read waits for every
//! kernel queued before it).

use burn::tensor::Tensor;
use indicatif::ProgressBar;

use crate::TrainError;
use crate::reads::read_values;

/// How many steps' losses the loop leaves on a GPU before reading them together, by default:
/// PyTorch Lightning's `log_every_n_steps`.
pub const GPU_LOSS_READ_EVERY: usize = 50;

/// The losses of one epoch's steps: the sum of those read, those not read yet, and the
/// epoch's progress bar, which shows them as they are read.
pub(super) struct EpochLosses {
    epoch: usize,
    sum: f64,
    pending: Vec<PendingLoss>,
    bar: ProgressBar,
}

/// A step's loss on the device, not read yet.
struct PendingLoss {
    batch: usize,
    /// `[loss, loss + penalty]`, detached: the value to record, and the one that must be
    /// finite.
    values: Tensor<1>,
}

impl EpochLosses {
    /// The losses of `epoch`, whose steps read before this one summed to `sum`, shown on
    /// `bar`.
    pub(super) fn new(epoch: usize, sum: f64, bar: ProgressBar) -> Self {
        Self {
            epoch,
            sum,
            pending: Vec::new(),
            bar,
        }
    }

    /// The epoch's progress bar.
    pub(super) fn bar(&self) -> &ProgressBar {
        &self.bar
    }

    /// The sum of the losses read so far.
    pub(super) fn sum(&self) -> f64 {
        self.sum
    }

    /// How many steps' losses wait to be read.
    pub(super) fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Keeps `batch`'s `values` to read later: `[loss, loss + penalty]`, detached (the value
    /// to record, and the one that must be finite).
    pub(super) fn push(&mut self, batch: usize, values: Tensor<1>) {
        self.pending.push(PendingLoss { batch, values });
    }

    /// Adds a loss read already (a data-parallel step's, summed across the group).
    pub(super) fn add(&mut self, value: f32) {
        self.sum += f64::from(value);
    }

    /// Reads every pending loss in one read and hands each to `record` in step order; the
    /// first that is not finite with its penalty ends it with [`TrainError::NonFiniteLoss`]
    /// (those before it recorded).
    pub(super) fn read(&mut self, mut record: impl FnMut(f32)) -> Result<(), TrainError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        let batches: Vec<usize> = pending.iter().map(|loss| loss.batch).collect();
        let values = read_values(Tensor::cat(
            pending.into_iter().map(|loss| loss.values).collect(),
            0,
        ))?;
        for (batch, pair) in batches.into_iter().zip(values.chunks_exact(2)) {
            let [value, checked] = [pair[0], pair[1]];
            if !checked.is_finite() {
                return Err(TrainError::NonFiniteLoss {
                    epoch: self.epoch,
                    batch,
                    value: checked,
                });
            }
            self.add(value);
            record(value);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    fn pair(loss: f32, with_penalty: f32) -> Tensor<1> {
        Tensor::from_floats([loss, with_penalty], &Device::flex())
    }

    #[test]
    fn reads_a_block_in_step_order_and_stops_at_the_first_non_finite_loss() {
        let mut losses = EpochLosses::new(3, 1.0, ProgressBar::hidden());
        losses.push(0, pair(2.0, 2.0));
        losses.push(1, pair(0.5, 0.75));
        assert_eq!(losses.pending(), 2);
        let mut seen = Vec::new();
        losses.read(|value| seen.push(value)).unwrap();
        // The penalty is checked, not recorded.
        assert_eq!(seen, [2.0, 0.5]);
        assert_eq!(losses.sum(), 3.5);
        assert_eq!(losses.pending(), 0);

        losses.push(2, pair(1.0, 1.0));
        losses.push(3, pair(1.0, f32::INFINITY));
        losses.push(4, pair(f32::NAN, f32::NAN));
        let error = losses.read(|value| seen.push(value)).unwrap_err();
        assert!(
            matches!(
                error,
                TrainError::NonFiniteLoss { epoch: 3, batch: 3, value } if value == f32::INFINITY
            ),
            "{error}"
        );
        assert_eq!(seen, [2.0, 0.5, 1.0]);
    }
}
