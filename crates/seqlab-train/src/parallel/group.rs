//! [`ProcessGroup`]: the collective operations data-parallel training needs, and the group
//! current on this thread.

use std::cell::{Cell, RefCell};
use std::ops::Range;
use std::rc::Rc;

/// How many floats each all-reduce carries at most (4 MiB): big enough that the per-message
/// latency is paid a few times a step, small enough that the sum of one bucket overlaps the
/// reading of the next.
pub const BUCKET_FLOATS: usize = 1 << 20;

/// A group of processes training one model together (MPI's communicator): who this process
/// is among them, and the two collective operations a data-parallel step needs. Every process
/// must call the operations in the same order with the same lengths.
pub trait ProcessGroup {
    /// This process's number, from 0.
    fn rank(&self) -> usize;

    /// The number of processes.
    fn size(&self) -> usize;

    /// Sums `len` floats element-wise across the group and returns the sums, the same on
    /// every process. `fill(range, bucket)` writes this process's floats of `range` into
    /// `bucket`; buckets of at most [`BUCKET_FLOATS`] are filled in order, each one's sum
    /// starting as soon as it is filled, so that filling the next overlaps it.
    fn sum(&self, len: usize, fill: &mut dyn FnMut(Range<usize>, &mut [f32])) -> Vec<f32>;

    /// Replaces `bytes` on every process with rank 0's.
    fn broadcast(&self, bytes: &mut Vec<u8>);
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<dyn ProcessGroup>>> = const { RefCell::new(None) };
    static ENDED_TOGETHER: Cell<bool> = const { Cell::new(false) };
}

/// Whether training on this thread ended with an error every process of its group met at the
/// same step (a stop request, a non-finite loss, settings that differ): the processes can end
/// together, with rank 0 reporting it, rather than one ending the others.
pub fn ended_together() -> bool {
    ENDED_TOGETHER.with(Cell::get)
}

/// Records that training ended with an error the whole group met (see [`ended_together`]).
pub(crate) fn end_together() {
    ENDED_TOGETHER.with(|ended| ended.set(true));
}

/// Makes `group` the group that training loops built on this thread train with (when it has
/// more than one process). The command line joins the MPI group it started.
pub fn join_group(group: Rc<dyn ProcessGroup>) {
    CURRENT.with(|current| *current.borrow_mut() = Some(group));
}

/// Trains alone again on this thread.
pub fn leave_group() {
    CURRENT.with(|current| *current.borrow_mut() = None);
}

/// The group current on this thread, if it has more than one process.
pub fn current_group() -> Option<Rc<dyn ProcessGroup>> {
    CURRENT.with(|current| current.borrow().clone().filter(|group| group.size() > 1))
}
