//! [`Recurrent`]: the stack of layers, and the dispatch of each layer and direction to the
//! fused CPU operation, the fused GPU operation or the plain time loop.

use super::padding::{Reversal, check_lengths, step_mask};
use super::{CellKind, RecurrentError, RecurrentState, cube_fused, fused, plain};

use crate::host::host_values;
use burn::module::{Module, Param};
use burn::nn::{Dropout, Embedding};
use burn::tensor::{Device, Int, Tensor};

/// A whole layer and direction as one operation: `(x, w_ih, b_ih, w_hh, b_hh, h0, c0, spec)`
/// to the output `[B, T, S·H]`.
type FusedRecurrence = fn(
    Tensor<3>,
    Tensor<2>,
    Tensor<1>,
    Tensor<2>,
    Tensor<1>,
    Tensor<2>,
    Tensor<2>,
    fused::RecurrenceSpec,
) -> Tensor<3>;

/// What one layer and direction reads.
enum LayerInput {
    /// Features `[B, T, I]`.
    Features(Tensor<3>),
    /// The input already projected, `x · W_ihᵀ + b_ih` `[B, T, G·H]`.
    Projected(Tensor<3>),
}

/// One layer and direction's input and initial state, as [`Recurrent::run_fused`] takes them.
struct FusedInput<'a> {
    /// Features `[B, T, I]`, or with `projected` the projected input `[B, T, G·H]`.
    x: Tensor<3>,
    projected: bool,
    h0: Tensor<2>,
    c0: Option<Tensor<2>>,
    lengths: Option<&'a [usize]>,
}

/// What a layer reads in each of its directions: the same features (one tensor), or (the
/// first layer of [`Recurrent::forward_tokens`]) each direction's own projected input.
struct LayerInputs {
    tensors: Vec<Tensor<3>>,
    projected: bool,
}

impl LayerInputs {
    fn features(x: Tensor<3>) -> Self {
        Self {
            tensors: vec![x],
            projected: false,
        }
    }

    fn direction(&self, direction: usize) -> LayerInput {
        if self.projected {
            LayerInput::Projected(self.tensors[direction].clone())
        } else {
            LayerInput::Features(self.tensors[0].clone())
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

/// A stack of recurrent layers. Build it with [`RecurrentConfig`](super::RecurrentConfig).
#[derive(Module, Debug)]
pub struct Recurrent {
    /// Weights per layer and direction: index `layer * directions + direction`.
    pub weights: Vec<DirectionWeights>,
    pub(super) dropout: Dropout,
    #[module(skip)]
    pub(super) kind: CellKind,
    pub(super) input_size: usize,
    pub(super) hidden_size: usize,
    pub(super) num_layers: usize,
    pub(super) directions: usize,
    #[module(skip)]
    pub(super) batch_first: bool,
    #[module(skip)]
    pub(super) fused: bool,
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
        self.run(LayerInputs::features(input), state, None)
    }

    /// Runs the layers over `tokens` `[batch, time]` (`[time, batch]` unless batch-first)
    /// looked up in `embedding` `[vocab, input_size]`, from `state`: what
    /// [`forward`](Self::forward) gives over `embedding.forward(tokens)`, up to rounding.
    ///
    /// Where the CPU's fused operation runs and the batch holds at least twice as many tokens
    /// as the vocabulary has entries, the first layer projects each vocabulary entry once (a
    /// `[vocab, G·H]` table, `E · W_ihᵀ + b_ih`) and looks every token's row up, instead of
    /// projecting every token: a character model (config c of the benchmark: 100 symbols,
    /// 3,200 tokens a batch) does 32 times fewer of its first layer's input products, and
    /// their gradients likewise.
    ///
    /// ```
    /// use burn::nn::EmbeddingConfig;
    /// use burn::tensor::{Device, Int, Tensor};
    /// use seqlab_models::RecurrentConfig;
    ///
    /// let device = Device::flex();
    /// let embedding = EmbeddingConfig::new(5, 4).init(&device);
    /// let lstm = RecurrentConfig::lstm(4, 8).init(&device);
    /// let tokens = Tensor::<2, Int>::from_data([[0, 1, 2, 1, 0, 4, 3, 3, 2, 1, 0, 0]], &device);
    /// let (looked_up, _) = lstm.forward_tokens(&embedding, tokens.clone(), None).unwrap();
    /// let (embedded, _) = lstm.forward(embedding.forward(tokens), None).unwrap();
    /// looked_up.into_data().assert_approx_eq::<f32>(&embedded.into_data(), Default::default());
    /// ```
    pub fn forward_tokens(
        &self,
        embedding: &Embedding,
        tokens: Tensor<2, Int>,
        state: Option<RecurrentState>,
    ) -> Result<(Tensor<3>, RecurrentState), RecurrentError> {
        let [vocab, width] = embedding.weight.dims();
        if width != self.input_size {
            return Err(RecurrentError::InputSize {
                expected: self.input_size,
                got: width,
            });
        }
        let [first, second] = tokens.dims();
        if !self.looks_up_projected_rows(vocab, [first, second], &tokens.device()) {
            return self.forward(embedding.forward(tokens), state);
        }
        let gated = self.kind.gates() * self.hidden_size;
        let ids = tokens.reshape([first * second]);
        let projected = self.weights[..self.directions]
            .iter()
            .map(|weights| {
                let mut table = embedding
                    .weight
                    .val()
                    .matmul(weights.weight_ih.val().transpose());
                if let Some(bias) = &weights.bias_ih {
                    table = table + bias.val().unsqueeze_dim(0);
                }
                table.select(0, ids.clone()).reshape([first, second, gated])
            })
            .collect();
        let input = LayerInputs {
            tensors: projected,
            projected: true,
        };
        self.run(input, state, None)
    }

    /// Runs the layers over a padded batch: sequence `b` is `input[b, ..lengths[b]]`, and the
    /// steps after it are padding. Padding changes neither the final state (each sequence's
    /// own last step, as PyTorch's packed sequences give) nor the outputs, which are zero at
    /// padded steps. Use [`last_valid_output`](super::last_valid_output) for the output at each sequence's last step.
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
        self.run(LayerInputs::features(input), state, Some(lengths))
    }

    /// Whether [`forward_tokens`](Self::forward_tokens) projects a vocabulary of `vocab`
    /// entries once and looks up rows for `tokens` of these dimensions on `device`: where the
    /// fused CPU operation runs (more than one step) and the tokens are at least twice the
    /// vocabulary.
    pub(super) fn looks_up_projected_rows(
        &self,
        vocab: usize,
        [first, second]: [usize; 2],
        device: &Device,
    ) -> bool {
        let time = if self.batch_first { second } else { first };
        self.fused && time > 1 && fused::supports(device) && first * second >= 2 * vocab
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
        input: LayerInputs,
        state: Option<RecurrentState>,
        lengths: Option<&[usize]>,
    ) -> Result<(Tensor<3>, RecurrentState), RecurrentError> {
        let batch_first = |x: Tensor<3>| {
            if self.batch_first {
                x
            } else {
                x.swap_dims(0, 1)
            }
        };
        let input = LayerInputs {
            tensors: input.tensors.into_iter().map(batch_first).collect(),
            ..input
        };
        let [batch, time, width] = input.tensors[0].dims();
        let device = input.tensors[0].device();
        // A projected input's width is the layer's own; its features were checked against
        // the embedding.
        let features = if input.projected {
            self.input_size
        } else {
            width
        };
        if features != self.input_size {
            return Err(RecurrentError::InputSize {
                expected: self.input_size,
                got: features,
            });
        }
        if batch == 0 || time == 0 {
            return Err(RecurrentError::EmptyInput([batch, time, features]));
        }
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
                    layer_input.direction(direction),
                    h0,
                    c0,
                    reversal.as_ref().filter(|_| direction == 1),
                    lengths,
                );
                outputs.push(output);
                final_hidden.push(h.unsqueeze_dim(0));
                final_cell.extend(c.map(|c| c.unsqueeze_dim(0)));
            }
            let mut output = Tensor::cat(outputs, 2);
            if layer + 1 < self.num_layers {
                output = self.dropout.forward(output);
            }
            layer_input = LayerInputs::features(output);
        }
        let mut layer_input = layer_input.tensors.remove(0);
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
                .map(|layer| host_values(layer.flatten::<1>(0, 2)))
                .collect()
        };
        let layers = self
            .weights
            .iter()
            .map(|weights| {
                let [b_ih, b_hh] = self.biases(weights, &device);
                fused::HostLayer {
                    w_ih: host_values(weights.weight_ih.val().flatten::<1>(0, 1)),
                    b_ih: host_values(b_ih),
                    w_hh: host_values(weights.weight_hh.val().flatten::<1>(0, 1)),
                    b_hh: host_values(b_hh),
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
        input: LayerInput,
        h0: Tensor<2>,
        c0: Option<Tensor<2>>,
        reversal: Option<&Reversal>,
        lengths: Option<&[usize]>,
    ) -> (Tensor<3>, Tensor<2>, Option<Tensor<2>>) {
        let (input, projected) = match input {
            LayerInput::Features(x) => (x, false),
            LayerInput::Projected(xp) => (xp, true),
        };
        let [batch, time, features] = input.dims();
        let device = input.device();
        let gated = self.kind.gates() * self.hidden_size;
        // One step without autodiff, as generation takes them: matrix-vector products read
        // straight from the weights, the projection included.
        if !projected && self.fused && time == 1 && fused::supports_step(&device) {
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
        let fused_input = FusedInput {
            x: input,
            projected,
            h0,
            c0,
            lengths,
        };
        let (outputs, h, c) = if self.fused && time > 1 && fused::supports(&device) {
            self.run_fused(weights, fused_input, fused::fused_recurrence)
        } else if !projected && self.fused && cube_fused::supports(&device) {
            // On a GPU the projection and each step are kernel launches, one step included.
            self.run_fused(weights, fused_input, cube_fused::cube_recurrence)
        } else {
            let FusedInput { x, h0, c0, .. } = fused_input;
            // The input projection of every step at once: one matrix product.
            let x = if projected {
                x
            } else {
                let mut x = x
                    .reshape([batch * time, features])
                    .matmul(weights.weight_ih.val().transpose());
                if let Some(bias) = &weights.bias_ih {
                    x = x + bias.val().unsqueeze_dim(0);
                }
                x.reshape([batch, time, gated])
            };
            plain::run(
                self.kind,
                weights.weight_hh.val(),
                weights.bias_hh.as_ref().map(Param::val),
                x,
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

    /// The whole layer and direction as one fused operation, the input projection included:
    /// `recurrence` is the CPU's ([`fused::fused_recurrence`]) or the GPU's
    /// ([`cube_fused::cube_recurrence`]).
    fn run_fused(
        &self,
        weights: &DirectionWeights,
        input: FusedInput<'_>,
        recurrence: FusedRecurrence,
    ) -> (Tensor<3>, Tensor<2>, Option<Tensor<2>>) {
        let FusedInput {
            x,
            projected,
            h0,
            c0,
            lengths,
        } = input;
        let [batch, time, _] = x.dims();
        let hidden = self.hidden_size;
        let device = x.device();
        let [bias_ih, bias_hh] = self.biases(weights, &device);
        // A projected input needs neither input weights nor bias: empty ones stand in.
        let (w_ih, bias_ih) = if projected {
            (Tensor::zeros([0, 0], &device), Tensor::zeros([0], &device))
        } else {
            (weights.weight_ih.val(), bias_ih)
        };
        let c0_or_zeros = c0.unwrap_or_else(|| Tensor::zeros([batch, hidden], &device));
        let out = recurrence(
            x,
            w_ih,
            bias_ih,
            weights.weight_hh.val(),
            bias_hh,
            h0,
            c0_or_zeros,
            fused::RecurrenceSpec {
                kind: self.kind,
                lengths: lengths.map(<[usize]>::to_vec),
                input_projected: projected,
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
