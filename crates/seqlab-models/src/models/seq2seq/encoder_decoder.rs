//! Encoder–decoders on seqlab's recurrent layers: the RNN course's `SeqEncoderDecoderRNN`,
//! its masked variant and `SumRNN` / `SumLSTM` (a decoder with no input), and the designs that
//! solve such tasks well — a decoder fed its previous symbol, with or without attention.

use super::attention::{LuongAttention, LuongAttentionConfig};
use crate::layers::recurrent::step_mask;
use crate::weights::{NamedTensors, PytorchWeights, WeightReader, WeightsError};
use crate::{CellKind, Recurrent, RecurrentConfig, RecurrentError, RecurrentState};
use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Bool, Device, Int, Tensor};
use std::fmt;
use std::str::FromStr;

/// What the decoder reads at each step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecoderKind {
    /// Nothing (a zero of width 1), as the notebook's decoders: everything it writes must
    /// come from the encoder's final state.
    Zero,
    /// The previous target symbol, one-hot (teacher forcing in training); when generating, its
    /// own previous prediction (greedy decoding). The first step reads the stop symbol.
    Feedback,
    /// [`Feedback`](Self::Feedback), and Luong attention over every encoder output, masked
    /// to each source's length, with input feeding: each step also reads the attentional
    /// state of the step before, so what it attended to carries forward (a carry in addition
    /// needs this; without it each step sees one weighted mix of the source).
    Attention,
}

impl DecoderKind {
    /// The name on the command line: `zero`, `feedback`, `attention`.
    pub fn name(self) -> &'static str {
        match self {
            DecoderKind::Zero => "zero",
            DecoderKind::Feedback => "feedback",
            DecoderKind::Attention => "attention",
        }
    }
}

impl fmt::Display for DecoderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DecoderKind {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "zero" => Ok(DecoderKind::Zero),
            "feedback" => Ok(DecoderKind::Feedback),
            "attention" => Ok(DecoderKind::Attention),
            other => Err(format!(
                "unknown decoder {other:?}: expected zero, feedback or attention"
            )),
        }
    }
}

/// Settings of a [`Seq2Seq`].
#[derive(Config, Debug, Copy, PartialEq)]
pub struct Seq2SeqConfig {
    /// The recurrence of encoder and decoder.
    pub kind: CellKind,
    /// One-hot width of the source symbols (the stop symbol included).
    pub source_classes: usize,
    /// One-hot width of the target symbols (the stop symbol included).
    pub target_classes: usize,
    /// Hidden units per layer.
    pub hidden_size: usize,
    /// Stacked layers in encoder and decoder (default 1).
    #[config(default = 1)]
    pub num_layers: usize,
    /// What the decoder reads.
    pub decoder: DecoderKind,
}

impl Seq2SeqConfig {
    /// Builds it on `device`.
    pub fn init(&self, device: &Device) -> Seq2Seq {
        let decoder_input = match self.decoder {
            DecoderKind::Zero => 1,
            DecoderKind::Feedback => self.target_classes,
            DecoderKind::Attention => self.target_classes + self.hidden_size,
        };
        let layers = |input| {
            RecurrentConfig::new(self.kind, input, self.hidden_size)
                .with_num_layers(self.num_layers)
                .init(device)
        };
        Seq2Seq {
            encoder: layers(self.source_classes),
            decoder: layers(decoder_input),
            attention: (self.decoder == DecoderKind::Attention)
                .then(|| LuongAttentionConfig::new(self.hidden_size).init(device)),
            output: LinearConfig::new(self.hidden_size, self.target_classes).init(device),
            decoder_kind: self.decoder,
            target_classes: self.target_classes,
        }
    }
}

/// What the encoder hands the decoder.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// The last layer's output at every source step `[B, Ts, H]` (zero at padding).
    pub outputs: Tensor<3>,
    /// The final state of every layer, at each source's own last step.
    pub state: RecurrentState,
    /// `[B, Ts]`, true at real source steps, when lengths were given.
    pub mask: Option<Tensor<2, Bool>>,
}

/// A recurrent encoder and decoder with a linear read-out.
///
/// ```
/// use burn::tensor::{Device, Int, Tensor};
/// use seqlab_models::{CellKind, DecoderKind, Seq2SeqConfig};
///
/// let device = Device::flex();
/// // Copy over 3 symbols + stop, 32 hidden units, attention.
/// let model = Seq2SeqConfig::new(CellKind::Lstm, 4, 4, 32, DecoderKind::Attention).init(&device);
/// let source = Tensor::<3>::zeros([2, 6, 4], &device); // one-hot [B, Ts, classes]
/// let targets = Tensor::<2, Int>::zeros([2, 7], &device);
/// let logits = model.forward(source.clone(), Some(&[6, 4]), targets).unwrap();
/// assert_eq!(logits.dims(), [2, 7, 4]);
/// let ids = model.greedy(source, Some(&[6, 4]), 7).unwrap();
/// assert_eq!(ids.dims(), [2, 7]);
/// ```
#[derive(Module, Debug)]
pub struct Seq2Seq {
    /// The encoder's layers.
    pub encoder: Recurrent,
    /// The decoder's layers, started from the encoder's final state.
    pub decoder: Recurrent,
    /// Attention over the encoder's outputs, for [`DecoderKind::Attention`].
    pub attention: Option<LuongAttention>,
    /// Decoder state (or attentional state) → target scores.
    pub output: Linear,
    #[module(skip)]
    decoder_kind: DecoderKind,
    target_classes: usize,
}

impl Seq2Seq {
    /// What the decoder reads.
    pub fn decoder_kind(&self) -> DecoderKind {
        self.decoder_kind
    }

    /// Reads one-hot `source` `[B, Ts, source_classes]`; with `lengths`, source `b` is
    /// `source[b, ..lengths[b]]` (the masked encoder: its state is taken at each length).
    pub fn encode(
        &self,
        source: Tensor<3>,
        lengths: Option<&[usize]>,
    ) -> Result<Encoded, RecurrentError> {
        let [_, time, _] = source.dims();
        let device = source.device();
        let (outputs, state) = match lengths {
            Some(lengths) => self.encoder.forward_padded(source, None, lengths)?,
            None => self.encoder.forward(source, None)?,
        };
        let mask = lengths.map(|lengths| step_mask(lengths, time, &device).greater_elem(0.5));
        Ok(Encoded {
            outputs,
            state,
            mask,
        })
    }

    /// Scores `[B, Tt, target_classes]` for `targets` `[B, Tt]` with teacher forcing: step `t`
    /// reads target `t − 1` (the stop symbol at `t = 0`), or nothing for a zero decoder.
    pub fn forward(
        &self,
        source: Tensor<3>,
        lengths: Option<&[usize]>,
        targets: Tensor<2, Int>,
    ) -> Result<Tensor<3>, RecurrentError> {
        let encoded = self.encode(source, lengths)?;
        let [batch, steps] = targets.dims();
        let device = targets.device();
        let start = Tensor::<2, Int>::zeros([batch, 1], &device);
        let previous = if steps > 1 {
            Tensor::cat(vec![start, targets.slice([0..batch, 0..steps - 1])], 1)
        } else {
            start
        };
        match self.decoder_kind {
            DecoderKind::Zero => {
                let zeros = Tensor::zeros([batch, steps, 1], &device);
                let (states, _) = self.decoder.forward(zeros, Some(encoded.state))?;
                Ok(self.output.forward(states))
            }
            DecoderKind::Feedback => {
                let inputs = previous.one_hot::<3>(self.target_classes).float();
                let (states, _) = self.decoder.forward(inputs, Some(encoded.state))?;
                Ok(self.output.forward(states))
            }
            DecoderKind::Attention => {
                let mut step = AttentionStep::start(&encoded, batch);
                let mut logits = Vec::with_capacity(steps);
                for t in 0..steps {
                    let symbols = previous
                        .clone()
                        .slice([0..batch, t..t + 1])
                        .reshape([batch]);
                    logits.push(self.attention_step(&mut step, symbols, &encoded)?);
                }
                Ok(Tensor::cat(logits, 1))
            }
        }
    }

    /// Greedy decoding of `steps` symbols `[B, steps]`: each step reads the symbol the model
    /// chose at the step before (a zero decoder reads nothing, so one pass does it).
    pub fn greedy(
        &self,
        source: Tensor<3>,
        lengths: Option<&[usize]>,
        steps: usize,
    ) -> Result<Tensor<2, Int>, RecurrentError> {
        let [batch, _, _] = source.dims();
        let device = source.device();
        let encoded = self.encode(source, lengths)?;
        if self.decoder_kind == DecoderKind::Zero {
            let zeros = Tensor::zeros([batch, steps, 1], &device);
            let (states, _) = self.decoder.forward(zeros, Some(encoded.state))?;
            return Ok(self
                .output
                .forward(states)
                .argmax(2)
                .reshape([batch, steps]));
        }
        let mut step = AttentionStep::start(&encoded, batch);
        let mut previous = Tensor::<1, Int>::zeros([batch], &device);
        let mut chosen = Vec::with_capacity(steps);
        for _ in 0..steps {
            let logits = if self.decoder_kind == DecoderKind::Attention {
                self.attention_step(&mut step, previous, &encoded)?
            } else {
                let input = previous.one_hot::<2>(self.target_classes).float();
                let (output, next) = self.decoder.step(input, Some(step.state))?;
                step.state = next;
                self.output.forward(output.unsqueeze_dim::<3>(1))
            };
            previous = logits.argmax(2).reshape([batch]);
            chosen.push(previous.clone().unsqueeze_dim::<2>(1));
        }
        Ok(Tensor::cat(chosen, 1))
    }

    /// One attention-decoder step: reads `symbols` `[B]` and the last attentional state,
    /// attends, and returns the scores `[B, 1, target_classes]`.
    fn attention_step(
        &self,
        step: &mut AttentionStep,
        symbols: Tensor<1, Int>,
        encoded: &Encoded,
    ) -> Result<Tensor<3>, RecurrentError> {
        let attention = self
            .attention
            .as_ref()
            .expect("an attention decoder is built with its attention");
        let [batch] = symbols.dims();
        let input = Tensor::cat(
            vec![
                symbols.one_hot::<2>(self.target_classes).float(),
                step.feed.clone(),
            ],
            1,
        );
        let (output, next) = self.decoder.step(input, Some(step.state.clone()))?;
        step.state = next;
        let (attended, _) = attention.forward(
            output.unsqueeze_dim::<3>(1),
            encoded.outputs.clone(),
            encoded.mask.clone(),
        );
        let [_, _, hidden] = attended.dims();
        step.feed = attended.clone().reshape([batch, hidden]);
        Ok(self.output.forward(attended))
    }
}

/// PyTorch-style names: `encoder.` and `decoder.` (`nn.LSTM`'s `weight_ih_l0`, …),
/// `attention.score.` and `attention.combine.` (`nn.Linear` without bias) for an attention
/// decoder, and `output.`.
impl PytorchWeights for Seq2Seq {
    fn save_pytorch(&self, prefix: &str, out: &mut NamedTensors) {
        self.encoder.save_pytorch(&format!("{prefix}encoder."), out);
        self.decoder.save_pytorch(&format!("{prefix}decoder."), out);
        if let Some(attention) = &self.attention {
            let score = format!("{prefix}attention.score.");
            attention.score.save_pytorch(&score, out);
            let combine = format!("{prefix}attention.combine.");
            attention.combine.save_pytorch(&combine, out);
        }
        self.output.save_pytorch(&format!("{prefix}output."), out);
    }

    fn load_pytorch(
        mut self,
        prefix: &str,
        reader: &mut WeightReader,
    ) -> Result<Self, WeightsError> {
        self.encoder = self
            .encoder
            .load_pytorch(&format!("{prefix}encoder."), reader)?;
        self.decoder = self
            .decoder
            .load_pytorch(&format!("{prefix}decoder."), reader)?;
        if let Some(mut attention) = self.attention.take() {
            let score = format!("{prefix}attention.score.");
            attention.score = attention.score.load_pytorch(&score, reader)?;
            let combine = format!("{prefix}attention.combine.");
            attention.combine = attention.combine.load_pytorch(&combine, reader)?;
            self.attention = Some(attention);
        }
        self.output = self
            .output
            .load_pytorch(&format!("{prefix}output."), reader)?;
        Ok(self)
    }
}

/// What a decoder carries from step to step.
struct AttentionStep {
    state: RecurrentState,
    /// The last attentional state `[B, H]` (zeros before the first step).
    feed: Tensor<2>,
}

impl AttentionStep {
    fn start(encoded: &Encoded, batch: usize) -> Self {
        let [_, _, hidden] = encoded.outputs.dims();
        Self {
            state: encoded.state.clone(),
            feed: Tensor::zeros([batch, hidden], &encoded.outputs.device()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Nonlinearity;
    use burn::tensor::{Distribution, TensorData};

    #[test]
    fn sum_lstm_and_sum_rnn_have_the_notebooks_parameter_counts() {
        let device = Device::flex();
        // SumLSTM(12, 11, 200, n_layers=5): nn.LSTM(12, 200, 5), nn.LSTM(1, 200, 5),
        // nn.Linear(200, 11).
        let lstm = Seq2SeqConfig::new(CellKind::Lstm, 12, 11, 200, DecoderKind::Zero)
            .with_num_layers(5)
            .init(&device);
        let upper = 4 * (4 * 200 * 400 + 8 * 200);
        let encoder = 4 * 200 * 212 + 8 * 200 + upper;
        let decoder = 4 * 200 * 201 + 8 * 200 + upper;
        assert_eq!(lstm.num_params(), encoder + decoder + 200 * 11 + 11);
        // SumRNN(12, 11, 100, n_layers=5).
        let rnn = Seq2SeqConfig::new(
            CellKind::Rnn(Nonlinearity::Tanh),
            12,
            11,
            100,
            DecoderKind::Zero,
        )
        .with_num_layers(5)
        .init(&device);
        let upper = 4 * (100 * 200 + 200);
        let encoder = 100 * 112 + 200 + upper;
        let decoder = 100 * 101 + 200 + upper;
        assert_eq!(rnn.num_params(), encoder + decoder + 100 * 11 + 11);
    }

    #[test]
    fn greedy_decoding_matches_teacher_forcing_on_its_own_choices() {
        let device = Device::flex();
        device.seed(3);
        for decoder in [
            DecoderKind::Zero,
            DecoderKind::Feedback,
            DecoderKind::Attention,
        ] {
            let model = Seq2SeqConfig::new(CellKind::Gru, 5, 4, 16, decoder).init(&device);
            let source = Tensor::<3>::random([3, 6, 5], Distribution::Default, &device);
            let lengths = [6, 2, 4];
            let chosen = model.greedy(source.clone(), Some(&lengths), 5).unwrap();
            // Fed its own choices as targets, teacher forcing makes the same choices.
            let logits = model
                .forward(source, Some(&lengths), chosen.clone())
                .unwrap();
            let again = logits.argmax(2).reshape([3, 5]);
            assert_eq!(
                again.into_data().iter::<i64>().collect::<Vec<_>>(),
                chosen.into_data().iter::<i64>().collect::<Vec<_>>(),
                "{decoder}"
            );
        }
    }

    #[test]
    fn padding_after_a_source_changes_nothing() {
        let device = Device::flex();
        device.seed(5);
        let model =
            Seq2SeqConfig::new(CellKind::Lstm, 3, 3, 8, DecoderKind::Attention).init(&device);
        let short = Tensor::<3>::random([1, 3, 3], Distribution::Default, &device);
        let noise = Tensor::<3>::random([1, 4, 3], Distribution::Default, &device);
        let padded = Tensor::cat(vec![short.clone(), noise], 1);
        let targets =
            Tensor::<2, Int>::from_data(TensorData::new(vec![1i64, 2, 0], [1, 3]), &device);
        let a = model.forward(short, Some(&[3]), targets.clone()).unwrap();
        let b = model.forward(padded, Some(&[3]), targets).unwrap();
        a.into_data()
            .assert_approx_eq::<f32>(&b.into_data(), Default::default());
    }
}
