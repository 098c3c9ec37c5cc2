//! The fastai book's recurrent language models on top of [`Recurrent`]: LMModel5 (a
//! multi-layer RNN), LMModel6 (a multi-layer LSTM) and LMModel7 (AWD-LSTM style: dropout on the
//! output, input and output embeddings tied, activation and temporal activation
//! regularisation), predicting after every token and keeping their state across batches.

use crate::config_check::{ConfigError, at_least};
use crate::host::host_values;
use crate::layers::recurrent::fused;
use crate::{
    CellKind, HostStepper, LanguageModel, LmOutput, Recurrent, RecurrentConfig, RecurrentState,
    SequenceEncoder, TokenStepper,
};
use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, Linear, LinearConfig,
};
use burn::tensor::{Device, Int, Tensor};

use crate::weights::{NamedTensors, PytorchWeights, WeightReader, WeightsError};

/// The global gradient norm models on recurrent layers clip to by default.
pub const RECURRENT_GRAD_CLIP: f64 = 5.0;

/// Configuration of a [`RecurrentLm`]: `RecurrentLmConfig::new(kind, vocab_size,
/// hidden_size, num_layers)` is a language model of `kind` with these sizes, no dropout,
/// untied, unregularised.
#[derive(Config, Debug, Copy, PartialEq)]
pub struct RecurrentLmConfig {
    /// The recurrence: `CellKind::Rnn(Tanh)` for LMModel5, `CellKind::Lstm` for LMModel6–7.
    pub kind: CellKind,
    /// Tokens in the vocabulary.
    pub vocab_size: usize,
    /// Hidden width (the book: 64).
    pub hidden_size: usize,
    /// Stacked recurrent layers (the book: 2).
    pub num_layers: usize,
    /// Embedding width; `None` is the hidden width, as in the book (the RNN course's
    /// character model: 64 with 512 hidden). A tied model always uses the hidden width.
    pub embedding_size: Option<usize>,
    /// Dropout on the recurrent output before the output layer (LMModel7: 0.4).
    #[config(default = 0.0)]
    pub output_dropout: f64,
    /// Whether the output layer reuses the embedding's weights (LMModel7).
    #[config(default = false)]
    pub tie_weights: bool,
    /// Activation regularisation α: `α · mean(dropped output²)` (LMModel7: 2).
    #[config(default = 0.0)]
    pub activation_reg: f64,
    /// Temporal activation regularisation β: `β · mean((raw[t+1] − raw[t])²)` (LMModel7: 1).
    #[config(default = 0.0)]
    pub temporal_reg: f64,
}

impl RecurrentLmConfig {
    /// The book's LMModel7: a 2-layer LSTM with output dropout `dropout`, tied embeddings, and
    /// AR α = 2, TAR β = 1.
    pub fn awd_lstm(vocab_size: usize, hidden_size: usize, dropout: f64) -> Self {
        Self {
            output_dropout: dropout,
            tie_weights: true,
            activation_reg: 2.0,
            temporal_reg: 1.0,
            ..Self::new(CellKind::Lstm, vocab_size, hidden_size, 2)
        }
    }

    /// The config, if it can build a model: vocabulary, widths and layers at least 1.
    pub fn check(self) -> Result<Self, ConfigError> {
        at_least("vocab_size", self.vocab_size, 1)?;
        at_least("hidden_size", self.hidden_size, 1)?;
        at_least("embedding_size", self.embedding_width(), 1)?;
        at_least("num_layers", self.num_layers, 1)?;
        Ok(self)
    }

    /// The embedding width the model is built with.
    pub fn embedding_width(&self) -> usize {
        match self.embedding_size {
            Some(size) if !self.tie_weights => size,
            _ => self.hidden_size,
        }
    }

    /// Builds the model on `device`: `Embedding(vocab, hidden)`, the recurrent layers, and
    /// `Linear(hidden, vocab)` — or, tied, the embedding's weights and a bias — each initialised
    /// as PyTorch does.
    pub fn init(&self, device: &Device) -> RecurrentLm {
        let output = self.output_layer(self.hidden_size, device);
        let embedding = EmbeddingConfig::new(self.vocab_size, self.embedding_width()).init(device);
        let encoder = RecurrentConfig::new(self.kind, self.embedding_width(), self.hidden_size)
            .with_num_layers(self.num_layers)
            .init(device);
        self.assemble(embedding, encoder, output)
    }

    /// Builds a language model around `encoder` (which reads
    /// [`embedding_width`](RecurrentLmConfig::embedding_width) features a token and must be
    /// causal) on `device`: a new encoder plugs in without touching the model. `kind`,
    /// `hidden_size` and `num_layers` describe the recurrent encoder [`init`](Self::init)
    /// builds; here the encoder's own width sizes the output layer. A tied model needs an
    /// encoder as wide as its embedding.
    pub fn init_with_encoder<E: SequenceEncoder>(
        &self,
        encoder: E,
        device: &Device,
    ) -> Result<EncoderLm<E>, ConfigError> {
        let width = encoder.output_width();
        if self.tie_weights && width != self.embedding_width() {
            return Err(ConfigError::Mismatch {
                setting: "the encoder's output width",
                value: width,
                expected: self.embedding_width(),
                reason: "the embedding's width, as the output layer reuses its weights",
            });
        }
        let output = self.output_layer(width, device);
        let embedding = EmbeddingConfig::new(self.vocab_size, self.embedding_width()).init(device);
        Ok(self.assemble(embedding, encoder, output))
    }

    /// The output layer over `width` features: a `Linear(width, vocab)`, or, tied, the
    /// embedding's bias alone.
    fn output_layer(&self, width: usize, device: &Device) -> OutputLayer {
        if self.tie_weights {
            let bound = 1.0 / (width as f64).sqrt();
            let init = Initializer::Uniform {
                min: -bound,
                max: bound,
            };
            (None, Some(init.init([self.vocab_size], device)))
        } else {
            (
                Some(LinearConfig::new(width, self.vocab_size).init(device)),
                None,
            )
        }
    }

    fn assemble<E: SequenceEncoder>(
        &self,
        embedding: Embedding,
        encoder: E,
        (hidden_to_output, tied_bias): OutputLayer,
    ) -> EncoderLm<E> {
        EncoderLm {
            input_to_hidden: embedding,
            rnn: encoder,
            output_dropout: DropoutConfig::new(self.output_dropout).init(),
            hidden_to_output,
            tied_bias,
            num_layers: self.num_layers,
            activation_reg: self.activation_reg,
            temporal_reg: self.temporal_reg,
        }
    }
}

/// An untied output layer, or a tied one's bias.
type OutputLayer = (Option<Linear>, Option<Param<Tensor<1>>>);

/// Embedding → an encoder → (dropout) → output layer, scoring the next token after every
/// input token. Build it with [`RecurrentLmConfig`]: [`RecurrentLm`] on seqlab's recurrent
/// layers ([`init`](RecurrentLmConfig::init)), or on any causal [`SequenceEncoder`]
/// ([`init_with_encoder`](RecurrentLmConfig::init_with_encoder)).
#[derive(Module, Debug)]
pub struct EncoderLm<E: SequenceEncoder> {
    input_to_hidden: Embedding,
    rnn: E,
    output_dropout: Dropout,
    hidden_to_output: Option<Linear>,
    tied_bias: Option<Param<Tensor<1>>>,
    num_layers: usize,
    activation_reg: f64,
    temporal_reg: f64,
}

/// The fastai book's LMModel5–7: an [`EncoderLm`] on seqlab's recurrent layers.
pub type RecurrentLm = EncoderLm<Recurrent>;

impl<E: SequenceEncoder> EncoderLm<E> {
    /// The input embedding and the encoder: ULMFiT's encoder, which a
    /// [`RecurrentClassifier`](crate::RecurrentClassifier) can start from
    /// ([`RecurrentClassifier::with_encoder`](crate::RecurrentClassifier::with_encoder)).
    pub fn encoder(&self) -> (Embedding, E) {
        (self.input_to_hidden.clone(), self.rnn.clone())
    }

    /// Scores `[batch, time, hidden]` outputs over the vocabulary.
    fn score(&self, output: Tensor<3>) -> Tensor<3> {
        if let Some(linear) = &self.hidden_to_output {
            return linear.forward(output);
        }
        let [batch, time, hidden] = output.dims();
        let weight = self.input_to_hidden.weight.val().transpose(); // [hidden, vocab]
        let vocab = weight.dims()[1];
        let mut logits = output.reshape([batch * time, hidden]).matmul(weight);
        if let Some(bias) = &self.tied_bias {
            logits = logits + bias.val().unsqueeze_dim(0);
        }
        logits.reshape([batch, time, vocab])
    }

    /// AR and TAR while training (on an autodiff device); `None` otherwise or when both are off.
    fn penalty(&self, raw: &Tensor<3>, dropped: &Tensor<3>) -> Option<Tensor<1>> {
        let training = raw.device().is_autodiff();
        if !training || (self.activation_reg == 0.0 && self.temporal_reg == 0.0) {
            return None;
        }
        let ar = dropped
            .clone()
            .square()
            .mean()
            .mul_scalar(self.activation_reg);
        let time = raw.dims()[1];
        if time < 2 || self.temporal_reg == 0.0 {
            return Some(ar);
        }
        let steps = raw.clone().narrow(1, 1, time - 1) - raw.clone().narrow(1, 0, time - 1);
        Some(ar + steps.square().mean().mul_scalar(self.temporal_reg))
    }
}

/// # Panics
/// If the encoder refuses the embedded tokens or the state it returned itself: seqlab's
/// recurrent layers never do (the embedding width is their input size).
impl<E: SequenceEncoder> LanguageModel for EncoderLm<E> {
    fn forward_lm(&self, tokens: Tensor<2, Int>, state: Option<RecurrentState>) -> LmOutput {
        let (raw, state) = self
            .rnn
            .encode_tokens_carrying(&self.input_to_hidden, tokens, state)
            .expect("an encoder takes the embedding it was built for, and its own state");
        let dropped = self.output_dropout.forward(raw.clone());
        let penalty = self.penalty(&raw, &dropped);
        LmOutput {
            logits: self.score(dropped),
            state,
            penalty,
        }
    }

    fn vocab_size(&self) -> usize {
        self.input_to_hidden.weight.dims()[0]
    }

    /// 5, Zaremba et al.'s setting for LSTM language models: it guards against exploding
    /// gradients and never triggers in the book's LMModel5–7 (their largest norm is 2.3).
    fn default_grad_clip(&self) -> Option<f64> {
        Some(RECURRENT_GRAD_CLIP)
    }

    /// The embedding, layers and output layer on the host where the device has the fused
    /// operations (dropout is off in generation).
    fn token_stepper(&self, state: Option<RecurrentState>) -> Option<Box<dyn TokenStepper>> {
        let layers = self.rnn.step_on_host(state)?;
        let embedding = self.input_to_hidden.weight.val();
        let [vocab, width] = embedding.dims();
        let (output, bias) = match &self.hidden_to_output {
            // burn's Linear holds its weight as [hidden, vocab]: the host copy is [vocab, hidden].
            Some(linear) => (
                linear.weight.val().transpose(),
                linear.bias.as_ref().map(|bias| bias.val()),
            ),
            None => (embedding.clone(), self.tied_bias.as_ref().map(Param::val)),
        };
        let device = embedding.device();
        Some(Box::new(RecurrentLmStepper {
            embedding: host_values(embedding.flatten::<1>(0, 1)),
            width,
            layers,
            output: host_values(output.flatten::<1>(0, 1)),
            bias: host_values(bias.unwrap_or_else(|| Tensor::zeros([vocab], &device))),
            scores: vec![0.0; vocab],
        }))
    }
}

/// An [`EncoderLm`] on the host for generation.
struct RecurrentLmStepper {
    /// `[vocab, width]`.
    embedding: Vec<f32>,
    width: usize,
    layers: Box<dyn HostStepper>,
    /// `[vocab, hidden]`.
    output: Vec<f32>,
    /// `[vocab]`.
    bias: Vec<f32>,
    scores: Vec<f32>,
}

impl TokenStepper for RecurrentLmStepper {
    fn step(&mut self, token: u32) -> &[f32] {
        let x = &self.embedding[token as usize * self.width..][..self.width];
        let h = self.layers.step(x);
        fused::matrix_vector(&self.output, h, &mut self.scores);
        for (score, bias) in self.scores.iter_mut().zip(&self.bias) {
            *score += bias;
        }
        &self.scores
    }
}

/// The names of the book's PyTorch `LMModel5`–`7`: `i_h`, `rnn`, `h_o`. A tied model stores
/// the embedding as `h_o.weight` too, as PyTorch's `state_dict` does.
impl<E: SequenceEncoder + PytorchWeights> PytorchWeights for EncoderLm<E> {
    fn save_pytorch(&self, prefix: &str, out: &mut NamedTensors) {
        self.input_to_hidden
            .save_pytorch(&format!("{prefix}i_h."), out);
        self.rnn.save_pytorch(&format!("{prefix}rnn."), out);
        match (&self.hidden_to_output, &self.tied_bias) {
            (Some(linear), _) => linear.save_pytorch(&format!("{prefix}h_o."), out),
            (None, bias) => {
                out.insert_tensor(
                    format!("{prefix}h_o.weight"),
                    self.input_to_hidden.weight.val(),
                );
                if let Some(bias) = bias {
                    out.insert_tensor(format!("{prefix}h_o.bias"), bias.val());
                }
            }
        }
    }

    fn load_pytorch(
        mut self,
        prefix: &str,
        reader: &mut WeightReader,
    ) -> Result<Self, WeightsError> {
        self.input_to_hidden = self
            .input_to_hidden
            .load_pytorch(&format!("{prefix}i_h."), reader)?;
        self.rnn = self.rnn.load_pytorch(&format!("{prefix}rnn."), reader)?;
        if let Some(linear) = self.hidden_to_output.take() {
            self.hidden_to_output = Some(linear.load_pytorch(&format!("{prefix}h_o."), reader)?);
        } else {
            reader.skip(&format!("{prefix}h_o.weight"));
            if let Some(bias) = self.tied_bias.take() {
                self.tied_bias = Some(reader.param(&format!("{prefix}h_o.bias"), bias, false)?);
            }
        }
        Ok(self)
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
        // LMModel7 ties the output weights (64*30) to the embedding, keeping the bias.
        let lm7 = RecurrentLmConfig::awd_lstm(30, 64, 0.4).init(&device);
        assert_eq!(lm7.num_params(), 1920 + 2 * 4 * 8320 + 30);
    }

    #[test]
    fn weights_round_trip_under_the_books_pytorch_names() {
        let device = Device::flex();
        for config in [
            RecurrentLmConfig::new(CellKind::Lstm, 30, 8, 2),
            RecurrentLmConfig::awd_lstm(30, 8, 0.4),
        ] {
            let model = config.init(&device);
            let mut named = NamedTensors::default();
            model.save_pytorch("", &mut named);
            let names: Vec<&str> = named.names().collect();
            assert_eq!(names.len(), 1 + 8 + 2, "{names:?}");
            assert!(names.contains(&"i_h.weight") && names.contains(&"h_o.bias"));
            let mut reader = WeightReader::new(&named);
            let loaded = config.init(&device).load_pytorch("", &mut reader).unwrap();
            reader.finish().unwrap();
            let tokens = Tensor::<2, Int>::from_data([[1, 2, 3]], &device);
            model
                .valid()
                .forward_lm(tokens.clone(), None)
                .logits
                .into_data()
                .assert_eq(
                    &loaded.valid().forward_lm(tokens, None).logits.into_data(),
                    true,
                );
        }
    }

    #[test]
    fn regularisation_is_added_only_in_training() {
        let device = Device::flex().autodiff();
        let lm7 = RecurrentLmConfig::awd_lstm(30, 16, 0.0).init(&device);
        let tokens =
            Tensor::<2, Int>::from_data(TensorData::new(vec![3i64, 4, 5], [1, 3]), &device);
        let output = lm7.forward_lm(tokens.clone(), None);
        assert_eq!(output.logits.dims(), [1, 3, 30]);
        let penalty: f32 = output.penalty.unwrap().into_scalar();
        assert!(penalty > 0.0);
        let valid = lm7.valid();
        assert!(
            valid
                .forward_lm(tokens.without_autodiff(), None)
                .penalty
                .is_none()
        );
    }

    /// The host stepper scores the next token as `forward_lm` does one token at a time, from
    /// the state a prime left, for every cell and for tied output weights.
    #[test]
    fn the_host_stepper_scores_as_forward_lm_does() {
        let device = Device::flex();
        device.seed(3);
        for config in [
            RecurrentLmConfig::new(CellKind::Lstm, 11, 16, 2).with_embedding_size(Some(6)),
            RecurrentLmConfig::new(CellKind::Gru, 11, 16, 2),
            RecurrentLmConfig::new(CellKind::Rnn(Nonlinearity::Tanh), 11, 16, 1),
            RecurrentLmConfig::awd_lstm(11, 16, 0.0),
        ] {
            let model = config.init(&device);
            let prime = Tensor::<2, Int>::from_data([[1, 2, 3]], &device);
            let mut state = model.forward_lm(prime, None).state;
            let mut stepper = model.token_stepper(state.clone()).expect("flex has one");
            for token in [4u32, 0, 10, 7] {
                let tokens = Tensor::<2, Int>::from_data([[token as i64]], &device);
                let output = model.forward_lm(tokens, state);
                state = output.state;
                let expected = output.logits.into_data();
                let got = stepper.step(token).to_vec();
                TensorData::new(got, [1, 1, 11])
                    .assert_approx_eq::<f32>(&expected, Default::default());
            }
        }
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
        let state = first.state.as_ref().unwrap();
        assert_eq!(state.hidden.dims(), [2, 1, 8]);
        assert_eq!(state.cell.as_ref().unwrap().dims(), [2, 1, 8]);
        let second = lm.forward_lm(tokens.narrow(1, 3, 3), first.state);
        let split = Tensor::cat(vec![first.logits, second.logits], 1);
        whole
            .logits
            .into_data()
            .assert_approx_eq::<f32>(&split.into_data(), Default::default());
    }
}
