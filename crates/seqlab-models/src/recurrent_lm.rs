//! The fastai book's recurrent language models on top of [`Recurrent`]: LMModel5 (a
//! multi-layer RNN) and LMModel6 (a multi-layer LSTM), predicting after every token and keeping
//! their state across batches.

use crate::{
    CellKind, LanguageModel, LmOutput, Recurrent, RecurrentConfig, RecurrentState, RnnState,
};
use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor};

/// Configuration of a [`RecurrentLm`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecurrentLmConfig {
    /// Tokens in the vocabulary.
    pub vocab_size: usize,
    /// Embedding and hidden width (the book: 64).
    pub hidden_size: usize,
    /// Stacked recurrent layers (the book: 2).
    pub num_layers: usize,
    /// The recurrence: `CellKind::Rnn(Tanh)` for LMModel5, `CellKind::Lstm` for LMModel6.
    pub kind: CellKind,
}

impl RecurrentLmConfig {
    /// A language model of `kind` with these sizes.
    pub fn new(kind: CellKind, vocab_size: usize, hidden_size: usize, num_layers: usize) -> Self {
        Self {
            vocab_size,
            hidden_size,
            num_layers,
            kind,
        }
    }

    /// Builds the model on `device`: `Embedding(vocab, hidden)`, the recurrent layers,
    /// `Linear(hidden, vocab)`, each initialised as PyTorch does.
    pub fn init(&self, device: &Device) -> RecurrentLm {
        RecurrentLm {
            input_to_hidden: EmbeddingConfig::new(self.vocab_size, self.hidden_size).init(device),
            rnn: RecurrentConfig::new(self.kind, self.hidden_size, self.hidden_size)
                .with_num_layers(self.num_layers)
                .init(device),
            hidden_to_output: LinearConfig::new(self.hidden_size, self.vocab_size).init(device),
            num_layers: self.num_layers,
        }
    }
}

/// Embedding → recurrent layers → linear, scoring the next token after every input token.
#[derive(Module, Debug)]
pub struct RecurrentLm {
    input_to_hidden: Embedding,
    rnn: Recurrent,
    hidden_to_output: Linear,
    num_layers: usize,
}

impl RecurrentLm {
    /// The recurrent layers' state as one `[batch, hidden]` tensor per layer (hidden states,
    /// then cell states for an LSTM).
    fn flatten(&self, state: RecurrentState) -> RnnState {
        let split = |t: Tensor<3>| {
            let [layers, batch, hidden] = t.dims();
            t.chunk(layers, 0)
                .into_iter()
                .map(move |layer| layer.reshape([batch, hidden]))
        };
        let mut tensors: Vec<Tensor<2>> = split(state.hidden).collect();
        tensors.extend(state.cell.into_iter().flat_map(split));
        RnnState::new(tensors)
    }

    fn unflatten(&self, state: RnnState) -> RecurrentState {
        let mut layers = state.tensors.into_iter().map(|t| t.unsqueeze_dim::<3>(0));
        let hidden = Tensor::cat(layers.by_ref().take(self.num_layers).collect(), 0);
        let cell: Vec<Tensor<3>> = layers.collect();
        RecurrentState {
            hidden,
            cell: (!cell.is_empty()).then(|| Tensor::cat(cell, 0)),
        }
    }
}

impl LanguageModel for RecurrentLm {
    fn forward_lm(&self, tokens: Tensor<2, Int>, state: Option<RnnState>) -> LmOutput {
        let embedded = self.input_to_hidden.forward(tokens);
        let state = state.map(|s| self.unflatten(s));
        let (output, state) = self.rnn.forward(embedded, state).expect(
            "the embedding width is the layer's input size, and the state is the layer's own",
        );
        LmOutput {
            logits: self.hidden_to_output.forward(output),
            state: Some(self.flatten(state)),
        }
    }

    fn vocab_size(&self) -> usize {
        self.hidden_to_output.weight.dims()[1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Nonlinearity;
    use burn::tensor::TensorData;

    #[test]
    fn the_books_models_have_pytorchs_parameter_counts() {
        let device = Device::flex();
        // Embedding 30*64, two layers of nn.RNN(64, 64) = 2 * 8320, Linear 64*30+30.
        let lm5 =
            RecurrentLmConfig::new(CellKind::Rnn(Nonlinearity::Tanh), 30, 64, 2).init(&device);
        assert_eq!(lm5.num_params(), 1920 + 2 * 8320 + 1950);
        let lm6 = RecurrentLmConfig::new(CellKind::Lstm, 30, 64, 2).init(&device);
        assert_eq!(lm6.num_params(), 1920 + 2 * 4 * 8320 + 1950);
    }

    #[test]
    fn the_state_round_trips_and_carries_the_stream_on() {
        let device = Device::flex();
        let lm = RecurrentLmConfig::new(CellKind::Lstm, 10, 8, 2).init(&device);
        let tokens = Tensor::<2, Int>::from_data(
            TensorData::new(vec![1i64, 2, 3, 4, 5, 6], [1, 6]),
            &device,
        );
        let whole = lm.forward_lm(tokens.clone(), None);
        let first = lm.forward_lm(tokens.clone().narrow(1, 0, 3), None);
        assert_eq!(first.state.as_ref().unwrap().tensors.len(), 4);
        let second = lm.forward_lm(tokens.narrow(1, 3, 3), first.state);
        let split = Tensor::cat(vec![first.logits, second.logits], 1);
        whole
            .logits
            .into_data()
            .assert_approx_eq::<f32>(&split.into_data(), Default::default());
    }
}
