//! The fused recurrence as a Burn backend extension: one operation for the whole time loop on
//! the CPU backends, with a hand-written backward registered on Burn's autodiff.
//!
//! The concrete backends read their tensors into `f32` buffers, project the input
//! ([`projection`]), run [`kernel`], and write the result back; autodiff keeps the input, the
//! forward's output and gate activations as the state of its backward step, which runs
//! [`kernel::backward`] and the projection's gradients the same way.

// burn-ndarray is deprecated in favour of flex; seqlab supports both while burn ships both.
#![allow(deprecated)]

use std::borrow::Cow;
use std::sync::Arc;

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::{Device as BackendDevice, FloatTensor};
use burn::backend::{Backend, Dispatch, TensorMetadata, backend_extension};
use burn::tensor::{Device, Tensor, TensorData, read_sync};

use super::kernel::{self, Dims, Inputs};
use super::projection::{self, Projection};
use super::step::{self, StepInputs};
use crate::layers::recurrent::CellKind;

#[cfg(feature = "flex")]
use burn::backend::Flex;
#[cfg(feature = "ndarray")]
use burn::backend::NdArray;

/// What the fused operation needs to know besides its tensors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecurrenceSpec {
    /// The recurrence.
    pub kind: CellKind,
    /// Valid steps per sequence; `None` when every sequence fills the input.
    pub lengths: Option<Vec<usize>>,
    /// Whether `x` is already the projected input `x · W_ihᵀ + b_ih` `[B, T, G·H]` (rows of a
    /// vocabulary's projected table, as [`Recurrent::forward_tokens`](crate::Recurrent::forward_tokens)
    /// looks them up): `w_ih` and `b_ih` are then not read and get no gradient. The CPU
    /// operation only.
    pub input_projected: bool,
}

/// A backend that runs a recurrence's time loop as one operation.
#[backend_extension(
    Autodiff,
    Flex: cfg(feature = "flex"),
    NdArray: cfg(feature = "ndarray")
)]
pub trait FusedRecurrenceBackend: Backend {
    /// Runs one layer over the input `x` `[B, T, I]` with `w_ih` `[G·H, I]`, `b_ih` `[G·H]`,
    /// `w_hh` `[G·H, H]`, `b_hh` `[G·H]` and initial state `h0`, `c0` `[B, H]` (`c0` is read
    /// by the LSTM only). Returns `[B, T, S·H]`: `h_t`, then for the LSTM `c_t`. The CPU
    /// backends read their tensors into buffers and run the kernels.
    #[allow(clippy::too_many_arguments)]
    fn fused_recurrence(
        x: FloatTensor<Self>,
        w_ih: FloatTensor<Self>,
        b_ih: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        b_hh: FloatTensor<Self>,
        h0: FloatTensor<Self>,
        c0: FloatTensor<Self>,
        spec: RecurrenceSpec,
    ) -> FloatTensor<Self> {
        Forward::<Self>::run([x, w_ih, b_ih, w_hh, b_hh, h0, c0], spec, false).1
    }

    /// One step for inference from the raw input `x` `[B, I]`, with `w_ih` `[G·H, I]`,
    /// `b_ih` `[G·H]` and the rest as [`FusedRecurrenceBackend::fused_recurrence`]. Returns
    /// `[B, S·H]`. Not tracked by autodiff: generation runs without it.
    #[allow(clippy::too_many_arguments)]
    fn fused_step(
        x: FloatTensor<Self>,
        w_ih: FloatTensor<Self>,
        b_ih: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        b_hh: FloatTensor<Self>,
        h0: FloatTensor<Self>,
        c0: FloatTensor<Self>,
        kind: CellKind,
    ) -> FloatTensor<Self> {
        run_step::<Self>([&x, &w_ih, &b_ih, &w_hh, &b_hh, &h0, &c0], kind)
    }
}

/// Whether `device` runs [`fused_recurrence`]: the CPU backends built in.
pub fn supports(device: &Device) -> bool {
    crate::host::is_host_device(device)
}

/// Runs one step of a layer for inference on tensors of a [`supports_step`] device (see
/// [`FusedRecurrenceBackend::fused_step`] for the shapes).
#[allow(clippy::too_many_arguments)]
pub fn fused_step(
    x: Tensor<2>,
    w_ih: Tensor<2>,
    b_ih: Tensor<1>,
    w_hh: Tensor<2>,
    b_hh: Tensor<1>,
    h0: Tensor<2>,
    c0: Tensor<2>,
    kind: CellKind,
) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as FusedRecurrenceBackend>::fused_step(
        x.into_dispatch(),
        w_ih.into_dispatch(),
        b_ih.into_dispatch(),
        w_hh.into_dispatch(),
        b_hh.into_dispatch(),
        h0.into_dispatch(),
        c0.into_dispatch(),
        kind,
    ))
}

/// Whether `device` runs [`fused_step`] without copying the weights: flex, whose tensors are
/// read in place (elsewhere each step would copy every weight, slower than the plain path).
pub fn supports_step(device: &Device) -> bool {
    #[cfg(feature = "flex")]
    if device.clone().inner() == Device::flex() && !device.is_autodiff() {
        return true;
    }
    let _ = device;
    false
}

/// Runs the fused recurrence on tensors of a [`supports`]ed device (see
/// [`FusedRecurrenceBackend::fused_recurrence`] for the shapes).
#[allow(clippy::too_many_arguments)]
pub fn fused_recurrence(
    x: Tensor<3>,
    w_ih: Tensor<2>,
    b_ih: Tensor<1>,
    w_hh: Tensor<2>,
    b_hh: Tensor<1>,
    h0: Tensor<2>,
    c0: Tensor<2>,
    spec: RecurrenceSpec,
) -> Tensor<3> {
    Tensor::from_dispatch(<Dispatch as FusedRecurrenceBackend>::fused_recurrence(
        x.into_dispatch(),
        w_ih.into_dispatch(),
        b_ih.into_dispatch(),
        w_hh.into_dispatch(),
        b_hh.into_dispatch(),
        h0.into_dispatch(),
        c0.into_dispatch(),
        spec,
    ))
}

/// Runs `work` on one of rayon's threads where it has parallel loops, so that those loops
/// (several a time step) split from inside the pool, a cheap join each, rather than each
/// handing its work over from an outside thread and waiting on a lock. Serial work stays on
/// the calling thread (the hand-over would cost more than it).
pub(crate) fn on_pool<R: Send>(parallel: bool, work: impl FnOnce() -> R + Send) -> R {
    if parallel && rayon::current_thread_index().is_none() {
        rayon::scope(|_| work())
    } else {
        work()
    }
}

/// A CPU tensor's values as `f32`, copied out.
pub(crate) fn read<B: Backend>(tensor: FloatTensor<B>) -> Vec<f32> {
    // The CPU backends complete reads at once; their data is already in memory.
    read_sync(B::float_into_data(tensor))
        .expect("a CPU backend reads its own tensors")
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("converted to f32")
}

/// A tensor's values: flex's read in place where they are one contiguous `f32` run, any
/// other tensor copied out.
fn values<B: Backend>(tensor: &FloatTensor<B>) -> Cow<'_, [f32]> {
    #[cfg(feature = "flex")]
    if let Some(flex) = (tensor as &dyn std::any::Any).downcast_ref::<FloatTensor<Flex>>()
        && let Some(values) = flex.as_slice::<f32>()
    {
        return Cow::Borrowed(values);
    }
    copied::<B>(tensor)
}

/// A tensor's values, copied out.
fn copied<B: Backend>(tensor: &FloatTensor<B>) -> Cow<'_, [f32]> {
    Cow::Owned(read::<B>(tensor.clone()))
}

/// One inference step on `[x, w_ih, b_ih, w_hh, b_hh, h0, c0]`.
fn run_step<B: Backend>(tensors: [&FloatTensor<B>; 7], kind: CellKind) -> FloatTensor<B> {
    let [x, w_ih, b_ih, w_hh, b_hh, h0, c0] = tensors;
    let device = x.device();
    let [batch, hidden] = h0.shape().dims();
    let out = step::step(&StepInputs {
        kind,
        batch,
        hidden,
        x: &values::<B>(x),
        w_ih: &values::<B>(w_ih),
        b_ih: &values::<B>(b_ih),
        w_hh: &values::<B>(w_hh),
        b_hh: &values::<B>(b_hh),
        h0: &values::<B>(h0),
        c0: &values::<B>(c0),
    });
    let width = out.len() / batch;
    write::<B>(out, vec![batch, width], &device)
}

/// A tensor of `shape` on `device` holding `values`.
pub(crate) fn write<B: Backend>(
    values: Vec<f32>,
    shape: Vec<usize>,
    device: &BackendDevice<B>,
) -> FloatTensor<B> {
    B::float_from_data(TensorData::new(values, shape), device)
}

/// The input projection's sizes and operands: the input `[B, T, I]` and its weights
/// `[G·H, I]`, kept as tensors for the gradients (flex's are read in place again by the
/// backward).
#[derive(Debug)]
struct ProjectedFrom<B: Backend> {
    sizes: Projection,
    x: FloatTensor<B>,
    w_ih: FloatTensor<B>,
}

/// The forward's inputs and results that its backward needs.
#[derive(Debug)]
struct Forward<B: Backend> {
    dims: Dims,
    /// `None` when the input came projected ([`RecurrenceSpec::input_projected`]).
    projection: Option<ProjectedFrom<B>>,
    /// The input's width: `I`, or `G·H` when it came projected.
    input_width: usize,
    w_hh: Vec<f32>,
    b_hh: Vec<f32>,
    h0: Vec<f32>,
    c0: Vec<f32>,
    lengths: Option<Vec<usize>>,
    /// The output `[B, T, S·H]`, the same tensor the operation returns (flex's is read in
    /// place again by the backward; no second copy is kept).
    out: Option<FloatTensor<B>>,
    saved: Vec<f32>,
}

impl<B: Backend> Forward<B> {
    /// Runs the layer on `[x, w_ih, b_ih, w_hh, b_hh, h0, c0]`; keeps what the backward needs
    /// when `save` is set.
    fn run(
        tensors: [FloatTensor<B>; 7],
        spec: RecurrenceSpec,
        save: bool,
    ) -> (Self, FloatTensor<B>) {
        let [x, w_ih, b_ih, w_hh, b_hh, h0, c0] = tensors;
        let device = x.device();
        let [batch, time, input] = x.shape().dims();
        let [_, hidden] = h0.shape().dims();
        let dims = Dims {
            batch,
            time,
            hidden,
            kind: spec.kind,
        };
        let gated = spec.kind.gates() * hidden;
        let (projection, projected) = if spec.input_projected {
            assert_eq!(input, gated, "a projected input is G·H wide");
            (None, Some(x))
        } else {
            let sizes = Projection {
                rows: batch * time,
                input,
                gated,
            };
            (Some(ProjectedFrom { sizes, x, w_ih }), None)
        };
        let mut forward = Self {
            dims,
            projection,
            input_width: input,
            w_hh: read::<B>(w_hh),
            b_hh: read::<B>(b_hh),
            h0: read::<B>(h0),
            c0: read::<B>(c0),
            lengths: spec.lengths,
            out: None,
            saved: Vec::new(),
        };
        let parallel = dims.is_parallel() || forward.projects_in_parallel();
        let (out, saved) = on_pool(parallel, || {
            let xp = match (&forward.projection, &projected) {
                (Some(from), _) => Cow::Owned(from.sizes.forward(
                    &values::<B>(&from.x),
                    &values::<B>(&from.w_ih),
                    &values::<B>(&b_ih),
                )),
                (None, Some(xp)) => values::<B>(xp),
                (None, None) => unreachable!("the input is kept or projected"),
            };
            kernel::forward(dims, &xp, &forward.inputs(), save)
        });
        let shape = vec![batch, time, dims.out_width()];
        let tensor = write::<B>(out, shape, &device);
        if save {
            forward.out = Some(tensor.clone());
            forward.saved = saved;
        }
        (forward, tensor)
    }

    /// Whether the input projection's products split across threads.
    fn projects_in_parallel(&self) -> bool {
        self.projection
            .as_ref()
            .is_some_and(|from| from.sizes.is_parallel())
    }

    fn inputs(&self) -> Inputs<'_> {
        Inputs {
            w_hh: &self.w_hh,
            b_hh: &self.b_hh,
            h0: &self.h0,
            c0: &self.c0,
            lengths: self.lengths.as_deref(),
        }
    }
}

/// Flex's tensors are read in place (see `values`): a step reads each weight once and
/// copies none.
#[cfg(feature = "flex")]
impl FusedRecurrenceBackend for Flex {}

#[cfg(feature = "ndarray")]
impl FusedRecurrenceBackend for NdArray {}

#[derive(Debug)]
struct RecurrenceBackward;

impl<B: Backend> Backward<B, 7> for RecurrenceBackward {
    type State = Arc<Forward<B>>;

    fn backward(self, ops: Ops<Self::State, 7>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [
            node_x,
            node_w_ih,
            node_b_ih,
            node_w_hh,
            node_b_hh,
            node_h0,
            node_c0,
        ] = ops.parents;
        let d_out = grads.consume::<B>(&ops.node);
        let device = d_out.device();
        let forward = ops.state;
        let Dims {
            batch,
            time,
            hidden,
            kind,
        } = forward.dims;
        let (gated, input) = (kind.gates() * hidden, forward.input_width);
        let wanted = |node: &Option<_>| node.is_some();
        let (want_x, want_w_ih, want_b_ih) =
            (wanted(&node_x), wanted(&node_w_ih), wanted(&node_b_ih));
        let parallel = forward.dims.is_parallel() || forward.projects_in_parallel();
        let (g, d_x, d_w_ih, d_b_ih) = on_pool(parallel, || {
            let mut g = kernel::backward(
                forward.dims,
                &forward.inputs(),
                &values::<B>(forward.out.as_ref().expect("kept when tracked")),
                &forward.saved,
                &values::<B>(&d_out),
            );
            let Some(from) = &forward.projection else {
                // The input came projected: its gradient is the projection's.
                let d_x = want_x.then(|| std::mem::take(&mut g.xp));
                return (g, d_x, None, None);
            };
            let d_x = want_x.then(|| from.sizes.input_gradient(&g.xp, &values::<B>(&from.w_ih)));
            let d_w_ih =
                want_w_ih.then(|| from.sizes.weight_gradient(&g.xp, &values::<B>(&from.x)));
            // The input and recurrent biases share their gradient except in the GRU's
            // candidate.
            let d_b_ih = want_b_ih.then(|| match kind {
                CellKind::Gru => projection::column_sums(&g.xp, gated),
                _ => g.b_hh.clone(),
            });
            (g, d_x, d_w_ih, d_b_ih)
        });
        let c0 = if kind == CellKind::Lstm {
            g.c0
        } else {
            vec![0.0; batch * hidden]
        };
        for (node, values, shape) in [
            (node_x, d_x, vec![batch, time, input]),
            (node_w_ih, d_w_ih, vec![gated, input]),
            (node_b_ih, d_b_ih, vec![gated]),
            (node_w_hh, Some(g.w_hh), vec![gated, hidden]),
            (node_b_hh, Some(g.b_hh), vec![gated]),
            (node_h0, Some(g.h0), vec![batch, hidden]),
            (node_c0, Some(c0), vec![batch, hidden]),
        ] {
            if let (Some(node), Some(values)) = (node, values) {
                grads.register::<B>(node.id, write::<B>(values, shape, &device));
            }
        }
    }
}

impl<B: FusedRecurrenceBackend, C: CheckpointStrategy> FusedRecurrenceBackend for Autodiff<B, C> {
    fn fused_recurrence(
        x: FloatTensor<Self>,
        w_ih: FloatTensor<Self>,
        b_ih: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        b_hh: FloatTensor<Self>,
        h0: FloatTensor<Self>,
        c0: FloatTensor<Self>,
        spec: RecurrenceSpec,
    ) -> FloatTensor<Self> {
        let tensors = [x, w_ih, b_ih, w_hh, b_hh, h0, c0];
        match RecurrenceBackward
            .prepare::<C>(tensors.each_ref().map(|tensor| tensor.node()))
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let primitives = tensors.each_ref().map(|tensor| tensor.primitive().clone());
                let (forward, out) = Forward::<B>::run(primitives, spec, true);
                prep.finish(Arc::new(forward), out)
            }
            OpsKind::UnTracked(prep) => {
                let [x, w_ih, b_ih, w_hh, b_hh, h0, c0] =
                    tensors.map(|tensor| tensor.into_primitive());
                prep.finish(B::fused_recurrence(x, w_ih, b_ih, w_hh, b_hh, h0, c0, spec))
            }
        }
    }
}
