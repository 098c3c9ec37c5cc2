//! The carried recurrent state of a data-parallel batch: gathered for a checkpoint, cut back
//! to a process's rows on resuming.

use super::ProcessGroup;
use super::gradients::float_values;
use burn::tensor::{Tensor, TensorData};
use seqlab_models::RecurrentState;
use std::ops::Range;

/// The carried state of the whole batch, from each process's state of its `rows` (of
/// `batch_rows`): every process's rows summed into place. `None` when no process has one.
pub(crate) fn gather_state(
    group: &dyn ProcessGroup,
    state: Option<&RecurrentState>,
    rows: Range<usize>,
    batch_rows: usize,
) -> Option<RecurrentState> {
    // First the dimensions: [processes with a state, layers, hidden, has a cell] summed.
    let header = match state {
        Some(state) => {
            let [layers, _, hidden] = state.hidden.dims();
            [
                1.0,
                layers as f32,
                hidden as f32,
                f32::from(state.cell.is_some()),
            ]
        }
        None => [0.0; 4],
    };
    let sums = group.sum(4, &mut |range, bucket| {
        bucket.copy_from_slice(&header[range])
    });
    if sums[0] == 0.0 {
        return None;
    }
    let [layers, hidden, cell] = [1, 2, 3].map(|i| (sums[i] / sums[0]).round() as usize);
    let device = state.map(|state| state.hidden.device());
    let parts: Vec<Option<&Tensor<3>>> = match state {
        Some(state) => vec![Some(&state.hidden), state.cell.as_ref()],
        None => vec![None, None],
    };
    let mut whole = Vec::new();
    for part in parts.into_iter().take(1 + cell) {
        let values = part.map(|tensor| float_values(tensor.to_data()));
        let place = |layer: usize, row: usize| (layer * batch_rows + row) * hidden;
        let sums = group.sum(layers * batch_rows * hidden, &mut |range, bucket| {
            bucket.fill(0.0);
            let Some(values) = &values else { return };
            for layer in 0..layers {
                for (local, row) in rows.clone().enumerate() {
                    let (from, to) = (place(layer, row), place(layer, row) + hidden);
                    let source = (layer * rows.len() + local) * hidden;
                    for at in from.max(range.start)..to.min(range.end) {
                        bucket[at - range.start] = values[source + at - from];
                    }
                }
            }
        });
        whole.push(sums);
    }
    let device = device?;
    let mut tensors = whole.into_iter().map(|values| {
        Tensor::<3>::from_data(
            TensorData::new(values, [layers, batch_rows, hidden]),
            &device,
        )
    });
    Some(RecurrentState {
        hidden: tensors.next()?,
        cell: tensors.next(),
    })
}

/// Rows `rows` of a whole batch's carried state (a resumed process's own rows).
pub(crate) fn select_state_rows(state: RecurrentState, rows: Range<usize>) -> RecurrentState {
    RecurrentState {
        hidden: state.hidden.narrow(1, rows.start, rows.len()),
        cell: state
            .cell
            .map(|cell| cell.narrow(1, rows.start, rows.len())),
    }
}
