//! The fused recurrence on the CubeCL backends (wgpu, CUDA): one layer and direction as one
//! operation, one autodiff node with a hand-written backward, as [`super::fused`] is on the
//! CPU.
//!
//! Forward, the input projection of every step is one matrix product, then each time step is
//! the recurrent product `h(t−1) · W_hhᵀ` (Burn's matrix product) and one kernel that runs
//! the cell of every unit: all its gates, the bias, the lengths' masking, the state update,
//! the output row and the gates the backward keeps. Backward, each step is the product of the
//! step after's gate gradients with `W_hh` and one kernel for the cell's backward; the
//! gradients of the weights, biases and input are matrix products over all steps at once.
//! Nothing is read back to the host inside the operation.
//!
//! The product inside the cell kernel instead (one launch a step, shared-memory tiles) was
//! 2–4× slower on Mesa's lavapipe than Burn's product followed by the cell
//! (`docs/performance.md`); a GPU's figures are not measured yet.
//!
//! | tensor | shape |
//! |---|---|
//! | `x` | `[B, T, I]` |
//! | `w_ih`, `w_hh` | `[G·H, I]`, `[G·H, H]` (PyTorch's layout) |
//! | `b_ih`, `b_hh` | `[G·H]` |
//! | `h0`, `c0` | `[B, H]` (`c0` read by the LSTM only) |
//! | output | `[B, T, S·H]`: `h_t`, and for the LSTM `c_t` after it |
//!
//! With lengths, steps at or past a sequence's length leave its state unchanged.

#[cfg(feature = "cube")]
mod backend;
#[cfg(feature = "cube")]
mod kernels;

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, ExtensionType, backend_extension};
use burn::tensor::{Device, Tensor};

use super::fused::RecurrenceSpec;

/// What the backward of one recurrence reads: its inputs (the biases aside) and what its
/// forward kept.
#[derive(ExtensionType, Debug, Clone)]
pub struct SavedRecurrence<B: Backend> {
    /// The input `[B, T, I]`.
    pub x: FloatTensor<B>,
    /// `[G·H, I]`.
    pub w_ih: FloatTensor<B>,
    /// `[G·H, H]`.
    pub w_hh: FloatTensor<B>,
    /// `[B, H]`.
    pub h0: FloatTensor<B>,
    /// `[B, H]`.
    pub c0: FloatTensor<B>,
    /// The forward's output `[B, T, S·H]`.
    pub out: FloatTensor<B>,
    /// The gates the forward kept: `[B, T, 4·H]` for the LSTM (`i, f, g, o`) and the GRU
    /// (`reset, update, n, h_n`); one unused value for the RNN, whose backward reads only the
    /// output.
    pub gates: FloatTensor<B>,
}

/// The gradients of a scalar loss with respect to each input of one recurrence.
#[derive(ExtensionType, Debug)]
pub struct RecurrenceGradients<B: Backend> {
    /// `[B, T, I]`.
    pub x: FloatTensor<B>,
    /// `[G·H, I]`.
    pub w_ih: FloatTensor<B>,
    /// `[G·H]`.
    pub b_ih: FloatTensor<B>,
    /// `[G·H, H]`.
    pub w_hh: FloatTensor<B>,
    /// `[G·H]`.
    pub b_hh: FloatTensor<B>,
    /// `[B, H]`.
    pub h0: FloatTensor<B>,
    /// `[B, H]` (zeros but for the LSTM).
    pub c0: FloatTensor<B>,
}

/// A backend that runs a recurrence's time loop on the device: per step a matrix product and
/// one kernel each way.
#[backend_extension(Autodiff, Cube: cfg(feature = "cube"))]
pub trait CubeRecurrenceBackend: Backend {
    /// Runs one layer in one direction (see the module's table for the shapes). Returns the
    /// output `[B, T, S·H]`.
    #[allow(clippy::too_many_arguments)]
    fn cube_recurrence(
        x: FloatTensor<Self>,
        w_ih: FloatTensor<Self>,
        b_ih: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        b_hh: FloatTensor<Self>,
        h0: FloatTensor<Self>,
        c0: FloatTensor<Self>,
        spec: RecurrenceSpec,
    ) -> FloatTensor<Self>;

    /// [`CubeRecurrenceBackend::cube_recurrence`], also returning the gates the backward
    /// reads ([`SavedRecurrence::gates`]).
    #[allow(clippy::too_many_arguments)]
    fn cube_recurrence_saving(
        x: FloatTensor<Self>,
        w_ih: FloatTensor<Self>,
        b_ih: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        b_hh: FloatTensor<Self>,
        h0: FloatTensor<Self>,
        c0: FloatTensor<Self>,
        spec: RecurrenceSpec,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// The gradients of every input from `d_out`, the gradient of the output.
    fn cube_recurrence_backward(
        #[extension_type] saved: SavedRecurrence<Self>,
        d_out: FloatTensor<Self>,
        spec: RecurrenceSpec,
    ) -> RecurrenceGradients<Self>;
}

/// Whether `device` runs [`cube_recurrence`]: a CubeCL device (wgpu, CUDA) built in.
pub fn supports(device: &Device) -> bool {
    #[cfg(feature = "cube")]
    if matches!(
        device.clone().inner().as_dispatch(),
        burn::backend::DispatchDevice::Cube(_)
    ) {
        return true;
    }
    let _ = device;
    false
}

/// Runs the recurrence on tensors of a [`supports`]ed device (see the module's table for the
/// shapes).
#[allow(clippy::too_many_arguments)]
pub fn cube_recurrence(
    x: Tensor<3>,
    w_ih: Tensor<2>,
    b_ih: Tensor<1>,
    w_hh: Tensor<2>,
    b_hh: Tensor<1>,
    h0: Tensor<2>,
    c0: Tensor<2>,
    spec: RecurrenceSpec,
) -> Tensor<3> {
    assert!(
        !spec.input_projected,
        "the GPU operation projects its own input"
    );
    Tensor::from_dispatch(<Dispatch as CubeRecurrenceBackend>::cube_recurrence(
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

/// The recurrence's backward node: the inner backend's backward, its gradients handed to the
/// inputs that want them.
#[derive(Debug)]
struct RecurrenceBackward;

impl<B: CubeRecurrenceBackend> Backward<B, 7> for RecurrenceBackward {
    type State = (SavedRecurrence<B>, RecurrenceSpec);

    fn backward(self, ops: Ops<Self::State, 7>, grads: &mut Gradients, _: &mut Checkpointer) {
        let d_out = grads.consume::<B>(&ops.node);
        let (saved, spec) = ops.state;
        let gradients = B::cube_recurrence_backward(saved, d_out, spec);
        let RecurrenceGradients {
            x,
            w_ih,
            b_ih,
            w_hh,
            b_hh,
            h0,
            c0,
        } = gradients;
        for (node, gradient) in ops
            .parents
            .into_iter()
            .zip([x, w_ih, b_ih, w_hh, b_hh, h0, c0])
        {
            if let Some(node) = node {
                grads.register::<B>(node.id, gradient);
            }
        }
    }
}

impl<B: CubeRecurrenceBackend, C: CheckpointStrategy> CubeRecurrenceBackend for Autodiff<B, C> {
    fn cube_recurrence(
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
                let [x, w_ih, b_ih, w_hh, b_hh, h0, c0] =
                    tensors.each_ref().map(|tensor| tensor.primitive().clone());
                let (out, gates) = B::cube_recurrence_saving(
                    x.clone(),
                    w_ih.clone(),
                    b_ih,
                    w_hh.clone(),
                    b_hh,
                    h0.clone(),
                    c0.clone(),
                    spec.clone(),
                );
                let saved = SavedRecurrence {
                    x,
                    w_ih,
                    w_hh,
                    h0,
                    c0,
                    out: out.clone(),
                    gates,
                };
                prep.finish((saved, spec), out)
            }
            OpsKind::UnTracked(prep) => {
                let [x, w_ih, b_ih, w_hh, b_hh, h0, c0] =
                    tensors.map(|tensor| tensor.into_primitive());
                prep.finish(B::cube_recurrence(x, w_ih, b_ih, w_hh, b_hh, h0, c0, spec))
            }
        }
    }

    fn cube_recurrence_saving(
        x: FloatTensor<Self>,
        w_ih: FloatTensor<Self>,
        b_ih: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        b_hh: FloatTensor<Self>,
        h0: FloatTensor<Self>,
        c0: FloatTensor<Self>,
        spec: RecurrenceSpec,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let _ = (x, w_ih, b_ih, w_hh, b_hh, h0, c0, spec);
        unreachable!("the recurrence keeps its gates on the inner backend, never under autodiff")
    }

    fn cube_recurrence_backward(
        saved: SavedRecurrence<Self>,
        d_out: FloatTensor<Self>,
        spec: RecurrenceSpec,
    ) -> RecurrenceGradients<Self> {
        let _ = (saved, d_out, spec);
        unreachable!("the recurrence's gradient runs on the inner backend, never under autodiff")
    }
}
