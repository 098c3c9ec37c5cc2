//! Averaging the gradients of a step across the group, with the step's loss and flags.

use super::ProcessGroup;
use crate::TrainError;
use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use std::ops::Range;

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
    has: fn(&GradientsParams, ParamId) -> bool,
    write: fn(&mut GradientsParams, ParamId, TensorData, &Device),
}

fn read_grad<const D: usize>(grads: &GradientsParams, id: ParamId) -> Option<TensorData> {
    grads.get::<D>(id).map(Tensor::into_data)
}

fn has_grad<const D: usize>(grads: &GradientsParams, id: ParamId) -> bool {
    grads.get::<D>(id).is_some()
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
                has: has_grad::<D>,
                write: write_grad::<D>,
            });
        }
    }
    let mut slots = Slots(Vec::new());
    model.visit(&mut slots);
    slots.0
}

/// A tensor's values as `f32`.
pub(super) fn float_values(data: TensorData) -> Vec<f32> {
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
        let present = local.grads.as_ref().is_some_and(|g| (slot.has)(g, slot.id));
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

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};

    /// A group of `size` processes that all hold this process's values, summing in buckets
    /// of `bucket` floats.
    struct Copies {
        size: usize,
        bucket: usize,
    }

    impl ProcessGroup for Copies {
        fn rank(&self) -> usize {
            0
        }

        fn size(&self) -> usize {
            self.size
        }

        fn sum(&self, len: usize, fill: &mut dyn FnMut(Range<usize>, &mut [f32])) -> Vec<f32> {
            let mut sums = vec![f32::NAN; len];
            for start in (0..len).step_by(self.bucket) {
                let end = (start + self.bucket).min(len);
                fill(start..end, &mut sums[start..end]);
            }
            sums.iter().map(|v| v * self.size as f32).collect()
        }

        fn broadcast(&self, _bytes: &mut Vec<u8>) {}
    }

    fn step(layer: &Linear, device: &Device) -> (GradientsParams, f32) {
        let x = Tensor::<2>::from_data(TensorData::from([[1.0f32, -2.0, 0.5]]), device);
        let loss = (layer.forward(x) * 3.0).sum();
        let value = loss.clone().into_scalar::<f32>();
        (GradientsParams::from_grads(loss.backward(), layer), value)
    }

    fn values<const D: usize>(grads: &GradientsParams, param: &Param<Tensor<D>>) -> Vec<f32> {
        float_values(grads.get::<D>(param.id).unwrap().into_data())
    }

    /// Buckets of 4 floats cut the weight (3 × 2) and the bias (2) across bucket boundaries,
    /// and the tail of flags across another; the averaged gradients of identical processes
    /// are each one's, exactly (weights of 4 scale by powers of two).
    #[test]
    fn buckets_that_cut_parameters_give_back_every_gradient() {
        let device = Device::flex().autodiff();
        let layer = LinearConfig::new(3, 2).init(&device);
        let (grads, value) = step(&layer, &device);
        let expected = (
            values(&grads, &layer.weight),
            values(&grads, layer.bias.as_ref().unwrap()),
        );
        let group = Copies { size: 2, bucket: 4 };
        let local = LocalStep {
            grads: Some(grads),
            weight: 4.0,
            loss: value,
            finite: true,
            stop: false,
        };
        let summed = exchange_gradients(&group, &layer, local, &device.clone().inner()).unwrap();
        assert_eq!(values(&summed.grads, &layer.weight), expected.0);
        assert_eq!(
            values(&summed.grads, layer.bias.as_ref().unwrap()),
            expected.1
        );
        assert_eq!(summed.loss, value);
        assert!(summed.finite && !summed.stop);
    }

    #[test]
    fn a_stop_or_a_non_finite_loss_anywhere_reaches_every_process() {
        let device = Device::flex().autodiff();
        let layer = LinearConfig::new(3, 2).init(&device);
        let group = Copies { size: 3, bucket: 5 };
        let local = |finite, stop| LocalStep {
            grads: Some(step(&layer, &device).0),
            weight: 1.0,
            loss: 1.0,
            finite,
            stop,
        };
        let inner = device.clone().inner();
        let stopped = exchange_gradients(&group, &layer, local(true, true), &inner).unwrap();
        assert!(stopped.stop && stopped.finite);
        let broken = exchange_gradients(&group, &layer, local(false, false), &inner).unwrap();
        assert!(!broken.finite && !broken.stop);
        // No process with rows: nothing to average.
        let empty = LocalStep {
            grads: None,
            weight: 0.0,
            loss: 0.0,
            finite: true,
            stop: false,
        };
        assert!(matches!(
            exchange_gradients(&group, &layer, empty, &inner),
            Err(TrainError::NoBatches(_))
        ));
    }
}
