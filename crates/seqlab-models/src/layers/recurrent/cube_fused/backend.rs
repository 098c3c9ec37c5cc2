//! [`CubeRecurrenceBackend`] on the CubeCL backends: Burn's matrix products for the input
//! projection, each step's recurrent product and the weight gradients, and per time step one
//! launch of [`super::kernels`] each way. Nothing is read back to the host.

use super::kernels::{self, IDENTITY, RELU, TANH};
use super::{CubeRecurrenceBackend, RecurrenceGradients, SavedRecurrence};
use crate::layers::recurrent::fused::RecurrenceSpec;
use crate::layers::recurrent::{CellKind, Nonlinearity};
use burn::backend::cubecl::dtype_to_storage_type;
use burn::backend::ops::{FloatTensorOps, IntTensorOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Shape, Slice, TensorData, TensorMetadata};
use burn_cubecl::CubeBackend;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;
use cubecl::{CubeCount, CubeDim, calculate_cube_count_elemwise};

impl CubeRecurrenceBackend for CubeBackend {
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
        forward([x, w_ih, b_ih, w_hh, b_hh, h0, c0], &spec, false).0
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
        forward([x, w_ih, b_ih, w_hh, b_hh, h0, c0], &spec, true)
    }

    fn cube_recurrence_backward(
        saved: SavedRecurrence<Self>,
        d_out: FloatTensor<Self>,
        spec: RecurrenceSpec,
    ) -> RecurrenceGradients<Self> {
        backward(saved, d_out, &spec)
    }
}

/// An empty contiguous tensor of `dims` beside `like`.
fn empty(like: &CubeTensor, dims: &[usize]) -> CubeTensor {
    let shape = Shape::from(dims.to_vec());
    let handle = like.client.empty(shape.num_elements() * like.dtype.size());
    CubeTensor::new_contiguous(
        like.client.clone(),
        like.device.clone(),
        shape,
        handle,
        like.dtype,
    )
}

/// A contiguous copy of `tensor` that the kernels may write without touching the original.
fn fresh_copy(tensor: CubeTensor) -> CubeTensor {
    into_contiguous(tensor).copy()
}

/// Each sequence's length `[B]` (`time` for all without `lengths`), on `like`'s device.
fn lengths_tensor(
    spec: &RecurrenceSpec,
    batch: usize,
    time: usize,
    like: &CubeTensor,
) -> CubeTensor {
    let lengths: Vec<u32> = match &spec.lengths {
        Some(lengths) => lengths.iter().map(|&length| length as u32).collect(),
        None => vec![time as u32; batch],
    };
    CubeBackend::int_from_data(TensorData::new(lengths, [batch]), &like.device)
}

/// The launch of one thread per hidden unit of every sequence of `state` `[B, H]`.
struct Launch {
    count: CubeCount,
    dim: CubeDim,
    dtypes: [ElemType; 2],
}

impl Launch {
    fn new(state: &CubeTensor, lengths: &CubeTensor) -> Self {
        let units = state.shape().num_elements();
        let dim = CubeDim::new(&state.client, units);
        Self {
            count: calculate_cube_count_elemwise(&state.client, units, dim),
            dim,
            dtypes: [
                dtype_to_storage_type(state.dtype),
                dtype_to_storage_type(lengths.dtype),
            ],
        }
    }
}

fn arg(tensor: &CubeTensor) -> TensorArg {
    tensor.clone().into_tensor_arg()
}

/// The RNN's nonlinearity as the kernels' code.
fn activation(nonlinearity: Nonlinearity) -> u32 {
    match nonlinearity {
        Nonlinearity::Tanh => TANH,
        Nonlinearity::Relu => RELU,
        Nonlinearity::Identity => IDENTITY,
    }
}

/// The projected input `x · W_ihᵀ + b_ih` `[B·T, G·H]`, contiguous.
fn project(x: CubeTensor, w_ih: CubeTensor, b_ih: CubeTensor) -> CubeTensor {
    let [batch, time, input] = x.shape().dims();
    let gated = b_ih.shape().num_elements();
    let x = CubeBackend::float_reshape(into_contiguous(x), Shape::new([batch * time, input]));
    let xp = CubeBackend::float_matmul(x, CubeBackend::float_transpose(w_ih));
    let bias = CubeBackend::float_reshape(into_contiguous(b_ih), Shape::new([1, gated]));
    into_contiguous(CubeBackend::float_add(xp, bias))
}

/// The time loop: the output `[B, T, S·H]` and, when `save`, the gates the backward reads
/// (`[B, T, 4·H]` for the LSTM and GRU; a one-value placeholder otherwise).
fn forward(
    tensors: [CubeTensor; 7],
    spec: &RecurrenceSpec,
    save: bool,
) -> (CubeTensor, CubeTensor) {
    let [x, w_ih, b_ih, w_hh, b_hh, h0, c0] = tensors;
    let [batch, time, _] = x.shape().dims();
    let [_, hidden] = h0.shape().dims();
    let xp = project(x, w_ih, b_ih);
    let w_hh_t = CubeBackend::float_transpose(w_hh);
    let b_hh = into_contiguous(b_hh);
    let lengths = lengths_tensor(spec, batch, time, &xp);
    let h0 = into_contiguous(h0);
    let launch = Launch::new(&h0, &lengths);
    let client = h0.client.clone();
    let width = match spec.kind {
        CellKind::Lstm => 2 * hidden,
        _ => hidden,
    };
    let out = empty(&xp, &[batch, time, width]);
    let saved = match spec.kind {
        CellKind::Lstm | CellKind::Gru if save => empty(&xp, &[batch, time, 4 * hidden]),
        _ => empty(&xp, &[1]),
    };
    // The hidden state: read from one buffer, written to the other.
    let buffers = [empty(&h0, &[batch, hidden]), empty(&h0, &[batch, hidden])];
    // The LSTM's cell state, updated in place (the other cells have none).
    let c = (spec.kind == CellKind::Lstm).then(|| fresh_copy(c0));
    let mut h = h0;
    for t in 0..time {
        let h_next = &buffers[t % 2];
        let hp = into_contiguous(CubeBackend::float_matmul(h.clone(), w_hh_t.clone()));
        let step = t as u32;
        match spec.kind {
            CellKind::Lstm => kernels::lstm_forward::launch(
                &client,
                launch.count.clone(),
                launch.dim,
                arg(&xp),
                arg(&hp),
                arg(&b_hh),
                arg(&lengths),
                arg(&h),
                arg(h_next),
                arg(c.as_ref().expect("an LSTM's cell state")),
                arg(&out),
                arg(&saved),
                step,
                save,
                launch.dtypes,
            ),
            CellKind::Gru => kernels::gru_forward::launch(
                &client,
                launch.count.clone(),
                launch.dim,
                arg(&xp),
                arg(&hp),
                arg(&b_hh),
                arg(&lengths),
                arg(&h),
                arg(h_next),
                arg(&out),
                arg(&saved),
                step,
                save,
                launch.dtypes,
            ),
            CellKind::Rnn(nonlinearity) => kernels::rnn_forward::launch(
                &client,
                launch.count.clone(),
                launch.dim,
                arg(&xp),
                arg(&hp),
                arg(&b_hh),
                arg(&lengths),
                arg(&h),
                arg(h_next),
                arg(&out),
                step,
                activation(nonlinearity),
                launch.dtypes,
            ),
        }
        h = h_next.clone();
    }
    (out, saved)
}

/// `[rows, columns]` of a `[B, T, columns]` tensor.
fn rows(tensor: CubeTensor) -> CubeTensor {
    let dims = tensor.shape().dims::<3>();
    CubeBackend::float_reshape(tensor, Shape::new([dims[0] * dims[1], dims[2]]))
}

/// Column sums `[columns]` of `[rows, columns]`.
fn column_sums(tensor: CubeTensor) -> CubeTensor {
    let columns = tensor.shape().dims::<2>()[1];
    CubeBackend::float_reshape(CubeBackend::float_sum_dim(tensor, 0), Shape::new([columns]))
}

/// The backward time loop (last step first; a step is the product through `W_hh` of the step
/// after's gradients and one launch), then the gradients of the weights, biases, input and
/// initial state as matrix products over all steps at once.
fn backward(
    saved: SavedRecurrence<CubeBackend>,
    d_out: CubeTensor,
    spec: &RecurrenceSpec,
) -> RecurrenceGradients<CubeBackend> {
    let SavedRecurrence {
        x,
        w_ih,
        w_hh,
        h0,
        c0,
        out,
        gates: saved,
    } = saved;
    let [batch, time, input] = x.shape().dims();
    let [_, hidden] = h0.shape().dims();
    let gated = spec.kind.gates() * hidden;
    let (h0, c0) = (into_contiguous(h0), into_contiguous(c0));
    let (out, saved, d_out) = (
        into_contiguous(out),
        into_contiguous(saved),
        into_contiguous(d_out),
    );
    let lengths = lengths_tensor(spec, batch, time, &out);
    let launch = Launch::new(&h0, &lengths);
    let client = h0.client.clone();
    let (device, dtype) = (h0.device.clone(), h0.dtype.into());
    let zeros = || CubeBackend::float_zeros(Shape::new([batch, hidden]), &device, dtype);
    let carry_h = zeros();
    // The LSTM's kernel carries the cell state's gradient here; for the other cells it stays
    // zero, which is their c0's gradient.
    let carry_c = zeros();
    // The gates' gradients, time-major: one step's rows are contiguous.
    let d_xp = empty(&out, &[time, batch, gated]);
    // The GRU's recurrent product has gradients of its own (the reset gate scales the
    // candidate's); the others share the input projection's.
    let d_hp = match spec.kind {
        CellKind::Gru => empty(&out, &[time, batch, gated]),
        _ => d_xp.clone(),
    };
    // Step t's gates' gradients `[B, G·H]` through `W_hh`: what reaches `h(t − 1)` `[B, H]`.
    let through_w_hh = |t: usize| {
        let step = CubeBackend::float_slice(
            d_hp.clone(),
            &[
                Slice::from(t..t + 1),
                Slice::from(0..batch),
                Slice::from(0..gated),
            ],
        );
        let step = CubeBackend::float_reshape(step, Shape::new([batch, gated]));
        into_contiguous(CubeBackend::float_matmul(step, w_hh.clone()))
    };
    for t in (0..time).rev() {
        let through = if t + 1 < time {
            through_w_hh(t + 1)
        } else {
            zeros()
        };
        let step = t as u32;
        match spec.kind {
            CellKind::Lstm => kernels::lstm_backward::launch(
                &client,
                launch.count.clone(),
                launch.dim,
                arg(&through),
                arg(&lengths),
                arg(&c0),
                arg(&out),
                arg(&saved),
                arg(&d_out),
                arg(&d_xp),
                arg(&carry_h),
                arg(&carry_c),
                step,
                launch.dtypes,
            ),
            CellKind::Gru => kernels::gru_backward::launch(
                &client,
                launch.count.clone(),
                launch.dim,
                arg(&through),
                arg(&lengths),
                arg(&h0),
                arg(&out),
                arg(&saved),
                arg(&d_out),
                arg(&d_xp),
                arg(&d_hp),
                arg(&carry_h),
                step,
                launch.dtypes,
            ),
            CellKind::Rnn(nonlinearity) => kernels::rnn_backward::launch(
                &client,
                launch.count.clone(),
                launch.dim,
                arg(&through),
                arg(&lengths),
                arg(&out),
                arg(&d_out),
                arg(&d_xp),
                arg(&carry_h),
                step,
                activation(nonlinearity),
                launch.dtypes,
            ),
        }
    }
    // h0's gradient: what the first step passed on directly, and its gates' through W_hh.
    let d_h0 = CubeBackend::float_add(carry_h, through_w_hh(0));
    // h(t − 1) of every step, time-major as the gradients are: h0, then the output's h but
    // its last step.
    let mut h_prev = vec![CubeBackend::float_reshape(
        h0,
        Shape::new([1, batch, hidden]),
    )];
    if time > 1 {
        let outputs_h = CubeBackend::float_slice(
            out,
            &[
                Slice::from(0..batch),
                Slice::from(0..time - 1),
                Slice::from(0..hidden),
            ],
        );
        h_prev.push(time_major(outputs_h));
    }
    let h_prev = CubeBackend::float_cat(h_prev, 0);
    let (d_xp, d_hp) = (rows(d_xp), rows(d_hp));
    let d_w_hh =
        CubeBackend::float_matmul(CubeBackend::float_transpose(d_hp.clone()), rows(h_prev));
    let d_w_ih = CubeBackend::float_matmul(
        CubeBackend::float_transpose(d_xp.clone()),
        rows(time_major(x)),
    );
    let d_x = CubeBackend::float_reshape(
        CubeBackend::float_matmul(d_xp.clone(), w_ih),
        Shape::new([time, batch, input]),
    );
    let d_b_ih = column_sums(d_xp);
    let d_b_hh = column_sums(d_hp);
    RecurrenceGradients {
        x: into_contiguous(CubeBackend::float_swap_dims(d_x, 0, 1)),
        w_ih: d_w_ih,
        b_ih: d_b_ih,
        w_hh: d_w_hh,
        b_hh: d_b_hh,
        h0: d_h0,
        c0: carry_c,
    }
}

/// `[T, B, columns]`, contiguous, from `[B, T, columns]`.
fn time_major(tensor: CubeTensor) -> CubeTensor {
    into_contiguous(CubeBackend::float_swap_dims(tensor, 0, 1))
}
