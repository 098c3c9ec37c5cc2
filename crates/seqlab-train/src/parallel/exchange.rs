//! The collective steps of data-parallel training: copying rank 0's weights, comparing the
//! run's settings, averaging gradients, and gathering the carried state for a checkpoint.

use super::ProcessGroup;
use crate::{RunSettings, TrainError};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use seqlab_models::RecurrentState;
use std::ops::Range;

/// Gives every process rank 0's weights (one broadcast of all of them), keeping each
/// parameter's id and whether it is trained.
pub(crate) fn broadcast_model<M: Module>(group: &dyn ProcessGroup, model: M) -> M {
    struct Collect(Vec<u8>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            for value in float_values(param.val().into_data()) {
                self.0.extend_from_slice(&value.to_le_bytes());
            }
        }
    }
    struct Assign {
        bytes: Vec<u8>,
        at: usize,
    }
    impl ModuleMapper for Assign {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            param.map(|tensor| {
                let shape = tensor.shape();
                let count = shape.num_elements();
                let values: Vec<f32> = self.bytes[self.at..self.at + 4 * count]
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                self.at += 4 * count;
                let copy = Tensor::<D>::from_data(TensorData::new(values, shape), &tensor.device());
                copy.set_require_grad(tensor.is_require_grad())
            })
        }
    }
    let mut collect = Collect(Vec::new());
    model.visit(&mut collect);
    let mut bytes = collect.0;
    group.broadcast(&mut bytes);
    model.map(&mut Assign { bytes, at: 0 })
}

/// Checks that every process was started with rank 0's `settings`; on every process, the
/// same error naming the first process that differs and how, when one does.
pub(crate) fn agree_on_settings(
    group: &dyn ProcessGroup,
    settings: &RunSettings,
) -> Result<(), TrainError> {
    let own = serde_json::to_vec(settings).expect("settings always serialise");
    let mut first = own.clone();
    group.broadcast(&mut first);
    let differences = match serde_json::from_slice::<RunSettings>(&first) {
        Ok(first) => first.differences(settings).join(", "),
        Err(error) => error.to_string(),
    };
    let rank = group.rank();
    let differs = group.sum(group.size(), &mut |range, bucket| {
        for (slot, process) in bucket.iter_mut().zip(range) {
            *slot = f32::from(process == rank && !differences.is_empty());
        }
    });
    let Some(other) = differs.iter().position(|&d| d > 0.0) else {
        return Ok(());
    };
    // The first process that differs says how, to all: its bytes, summed with zeros.
    let len = group.sum(1, &mut |_, bucket| {
        bucket[0] = if rank == other {
            differences.len() as f32
        } else {
            0.0
        }
    })[0] as usize;
    let bytes = group.sum(len, &mut |range, bucket| {
        for (slot, at) in bucket.iter_mut().zip(range) {
            *slot = if rank == other {
                f32::from(differences.as_bytes()[at])
            } else {
                0.0
            };
        }
    });
    let bytes: Vec<u8> = bytes.iter().map(|&b| b as u8).collect();
    Err(TrainError::GroupSettings(format!(
        "process {other} of {} was started with other settings than process 0: {}",
        group.size(),
        String::from_utf8_lossy(&bytes)
    )))
}

/// What one process computed for a data-parallel step.
pub(crate) struct LocalStep {
    /// Its gradients; `None` when it had no rows or its loss was not finite.
    pub grads: Option<GradientsParams>,
    /// How many predictions its loss is the mean of (0 with no rows).
    pub weight: f64,
    /// Its loss, as reported.
    pub loss: f32,
    /// Whether its loss (with any penalty) was finite.
    pub finite: bool,
    /// Whether it was asked to stop (Ctrl-C).
    pub stop: bool,
}

/// The group's step: the averaged gradients and what every process agrees on.
pub(crate) struct GroupStep {
    /// The gradients of the whole batch.
    pub grads: GradientsParams,
    /// The whole batch's loss (the weighted mean of the processes' losses).
    pub loss: f32,
    /// Whether every process's loss was finite.
    pub finite: bool,
    /// Whether any process was asked to stop.
    pub stop: bool,
}

/// A float parameter of the model: its id, size, and how to read and write its gradient
/// (functions instantiated for its number of dimensions).
struct Slot {
    id: ParamId,
    shape: Vec<usize>,
    count: usize,
    read: fn(&GradientsParams, ParamId) -> Option<TensorData>,
    write: fn(&mut GradientsParams, ParamId, TensorData, &Device),
}

fn read_grad<const D: usize>(grads: &GradientsParams, id: ParamId) -> Option<TensorData> {
    grads.get::<D>(id).map(Tensor::into_data)
}

fn write_grad<const D: usize>(
    grads: &mut GradientsParams,
    id: ParamId,
    data: TensorData,
    device: &Device,
) {
    grads.register(id, Tensor::<D>::from_data(data, device));
}

fn slots<M: Module>(model: &M) -> Vec<Slot> {
    struct Slots(Vec<Slot>);
    impl ModuleVisitor for Slots {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let shape = param.lazy_shape().dims::<D>().to_vec();
            self.0.push(Slot {
                id: param.id,
                count: shape.iter().product(),
                shape,
                read: read_grad::<D>,
                write: write_grad::<D>,
            });
        }
    }
    let mut slots = Slots(Vec::new());
    model.visit(&mut slots);
    slots.0
}

/// A tensor's values as `f32`.
fn float_values(data: TensorData) -> Vec<f32> {
    data.convert::<f32>()
        .try_into_vec::<f32>()
        .expect("a tensor converted to f32 holds f32")
}

/// Floats after the gradients in the sum: weighted loss, weight, non-finite losses, stop
/// requests; then one per parameter, whether it had a gradient.
const TAIL: usize = 4;

/// Sums every process's weighted gradients (in buckets, each read from the device as its
/// turn comes) with the losses and flags, and returns the group's step; the gradients are
/// built on `device` (the inner device of training).
pub(crate) fn exchange_gradients<M: Module>(
    group: &dyn ProcessGroup,
    model: &M,
    local: LocalStep,
    device: &Device,
) -> Result<GroupStep, TrainError> {
    let slots = slots(model);
    let offsets: Vec<usize> = slots
        .iter()
        .scan(0, |at, slot| {
            let start = *at;
            *at += slot.count;
            Some(start)
        })
        .collect();
    let grads_len: usize = slots.iter().map(|slot| slot.count).sum();
    let weight = local.weight as f32;
    let mut tail = vec![
        local.loss * weight,
        weight,
        f32::from(!local.finite),
        f32::from(local.stop),
    ];
    tail.extend(slots.iter().map(|slot| {
        let present = local
            .grads
            .as_ref()
            .is_some_and(|g| (slot.read)(g, slot.id).is_some());
        f32::from(present)
    }));
    // The parameter being copied out, and its weighted gradient on the host.
    let mut current: Option<(usize, Vec<f32>)> = None;
    let mut fill = |range: Range<usize>, bucket: &mut [f32]| {
        let mut written = 0;
        while written < bucket.len() {
            let at = range.start + written;
            if at >= grads_len {
                let from = at - grads_len;
                let take = (bucket.len() - written).min(tail.len() - from);
                bucket[written..written + take].copy_from_slice(&tail[from..from + take]);
                written += take;
                continue;
            }
            let index = offsets.partition_point(|&offset| offset <= at) - 1;
            if current.as_ref().is_none_or(|(held, _)| *held != index) {
                let slot = &slots[index];
                let values = local
                    .grads
                    .as_ref()
                    .and_then(|grads| (slot.read)(grads, slot.id))
                    .map(|data| {
                        let mut values = float_values(data);
                        values.iter_mut().for_each(|v| *v *= weight);
                        values
                    })
                    .unwrap_or_else(|| vec![0.0; slot.count]);
                current = Some((index, values));
            }
            let values = &current.as_ref().expect("just read").1;
            let from = at - offsets[index];
            let take = (bucket.len() - written).min(values.len() - from);
            bucket[written..written + take].copy_from_slice(&values[from..from + take]);
            written += take;
        }
    };
    let sums = group.sum(grads_len + TAIL + slots.len(), &mut fill);
    let tail = &sums[grads_len..];
    let total = tail[1];
    if total <= 0.0 {
        return Err(TrainError::NoBatches(
            "a data-parallel step (no process had rows)",
        ));
    }
    let mut grads = GradientsParams::new();
    for (index, slot) in slots.iter().enumerate() {
        if tail[TAIL + index] > 0.0 {
            let values: Vec<f32> = sums[offsets[index]..offsets[index] + slot.count]
                .iter()
                .map(|v| v / total)
                .collect();
            (slot.write)(
                &mut grads,
                slot.id,
                TensorData::new(values, slot.shape.clone()),
                device,
            );
        }
    }
    Ok(GroupStep {
        grads,
        loss: tail[0] / total,
        finite: tail[2] == 0.0,
        stop: tail[3] > 0.0,
    })
}

/// Averages this process's gradients `grads` (of a loss that is the mean of `weight`
/// predictions: its rows, or its real tokens) with the group's, weighing each process's by its
/// `weight`: the gradients of the whole batch, the same on every process. For training loops
/// written by hand, between the backward pass and the optimizer's step; `device` is the
/// device training runs on. [`FitLoop`](crate::FitLoop) does this itself.
///
/// A process with no rows in a batch still calls it, with empty `grads` and a weight of 0.
pub fn average_gradients<M: Module>(
    group: &dyn ProcessGroup,
    model: &M,
    grads: GradientsParams,
    weight: f64,
    device: &Device,
) -> Result<GradientsParams, TrainError> {
    let local = LocalStep {
        grads: Some(grads),
        weight,
        loss: 0.0,
        finite: true,
        stop: false,
    };
    Ok(exchange_gradients(group, model, local, &device.clone().inner())?.grads)
}

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
