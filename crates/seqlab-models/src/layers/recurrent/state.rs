//! The state a recurrent layer starts from and ends in.

use burn::tensor::Tensor;

/// The state of a [`Recurrent`](super::Recurrent) layer, each tensor `[directions * layers, batch, hidden]`.
#[derive(Debug, Clone)]
pub struct RecurrentState {
    /// The hidden state `h`.
    pub hidden: Tensor<3>,
    /// The LSTM's cell state `c`; `None` for RNN and GRU.
    pub cell: Option<Tensor<3>>,
}

impl RecurrentState {
    /// The number of sequences (rows of the batch) the state is for.
    pub fn batch_size(&self) -> usize {
        self.hidden.dims()[1]
    }

    /// Cuts the state from the autodiff graph (truncated back-propagation through time).
    pub fn detach(self) -> Self {
        Self {
            hidden: self.hidden.detach(),
            cell: self.cell.map(Tensor::detach),
        }
    }
}
