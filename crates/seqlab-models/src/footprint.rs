//! What a model config will take in memory, known before it is built: its parameter count
//! (what `num_params` of the built model counts) and the floats one training token keeps for
//! the backward pass. A command checks these against the memory it has before it allocates
//! (`seqlab_train::MemoryNeed`), so that a width of 10^11 is refused in one line instead of
//! eating the machine. Counts are `u128` and saturate: no setting overflows them.

use crate::{
    CellKind, DecoderKind, LinRnnConfig, LmModel1Config, LmModel2Config, LmModel3Config,
    LmModel4Config, MlpClassifierConfig, RecurrentClassifierConfig, RecurrentConfig,
    RecurrentLmConfig, Seq2SeqConfig, SeqEncoderDecoderConfig, TaggerConfig,
};

/// A model config's size, before the model exists.
///
/// ```
/// use seqlab_models::{CellKind, Footprint, RecurrentLmConfig};
///
/// let config = RecurrentLmConfig::new(CellKind::Lstm, 30, 64, 2);
/// // Embedding 30×64, two LSTM layers of 4·64·(64 + 64 + 2), output 64×30 + 30.
/// assert_eq!(config.parameters(), 1_920 + 2 * 33_280 + 1_950);
/// ```
pub trait Footprint {
    /// Trainable parameters the config builds.
    fn parameters(&self) -> u128;

    /// Floats a training step keeps per token (per time step of a row) for the backward pass:
    /// every layer's outputs, a recurrent layer's gates and states, the output scores with
    /// their probabilities and gradient. An estimate, not an exact count.
    fn floats_per_token(&self) -> u128;
}

/// `a × b`, saturating.
fn mul(a: usize, b: usize) -> u128 {
    (a as u128).saturating_mul(b as u128)
}

/// A `Linear` layer's parameters: weight and bias.
fn linear(inputs: usize, outputs: usize) -> u128 {
    mul(inputs, outputs).saturating_add(outputs as u128)
}

/// What an output layer over `classes` keeps per token: scores, probabilities and their
/// gradient.
fn scores(classes: usize) -> u128 {
    mul(3, classes)
}

impl Footprint for RecurrentConfig {
    fn parameters(&self) -> u128 {
        let directions = if self.bidirectional { 2 } else { 1 };
        let biases = if self.bias { 2 } else { 0 };
        // One direction of a layer reading `input` features: W_ih, W_hh and the biases.
        let direction = |input: u128| {
            mul(self.kind.gates(), self.hidden_size).saturating_mul(
                input
                    .saturating_add(self.hidden_size as u128)
                    .saturating_add(biases),
            )
        };
        let first = direction(self.input_size as u128);
        let later = direction(mul(directions, self.hidden_size))
            .saturating_mul(self.num_layers.saturating_sub(1) as u128);
        first
            .saturating_add(later)
            .saturating_mul(directions as u128)
    }

    fn floats_per_token(&self) -> u128 {
        let directions = if self.bidirectional { 2 } else { 1 };
        // The gates before and after their activations, and the hidden (and cell) state.
        mul(self.num_layers, directions)
            .saturating_mul(mul(self.kind.gates() + 2, self.hidden_size))
    }
}

impl Footprint for RecurrentLmConfig {
    fn parameters(&self) -> u128 {
        let embedding = mul(self.vocab_size, self.embedding_width());
        let output = if self.tie_weights {
            self.vocab_size as u128
        } else {
            linear(self.hidden_size, self.vocab_size)
        };
        embedding
            .saturating_add(self.recurrent().parameters())
            .saturating_add(output)
    }

    fn floats_per_token(&self) -> u128 {
        (self.embedding_width() as u128)
            .saturating_add(self.recurrent().floats_per_token())
            .saturating_add(scores(self.vocab_size))
    }
}

impl RecurrentLmConfig {
    /// The recurrent encoder [`init`](Self::init) builds.
    fn recurrent(&self) -> RecurrentConfig {
        RecurrentConfig::new(self.kind, self.embedding_width(), self.hidden_size)
            .with_num_layers(self.num_layers)
    }
}

/// LMModel1–4: an embedding, one hidden linear layer and the output layer.
macro_rules! simple_lm_footprint {
    ($($config:ident),*) => {$(
        impl Footprint for $config {
            fn parameters(&self) -> u128 {
                mul(self.vocab_size, self.hidden_size)
                    .saturating_add(linear(self.hidden_size, self.hidden_size))
                    .saturating_add(linear(self.hidden_size, self.vocab_size))
            }

            fn floats_per_token(&self) -> u128 {
                mul(3, self.hidden_size).saturating_add(scores(self.vocab_size))
            }
        }
    )*};
}

simple_lm_footprint!(
    LmModel1Config,
    LmModel2Config,
    LmModel3Config,
    LmModel4Config
);

impl Footprint for RecurrentClassifierConfig {
    fn parameters(&self) -> u128 {
        let c = &self.classifier;
        let directions = if self.recurrent.bidirectional { 2 } else { 1 };
        let features = mul(c.pooling.widths() * directions, self.recurrent.hidden_size);
        mul(c.vocab_size, c.embedding_size)
            .saturating_add(self.recurrent.parameters())
            .saturating_add(
                features
                    .saturating_mul(c.classes as u128)
                    .saturating_add(c.classes as u128),
            )
    }

    fn floats_per_token(&self) -> u128 {
        (self.classifier.embedding_size as u128).saturating_add(self.recurrent.floats_per_token())
    }
}

impl Footprint for MlpClassifierConfig {
    fn parameters(&self) -> u128 {
        mul(self.vocab_size, self.embedding_size)
            .saturating_add(
                mul(self.embedding_size, self.seq_len)
                    .saturating_mul(self.hidden_size as u128)
                    .saturating_add(self.hidden_size as u128),
            )
            .saturating_add(linear(self.hidden_size, self.classes))
    }

    fn floats_per_token(&self) -> u128 {
        // The embeddings; the hidden layer is per row, not per token.
        mul(2, self.embedding_size).saturating_add(self.hidden_size as u128)
    }
}

impl Footprint for TaggerConfig {
    fn parameters(&self) -> u128 {
        let encoder = RecurrentConfig::new(self.cell, self.encoder_input_width(), self.hidden)
            .with_bidirectional(self.bidirectional);
        let directions = if self.bidirectional { 2 } else { 1 };
        let chars = self.chars.map_or(0, |c| {
            mul(c.classes, c.embedding)
                .saturating_add(RecurrentConfig::lstm(c.embedding, c.hidden).parameters())
        });
        mul(self.words, self.embedding)
            .saturating_add(chars)
            .saturating_add(encoder.parameters())
            .saturating_add(linear(directions * self.hidden, self.tags))
    }

    fn floats_per_token(&self) -> u128 {
        let encoder = RecurrentConfig::new(self.cell, self.encoder_input_width(), self.hidden)
            .with_bidirectional(self.bidirectional);
        // A word's characters run through their own LSTM: about a dozen per word.
        let chars =
            self.chars.map_or(0, |c| {
                mul(12, c.embedding).saturating_add(mul(12, 1).saturating_mul(
                    RecurrentConfig::lstm(c.embedding, c.hidden).floats_per_token(),
                ))
            });
        (self.encoder_input_width() as u128)
            .saturating_add(chars)
            .saturating_add(encoder.floats_per_token())
            .saturating_add(scores(self.tags))
    }
}

impl Footprint for Seq2SeqConfig {
    fn parameters(&self) -> u128 {
        let decoder_input = match self.decoder {
            DecoderKind::Zero => 1,
            DecoderKind::Feedback => self.target_classes,
            DecoderKind::Attention => self.target_classes.saturating_add(self.hidden_size),
        };
        let layers = |input| {
            RecurrentConfig::new(self.kind, input, self.hidden_size)
                .with_num_layers(self.num_layers)
                .parameters()
        };
        let attention = if self.decoder == DecoderKind::Attention {
            mul(3 * self.hidden_size.min(usize::MAX / 3), self.hidden_size)
        } else {
            0
        };
        layers(self.source_classes)
            .saturating_add(layers(decoder_input))
            .saturating_add(attention)
            .saturating_add(linear(self.hidden_size, self.target_classes))
    }

    fn floats_per_token(&self) -> u128 {
        // Encoder and decoder steps, and the decoder's scores.
        let recurrent = RecurrentConfig::new(self.kind, self.hidden_size, self.hidden_size)
            .with_num_layers(self.num_layers)
            .floats_per_token();
        recurrent
            .saturating_mul(2)
            .saturating_add(scores(self.target_classes))
    }
}

impl Footprint for SeqEncoderDecoderConfig {
    fn parameters(&self) -> u128 {
        let (classes, hidden) = (self.classes, self.hidden_size);
        linear(classes, hidden)
            .saturating_add(mul(2, 1).saturating_mul(linear(hidden, hidden)))
            .saturating_add(hidden as u128)
            .saturating_add(linear(hidden, classes))
    }

    fn floats_per_token(&self) -> u128 {
        mul(4, self.hidden_size).saturating_add(scores(self.classes))
    }
}

impl Footprint for LinRnnConfig {
    fn parameters(&self) -> u128 {
        RecurrentConfig::new(
            CellKind::Rnn(crate::Nonlinearity::Identity),
            self.input_size,
            self.hidden_size,
        )
        .parameters()
        .saturating_add(linear(self.hidden_size, self.output_size))
        .saturating_add(self.hidden_size as u128)
    }

    fn floats_per_token(&self) -> u128 {
        mul(3, self.hidden_size).saturating_add(self.output_size as u128)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CharFeaturesConfig, Nonlinearity, Pooling};
    use burn::module::Module;
    use burn::tensor::Device;

    fn check(what: &str, estimate: &impl Footprint, built: usize) {
        assert_eq!(estimate.parameters(), built as u128, "{what}");
    }

    /// Every formula against the model it describes, across the options that change it.
    #[test]
    fn parameter_counts_match_the_built_models() {
        let device = Device::flex();
        for kind in [
            CellKind::Lstm,
            CellKind::Gru,
            CellKind::Rnn(Nonlinearity::Relu),
        ] {
            for (layers, bidirectional, bias) in
                [(1, false, true), (3, true, false), (2, true, true)]
            {
                let config = RecurrentConfig::new(kind, 5, 7)
                    .with_num_layers(layers)
                    .with_bidirectional(bidirectional)
                    .with_bias(bias);
                check("recurrent", &config, config.init(&device).num_params());
                for pooling in [Pooling::Mean, Pooling::Concat] {
                    let classifier = RecurrentClassifierConfig::new(kind, 11, 5, 7, layers, 3)
                        .with_bidirectional(bidirectional);
                    let classifier = RecurrentClassifierConfig {
                        classifier: classifier.classifier.with_pooling(pooling),
                        ..classifier
                    };
                    check(
                        "classifier",
                        &classifier,
                        classifier.init(&device).num_params(),
                    );
                }
            }
            for (embedding, tie) in [(None, false), (Some(4), false), (None, true)] {
                let lm = RecurrentLmConfig::new(kind, 13, 6, 2)
                    .with_embedding_size(embedding)
                    .with_tie_weights(tie);
                check("lm", &lm, lm.init(&device).num_params());
            }
            for decoder in [
                DecoderKind::Zero,
                DecoderKind::Feedback,
                DecoderKind::Attention,
            ] {
                let seq2seq = Seq2SeqConfig::new(kind, 5, 4, 6, decoder).with_num_layers(2);
                check("seq2seq", &seq2seq, seq2seq.init(&device).num_params());
            }
        }
        check(
            "lm1",
            &LmModel1Config::new(30, 8),
            LmModel1Config::new(30, 8).init(&device).num_params(),
        );
        check(
            "lm2",
            &LmModel2Config::new(30, 8),
            LmModel2Config::new(30, 8).init(&device).num_params(),
        );
        check(
            "lm3",
            &LmModel3Config::new(30, 8),
            LmModel3Config::new(30, 8).init(&device).num_params(),
        );
        check(
            "lm4",
            &LmModel4Config::new(30, 8),
            LmModel4Config::new(30, 8).init(&device).num_params(),
        );
        let mlp = MlpClassifierConfig::new(20, 4, 6, 5, 3);
        check("mlp", &mlp, mlp.init(&device).num_params());
        for chars in [
            None,
            Some(CharFeaturesConfig {
                classes: 9,
                embedding: 3,
                hidden: 4,
            }),
        ] {
            let tagger = TaggerConfig::new(15, 5, 6, 7)
                .with_bidirectional(true)
                .with_chars(chars);
            check("tagger", &tagger, tagger.init(&device).num_params());
        }
        check(
            "hand-built",
            &SeqEncoderDecoderConfig::new(3, 20),
            SeqEncoderDecoderConfig::new(3, 20)
                .init(&device)
                .num_params(),
        );
        check(
            "lin-rnn",
            &LinRnnConfig::new(1, 3, 1),
            LinRnnConfig::new(1, 3, 1).init(&device).num_params(),
        );
    }

    #[test]
    fn absurd_sizes_saturate_rather_than_overflow() {
        let huge = RecurrentLmConfig::new(CellKind::Lstm, usize::MAX, usize::MAX, usize::MAX);
        assert_eq!(huge.parameters(), u128::MAX);
        let wide = LmModel1Config::new(30, 100_000_000_000);
        // 10^22 parameters: the hidden layer's 10^11 × 10^11.
        assert!(wide.parameters() > 10u128.pow(22));
        assert!(wide.floats_per_token() >= 3 * 10u128.pow(11));
    }
}
