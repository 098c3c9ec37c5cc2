//! Reads of values back from the device, counted: on a GPU each one waits for every kernel
//! queued before it, so the training loop makes as few as it can (see
//! [`FitLoop::with_loss_read_every`](crate::FitLoop::with_loss_read_every)).

use std::cell::Cell;

use burn::tensor::Tensor;

use crate::TrainError;

thread_local! {
    static HOST_READS: Cell<u64> = const { Cell::new(0) };
}

/// How many times seqlab-train's training (the loop, the trainer, clipping) has read values
/// back from a device on this thread: what to compare before and after a run to see how
/// often it waited for the device. Reads a task or a model makes itself are not counted.
///
/// ```
/// let before = seqlab_train::host_reads();
/// // ... train ...
/// let waits = seqlab_train::host_reads() - before;
/// println!("the training read from the device {waits} times");
/// ```
pub fn host_reads() -> u64 {
    HOST_READS.with(Cell::get)
}

/// Reads a one-element tensor, turning a device failure into [`TrainError::Device`].
pub(crate) fn read_scalar(tensor: Tensor<1>) -> Result<f32, TrainError> {
    read_values(tensor).map(|values| values[0])
}

/// Reads a tensor's values as `f32` in one read, turning a device failure into
/// [`TrainError::Device`].
pub(crate) fn read_values(tensor: Tensor<1>) -> Result<Vec<f32>, TrainError> {
    HOST_READS.with(|reads| reads.set(reads.get() + 1));
    tensor
        .try_into_vec_as::<f32>()
        .map_err(|e| TrainError::device(&e.to_string()))
}
