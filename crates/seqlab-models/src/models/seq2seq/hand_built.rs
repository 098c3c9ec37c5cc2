//! The RNN course's encoder–decoder written step by step from linear layers, as the notebook
//! builds it: a tanh encoder that keeps only its last hidden state, and a decoder with no input
//! that unrolls that state into a sequence.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::activation::tanh;
use burn::tensor::{Device, Tensor};

use crate::weights::{NamedTensors, PytorchWeights, WeightReader, WeightsError};

/// Sizes of a [`SeqEncoderDecoder`] (the notebook's `SeqEncoderDecoder(input_dim, hidden_dim)`:
/// the output has as many classes as the input).
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub struct SeqEncoderDecoderConfig {
    /// One-hot width of the symbols, in and out.
    pub classes: usize,
    /// Hidden units of encoder and decoder.
    pub hidden_size: usize,
}

impl SeqEncoderDecoderConfig {
    /// Builds it on `device` with PyTorch's `nn.Linear` initialisation and an initial encoder
    /// state drawn from `N(0, 0.01²)`.
    pub fn init(&self, device: &Device) -> SeqEncoderDecoder {
        let (classes, hidden) = (self.classes, self.hidden_size);
        SeqEncoderDecoder {
            encoder: SeqEncoder {
                input_to_hidden: LinearConfig::new(classes, hidden).init(device),
                hidden_to_hidden: LinearConfig::new(hidden, hidden).init(device),
                initial_hidden: Initializer::Normal {
                    mean: 0.0,
                    std: 0.01,
                }
                .init([hidden], device),
            },
            decoder: SeqDecoder {
                hidden_to_hidden: LinearConfig::new(hidden, hidden).init(device),
                hidden_to_output: LinearConfig::new(hidden, classes).init(device),
            },
        }
    }
}

/// `h_t = tanh(W_ih x_t + W_hh h_{t-1})` from a learnt `h_0`; returns only the last `h`.
#[derive(Module, Debug)]
pub struct SeqEncoder {
    /// `W_ih` and its bias.
    pub input_to_hidden: Linear,
    /// `W_hh` and its bias.
    pub hidden_to_hidden: Linear,
    /// The learnt `h_0` `[hidden]`.
    pub initial_hidden: Param<Tensor<1>>,
}

impl SeqEncoder {
    /// One step: input `[B, C]`, hidden `[B, H]` → the next hidden.
    pub fn step(&self, input: Tensor<2>, hidden: Tensor<2>) -> Tensor<2> {
        tanh(self.input_to_hidden.forward(input) + self.hidden_to_hidden.forward(hidden))
    }

    /// The last hidden state `[B, H]` after reading `input` `[B, T, C]`.
    pub fn forward(&self, input: Tensor<3>) -> Tensor<2> {
        let [batch, time, classes] = input.dims();
        let [hidden_size] = self.initial_hidden.dims();
        let mut hidden = self
            .initial_hidden
            .val()
            .unsqueeze_dim::<2>(0)
            .expand([batch, hidden_size]);
        for t in 0..time {
            let x = input
                .clone()
                .slice([0..batch, t..t + 1])
                .reshape([batch, classes]);
            hidden = self.step(x, hidden);
        }
        hidden
    }
}

/// `h_t = tanh(W_hh h_{t-1})`, `y_t = W_ho h_t`: no input, only the state it starts from.
#[derive(Module, Debug)]
pub struct SeqDecoder {
    /// `W_hh` and its bias.
    pub hidden_to_hidden: Linear,
    /// The read-out.
    pub hidden_to_output: Linear,
}

impl SeqDecoder {
    /// One step: hidden `[B, H]` → output `[B, C]` and the next hidden.
    pub fn step(&self, hidden: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let hidden = tanh(self.hidden_to_hidden.forward(hidden));
        (self.hidden_to_output.forward(hidden.clone()), hidden)
    }

    /// `steps` outputs `[B, steps, C]` unrolled from `initial` `[B, H]`.
    pub fn forward(&self, initial: Tensor<2>, steps: usize) -> Tensor<3> {
        let mut hidden = initial;
        let mut outputs = Vec::with_capacity(steps);
        for _ in 0..steps {
            let (output, next) = self.step(hidden);
            outputs.push(output.unsqueeze_dim::<3>(1));
            hidden = next;
        }
        Tensor::cat(outputs, 1)
    }
}

/// The notebook's copy-task network: encode the sequence into one state, decode as many steps
/// as the input has.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use seqlab_models::SeqEncoderDecoderConfig;
///
/// let device = Device::flex();
/// let model = SeqEncoderDecoderConfig::new(3, 10).init(&device);
/// let one_hot = Tensor::<3>::zeros([2, 5, 3], &device);
/// assert_eq!(model.encoder.forward(one_hot.clone()).dims(), [2, 10]);
/// assert_eq!(model.forward(one_hot).dims(), [2, 5, 3]);
/// ```
#[derive(Module, Debug)]
pub struct SeqEncoderDecoder {
    /// The tanh encoder.
    pub encoder: SeqEncoder,
    /// The input-less decoder.
    pub decoder: SeqDecoder,
}

impl SeqEncoderDecoder {
    /// Scores `[B, T, C]` for one-hot input `[B, T, C]` (`T ≥ 1`).
    pub fn forward(&self, input: Tensor<3>) -> Tensor<3> {
        let [_, time, _] = input.dims();
        self.decoder.forward(self.encoder.forward(input), time)
    }
}

/// Names in the style of PyTorch's: `encoder.i_h.`, `encoder.h_h.` (`nn.Linear`),
/// `encoder.h_0` (the learnt initial state `[hidden]`), `decoder.h_h.` and `decoder.h_o.`.
impl PytorchWeights for SeqEncoderDecoder {
    fn save_pytorch(&self, prefix: &str, out: &mut NamedTensors) {
        let (encoder, decoder) = (&self.encoder, &self.decoder);
        encoder
            .input_to_hidden
            .save_pytorch(&format!("{prefix}encoder.i_h."), out);
        encoder
            .hidden_to_hidden
            .save_pytorch(&format!("{prefix}encoder.h_h."), out);
        out.insert_tensor(format!("{prefix}encoder.h_0"), encoder.initial_hidden.val());
        decoder
            .hidden_to_hidden
            .save_pytorch(&format!("{prefix}decoder.h_h."), out);
        decoder
            .hidden_to_output
            .save_pytorch(&format!("{prefix}decoder.h_o."), out);
    }

    fn load_pytorch(
        mut self,
        prefix: &str,
        reader: &mut WeightReader,
    ) -> Result<Self, WeightsError> {
        let (mut encoder, mut decoder) = (self.encoder, self.decoder);
        encoder.input_to_hidden = encoder
            .input_to_hidden
            .load_pytorch(&format!("{prefix}encoder.i_h."), reader)?;
        encoder.hidden_to_hidden = encoder
            .hidden_to_hidden
            .load_pytorch(&format!("{prefix}encoder.h_h."), reader)?;
        encoder.initial_hidden = reader.param(
            &format!("{prefix}encoder.h_0"),
            encoder.initial_hidden,
            false,
        )?;
        decoder.hidden_to_hidden = decoder
            .hidden_to_hidden
            .load_pytorch(&format!("{prefix}decoder.h_h."), reader)?;
        decoder.hidden_to_output = decoder
            .hidden_to_output
            .load_pytorch(&format!("{prefix}decoder.h_o."), reader)?;
        self.encoder = encoder;
        self.decoder = decoder;
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_count_is_the_notebooks() {
        let device = Device::flex();
        let model = SeqEncoderDecoderConfig::new(3, 20).init(&device);
        // Encoder: 3·20+20 + 20·20+20 + 20 (h0); decoder: 20·20+20 + 20·3+3.
        assert_eq!(model.num_params(), 80 + 420 + 20 + 420 + 63);
    }
}
