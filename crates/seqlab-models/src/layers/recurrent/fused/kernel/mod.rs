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
use std::ops::Range;

/// Recurrent products (`B · G·H · H` multiply-adds a step) below which the time loop splits
/// the batch into groups of sequences, one thread each, rather than splitting every step: a
/// step this small costs about what handing it to another thread and back does. Split by
/// sequences, config a (`64 × 256 × 64` a step) trains about 9% faster and infers 11%, b
/// (`64 × 64 × 64`) 12% and 29% (medians of 4 alternating runs on a 2-core Zen 4); config d
/// (`32 × 800 × 200`) and c (`32 × 2048 × 512`) split by steps, each thread reading only its
/// share of `W_hh` at each step.
const SPLIT_BY_SEQUENCES_BELOW: usize = 2 * 1024 * 1024;

/// Multiply-adds of a whole time loop (`B · T · G·H · H`) below which it stays on one thread:
/// waking a second costs more than it saves (config e's loops, `32 × 64 × 80 × 20`, trained
/// 7–24% slower split).
const SPLIT_AT_LEAST: usize = 4 * 1024 * 1024;

/// Sequences a group holds at least.
const MIN_GROUP: usize = 8;

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

    /// Whether the time loop splits work across threads (its sequences, its cell passes or
    /// its recurrent products).
    pub fn is_parallel(&self) -> bool {
        self.sequences_per_group().is_some()
            || self.batch * self.hidden >= PARALLEL_CELLS
            || self.batch * self.gated() * self.hidden >= PARALLEL_WORK
    }

    /// Sequences per group where the batch splits into groups whose time loops run on threads
    /// of their own, with no hand-over between steps; `None` where the steps split across
    /// threads instead (or nothing does).
    fn sequences_per_group(&self) -> Option<usize> {
        let threads = rayon::current_num_threads();
        let step = self.batch * self.gated() * self.hidden;
        if threads < 2 || step >= SPLIT_BY_SEQUENCES_BELOW || step * self.time < SPLIT_AT_LEAST {
            return None;
        }
        let groups = (self.batch / MIN_GROUP).clamp(1, threads);
        (groups > 1).then(|| self.batch.div_ceil(groups))
    }

    /// The sequences of group `group` of `per_group` sequences each (the last one may have
    /// fewer).
    fn group_sequences(&self, group: usize, per_group: usize) -> Range<usize> {
        let first = group * per_group;
        first..(first + per_group).min(self.batch)
    }

    /// The sizes of the group of sequences `sequences`.
    fn group(&self, sequences: &Range<usize>) -> Dims {
        Dims {
            batch: sequences.len(),
            ..*self
        }
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

impl<'a> Inputs<'a> {
    /// The inputs of the sequences `sequences` (`hidden` values a state).
    fn group(&self, sequences: Range<usize>, hidden: usize) -> Inputs<'a> {
        let rows = |state: &'a [f32]| {
            if state.is_empty() {
                state
            } else {
                &state[sequences.start * hidden..sequences.end * hidden]
            }
        };
        Inputs {
            h0: rows(self.h0),
            c0: rows(self.c0),
            lengths: self.lengths.map(|lengths| &lengths[sequences.clone()]),
            ..*self
        }
    }
}

fn active(lengths: Option<&[usize]>, b: usize, t: usize) -> bool {
    lengths.is_none_or(|l| t < l[b])
}
