//! A recurrent stack stepped on the host one token at a time, as generation runs it: the
//! weights are copied out of their tensors once, and each step is then a few matrix-vector
//! products and a cell pass per layer, with no tensor operation between them.

use super::step::{self, StepInputs};
use crate::layers::recurrent::CellKind;

/// One layer's weights in PyTorch's layout: `w_ih` `[G·H, I]`, `w_hh` `[G·H, H]`, biases
/// `[G·H]` (zeros for a layer without them).
#[derive(Debug, Clone)]
pub(crate) struct HostLayer {
    pub w_ih: Vec<f32>,
    pub b_ih: Vec<f32>,
    pub w_hh: Vec<f32>,
    pub b_hh: Vec<f32>,
}

/// Unidirectional recurrent layers and their state for one sequence, on the host.
#[derive(Debug, Clone)]
pub(crate) struct HostRecurrent {
    kind: CellKind,
    hidden: usize,
    layers: Vec<HostLayer>,
    /// Per layer, `h` then (LSTM) `c`: `[S·H]`.
    states: Vec<Vec<f32>>,
}

impl HostRecurrent {
    /// The layers with their state: per layer `h` `[H]` and, for an LSTM, `c` `[H]`.
    pub(crate) fn new(
        kind: CellKind,
        hidden: usize,
        layers: Vec<HostLayer>,
        hidden_states: Vec<Vec<f32>>,
        cell_states: Vec<Vec<f32>>,
    ) -> Self {
        let states = hidden_states
            .into_iter()
            .zip(cell_states.into_iter().chain(std::iter::repeat(Vec::new())))
            .map(|(mut h, c)| {
                h.extend(c);
                h
            })
            .collect();
        Self {
            kind,
            hidden,
            layers,
            states,
        }
    }

    /// Reads one input `x` `[I]`; returns the last layer's output `[H]`.
    pub(crate) fn step(&mut self, x: &[f32]) -> &[f32] {
        let hidden = self.hidden;
        for (index, layer) in self.layers.iter().enumerate() {
            let (below, rest) = self.states.split_at_mut(index);
            let input = match below.last() {
                Some(state) => &state[..hidden],
                None => x,
            };
            let state = &mut rest[0];
            let next = step::step(&StepInputs {
                kind: self.kind,
                batch: 1,
                hidden,
                x: input,
                w_ih: &layer.w_ih,
                b_ih: &layer.b_ih,
                w_hh: &layer.w_hh,
                b_hh: &layer.b_hh,
                h0: &state[..hidden],
                c0: &state[hidden..],
            });
            *state = next;
        }
        let last = self.states.last().expect("at least one layer");
        &last[..hidden]
    }
}
