//! fastai's first language models (the book's chapter 12, the human-numbers lesson): an
//! embedding added into a hidden state that goes through one shared `Linear` + ReLU per token.
//!
//! - [`LmModel1`]: three steps written out, predicts the fourth token.
//! - [`LmModel2`]: the same as a loop over the input.
//! - [`LmModel3`]: keeps its hidden state across batches (truncated BPTT).
//! - [`LmModel4`]: like LMModel3, and predicts after every token.
//!
//! All four have the lesson's layer names and sizes: `input_to_hidden` (`Embedding(vocab,
//! hidden)`), `hidden` (`Linear(hidden, hidden)`) and `hidden_to_output` (`Linear(hidden,
//! vocab)`), initialised as PyTorch does; under PyTorch's names they are the book's `i_h`,
//! `h_h` and `h_o`.

use crate::weights::{NamedTensors, PytorchWeights, WeightReader, WeightsError};
use crate::{LanguageModel, LmOutput, RecurrentState};
use burn::config::Config;
use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Int, Tensor};

/// The layers the four models share.
#[derive(Module, Debug)]
struct SimpleRnnLayers {
    input_to_hidden: Embedding,
    hidden: Linear,
    hidden_to_output: Linear,
}

impl SimpleRnnLayers {
    fn new(vocab_size: usize, hidden_size: usize, device: &Device) -> Self {
        Self {
            input_to_hidden: EmbeddingConfig::new(vocab_size, hidden_size).init(device),
            hidden: LinearConfig::new(hidden_size, hidden_size).init(device),
            hidden_to_output: LinearConfig::new(hidden_size, vocab_size).init(device),
        }
    }

    /// Runs the recurrence over every input token from `h` (zero when `None`), returning the
    /// hidden state after each token, `[batch, hidden]` each.
    fn run(&self, tokens: Tensor<2, Int>, h: Option<Tensor<2>>) -> Vec<Tensor<2>> {
        let [batch, time] = tokens.dims();
        let embedded = self.input_to_hidden.forward(tokens);
        let hidden_size = embedded.dims()[2];
        let mut h = h;
        (0..time)
            .map(|step| {
                let x = embedded
                    .clone()
                    .narrow(1, step, 1)
                    .reshape([batch, hidden_size]);
                let input = match h.take() {
                    Some(h) => h + x,
                    None => x,
                };
                let next = relu(self.hidden.forward(input));
                h = Some(next.clone());
                next
            })
            .collect()
    }

    /// Scores one `[batch, hidden]` state, as `[batch, 1, vocab]`.
    fn score_last(&self, h: Tensor<2>) -> Tensor<3> {
        self.hidden_to_output.forward(h).unsqueeze_dim(1)
    }

    fn vocab_size(&self) -> usize {
        self.hidden_to_output.weight.dims()[1]
    }
}

macro_rules! simple_lm_config {
    ($config:ident, $model:ident, $what:literal) => {
        #[doc = concat!("Configuration of [`", stringify!($model), "`]: ", $what)]
        #[derive(Config, Debug, Copy, PartialEq, Eq)]
        pub struct $config {
            /// Tokens in the vocabulary (30 for human numbers).
            pub vocab_size: usize,
            /// Width of the hidden state (the lesson uses 64, and 128 for LMModel2).
            pub hidden_size: usize,
        }

        impl $config {
            #[doc = concat!("Builds a [`", stringify!($model), "`] on `device` with PyTorch's initialisation.")]
            pub fn init(&self, device: &Device) -> $model {
                $model { layers: SimpleRnnLayers::new(self.vocab_size, self.hidden_size, device) }
            }
        }

        /// The book's names: `i_h` (the embedding), `h_h` and `h_o` (`nn.Linear`).
        impl PytorchWeights for $model {
            fn save_pytorch(&self, prefix: &str, out: &mut NamedTensors) {
                self.layers.save_pytorch(prefix, out);
            }

            fn load_pytorch(
                mut self,
                prefix: &str,
                reader: &mut WeightReader,
            ) -> Result<Self, WeightsError> {
                self.layers = self.layers.load_pytorch(prefix, reader)?;
                Ok(self)
            }
        }
    };
}

impl PytorchWeights for SimpleRnnLayers {
    fn save_pytorch(&self, prefix: &str, out: &mut NamedTensors) {
        self.input_to_hidden
            .save_pytorch(&format!("{prefix}i_h."), out);
        self.hidden.save_pytorch(&format!("{prefix}h_h."), out);
        self.hidden_to_output
            .save_pytorch(&format!("{prefix}h_o."), out);
    }

    fn load_pytorch(
        mut self,
        prefix: &str,
        reader: &mut WeightReader,
    ) -> Result<Self, WeightsError> {
        self.input_to_hidden = self
            .input_to_hidden
            .load_pytorch(&format!("{prefix}i_h."), reader)?;
        self.hidden = self.hidden.load_pytorch(&format!("{prefix}h_h."), reader)?;
        self.hidden_to_output = self
            .hidden_to_output
            .load_pytorch(&format!("{prefix}h_o."), reader)?;
        Ok(self)
    }
}

simple_lm_config!(LmModel1Config, LmModel1, "three tokens in, the fourth out.");
simple_lm_config!(
    LmModel2Config,
    LmModel2,
    "the LMModel1 recurrence as a loop."
);
simple_lm_config!(
    LmModel3Config,
    LmModel3,
    "LMModel2 keeping its state across batches."
);
simple_lm_config!(
    LmModel4Config,
    LmModel4,
    "LMModel3 predicting after every token."
);

/// LMModel1: three tokens in, written out step by step as in the lesson, the fourth token out.
/// Inputs must have exactly three columns.
#[derive(Module, Debug)]
pub struct LmModel1 {
    layers: SimpleRnnLayers,
}

impl LanguageModel for LmModel1 {
    fn forward_lm(&self, tokens: Tensor<2, Int>, _state: Option<RecurrentState>) -> LmOutput {
        let [batch, time] = tokens.dims();
        assert_eq!(time, 3, "LMModel1 reads exactly three tokens per row");
        let l = &self.layers;
        let embed = |step: usize| {
            l.input_to_hidden
                .forward(tokens.clone().narrow(1, step, 1))
                .reshape([batch, l.hidden.weight.dims()[0]])
        };
        let h = relu(l.hidden.forward(embed(0)));
        let h = relu(l.hidden.forward(h + embed(1)));
        let h = relu(l.hidden.forward(h + embed(2)));
        LmOutput {
            logits: l.score_last(h),
            state: None,
            penalty: None,
        }
    }

    fn vocab_size(&self) -> usize {
        self.layers.vocab_size()
    }
}

/// LMModel2: the LMModel1 recurrence as a loop over however many tokens each row has.
#[derive(Module, Debug)]
pub struct LmModel2 {
    layers: SimpleRnnLayers,
}

impl LanguageModel for LmModel2 {
    fn forward_lm(&self, tokens: Tensor<2, Int>, _state: Option<RecurrentState>) -> LmOutput {
        let last = self
            .layers
            .run(tokens, None)
            .pop()
            .expect("at least one token per row");
        LmOutput {
            logits: self.layers.score_last(last),
            state: None,
            penalty: None,
        }
    }

    fn vocab_size(&self) -> usize {
        self.layers.vocab_size()
    }
}

/// The `[batch, hidden]` state of the lesson's one-layer RNN, from the state it carries.
fn one_layer_hidden(state: RecurrentState) -> Tensor<2> {
    let [_, batch, hidden] = state.hidden.dims();
    state.hidden.reshape([batch, hidden])
}

/// The state the one-layer RNN carries on: `h` as `[1, batch, hidden]`.
fn one_layer_state(last: Tensor<2>) -> RecurrentState {
    RecurrentState {
        hidden: last.unsqueeze_dim(0),
        cell: None,
    }
}

/// LMModel3: LMModel2 that starts each batch from the state the last batch ended in, so that it
/// sees the whole stream (with batches arranged by `group_chunks`). The training loop detaches
/// the state between batches and resets it at the start of each epoch.
#[derive(Module, Debug)]
pub struct LmModel3 {
    layers: SimpleRnnLayers,
}

impl LanguageModel for LmModel3 {
    fn forward_lm(&self, tokens: Tensor<2, Int>, state: Option<RecurrentState>) -> LmOutput {
        let h = state.map(one_layer_hidden);
        let last = self
            .layers
            .run(tokens, h)
            .pop()
            .expect("at least one token per row");
        LmOutput {
            logits: self.layers.score_last(last.clone()),
            state: Some(one_layer_state(last)),
            penalty: None,
        }
    }

    fn vocab_size(&self) -> usize {
        self.layers.vocab_size()
    }
}

/// LMModel4: LMModel3 that scores the next token after every input token, giving
/// `[batch, time, vocab]` logits.
#[derive(Module, Debug)]
pub struct LmModel4 {
    layers: SimpleRnnLayers,
}

impl LanguageModel for LmModel4 {
    fn forward_lm(&self, tokens: Tensor<2, Int>, state: Option<RecurrentState>) -> LmOutput {
        let h = state.map(one_layer_hidden);
        let hidden = self.layers.run(tokens, h);
        let last = hidden.last().expect("at least one token per row").clone();
        let logits = self
            .layers
            .hidden_to_output
            .forward(Tensor::stack(hidden, 1));
        LmOutput {
            logits,
            state: Some(one_layer_state(last)),
            penalty: None,
        }
    }

    fn vocab_size(&self) -> usize {
        self.layers.vocab_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    fn tokens(device: &Device) -> Tensor<2, Int> {
        Tensor::from_data(TensorData::new(vec![1i64, 2, 3, 4, 5, 6], [2, 3]), device)
    }

    #[test]
    fn parameter_counts_match_pytorch() {
        let device = Device::flex();
        // Embedding 30*64 + Linear 64*64+64 + Linear 64*30+30.
        assert_eq!(
            LmModel1Config::new(30, 64).init(&device).num_params(),
            1920 + 4160 + 1950
        );
        assert_eq!(
            LmModel2Config::new(30, 128).init(&device).num_params(),
            3840 + 16512 + 3870
        );
    }

    #[test]
    fn unrolled_and_looped_models_agree() {
        let device = Device::flex();
        let one = LmModel1Config::new(10, 8).init(&device);
        let two = LmModel2 {
            layers: one.layers.clone(),
        };
        let a = one.forward_lm(tokens(&device), None).logits;
        let b = two.forward_lm(tokens(&device), None).logits;
        assert_eq!(a.dims(), [2, 1, 10]);
        a.into_data()
            .assert_approx_eq::<f32>(&b.into_data(), Default::default());
    }

    #[test]
    fn state_carries_the_stream_on() {
        let device = Device::flex();
        let four = LmModel4Config::new(10, 8).init(&device);
        let whole = four
            .forward_lm(tokens(&device).reshape([1, 6]), None)
            .logits;
        let first = four.forward_lm(tokens(&device).narrow(0, 0, 1), None);
        let second = four
            .forward_lm(tokens(&device).narrow(0, 1, 1), first.state)
            .logits;
        let split = Tensor::cat(vec![first.logits, second], 1);
        assert_eq!(whole.dims(), [1, 6, 10]);
        whole
            .into_data()
            .assert_approx_eq::<f32>(&split.into_data(), Default::default());
    }
}
