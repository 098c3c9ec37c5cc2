//! [`RecurrentConfig`]: a layer's settings, named as PyTorch names them, and its
//! initialisation.

use super::{CellKind, DirectionWeights, Nonlinearity, Recurrent};
use crate::config_check::{ConfigError, at_least};
use burn::config::Config;
use burn::nn::{DropoutConfig, Initializer};
use burn::tensor::Device;

/// Settings of a [`Recurrent`] layer, named as PyTorch names them.
#[derive(Config, Debug, Copy, PartialEq)]
pub struct RecurrentConfig {
    /// The recurrence.
    pub kind: CellKind,
    /// Features per input step.
    pub input_size: usize,
    /// Width of the hidden state.
    pub hidden_size: usize,
    /// Stacked layers (default 1).
    #[config(default = 1)]
    pub num_layers: usize,
    /// Whether the layers have biases (default true).
    #[config(default = true)]
    pub bias: bool,
    /// Dropout on the outputs of every layer but the last, in training (default 0).
    #[config(default = 0.0)]
    pub dropout: f64,
    /// Whether each layer also runs backwards in time (default false).
    #[config(default = false)]
    pub bidirectional: bool,
    /// Whether inputs and outputs are `[batch, time, features]` (default true, unlike
    /// PyTorch) or `[time, batch, features]`. States are `[D·layers, batch, hidden]` either way.
    #[config(default = true)]
    pub batch_first: bool,
    /// Whether to run the fused operation where the device has it (default true); `false`
    /// forces the plain tensor-operation path everywhere.
    #[config(default = true)]
    pub fused: bool,
}

impl RecurrentConfig {
    /// The config, if it can build a layer: input, hidden width and layers at least 1.
    pub fn check(self) -> Result<Self, ConfigError> {
        at_least("input_size", self.input_size, 1)?;
        at_least("hidden_size", self.hidden_size, 1)?;
        at_least("num_layers", self.num_layers, 1)?;
        Ok(self)
    }

    /// `torch.nn.RNN(input_size, hidden_size)` with tanh.
    pub fn rnn(input_size: usize, hidden_size: usize) -> Self {
        Self::new(CellKind::Rnn(Nonlinearity::Tanh), input_size, hidden_size)
    }

    /// `torch.nn.LSTM(input_size, hidden_size)`.
    pub fn lstm(input_size: usize, hidden_size: usize) -> Self {
        Self::new(CellKind::Lstm, input_size, hidden_size)
    }

    /// `torch.nn.GRU(input_size, hidden_size)`.
    pub fn gru(input_size: usize, hidden_size: usize) -> Self {
        Self::new(CellKind::Gru, input_size, hidden_size)
    }

    /// Builds the layer on `device`, every parameter drawn from `U(-1/√hidden, 1/√hidden)`
    /// as PyTorch does.
    pub fn init(&self, device: &Device) -> Recurrent {
        let directions = if self.bidirectional { 2 } else { 1 };
        let gated = self.kind.gates() * self.hidden_size;
        let bound = 1.0 / (self.hidden_size as f64).sqrt();
        let init = Initializer::Uniform {
            min: -bound,
            max: bound,
        };
        let weights = (0..self.num_layers)
            .flat_map(|layer| (0..directions).map(move |_| layer))
            .map(|layer| {
                let input = if layer == 0 {
                    self.input_size
                } else {
                    directions * self.hidden_size
                };
                DirectionWeights {
                    weight_ih: init.init([gated, input], device),
                    weight_hh: init.init([gated, self.hidden_size], device),
                    bias_ih: self.bias.then(|| init.init([gated], device)),
                    bias_hh: self.bias.then(|| init.init([gated], device)),
                }
            })
            .collect();
        Recurrent {
            weights,
            dropout: DropoutConfig::new(self.dropout).init(),
            kind: self.kind,
            input_size: self.input_size,
            hidden_size: self.hidden_size,
            num_layers: self.num_layers,
            directions,
            batch_first: self.batch_first,
            fused: self.fused,
        }
    }
}
