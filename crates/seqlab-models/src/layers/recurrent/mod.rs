//! Recurrent layers with PyTorch's contract — RNN (tanh, ReLU or linear), LSTM and GRU:
//! several layers, both directions, dropout between layers, sequences of different lengths,
//! and PyTorch's parameter layout, gate order and initialisation, so that parameter counts
//! are PyTorch's.
//!
//! Inputs are batch-first, `[batch, time, input]`. The state is `[directions * layers, batch,
//! hidden]`, ordered as PyTorch orders it (layer by layer, forward direction first).
//!
//! Each layer and direction runs as one fused operation with a hand-written backward: on the
//! CPU backends [`fused`], on wgpu [`cube_fused`] (a matrix product and one kernel a time step each way).
//! With [`RecurrentConfig::fused`] off, the time loop is written with ordinary tensor
//! operations instead (the reference both are tested against). All give the same numbers.
//!
//! ```
//! use burn::module::Module;
//! use burn::tensor::{Device, Tensor};
//! use seqlab_models::RecurrentConfig;
//!
//! let device = Device::flex();
//! let lstm = RecurrentConfig::lstm(10, 20).with_num_layers(2).init(&device);
//! assert_eq!(lstm.num_params(), 5920); // as torch.nn.LSTM(10, 20, 2)
//! let (output, state) = lstm.forward(Tensor::zeros([3, 5, 10], &device), None).unwrap();
//! assert_eq!(output.dims(), [3, 5, 20]);
//! assert_eq!(state.hidden.dims(), [2, 3, 20]);
//! assert_eq!(state.cell.unwrap().dims(), [2, 3, 20]);
//! ```

mod config;
pub mod cube_fused;
mod error;
pub mod fused;
mod kind;
mod layer;
mod padding;
mod plain;
mod pytorch;
mod state;
#[cfg(test)]
mod tests;

pub use config::RecurrentConfig;
pub use error::RecurrentError;
pub use kind::{CellKind, Nonlinearity};
pub use layer::{DirectionWeights, Recurrent};
pub use padding::last_valid_output;
pub(crate) use padding::step_mask;
pub use state::RecurrentState;
