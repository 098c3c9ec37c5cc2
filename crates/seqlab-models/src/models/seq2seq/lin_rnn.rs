//! The RNN course's linear RNN: identity recurrence, a learnable initial state, a linear
//! read-out, trained on next-step prediction and run free with [`LinRnn::generate`].

use crate::weights::{NamedTensors, PytorchWeights, WeightReader, WeightsError};
use crate::{CellKind, Nonlinearity, Recurrent, RecurrentConfig, RecurrentError, RecurrentState};
use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

/// Sizes of a [`LinRnn`] (the notebook's `LinRNN(n_input=1, n_hidden=1, n_output=1)`).
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub struct LinRnnConfig {
    /// Features per input step.
    pub input_size: usize,
    /// Hidden units.
    pub hidden_size: usize,
    /// Features per output step.
    pub output_size: usize,
}

impl LinRnnConfig {
    /// Builds it on `device`; the initial state is drawn from `N(0, 0.01²)` as the notebook's.
    pub fn init(&self, device: &Device) -> LinRnn {
        let recurrence = RecurrentConfig::new(
            CellKind::Rnn(Nonlinearity::Identity),
            self.input_size,
            self.hidden_size,
        )
        .init(device);
        let initial = Initializer::Normal {
            mean: 0.0,
            std: 0.01,
        };
        LinRnn {
            recurrence,
            hidden_to_output: LinearConfig::new(self.hidden_size, self.output_size).init(device),
            initial_hidden: initial.init([self.hidden_size], device),
        }
    }
}

/// `h_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh`, `y_t = W_ho h_t + b_o`, from a learnt `h_0`.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use seqlab_models::LinRnnConfig;
///
/// let device = Device::flex();
/// let model = LinRnnConfig::new(1, 2, 1).init(&device);
/// let series = Tensor::<3>::zeros([4, 99, 1], &device);
/// assert_eq!(model.forward(series).unwrap().dims(), [4, 99, 1]);
/// let start = Tensor::<2>::zeros([4, 1], &device);
/// assert_eq!(model.generate(start, 50).unwrap().dims(), [4, 50, 1]);
/// ```
#[derive(Module, Debug)]
pub struct LinRnn {
    /// The identity recurrence (`input_to_hidden` and `hidden_to_hidden` of the notebook).
    pub recurrence: Recurrent,
    /// The read-out.
    pub hidden_to_output: Linear,
    /// The learnt initial hidden state `[hidden]`.
    pub initial_hidden: Param<Tensor<1>>,
}

impl LinRnn {
    fn initial_state(&self, batch: usize) -> RecurrentState {
        let [hidden] = self.initial_hidden.dims();
        RecurrentState {
            hidden: self
                .initial_hidden
                .val()
                .reshape([1, 1, hidden])
                .expand([1, batch, hidden]),
            cell: None,
        }
    }

    /// One step: input `[B, I]` and hidden `[B, H]` → output `[B, O]` and the next hidden.
    pub fn step(
        &self,
        input: Tensor<2>,
        hidden: Tensor<2>,
    ) -> Result<(Tensor<2>, Tensor<2>), RecurrentError> {
        let [batch, width] = hidden.dims();
        let state = RecurrentState {
            hidden: hidden.reshape([1, batch, width]),
            cell: None,
        };
        let (hidden, _) = self.recurrence.step(input, Some(state))?;
        Ok((self.hidden_to_output.forward(hidden.clone()), hidden))
    }

    /// Outputs `[B, T, O]` for inputs `[B, T, I]`, starting from the learnt state.
    pub fn forward(&self, input: Tensor<3>) -> Result<Tensor<3>, RecurrentError> {
        let [batch, _, _] = input.dims();
        let (hidden, _) = self
            .recurrence
            .forward(input, Some(self.initial_state(batch)))?;
        Ok(self.hidden_to_output.forward(hidden))
    }

    /// Runs free for `steps` steps from `start` `[B, I]` and the learnt state, feeding each
    /// output back as the next input (the notebook's `generate`); returns `[B, steps, O]`.
    /// Needs as many outputs as inputs.
    pub fn generate(&self, start: Tensor<2>, steps: usize) -> Result<Tensor<3>, RecurrentError> {
        let [batch, width] = start.dims();
        let outputs = self.hidden_to_output.weight.dims()[1];
        if outputs != width {
            return Err(RecurrentError::InputSize {
                expected: outputs,
                got: width,
            });
        }
        let mut hidden = self
            .initial_state(batch)
            .hidden
            .reshape([batch, self.initial_hidden.dims()[0]]);
        let mut input = start;
        let mut generated = Vec::with_capacity(steps);
        for _ in 0..steps {
            let (output, next) = self.step(input, hidden)?;
            generated.push(output.clone().unsqueeze_dim::<3>(1));
            input = output;
            hidden = next;
        }
        if generated.is_empty() {
            return Ok(Tensor::zeros(
                [batch, 0, width],
                &self.initial_hidden.device(),
            ));
        }
        Ok(Tensor::cat(generated, 1))
    }
}

/// Names in the style of PyTorch's: `rnn.` (`nn.RNN`'s `weight_ih_l0`, …), `h_o.` (the
/// read-out, `nn.Linear`) and `h_0` (the learnt initial state `[hidden]`).
impl PytorchWeights for LinRnn {
    fn save_pytorch(&self, prefix: &str, out: &mut NamedTensors) {
        self.recurrence.save_pytorch(&format!("{prefix}rnn."), out);
        self.hidden_to_output
            .save_pytorch(&format!("{prefix}h_o."), out);
        out.insert_tensor(format!("{prefix}h_0"), self.initial_hidden.val());
    }

    fn load_pytorch(
        mut self,
        prefix: &str,
        reader: &mut WeightReader,
    ) -> Result<Self, WeightsError> {
        self.recurrence = self
            .recurrence
            .load_pytorch(&format!("{prefix}rnn."), reader)?;
        self.hidden_to_output = self
            .hidden_to_output
            .load_pytorch(&format!("{prefix}h_o."), reader)?;
        self.initial_hidden = reader.param(&format!("{prefix}h_0"), self.initial_hidden, false)?;
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    #[test]
    fn stepping_gives_the_sequence_output_and_counts_the_notebook_parameters() {
        let device = Device::flex();
        let model = LinRnnConfig::new(1, 3, 1).init(&device);
        // input_to_hidden 3+3, hidden_to_hidden 9+3, hidden_to_output 3+1, initial state 3.
        assert_eq!(model.num_params(), 6 + 12 + 4 + 3);
        let input = Tensor::<3>::random([2, 5, 1], Distribution::Default, &device);
        let whole = model.forward(input.clone()).unwrap();
        let mut hidden = model.initial_state(2).hidden.reshape([2, 3]);
        for t in 0..5 {
            let x = input.clone().slice([0..2, t..t + 1]).reshape([2, 1]);
            let (y, next) = model.step(x, hidden).unwrap();
            hidden = next;
            let expected = whole.clone().slice([0..2, t..t + 1]).reshape([2, 1]);
            y.into_data()
                .assert_approx_eq::<f32>(&expected.into_data(), Default::default());
        }
        assert!(model.generate(Tensor::zeros([2, 2], &device), 3).is_err());
    }
}
