//! Recurrent layers with PyTorch's contract — RNN (tanh, ReLU or linear), LSTM and GRU:
//! several layers, both directions, dropout between layers, sequences of different lengths,
//! and PyTorch's parameter layout, gate order and initialisation, so that parameter counts
//! are PyTorch's.
//!
//! Inputs are batch-first, `[batch, time, input]`. The state is `[directions * layers, batch,
//! hidden]`, ordered as PyTorch orders it (layer by layer, forward direction first).
//!
//! On the CPU backends each layer and direction runs as one fused operation with a
//! hand-written backward ([`fused`]); elsewhere (wgpu) the time loop is written with ordinary
//! tensor operations. Both give the same numbers.
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

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Initializer};
use burn::tensor::{Device, Int, Tensor, TensorData};
use thiserror::Error;

mod cube_cell;
pub mod fused;
mod plain;
mod pytorch;

/// The activation of a plain RNN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nonlinearity {
    /// `tanh`, PyTorch's default.
    Tanh,
    /// `relu`.
    Relu,
    /// No activation: the linear RNN of the RNN course.
    Identity,
}

/// Which recurrence a [`Recurrent`] layer computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellKind {
    /// `h' = act(W_ih x + b_ih + W_hh h + b_hh)`.
    Rnn(Nonlinearity),
    /// Long short-term memory, gates in PyTorch's order i, f, g, o.
    Lstm,
    /// Gated recurrent unit, gates in PyTorch's order r, z, n.
    Gru,
}

impl CellKind {
    /// The name [`CellKind::from_str`](std::str::FromStr) reads: `rnn` (tanh), `rnn-relu`,
    /// `rnn-identity`, `lstm` or `gru`.
    ///
    /// ```
    /// use seqlab_models::CellKind;
    /// assert_eq!("gru".parse::<CellKind>().unwrap(), CellKind::Gru);
    /// assert_eq!(CellKind::Lstm.name(), "lstm");
    /// assert!("transformer".parse::<CellKind>().is_err());
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            CellKind::Rnn(Nonlinearity::Tanh) => "rnn",
            CellKind::Rnn(Nonlinearity::Relu) => "rnn-relu",
            CellKind::Rnn(Nonlinearity::Identity) => "rnn-identity",
            CellKind::Lstm => "lstm",
            CellKind::Gru => "gru",
        }
    }

    /// Gates per hidden unit: the `G` in the `[G * hidden, input]` weight shapes.
    pub fn gates(self) -> usize {
        match self {
            CellKind::Rnn(_) => 1,
            CellKind::Lstm => 4,
            CellKind::Gru => 3,
        }
    }
}

impl std::str::FromStr for CellKind {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        [
            CellKind::Rnn(Nonlinearity::Tanh),
            CellKind::Rnn(Nonlinearity::Relu),
            CellKind::Rnn(Nonlinearity::Identity),
            CellKind::Lstm,
            CellKind::Gru,
        ]
        .into_iter()
        .find(|kind| kind.name() == name)
        .ok_or_else(|| {
            format!("unknown cell {name:?}: expected rnn, rnn-relu, rnn-identity, lstm or gru")
        })
    }
}

/// Bad input to a recurrent layer: each variant names the shapes involved.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RecurrentError {
    /// The input's last dimension is not the layer's input size.
    #[error("input has {got} features per step, the layer expects {expected}")]
    InputSize {
        /// The layer's input size.
        expected: usize,
        /// The input's.
        got: usize,
    },
    /// The input has no time steps or no rows.
    #[error("input of shape {0:?} is empty")]
    EmptyInput([usize; 3]),
    /// A state tensor's shape does not fit the layer and the input.
    #[error("{name} state has shape {got:?}, expected {expected:?}")]
    StateShape {
        /// `hidden` or `cell`.
        name: &'static str,
        /// What the layer needs.
        expected: [usize; 3],
        /// What was given.
        got: [usize; 3],
    },
    /// An LSTM state without its cell, or a cell given to an RNN or GRU.
    #[error("an LSTM state needs a cell tensor, and only an LSTM state has one")]
    CellMismatch,
    /// Sequence lengths that do not fit the input: one per sequence, each in `1..=time`.
    #[error("lengths {lengths:?} do not fit a batch of {batch} sequences of {time} steps")]
    Lengths {
        /// The lengths given.
        lengths: Vec<usize>,
        /// Sequences in the batch.
        batch: usize,
        /// Steps in the input.
        time: usize,
    },
    /// A model was called without an input it needs, or with one that does not fit.
    #[error("{0}")]
    MissingInput(&'static str),
}

/// The state of a [`Recurrent`] layer, each tensor `[directions * layers, batch, hidden]`.
#[derive(Debug, Clone)]
pub struct RecurrentState {
    /// The hidden state `h`.
    pub hidden: Tensor<3>,
    /// The LSTM's cell state `c`; `None` for RNN and GRU.
    pub cell: Option<Tensor<3>>,
}

impl RecurrentState {
    /// Cuts the state from the autodiff graph (truncated back-propagation through time).
    pub fn detach(self) -> Self {
        Self {
            hidden: self.hidden.detach(),
            cell: self.cell.map(Tensor::detach),
        }
    }
}

/// Settings of a [`Recurrent`] layer, named as PyTorch names them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecurrentConfig {
    /// The recurrence.
    pub kind: CellKind,
    /// Features per input step.
    pub input_size: usize,
    /// Width of the hidden state.
    pub hidden_size: usize,
    /// Stacked layers (default 1).
    pub num_layers: usize,
    /// Whether the layers have biases (default true).
    pub bias: bool,
    /// Dropout on the outputs of every layer but the last, in training (default 0).
    pub dropout: f64,
    /// Whether each layer also runs backwards in time (default false).
    pub bidirectional: bool,
    /// Whether inputs and outputs are `[batch, time, features]` (default true, unlike
    /// PyTorch) or `[time, batch, features]`. States are `[D·layers, batch, hidden]` either way.
    pub batch_first: bool,
    /// Whether to run the fused operation where the device has it (default true); `false`
    /// forces the plain tensor-operation path everywhere.
    pub fused: bool,
}

impl RecurrentConfig {
    /// A one-layer recurrence of `kind`.
    pub fn new(kind: CellKind, input_size: usize, hidden_size: usize) -> Self {
        Self {
            kind,
            input_size,
            hidden_size,
            num_layers: 1,
            bias: true,
            dropout: 0.0,
            bidirectional: false,
            batch_first: true,
            fused: true,
        }
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

    /// Sets the number of stacked layers.
    pub fn with_num_layers(mut self, num_layers: usize) -> Self {
        self.num_layers = num_layers;
        self
    }

    /// Sets whether the layers have biases.
    pub fn with_bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }

    /// Sets the dropout between layers.
    pub fn with_dropout(mut self, dropout: f64) -> Self {
        self.dropout = dropout;
        self
    }

    /// Sets whether each layer runs in both directions.
    pub fn with_bidirectional(mut self, bidirectional: bool) -> Self {
        self.bidirectional = bidirectional;
        self
    }

    /// Sets whether inputs and outputs are batch-first.
    pub fn with_batch_first(mut self, batch_first: bool) -> Self {
        self.batch_first = batch_first;
        self
    }

    /// Sets whether to use the fused operation where the device has it.
    pub fn with_fused(mut self, fused: bool) -> Self {
        self.fused = fused;
        self
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

/// The weights of one layer in one direction, in PyTorch's layout: `weight_ih` `[G*H, I]`,
/// `weight_hh` `[G*H, H]`, `bias_ih` and `bias_hh` `[G*H]`.
#[derive(Module, Debug)]
pub struct DirectionWeights {
    /// Input-to-hidden weights, PyTorch's `weight_ih_l{k}[_reverse]`.
    pub weight_ih: Param<Tensor<2>>,
    /// Hidden-to-hidden weights, PyTorch's `weight_hh_l{k}[_reverse]`.
    pub weight_hh: Param<Tensor<2>>,
    /// Input-to-hidden bias.
    pub bias_ih: Option<Param<Tensor<1>>>,
    /// Hidden-to-hidden bias.
    pub bias_hh: Option<Param<Tensor<1>>>,
}

/// A stack of recurrent layers. Build it with [`RecurrentConfig`].
#[derive(Module, Debug)]
pub struct Recurrent {
    /// Weights per layer and direction: index `layer * directions + direction`.
    pub weights: Vec<DirectionWeights>,
    dropout: Dropout,
    #[module(skip)]
    kind: CellKind,
    input_size: usize,
    hidden_size: usize,
    num_layers: usize,
    directions: usize,
    #[module(skip)]
    batch_first: bool,
    #[module(skip)]
    fused: bool,
}

impl Recurrent {
    /// The recurrence this layer computes.
    pub fn kind(&self) -> CellKind {
        self.kind
    }

    /// Features each step reads.
    pub fn input_size(&self) -> usize {
        self.input_size
    }

    /// Hidden width per direction.
    pub fn hidden_size(&self) -> usize {
        self.hidden_size
    }

    /// Stacked layers.
    pub fn num_layers(&self) -> usize {
        self.num_layers
    }

    /// Whether the layers also run backwards in time.
    pub fn is_bidirectional(&self) -> bool {
        self.directions == 2
    }

    /// Runs the layers over `input` `[batch, time, input_size]` from `state` (zeros when
    /// `None`). Returns the last layer's outputs `[batch, time, directions * hidden]` and the
    /// final state of every layer and direction.
    pub fn forward(
        &self,
        input: Tensor<3>,
        state: Option<RecurrentState>,
    ) -> Result<(Tensor<3>, RecurrentState), RecurrentError> {
        self.run(input, state, None)
    }

    /// Runs the layers over a padded batch: sequence `b` is `input[b, ..lengths[b]]`, and the
    /// steps after it are padding. Padding changes neither the final state (each sequence's
    /// own last step, as PyTorch's packed sequences give) nor the outputs, which are zero at
    /// padded steps. Use [`last_valid_output`] for the output at each sequence's last step.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use seqlab_models::{RecurrentConfig, last_valid_output};
    ///
    /// let device = Device::flex();
    /// let gru = RecurrentConfig::gru(4, 8).init(&device);
    /// let padded = Tensor::<3>::ones([2, 5, 4], &device);
    /// let (output, state) = gru.forward_padded(padded, None, &[5, 3]).unwrap();
    /// let last = last_valid_output(output, &[5, 3]).unwrap();
    /// last.into_data().assert_approx_eq::<f32>(
    ///     &state.hidden.reshape([2, 8]).into_data(),
    ///     Default::default(),
    /// );
    /// ```
    pub fn forward_padded(
        &self,
        input: Tensor<3>,
        state: Option<RecurrentState>,
        lengths: &[usize],
    ) -> Result<(Tensor<3>, RecurrentState), RecurrentError> {
        let [batch, time] = self.batch_and_time(&input);
        check_lengths(lengths, batch, time)?;
        self.run(input, state, Some(lengths))
    }

    fn batch_and_time(&self, input: &Tensor<3>) -> [usize; 2] {
        let [first, second, _] = input.dims();
        if self.batch_first {
            [first, second]
        } else {
            [second, first]
        }
    }

    fn run(
        &self,
        input: Tensor<3>,
        state: Option<RecurrentState>,
        lengths: Option<&[usize]>,
    ) -> Result<(Tensor<3>, RecurrentState), RecurrentError> {
        let input = if self.batch_first {
            input
        } else {
            input.swap_dims(0, 1)
        };
        let [batch, time, features] = input.dims();
        if features != self.input_size {
            return Err(RecurrentError::InputSize {
                expected: self.input_size,
                got: features,
            });
        }
        if batch == 0 || time == 0 {
            return Err(RecurrentError::EmptyInput([batch, time, features]));
        }
        let device = input.device();
        let (hidden, cell) = self.initial_state(state, batch, &device)?;
        let mut hidden = hidden
            .chunk(self.num_layers * self.directions, 0)
            .into_iter();
        let mut cell = cell.map(|c| c.chunk(self.num_layers * self.directions, 0).into_iter());
        let squeeze = |t: Tensor<3>| t.reshape([batch, self.hidden_size]);
        let (mut final_hidden, mut final_cell) = (Vec::new(), Vec::new());
        // The backward direction of every layer reverses the same way: build that once.
        let reversal = (self.directions == 2).then(|| Reversal::new(lengths, batch, time, &device));
        let mut layer_input = input;
        for layer in 0..self.num_layers {
            let mut outputs = Vec::with_capacity(self.directions);
            for direction in 0..self.directions {
                let weights = &self.weights[layer * self.directions + direction];
                let h0 = squeeze(hidden.next().expect("one state per layer and direction"));
                let c0 = cell
                    .as_mut()
                    .map(|c| squeeze(c.next().expect("one cell per layer and direction")));
                let (output, h, c) = self.run_direction(
                    weights,
                    layer_input.clone(),
                    h0,
                    c0,
                    reversal.as_ref().filter(|_| direction == 1),
                    lengths,
                );
                outputs.push(output);
                final_hidden.push(h.unsqueeze_dim(0));
                final_cell.extend(c.map(|c| c.unsqueeze_dim(0)));
            }
            layer_input = Tensor::cat(outputs, 2);
            if layer + 1 < self.num_layers {
                layer_input = self.dropout.forward(layer_input);
            }
        }
        let state = RecurrentState {
            hidden: Tensor::cat(final_hidden, 0),
            cell: (!final_cell.is_empty()).then(|| Tensor::cat(final_cell, 0)),
        };
        if let Some(lengths) = lengths {
            layer_input = layer_input * step_mask(lengths, time, &device).unsqueeze_dim(2);
        }
        if !self.batch_first {
            layer_input = layer_input.swap_dims(0, 1);
        }
        Ok((layer_input, state))
    }

    /// One time step: `input` `[batch, input_size]` → output `[batch, directions * hidden]`
    /// (whatever `batch_first` says).
    /// Stepping through a sequence gives exactly what one [`forward`](Self::forward) call over
    /// it gives (for one direction; a backward direction sees one step at a time).
    pub fn step(
        &self,
        input: Tensor<2>,
        state: Option<RecurrentState>,
    ) -> Result<(Tensor<2>, RecurrentState), RecurrentError> {
        let input = if self.batch_first {
            input.unsqueeze_dim(1)
        } else {
            input.unsqueeze_dim(0)
        };
        let (output, state) = self.forward(input, state)?;
        // One step: one of the first two dimensions is 1.
        let [first, second, width] = output.dims();
        Ok((output.reshape([first * second, width]), state))
    }

    /// The layers and `state` (zeros when `None`) copied to the host for one sequence, to be
    /// stepped one input at a time without tensor operations: generation's fast path. `None`
    /// where the device has no fused operations (wgpu), for bidirectional layers, and for a
    /// state that is not one sequence's.
    pub(crate) fn host_stepper(
        &self,
        state: Option<RecurrentState>,
    ) -> Option<fused::HostRecurrent> {
        let device = self.weights.first()?.weight_ih.val().device();
        if self.directions != 1 || !fused::supports(&device) {
            return None;
        }
        let (hidden, cell) = self.initial_state(state, 1, &device).ok()?;
        let per_layer = |state: Tensor<3>| -> Vec<Vec<f32>> {
            state
                .chunk(self.num_layers, 0)
                .into_iter()
                .map(|layer| fused::host_values(layer.flatten::<1>(0, 2)))
                .collect()
        };
        let layers = self
            .weights
            .iter()
            .map(|weights| {
                let [b_ih, b_hh] = self.biases(weights, &device);
                fused::HostLayer {
                    w_ih: fused::host_values(weights.weight_ih.val().flatten::<1>(0, 1)),
                    b_ih: fused::host_values(b_ih),
                    w_hh: fused::host_values(weights.weight_hh.val().flatten::<1>(0, 1)),
                    b_hh: fused::host_values(b_hh),
                }
            })
            .collect();
        Some(fused::HostRecurrent::new(
            self.kind,
            self.hidden_size,
            layers,
            per_layer(hidden),
            cell.map(per_layer).unwrap_or_default(),
        ))
    }

    fn initial_state(
        &self,
        state: Option<RecurrentState>,
        batch: usize,
        device: &Device,
    ) -> Result<(Tensor<3>, Option<Tensor<3>>), RecurrentError> {
        let expected = [self.num_layers * self.directions, batch, self.hidden_size];
        let is_lstm = self.kind == CellKind::Lstm;
        let Some(state) = state else {
            let zeros = || Tensor::zeros(expected, device);
            return Ok((zeros(), is_lstm.then(zeros)));
        };
        if state.cell.is_some() != is_lstm {
            return Err(RecurrentError::CellMismatch);
        }
        for (name, tensor) in [
            ("hidden", Some(&state.hidden)),
            ("cell", state.cell.as_ref()),
        ] {
            if let Some(tensor) = tensor
                && tensor.dims() != expected
            {
                return Err(RecurrentError::StateShape {
                    name,
                    expected,
                    got: tensor.dims(),
                });
            }
        }
        Ok((state.hidden, state.cell))
    }

    /// Runs one layer in one direction (backwards in time when `reversal` is given). Returns
    /// its outputs `[batch, time, hidden]` and its final hidden (and cell) state.
    fn run_direction(
        &self,
        weights: &DirectionWeights,
        input: Tensor<3>,
        h0: Tensor<2>,
        c0: Option<Tensor<2>>,
        reversal: Option<&Reversal>,
        lengths: Option<&[usize]>,
    ) -> (Tensor<3>, Tensor<2>, Option<Tensor<2>>) {
        let [batch, time, features] = input.dims();
        let device = input.device();
        let gated = self.kind.gates() * self.hidden_size;
        // One step without autodiff, as generation takes them: matrix-vector products read
        // straight from the weights, the projection included.
        if self.fused && time == 1 && fused::supports_step(&device) {
            return self.run_step(weights, input.reshape([batch, features]), h0, c0);
        }
        // A backward direction runs forwards over each sequence reversed within its length.
        let input = match reversal {
            Some(reversal) => reversal.apply(input),
            None => input,
        };
        // One step has no time loop to fuse, and the fused operation's fixed cost (reading
        // the weights into buffers) is ten times a plain step's for a 512-wide LSTM: single
        // training steps run plain.
        let (outputs, h, c) = if self.fused && time > 1 && fused::supports(&device) {
            self.run_fused(weights, input, h0, c0, lengths)
        } else {
            // The input projection of every step at once: one matrix product.
            let mut projected = input
                .reshape([batch * time, features])
                .matmul(weights.weight_ih.val().transpose());
            if let Some(bias) = &weights.bias_ih {
                projected = projected + bias.val().unsqueeze_dim(0);
            }
            plain::run(
                self.kind,
                self.fused && cube_cell::supports(&device),
                weights.weight_hh.val(),
                weights.bias_hh.as_ref().map(Param::val),
                projected.reshape([batch, time, gated]),
                h0,
                c0,
                lengths,
            )
        };
        let outputs = match reversal {
            Some(reversal) => reversal.apply(outputs),
            None => outputs,
        };
        (outputs, h, c)
    }

    /// The input and recurrent biases, zeros for a layer without them (as the fused
    /// operations take them).
    fn biases(&self, weights: &DirectionWeights, device: &Device) -> [Tensor<1>; 2] {
        let gated = self.kind.gates() * self.hidden_size;
        [&weights.bias_ih, &weights.bias_hh].map(|bias| match bias {
            Some(bias) => bias.val(),
            None => Tensor::zeros([gated], device),
        })
    }

    /// One step of one layer and direction from `x` `[B, I]` without autodiff.
    fn run_step(
        &self,
        weights: &DirectionWeights,
        x: Tensor<2>,
        h0: Tensor<2>,
        c0: Option<Tensor<2>>,
    ) -> (Tensor<3>, Tensor<2>, Option<Tensor<2>>) {
        let [batch, _] = x.dims();
        let hidden = self.hidden_size;
        let device = x.device();
        let [bias_ih, bias_hh] = self.biases(weights, &device);
        let out = fused::fused_step(
            x,
            weights.weight_ih.val(),
            bias_ih,
            weights.weight_hh.val(),
            bias_hh,
            h0,
            c0.unwrap_or_else(|| Tensor::zeros([batch, hidden], &device)),
            self.kind,
        );
        let h = out.clone().narrow(1, 0, hidden);
        let c = (self.kind == CellKind::Lstm).then(|| out.narrow(1, hidden, hidden));
        (h.clone().unsqueeze_dim(1), h, c)
    }

    /// The whole layer and direction as one fused operation, the input projection included.
    fn run_fused(
        &self,
        weights: &DirectionWeights,
        input: Tensor<3>,
        h0: Tensor<2>,
        c0: Option<Tensor<2>>,
        lengths: Option<&[usize]>,
    ) -> (Tensor<3>, Tensor<2>, Option<Tensor<2>>) {
        let [batch, time, _] = input.dims();
        let hidden = self.hidden_size;
        let device = input.device();
        let [bias_ih, bias_hh] = self.biases(weights, &device);
        let c0_or_zeros = c0.unwrap_or_else(|| Tensor::zeros([batch, hidden], &device));
        let out = fused::fused_recurrence(
            input,
            weights.weight_ih.val(),
            bias_ih,
            weights.weight_hh.val(),
            bias_hh,
            h0,
            c0_or_zeros,
            fused::RecurrenceSpec {
                kind: self.kind,
                lengths: lengths.map(<[usize]>::to_vec),
            },
        );
        let last = |from: usize| {
            out.clone()
                .slice([0..batch, time - 1..time, from..from + hidden])
                .reshape([batch, hidden])
        };
        let h = last(0);
        let c = (self.kind == CellKind::Lstm).then(|| last(hidden));
        let outputs = if self.kind == CellKind::Lstm {
            out.slice([0..batch, 0..time, 0..hidden])
        } else {
            out
        };
        (outputs, h, c)
    }
}

fn check_lengths(lengths: &[usize], batch: usize, time: usize) -> Result<(), RecurrentError> {
    if lengths.len() != batch || lengths.iter().any(|&len| len == 0 || len > time) {
        return Err(RecurrentError::Lengths {
            lengths: lengths.to_vec(),
            batch,
            time,
        });
    }
    Ok(())
}

/// `[B, T]`: 1 at the steps of each sequence, 0 at its padding.
pub(crate) fn step_mask(lengths: &[usize], time: usize, device: &Device) -> Tensor<2> {
    let values = lengths
        .iter()
        .flat_map(|&len| (0..time).map(move |t| if t < len { 1.0f32 } else { 0.0 }))
        .collect::<Vec<_>>();
    Tensor::from_data(TensorData::new(values, [lengths.len(), time]), device)
}

/// The output at each sequence's last valid step: `output` `[B, T, F]`, `lengths` one per
/// sequence in `1..=T`; returns `[B, F]`.
pub fn last_valid_output(
    output: Tensor<3>,
    lengths: &[usize],
) -> Result<Tensor<2>, RecurrentError> {
    let [batch, time, features] = output.dims();
    check_lengths(lengths, batch, time)?;
    let last = lengths
        .iter()
        .map(|&len| (len - 1) as i64)
        .collect::<Vec<_>>();
    let indices =
        Tensor::<3, Int>::from_data(TensorData::new(last, [batch, 1, 1]), &output.device())
            .expand([batch, 1, features]);
    Ok(output.gather(1, indices).reshape([batch, features]))
}

/// Reverses every sequence of a batch within its length (an involution: applying it twice
/// restores the order). Without lengths it is a flip of the time axis.
struct Reversal {
    indices: Option<Tensor<3, Int>>,
}

impl Reversal {
    fn new(lengths: Option<&[usize]>, batch: usize, time: usize, device: &Device) -> Self {
        let indices = lengths.map(|lengths| {
            let order = lengths
                .iter()
                .flat_map(|&len| {
                    (0..time).map(move |t| {
                        if t < len {
                            (len - 1 - t) as i64
                        } else {
                            t as i64
                        }
                    })
                })
                .collect::<Vec<_>>();
            Tensor::from_data(TensorData::new(order, [batch, time, 1]), device)
        });
        Self { indices }
    }

    fn apply(&self, tensor: Tensor<3>) -> Tensor<3> {
        match &self.indices {
            Some(indices) => {
                let dims = tensor.dims();
                tensor.gather(1, indices.clone().expand(dims))
            }
            None => tensor.flip([1]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{EmbeddingConfig, LinearConfig};
    use burn::tensor::{Distribution, TensorData};

    fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f64> {
        tensor
            .into_data()
            .convert::<f64>()
            .try_to_vec::<f64>()
            .unwrap()
    }

    #[test]
    fn parameter_counts_are_pytorchs() {
        let device = Device::flex();
        let count = |config: RecurrentConfig| config.init(&device).num_params();
        assert_eq!(count(RecurrentConfig::rnn(10, 20).with_num_layers(2)), 1480);
        assert_eq!(count(RecurrentConfig::gru(10, 20)), 1920);
        assert_eq!(
            count(
                RecurrentConfig::lstm(10, 20)
                    .with_num_layers(2)
                    .with_bidirectional(true)
            ),
            15040
        );
        assert_eq!(count(RecurrentConfig::lstm(10, 20).with_bias(false)), 2400);
        // Seed 000's classifiers: Embedding(30522, 10), two layers of 20, Linear(20, 2).
        let head = EmbeddingConfig::new(30522, 10).init(&device).num_params()
            + LinearConfig::new(20, 2).init(&device).num_params();
        assert_eq!(
            head + count(RecurrentConfig::rnn(10, 20).with_num_layers(2)),
            306742
        );
        assert_eq!(
            head + count(RecurrentConfig::lstm(10, 20).with_num_layers(2)),
            311182
        );
    }

    /// PyTorch's equations for one layer and direction, step by step in f64 on plain vectors.
    fn reference(
        kind: CellKind,
        w: &DirectionWeights,
        x: &[Vec<f64>],
        hidden: usize,
        reverse: bool,
    ) -> Vec<Vec<f64>> {
        let (w_ih, w_hh) = (values(w.weight_ih.val()), values(w.weight_hh.val()));
        let zeros = vec![0.0; w_ih.len() / x[0].len()];
        let b_ih = w
            .bias_ih
            .as_ref()
            .map_or(zeros.clone(), |b| values(b.val()));
        let b_hh = w.bias_hh.as_ref().map_or(zeros, |b| values(b.val()));
        let input = x[0].len();
        let project = |m: &[f64], b: &[f64], v: &[f64], cols: usize| -> Vec<f64> {
            (0..b.len())
                .map(|r| b[r] + (0..cols).map(|k| m[r * cols + k] * v[k]).sum::<f64>())
                .collect()
        };
        let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
        let (mut h, mut c) = (vec![0.0; hidden], vec![0.0; hidden]);
        let mut out = vec![Vec::new(); x.len()];
        let order: Vec<usize> = if reverse {
            (0..x.len()).rev().collect()
        } else {
            (0..x.len()).collect()
        };
        for t in order {
            let gx = project(&w_ih, &b_ih, &x[t], input);
            let gh = project(&w_hh, &b_hh, &h, hidden);
            let g = |k: usize, j: usize| gx[k * hidden + j] + gh[k * hidden + j];
            h = match kind {
                CellKind::Rnn(_) => (0..hidden).map(|j| g(0, j).tanh()).collect(),
                CellKind::Lstm => {
                    c = (0..hidden)
                        .map(|j| sig(g(1, j)) * c[j] + sig(g(0, j)) * g(2, j).tanh())
                        .collect();
                    (0..hidden).map(|j| sig(g(3, j)) * c[j].tanh()).collect()
                }
                CellKind::Gru => (0..hidden)
                    .map(|j| {
                        let r = sig(gx[j] + gh[j]);
                        let z = sig(gx[hidden + j] + gh[hidden + j]);
                        let n = (gx[2 * hidden + j] + r * gh[2 * hidden + j]).tanh();
                        (1.0 - z) * n + z * h[j]
                    })
                    .collect(),
            };
            out[t] = h.clone();
        }
        out
    }

    #[test]
    fn every_kind_and_direction_matches_pytorchs_equations() {
        let device = Device::flex();
        device.seed(5);
        let (batch, time, input, hidden) = (2, 4, 3, 5);
        for kind in [
            CellKind::Rnn(Nonlinearity::Tanh),
            CellKind::Lstm,
            CellKind::Gru,
        ] {
            let layer = RecurrentConfig::new(kind, input, hidden)
                .with_bidirectional(true)
                .init(&device);
            let x = Tensor::<3>::random(
                [batch, time, input],
                Distribution::Uniform(-1.0, 1.0),
                &device,
            );
            let (output, state) = layer.forward(x.clone(), None).unwrap();
            assert_eq!(output.dims(), [batch, time, 2 * hidden]);
            let x = values(x);
            let output = values(output);
            let final_hidden = values(state.hidden);
            for b in 0..batch {
                let rows: Vec<Vec<f64>> = (0..time)
                    .map(|t| x[(b * time + t) * input..][..input].to_vec())
                    .collect();
                for direction in 0..2 {
                    let expected = reference(
                        kind,
                        &layer.weights[direction],
                        &rows,
                        hidden,
                        direction == 1,
                    );
                    for t in 0..time {
                        for j in 0..hidden {
                            let got = output[(b * time + t) * 2 * hidden + direction * hidden + j];
                            assert!(
                                (got - expected[t][j]).abs() < 1e-5,
                                "{kind:?} dir {direction} t {t}: {got} vs {}",
                                expected[t][j]
                            );
                        }
                    }
                    let last = if direction == 0 { time - 1 } else { 0 };
                    for j in 0..hidden {
                        let got = final_hidden[(direction * batch + b) * hidden + j];
                        assert!(
                            (got - expected[last][j]).abs() < 1e-5,
                            "{kind:?} final state"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn stepping_gives_the_sequence_call_exactly() {
        let device = Device::flex();
        device.seed(9);
        for kind in [
            CellKind::Rnn(Nonlinearity::Relu),
            CellKind::Lstm,
            CellKind::Gru,
        ] {
            let layer = RecurrentConfig::new(kind, 3, 4)
                .with_num_layers(2)
                .init(&device);
            let x = Tensor::<3>::random([2, 5, 3], Distribution::Default, &device);
            let (whole, whole_state) = layer.forward(x.clone(), None).unwrap();
            let mut state = None;
            let mut steps = Vec::new();
            for t in 0..5 {
                let (out, next) = layer
                    .step(x.clone().narrow(1, t, 1).reshape([2, 3]), state)
                    .unwrap();
                steps.push(out);
                state = Some(next);
            }
            let stepped = Tensor::stack::<3>(steps, 1);
            whole
                .into_data()
                .assert_approx_eq::<f32>(&stepped.into_data(), Default::default());
            let state = state.unwrap();
            whole_state
                .hidden
                .into_data()
                .assert_approx_eq::<f32>(&state.hidden.into_data(), Default::default());
            assert_eq!(whole_state.cell.is_some(), kind == CellKind::Lstm);
        }
    }

    #[test]
    fn bad_input_and_state_are_typed_errors() {
        let device = Device::flex();
        let lstm = RecurrentConfig::lstm(3, 4).with_num_layers(2).init(&device);
        let x = Tensor::<3>::zeros([2, 5, 3], &device);
        let wrong = Tensor::<3>::zeros([2, 5, 7], &device);
        assert_eq!(
            lstm.forward(wrong, None).unwrap_err(),
            RecurrentError::InputSize {
                expected: 3,
                got: 7
            }
        );
        let empty = Tensor::<3>::zeros([2, 0, 3], &device);
        assert_eq!(
            lstm.forward(empty, None).unwrap_err(),
            RecurrentError::EmptyInput([2, 0, 3])
        );
        let bad = RecurrentState {
            hidden: Tensor::zeros([1, 2, 4], &device),
            cell: Some(Tensor::zeros([2, 2, 4], &device)),
        };
        assert_eq!(
            lstm.forward(x.clone(), Some(bad)).unwrap_err(),
            RecurrentError::StateShape {
                name: "hidden",
                expected: [2, 2, 4],
                got: [1, 2, 4]
            }
        );
        let no_cell = RecurrentState {
            hidden: Tensor::zeros([2, 2, 4], &device),
            cell: None,
        };
        assert_eq!(
            lstm.forward(x, Some(no_cell)).unwrap_err(),
            RecurrentError::CellMismatch
        );
    }

    #[test]
    fn the_identity_rnn_is_linear() {
        let device = Device::flex();
        let rnn = RecurrentConfig::new(CellKind::Rnn(Nonlinearity::Identity), 2, 3)
            .with_bias(false)
            .init(&device);
        let x = Tensor::<3>::from_data(
            TensorData::new(vec![1.0f32, -2.0, 0.5, 3.0], [1, 2, 2]),
            &device,
        );
        let (once, _) = rnn.forward(x.clone(), None).unwrap();
        let (twice, _) = rnn.forward(x.mul_scalar(2.0), None).unwrap();
        once.mul_scalar(2.0)
            .into_data()
            .assert_approx_eq::<f32>(&twice.into_data(), Default::default());
    }

    /// Asserts `|a - b| <= 1e-6 + rtol * |b|` elementwise.
    fn assert_close(what: &str, a: Vec<f64>, b: Vec<f64>, rtol: f64) {
        assert_eq!(a.len(), b.len(), "{what}: lengths");
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-6 + rtol * y.abs(),
                "{what}[{i}]: {x} vs {y}"
            );
        }
    }

    /// The fused operation against the plain path on the same weights: outputs, final states
    /// and the gradients of every input, state and parameter.
    fn fused_matches_plain_on(device: Device) {
        let device = device.autodiff();
        device.seed(3);
        let (batch, time, input) = (3, 6, 4);
        for kind in [
            CellKind::Lstm,
            CellKind::Gru,
            CellKind::Rnn(Nonlinearity::Tanh),
            CellKind::Rnn(Nonlinearity::Relu),
        ] {
            for (bidirectional, lengths) in [(false, None), (true, Some(vec![6, 2, 5]))] {
                let config = RecurrentConfig::new(kind, input, 5)
                    .with_num_layers(2)
                    .with_bidirectional(bidirectional);
                let fused = config.init(&device);
                let plain = config
                    .with_fused(false)
                    .init(&device)
                    .load_record(fused.clone().into_record());
                let x = Tensor::<3>::random([batch, time, input], Distribution::Default, &device);
                let states = 2 * if bidirectional { 2 } else { 1 };
                let state = RecurrentState {
                    hidden: Tensor::random([states, batch, 5], Distribution::Default, &device),
                    cell: (kind == CellKind::Lstm).then(|| {
                        Tensor::random([states, batch, 5], Distribution::Default, &device)
                    }),
                };
                let run = |layer: &Recurrent| {
                    let x = x.clone().detach().require_grad();
                    let h0 = state.hidden.clone().detach().require_grad();
                    let c0 = state.cell.clone().map(|c| c.detach().require_grad());
                    let start = RecurrentState {
                        hidden: h0.clone(),
                        cell: c0.clone(),
                    };
                    let (out, end) = match &lengths {
                        Some(lengths) => layer.forward_padded(x.clone(), Some(start), lengths),
                        None => layer.forward(x.clone(), Some(start)),
                    }
                    .unwrap();
                    // A loss that weighs every output and final state differently.
                    let weigh = |t: Tensor<3>| {
                        let n = t.shape().num_elements();
                        let w = Tensor::<1, Int>::arange(0..n as i64, &t.device())
                            .float()
                            .reshape(t.dims())
                            .mul_scalar(0.37)
                            .sin();
                        (t * w).sum()
                    };
                    let mut loss = weigh(out.clone()) + weigh(end.hidden.clone());
                    if let Some(c) = end.cell.clone() {
                        loss = loss + weigh(c);
                    }
                    let grads = loss.backward();
                    let mut tensors = vec![
                        ("output", values(out)),
                        ("hidden", values(end.hidden)),
                        ("dx", values(x.grad(&grads).unwrap())),
                        ("dh0", values(h0.grad(&grads).unwrap())),
                    ];
                    if let (Some(c), Some(c0)) = (end.cell, c0) {
                        tensors.push(("cell", values(c)));
                        tensors.push(("dc0", values(c0.grad(&grads).unwrap())));
                    }
                    for w in &layer.weights {
                        tensors.push(("dw_ih", values(w.weight_ih.grad(&grads).unwrap())));
                        tensors.push(("dw_hh", values(w.weight_hh.grad(&grads).unwrap())));
                        tensors.push((
                            "db_ih",
                            values(w.bias_ih.as_ref().unwrap().grad(&grads).unwrap()),
                        ));
                        tensors.push((
                            "db_hh",
                            values(w.bias_hh.as_ref().unwrap().grad(&grads).unwrap()),
                        ));
                    }
                    tensors
                };
                for ((name, a), (_, b)) in run(&fused).into_iter().zip(run(&plain)) {
                    assert_close(&format!("{kind:?} {lengths:?} {name}"), a, b, 1e-5);
                }
            }
        }
    }

    #[test]
    fn fused_matches_plain_on_flex() {
        assert!(fused::supports(&Device::flex()));
        fused_matches_plain_on(Device::flex());
    }

    #[test]
    #[allow(deprecated)]
    #[cfg(feature = "ndarray")]
    fn fused_matches_plain_on_ndarray() {
        fused_matches_plain_on(Device::ndarray());
    }

    #[test]
    fn padding_changes_neither_state_nor_outputs() {
        let device = Device::flex();
        device.seed(4);
        for kind in [
            CellKind::Lstm,
            CellKind::Gru,
            CellKind::Rnn(Nonlinearity::Tanh),
        ] {
            for fused in [true, false] {
                let layer = RecurrentConfig::new(kind, 3, 4)
                    .with_num_layers(2)
                    .with_bidirectional(true)
                    .with_fused(fused)
                    .init(&device);
                let short = Tensor::<3>::random([1, 3, 3], Distribution::Default, &device);
                let padded = Tensor::cat(
                    vec![
                        Tensor::cat(
                            vec![
                                short.clone(),
                                Tensor::random([1, 4, 3], Distribution::Default, &device),
                            ],
                            1,
                        ),
                        Tensor::random([1, 7, 3], Distribution::Default, &device),
                    ],
                    0,
                );
                let (alone, alone_state) = layer.forward(short, None).unwrap();
                let (out, state) = layer.forward_padded(padded, None, &[3, 7]).unwrap();
                let what = format!("{kind:?} fused {fused}");
                assert_close(
                    &what,
                    values(out.clone().slice([0..1, 0..3])),
                    values(alone.clone()),
                    1e-5,
                );
                assert!(
                    values(out.clone().slice([0..1, 3..7]))
                        .iter()
                        .all(|v| *v == 0.0)
                );
                assert_close(
                    &what,
                    values(state.hidden.slice([0..4, 0..1])),
                    values(alone_state.hidden),
                    1e-5,
                );
                let last = last_valid_output(out, &[3, 7]).unwrap();
                assert_close(
                    &what,
                    values(last.narrow(0, 0, 1)),
                    values(alone.slice([0..1, 2..3]).reshape([1, 8])),
                    1e-6,
                );
            }
        }
    }

    #[test]
    fn time_first_layers_give_the_batch_first_numbers() {
        let device = Device::flex();
        let config = RecurrentConfig::lstm(3, 4).with_num_layers(2);
        let batch_first = config.init(&device);
        let time_first = config
            .with_batch_first(false)
            .init(&device)
            .load_record(batch_first.clone().into_record());
        let x = Tensor::<3>::random([2, 5, 3], Distribution::Default, &device);
        let (a, state_a) = batch_first.forward(x.clone(), None).unwrap();
        let (b, state_b) = time_first.forward(x.swap_dims(0, 1), None).unwrap();
        assert_eq!(b.dims(), [5, 2, 4]);
        assert_close("output", values(b.swap_dims(0, 1)), values(a), 1e-6);
        assert_close(
            "state",
            values(state_b.hidden),
            values(state_a.hidden),
            1e-6,
        );
        let step = time_first
            .step(Tensor::zeros([2, 3], &device), None)
            .unwrap();
        assert_eq!(step.0.dims(), [2, 4]);
    }

    #[test]
    fn lengths_that_do_not_fit_are_typed_errors() {
        let device = Device::flex();
        let gru = RecurrentConfig::gru(3, 4).init(&device);
        let x = Tensor::<3>::zeros([2, 5, 3], &device);
        for lengths in [vec![5], vec![5, 0], vec![6, 1], vec![1, 2, 3]] {
            assert_eq!(
                gru.forward_padded(x.clone(), None, &lengths).unwrap_err(),
                RecurrentError::Lengths {
                    lengths: lengths.clone(),
                    batch: 2,
                    time: 5
                }
            );
        }
        assert!(last_valid_output(x, &[0, 1]).is_err());
    }
}
