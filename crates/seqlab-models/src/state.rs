//! Hidden state carried between calls of a recurrent model.

use burn::tensor::Tensor;

/// The hidden state of a recurrent model: one `[batch, hidden]` tensor per layer and kind
/// (`h` for an RNN or GRU; `h` and `c` for an LSTM).
#[derive(Debug, Clone)]
pub struct RnnState {
    /// The state tensors, in the order the model defines.
    pub tensors: Vec<Tensor<2>>,
}

impl RnnState {
    /// Wraps state tensors.
    pub fn new(tensors: Vec<Tensor<2>>) -> Self {
        Self { tensors }
    }

    /// Cuts the state from the autodiff graph: truncated back-propagation through time, as
    /// `self.h = self.h.detach()` in the lesson.
    pub fn detach(self) -> Self {
        Self {
            tensors: self.tensors.into_iter().map(Tensor::detach).collect(),
        }
    }

    /// The number of rows (the batch size) the state was made for.
    pub fn batch_size(&self) -> Option<usize> {
        self.tensors.first().map(|t| t.dims()[0])
    }
}
