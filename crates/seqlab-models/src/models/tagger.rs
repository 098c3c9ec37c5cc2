//! Part-of-speech taggers: the PyTorch tutorial's `LSTMTag` (embedding → LSTM → linear, a tag
//! score for every word) and its exercise, word embeddings joined by a character-level LSTM's
//! summary of each word's spelling, optionally bidirectional.

use crate::config_check::{ConfigError, at_least};
use crate::weights::{NamedTensors, PytorchWeights, WeightReader, WeightsError};
use crate::{CellKind, EncoderError, Recurrent, RecurrentConfig, RecurrentError, SequenceEncoder};
use burn::config::Config;
use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor};

/// The character-level part of a [`Tagger`]: each word's characters through an embedding and
/// an LSTM whose final state joins the word's embedding.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub struct CharFeaturesConfig {
    /// Character classes (id 0 for characters not seen in training).
    pub classes: usize,
    /// Character embedding width.
    pub embedding: usize,
    /// The character LSTM's hidden width: the features each word gets.
    pub hidden: usize,
}

/// Configuration of a [`Tagger`]: `TaggerConfig::new(words, tags, embedding, hidden)` is the
/// tutorial's `LSTMTag(embedding, hidden, words, tags)`, one forward LSTM layer.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub struct TaggerConfig {
    /// Words in the vocabulary.
    pub words: usize,
    /// Tags.
    pub tags: usize,
    /// Word embedding width (the tutorial: 6).
    pub embedding: usize,
    /// Hidden width per direction (the tutorial: 6).
    pub hidden: usize,
    /// The recurrence (the tutorial: LSTM).
    #[config(default = "CellKind::Lstm")]
    pub cell: CellKind,
    /// Whether the sentence is also read backwards.
    #[config(default = false)]
    pub bidirectional: bool,
    /// Character-level word features, if any.
    pub chars: Option<CharFeaturesConfig>,
}

impl TaggerConfig {
    /// The config, if it can build a tagger: every count and width at least 1.
    pub fn check(self) -> Result<Self, ConfigError> {
        at_least("words", self.words, 1)?;
        at_least("tags", self.tags, 1)?;
        at_least("embedding", self.embedding, 1)?;
        at_least("hidden", self.hidden, 1)?;
        if let Some(chars) = self.chars {
            at_least("chars.classes", chars.classes, 1)?;
            at_least("chars.embedding", chars.embedding, 1)?;
            at_least("chars.hidden", chars.hidden, 1)?;
        }
        Ok(self)
    }

    /// Features per word the encoder reads: the word embedding, and the character features
    /// when the tagger has them.
    pub fn encoder_input_width(&self) -> usize {
        self.embedding + self.chars.map_or(0, |c| c.hidden)
    }

    /// Builds the tagger on `device`, initialised as PyTorch initialises its layers.
    pub fn init(&self, device: &Device) -> Tagger {
        let encoder = RecurrentConfig::new(self.cell, self.encoder_input_width(), self.hidden)
            .with_bidirectional(self.bidirectional)
            .init(device);
        self.init_with_encoder(encoder, device)
    }

    /// Builds a tagger around `encoder` (which reads
    /// [`encoder_input_width`](TaggerConfig::encoder_input_width) features a word) on `device`:
    /// a new encoder plugs in without touching the tagger. `cell`, `hidden` and
    /// `bidirectional` describe the recurrent encoder [`TaggerConfig::init`] builds; here the
    /// encoder's own width sizes the output layer.
    pub fn init_with_encoder<E: SequenceEncoder>(
        &self,
        encoder: E,
        device: &Device,
    ) -> SequenceTagger<E> {
        SequenceTagger {
            embeddings: EmbeddingConfig::new(self.words, self.embedding).init(device),
            char_embeddings: self
                .chars
                .map(|c| EmbeddingConfig::new(c.classes, c.embedding).init(device)),
            char_lstm: self
                .chars
                .map(|c| RecurrentConfig::lstm(c.embedding, c.hidden).init(device)),
            hidden2tag: LinearConfig::new(encoder.output_width(), self.tags).init(device),
            lstm: encoder,
        }
    }
}

/// The characters of a batch's words: `ids` `[N, C]` for the `N = B · T` word slots in row
/// order (padding slots included), each row padded after its `lengths[n] ≥ 1` characters.
#[derive(Debug, Clone)]
pub struct WordChars<'a> {
    /// Character ids `[B · T, C]`.
    pub ids: Tensor<2, Int>,
    /// Characters per word slot, each at least 1.
    pub lengths: &'a [usize],
}

/// A tagger: word (and character) features → an encoder → a score per tag per word. Build it
/// with [`TaggerConfig::init_with_encoder`].
#[derive(Module, Debug)]
pub struct SequenceTagger<E: SequenceEncoder> {
    embeddings: Embedding,
    char_embeddings: Option<Embedding>,
    char_lstm: Option<Recurrent>,
    /// The encoder (the tutorial's `lstm`).
    lstm: E,
    hidden2tag: Linear,
}

/// The tutorial's tagger: a [`SequenceTagger`] on seqlab's recurrent layers.
pub type Tagger = SequenceTagger<Recurrent>;

impl<E: SequenceEncoder> SequenceTagger<E> {
    /// Tag scores `[B, T, tags]` (before the softmax) for `words` `[B, T]`; sentence `b` is
    /// `words[b, ..lengths[b]]` when lengths are given. A tagger with character features needs
    /// `chars`.
    pub fn forward(
        &self,
        words: Tensor<2, Int>,
        lengths: Option<&[usize]>,
        chars: Option<WordChars>,
    ) -> Result<Tensor<3>, EncoderError> {
        let [batch, time] = words.dims();
        let mut features = self.embeddings.forward(words);
        if let (Some(embeddings), Some(lstm)) = (&self.char_embeddings, &self.char_lstm) {
            let chars = chars.ok_or(RecurrentError::MissingInput(
                "this tagger reads each word's characters too",
            ))?;
            let (_, state) =
                lstm.forward_padded(embeddings.forward(chars.ids), None, chars.lengths)?;
            let [_, slots, width] = state.hidden.dims();
            if slots != batch * time {
                return Err(RecurrentError::MissingInput(
                    "the characters must cover every word slot of the batch",
                )
                .into());
            }
            let spelling = state.hidden.reshape([batch, time, width]);
            features = Tensor::cat(vec![features, spelling], 2);
        }
        let output = self.lstm.encode(features, lengths)?;
        Ok(self.hidden2tag.forward(output))
    }

    /// Whether the tagger reads characters.
    pub fn uses_chars(&self) -> bool {
        self.char_lstm.is_some()
    }
}

/// The tutorial's names: `embeddings`, `lstm`, `hidden2tag`; and `char_embeddings`,
/// `char_lstm` for the character features.
impl<E: SequenceEncoder + PytorchWeights> PytorchWeights for SequenceTagger<E> {
    fn save_pytorch(&self, prefix: &str, out: &mut NamedTensors) {
        self.embeddings
            .save_pytorch(&format!("{prefix}embeddings."), out);
        if let (Some(embeddings), Some(lstm)) = (&self.char_embeddings, &self.char_lstm) {
            embeddings.save_pytorch(&format!("{prefix}char_embeddings."), out);
            lstm.save_pytorch(&format!("{prefix}char_lstm."), out);
        }
        self.lstm.save_pytorch(&format!("{prefix}lstm."), out);
        self.hidden2tag
            .save_pytorch(&format!("{prefix}hidden2tag."), out);
    }

    fn load_pytorch(
        mut self,
        prefix: &str,
        reader: &mut WeightReader,
    ) -> Result<Self, WeightsError> {
        self.embeddings = self
            .embeddings
            .load_pytorch(&format!("{prefix}embeddings."), reader)?;
        if let Some(embeddings) = self.char_embeddings.take() {
            self.char_embeddings =
                Some(embeddings.load_pytorch(&format!("{prefix}char_embeddings."), reader)?);
        }
        if let Some(lstm) = self.char_lstm.take() {
            self.char_lstm = Some(lstm.load_pytorch(&format!("{prefix}char_lstm."), reader)?);
        }
        self.lstm = self.lstm.load_pytorch(&format!("{prefix}lstm."), reader)?;
        self.hidden2tag = self
            .hidden2tag
            .load_pytorch(&format!("{prefix}hidden2tag."), reader)?;
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    /// An encoder that is not recurrent: one linear map per word, no context.
    #[derive(Module, Debug)]
    struct PerWord {
        linear: Linear,
    }

    impl SequenceEncoder for PerWord {
        fn output_width(&self) -> usize {
            self.linear.weight.dims()[1]
        }

        fn encode(
            &self,
            input: Tensor<3>,
            _lengths: Option<&[usize]>,
        ) -> Result<Tensor<3>, EncoderError> {
            Ok(self.linear.forward(input))
        }
    }

    #[test]
    fn another_encoder_plugs_into_the_tagger() {
        let device = Device::flex();
        let config = TaggerConfig::new(9, 3, 6, 6).with_chars(Some(CharFeaturesConfig {
            classes: 5,
            embedding: 2,
            hidden: 4,
        }));
        assert_eq!(config.encoder_input_width(), 10);
        let encoder = PerWord {
            linear: LinearConfig::new(10, 7).init(&device),
        };
        let tagger = config.init_with_encoder(encoder, &device);
        // Words 9·6, characters 5·2 + LSTM 4·4·(2 + 4 + 2), the encoder 10·7 + 7, the head 7·3 + 3.
        assert_eq!(tagger.num_params(), 54 + 10 + 128 + 77 + 24);
        let words = Tensor::<2, Int>::from_data([[1, 2, 3], [4, 5, 0]], &device);
        let chars = WordChars {
            ids: Tensor::<2, Int>::ones([6, 2], &device),
            lengths: &[2, 1, 2, 2, 1, 1],
        };
        let scores = tagger.forward(words, Some(&[3, 2]), Some(chars)).unwrap();
        assert_eq!(scores.dims(), [2, 3, 3]);
    }

    #[test]
    fn the_tutorials_tagger_has_its_parameter_count_and_shapes() {
        let device = Device::flex();
        // LSTMTag(6, 6, 9 words, 3 tags): 9·6 + 4·6·(6 + 6 + 2) + 6·3 + 3.
        let tagger = TaggerConfig::new(9, 3, 6, 6).init(&device);
        assert_eq!(tagger.num_params(), 54 + 336 + 21);
        let words =
            Tensor::<2, Int>::from_data(TensorData::new(vec![0i64, 1, 2, 3, 4], [1, 5]), &device);
        assert_eq!(tagger.forward(words, None, None).unwrap().dims(), [1, 5, 3]);
    }

    #[test]
    fn character_features_need_characters_for_every_slot() {
        let device = Device::flex();
        let tagger = TaggerConfig::new(10, 4, 8, 8)
            .with_bidirectional(true)
            .with_chars(Some(CharFeaturesConfig {
                classes: 20,
                embedding: 5,
                hidden: 7,
            }))
            .init(&device);
        let words = Tensor::<2, Int>::zeros([2, 3], &device);
        assert!(tagger.forward(words.clone(), Some(&[3, 2]), None).is_err());
        let chars = Tensor::<2, Int>::ones([6, 4], &device);
        let lengths = [4, 1, 2, 3, 1, 1];
        let scores = tagger
            .forward(
                words.clone(),
                Some(&[3, 2]),
                Some(WordChars {
                    ids: chars,
                    lengths: &lengths,
                }),
            )
            .unwrap();
        assert_eq!(scores.dims(), [2, 3, 4]);
        let too_few = Tensor::<2, Int>::ones([5, 4], &device);
        assert!(
            tagger
                .forward(
                    words,
                    Some(&[3, 2]),
                    Some(WordChars {
                        ids: too_few,
                        lengths: &lengths[..5],
                    }),
                )
                .is_err()
        );
    }
}
