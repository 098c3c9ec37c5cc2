//! The recurrence of one layer in one direction on plain `f32` buffers, forward and backward.
//!
//! The input projection `xp = x · W_ihᵀ + b_ih` of every step is computed before
//! ([`super::projection`]: one large matrix product); here each step costs one
//! `[B, H] × [H, G·H]` product and one pass over the gates. Buffers are batch-first and
//! row-major:
//!
//! | buffer | shape |
//! |---|---|
//! | `xp` | `[B, T, G·H]` |
//! | `w_hh` | `[G·H, H]` (PyTorch's layout) |
//! | `b_hh` | `[G·H]` |
//! | `h0`, `c0` | `[B, H]` |
//! | output | `[B, T, S·H]`: `h_t`, and for the LSTM `c_t` after it (`S = 2`) |
//!
//! With `lengths`, steps at or past a sequence's length leave its state unchanged, so that the
//! output at the last step is each sequence's final state.

mod backward;
mod cells;
mod forward;
#[cfg(test)]
mod tests;

pub(crate) use backward::backward;
pub(crate) use cells::cell;
pub(crate) use forward::forward;

use super::packed::PARALLEL_WORK;
use crate::layers::recurrent::CellKind;
use forward::PARALLEL_CELLS;

/// The sizes of one recurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dims {
    pub batch: usize,
    pub time: usize,
    pub hidden: usize,
    pub kind: CellKind,
}

impl Dims {
    fn gated(&self) -> usize {
        self.kind.gates() * self.hidden
    }

    /// Values per step in the output: `h`, and `c` for the LSTM.
    pub fn out_width(&self) -> usize {
        match self.kind {
            CellKind::Lstm => 2 * self.hidden,
            _ => self.hidden,
        }
    }

    /// Whether the time loop splits work across threads (its cell passes or its recurrent
    /// products).
    pub fn is_parallel(&self) -> bool {
        self.batch * self.hidden >= PARALLEL_CELLS
            || self.batch * self.gated() * self.hidden >= PARALLEL_WORK
    }

    /// Values per step that the backward pass needs besides the output.
    fn saved_width(&self) -> usize {
        match self.kind {
            CellKind::Lstm | CellKind::Gru => 4 * self.hidden,
            CellKind::Rnn(_) => 0,
        }
    }
}

/// The inputs of a recurrence besides the projected input, borrowed: what the backward pass
/// needs again.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Inputs<'a> {
    pub w_hh: &'a [f32],
    pub b_hh: &'a [f32],
    pub h0: &'a [f32],
    /// Read by the LSTM only.
    pub c0: &'a [f32],
    /// Valid steps per sequence; `None` when every sequence fills all `T` steps.
    pub lengths: Option<&'a [usize]>,
}

/// Gradients of a scalar loss with respect to each input of the recurrence.
#[derive(Debug)]
pub(crate) struct Gradients {
    pub xp: Vec<f32>,
    pub w_hh: Vec<f32>,
    pub b_hh: Vec<f32>,
    pub h0: Vec<f32>,
    pub c0: Vec<f32>,
}

fn active(lengths: Option<&[usize]>, b: usize, t: usize) -> bool {
    lengths.is_none_or(|l| t < l[b])
}
