//! One tokenizer over four kinds: a Hugging Face `tokenizer.json` (pretrained, e.g.
//! bert-base-uncased), a WordPiece or byte-level BPE tokenizer trained on the user's corpus
//! with the `tokenizers` trainers, words with a [`Vocab`], and characters.

use crate::{DataError, TokenCounts, Vocab, write_atomic};
use serde::{Deserialize, Serialize};
use std::path::Path;
use tokenizers::AddedToken;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::TrainerWrapper;
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::models::wordpiece::{WordPiece, WordPieceTrainerBuilder};
use tokenizers::normalizers::bert::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::processors::bert::BertProcessing;

/// The padding token of word and character tokenizers (id 0).
pub const PAD_TOKEN: &str = "<pad>";
/// The unknown token of word and character tokenizers (id 1).
pub const UNKNOWN_TOKEN: &str = "<unk>";
/// The end of a line for the whitespace tokenizer (the Penn Treebank's `<eos>`).
pub const EOS_TOKEN: &str = "<eos>";

/// Which kind of [`Tokenizer`] this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenizerKind {
    /// A Hugging Face `tokenizer.json`: pretrained, or trained here (WordPiece or BPE).
    HuggingFace,
    /// Lower-cased words and punctuation, with a [`Vocab`].
    Word,
    /// Characters, with a [`Vocab`].
    Char,
    /// Tokens as written between spaces, and [`EOS_TOKEN`] at the end of every line (the
    /// Penn Treebank's language-modelling convention), with a [`Vocab`].
    Whitespace,
}

/// Text → token ids → text: a Hugging Face `tokenizer.json` (pretrained or trained here as
/// WordPiece or BPE), words, or characters.
///
/// ```
/// use seqlab_data::Tokenizer;
///
/// let texts = ["A fine film.", "A dull film!"];
/// let words = Tokenizer::word(&texts, 100, 1);
/// let pieces = words.pieces("A fine film!").unwrap();
/// assert_eq!(pieces.iter().map(|(_, p)| p.as_str()).collect::<Vec<_>>(), ["a", "fine", "film", "!"]);
/// assert_eq!(words.pad_id(), 0);
/// // A comma never appeared in the texts: it is the unknown token.
/// assert_eq!(words.encode("fine,").unwrap(), [words.id("fine").unwrap(), words.special_id("<unk>").unwrap()]);
/// ```
#[derive(Debug, Clone)]
pub struct Tokenizer {
    inner: Inner,
}

#[derive(Debug, Clone)]
enum Inner {
    HuggingFace(Box<tokenizers::Tokenizer>),
    Vocab { vocab: Vocab, unit: TokenizerKind },
}

/// The saved form of word and character tokenizers.
#[derive(Serialize, Deserialize)]
struct VocabTokenizerFile {
    seqlab_tokenizer: TokenizerKind,
    vocab: Vocab,
}

fn hf_error(what: &str, error: impl ToString) -> DataError {
    DataError::Tokenizer(format!("{what}: {}", error.to_string()))
}

impl Tokenizer {
    /// Reads a tokenizer file: a Hugging Face `tokenizer.json` (padding and truncation are
    /// switched off; pass the length to the batching instead) or a word/character tokenizer
    /// written by [`save`](Self::save).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, DataError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| DataError::TextFile {
            path: path.display().to_string(),
            message: format!("cannot read the tokenizer file: {e}"),
        })?;
        Self::from_json(&bytes).map_err(|e| DataError::TextFile {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// Reads a tokenizer from the bytes of a file that [`from_file`](Self::from_file) reads.
    pub fn from_json(bytes: &[u8]) -> Result<Self, DataError> {
        if let Ok(file) = serde_json::from_slice::<VocabTokenizerFile>(bytes) {
            if file.seqlab_tokenizer == TokenizerKind::HuggingFace {
                return Err(DataError::Tokenizer(
                    "a seqlab tokenizer file names the kind \"huggingface\"".into(),
                ));
            }
            return Self::from_vocab(file.vocab, file.seqlab_tokenizer);
        }
        let mut tokenizer = tokenizers::Tokenizer::from_bytes(bytes).map_err(|e| {
            DataError::Tokenizer(format!(
                "neither a Hugging Face tokenizer.json nor a seqlab tokenizer file ({e})"
            ))
        })?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|e| hf_error("switching truncation off", e))?;
        Ok(Self {
            inner: Inner::HuggingFace(Box::new(tokenizer)),
        })
    }

    fn from_vocab(vocab: Vocab, unit: TokenizerKind) -> Result<Self, DataError> {
        if vocab.id(PAD_TOKEN) != Some(0) || vocab.id(UNKNOWN_TOKEN) != Some(1) {
            return Err(DataError::Tokenizer(format!(
                "a {} tokenizer's vocabulary must start with {PAD_TOKEN} and {UNKNOWN_TOKEN}",
                unit.name()
            )));
        }
        Ok(Self {
            inner: Inner::Vocab { vocab, unit },
        })
    }

    /// A word tokenizer over `texts`: lower-cased words (letters, digits and apostrophes) and
    /// single punctuation characters, HTML line breaks `<br />` read as spaces (fastai's
    /// `fix_html`). The vocabulary is `<pad>`, `<unk>`, then the words seen at least
    /// `min_freq` times, most frequent first, at most `max_size` entries in all.
    pub fn word<S: AsRef<str>>(texts: &[S], max_size: usize, min_freq: usize) -> Self {
        Self::vocab_tokenizer(texts, max_size, min_freq, TokenizerKind::Word)
    }

    /// A whitespace tokenizer over `texts`: the tokens as written between spaces (no case
    /// folding, no splitting of punctuation) and [`EOS_TOKEN`] after every line. The
    /// vocabulary is `<pad>`, `<unk>`, then the tokens seen at least `min_freq` times, most
    /// frequent first, at most `max_size` entries in all; a text that writes `<unk>` itself
    /// (as the Penn Treebank does) gets the unknown id.
    ///
    /// ```
    /// use seqlab_data::Tokenizer;
    ///
    /// let ptb = Tokenizer::whitespace(&["the cat sat\nthe N cats <unk>"], 100, 1);
    /// let pieces = ptb.pieces("the cat\n").unwrap();
    /// assert_eq!(pieces.iter().map(|(_, p)| p.as_str()).collect::<Vec<_>>(), ["the", "cat", "\n"]);
    /// assert_eq!(ptb.encode("<unk> dog").unwrap(), [1, 1, ptb.id("<eos>").unwrap()]);
    /// ```
    pub fn whitespace<S: AsRef<str>>(texts: &[S], max_size: usize, min_freq: usize) -> Self {
        Self::vocab_tokenizer(texts, max_size, min_freq, TokenizerKind::Whitespace)
    }

    /// A character tokenizer over `texts`: `<pad>`, `<unk>`, then every character seen at
    /// least `min_freq` times, most frequent first, at most `max_size` entries in all.
    pub fn char<S: AsRef<str>>(texts: &[S], max_size: usize, min_freq: usize) -> Self {
        Self::vocab_tokenizer(texts, max_size, min_freq, TokenizerKind::Char)
    }

    /// The vocabulary of `texts` cut into `unit`s, counted a line at a time (no unit spans
    /// a line break, so the lines give the tokens of the whole text).
    fn vocab_tokenizer<S: AsRef<str>>(
        texts: &[S],
        max_size: usize,
        min_freq: usize,
        unit: TokenizerKind,
    ) -> Self {
        let mut counts = TokenCounts::default();
        for line in texts.iter().flat_map(|t| t.as_ref().split_inclusive('\n')) {
            for token in split(unit, line) {
                counts.add(&token);
            }
        }
        let vocab = Vocab::builder()
            .specials([PAD_TOKEN, UNKNOWN_TOKEN])
            .unknown(UNKNOWN_TOKEN)
            .min_freq(min_freq.max(1))
            .max_size(max_size.max(2))
            .build_counted(&counts);
        Self {
            inner: Inner::Vocab { vocab, unit },
        }
    }

    /// Trains a BERT-style WordPiece tokenizer (lower-cased, accents stripped, `[CLS] … [SEP]`
    /// around each text, `##` continuations) on `texts`, with at most `vocab_size` tokens
    /// and pieces seen at least `min_freq` times.
    pub fn train_wordpiece<S: AsRef<str> + Send + Sync>(
        texts: &[S],
        vocab_size: usize,
        min_freq: u64,
    ) -> Result<Self, DataError> {
        let specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
        let mut trainer: TrainerWrapper = WordPieceTrainerBuilder::new()
            .vocab_size(vocab_size)
            .min_frequency(min_freq)
            .show_progress(false)
            .special_tokens(
                specials
                    .iter()
                    .map(|s| AddedToken::from(*s, true))
                    .collect(),
            )
            .build()
            .into();
        let model = WordPiece::builder()
            .unk_token("[UNK]".into())
            .build()
            .map_err(|e| hf_error("building WordPiece", e))?;
        let mut tokenizer = tokenizers::Tokenizer::new(model);
        tokenizer
            .with_normalizer(Some(BertNormalizer::default()))
            .with_pre_tokenizer(Some(BertPreTokenizer))
            .with_decoder(Some(WordPieceDecoder::default()));
        tokenizer
            .train(&mut trainer, texts.iter().map(AsRef::as_ref))
            .map_err(|e| hf_error("training WordPiece", e))?;
        let id = |token: &str| tokenizer.token_to_id(token).unwrap_or(0);
        let processor =
            BertProcessing::new(("[SEP]".into(), id("[SEP]")), ("[CLS]".into(), id("[CLS]")));
        tokenizer.with_post_processor(Some(processor));
        Ok(Self {
            inner: Inner::HuggingFace(Box::new(tokenizer)),
        })
    }

    /// Trains a byte-level BPE tokenizer (GPT-2's scheme: no unknown tokens) on `texts`, with
    /// at most `vocab_size` tokens (`<pad>` first) and merges seen at least `min_freq` times.
    pub fn train_bpe<S: AsRef<str> + Send + Sync>(
        texts: &[S],
        vocab_size: usize,
        min_freq: u64,
    ) -> Result<Self, DataError> {
        let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
            .vocab_size(vocab_size)
            .min_frequency(min_freq)
            .show_progress(false)
            .special_tokens(vec![AddedToken::from(PAD_TOKEN, true)])
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .build()
            .into();
        let mut tokenizer = tokenizers::Tokenizer::new(BPE::default());
        tokenizer
            .with_pre_tokenizer(Some(ByteLevel::new(false, true, true)))
            .with_decoder(Some(ByteLevelDecoder::default()));
        tokenizer
            .train(&mut trainer, texts.iter().map(AsRef::as_ref))
            .map_err(|e| hf_error("training BPE", e))?;
        Ok(Self {
            inner: Inner::HuggingFace(Box::new(tokenizer)),
        })
    }

    /// Which kind of tokenizer this is.
    pub fn kind(&self) -> TokenizerKind {
        match &self.inner {
            Inner::HuggingFace(_) => TokenizerKind::HuggingFace,
            Inner::Vocab { unit, .. } => *unit,
        }
    }

    /// Tokens in the vocabulary, special tokens included (the embedding's size).
    pub fn vocab_size(&self) -> usize {
        match &self.inner {
            Inner::HuggingFace(t) => t.get_vocab_size(true),
            Inner::Vocab { vocab, .. } => vocab.len(),
        }
    }

    /// The id of a token of the vocabulary (`"[CLS]"`, `"fine"`, `"##oo"`), if it has one.
    pub fn id(&self, token: &str) -> Option<u32> {
        match &self.inner {
            Inner::HuggingFace(t) => t.token_to_id(token),
            Inner::Vocab { vocab, .. } => vocab.id(token),
        }
    }

    /// The special tokens (never split, skipped when decoding) and their ids, by id.
    pub fn special_tokens(&self) -> Vec<(String, u32)> {
        let mut specials: Vec<(String, u32)> = match &self.inner {
            Inner::HuggingFace(t) => t
                .get_added_tokens_decoder()
                .into_iter()
                .filter(|(_, token)| token.special)
                .map(|(id, token)| (token.content, id))
                .collect(),
            Inner::Vocab { .. } => vec![(PAD_TOKEN.into(), 0), (UNKNOWN_TOKEN.into(), 1)],
        };
        specials.sort_by_key(|&(_, id)| id);
        specials
    }

    /// The id of the special token `name` (`"[CLS]"`, `"[PAD]"`, `"<unk>"`).
    pub fn special_id(&self, name: &str) -> Option<u32> {
        self.special_tokens()
            .into_iter()
            .find(|(token, _)| token == name)
            .map(|(_, id)| id)
    }

    /// The id that pads sequences to one length: `[PAD]` or `<pad>` where the vocabulary has
    /// one, else 0.
    pub fn pad_id(&self) -> u32 {
        ["[PAD]", PAD_TOKEN, "<|endoftext|>"]
            .iter()
            .find_map(|name| self.special_id(name))
            .unwrap_or(0)
    }

    /// Token ids of `text`, with the special tokens the tokenizer adds (BERT's `[CLS]` and
    /// `[SEP]`). Words or characters outside a word/character vocabulary become `<unk>`.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, DataError> {
        match &self.inner {
            Inner::HuggingFace(t) => Ok(t
                .encode(text, true)
                .map_err(|e| hf_error("encoding", e))?
                .get_ids()
                .to_vec()),
            Inner::Vocab { vocab, unit } => vocab.encode(&split(*unit, text)),
        }
    }

    /// Each id of `text` with the text it decodes to alone, as the seed prints
    /// `f'{t}:{tokenizer.decode([t])}'`: `(13109, "fl")`, `(9541, "##oo")`, and `(101, "")`
    /// for a special token.
    pub fn pieces(&self, text: &str) -> Result<Vec<(u32, String)>, DataError> {
        self.encode(text)?
            .into_iter()
            .map(|id| Ok((id, self.decode(&[id])?)))
            .collect()
    }

    /// The text of `ids`, special tokens skipped; an id outside the vocabulary is an error.
    pub fn decode(&self, ids: &[u32]) -> Result<String, DataError> {
        let size = self.vocab_size();
        if let Some(&id) = ids.iter().find(|&&id| id as usize >= size) {
            return Err(DataError::UnknownId {
                id: id as usize,
                size,
            });
        }
        match &self.inner {
            Inner::HuggingFace(t) => t.decode(ids, true).map_err(|e| hf_error("decoding", e)),
            Inner::Vocab { vocab, unit } => {
                let tokens: Vec<&str> = vocab
                    .decode(ids)?
                    .into_iter()
                    .filter(|token| *token != PAD_TOKEN && *token != UNKNOWN_TOKEN)
                    .collect();
                Ok(match unit {
                    TokenizerKind::Char => tokens.concat(),
                    TokenizerKind::Whitespace => {
                        let mut text = String::new();
                        for token in tokens {
                            if token == EOS_TOKEN {
                                text.push('\n');
                            } else {
                                if !(text.is_empty() || text.ends_with('\n')) {
                                    text.push(' ');
                                }
                                text.push_str(token);
                            }
                        }
                        text
                    }
                    _ => tokens.join(" "),
                })
            }
        }
    }

    /// The tokenizer as the JSON that [`from_json`](Self::from_json) reads: Hugging Face's
    /// `tokenizer.json` format, or seqlab's for word and character tokenizers.
    pub fn to_json(&self) -> Result<String, DataError> {
        match &self.inner {
            Inner::HuggingFace(t) => t.to_string(false).map_err(|e| hf_error("saving", e)),
            Inner::Vocab { vocab, unit } => serde_json::to_string(&VocabTokenizerFile {
                seqlab_tokenizer: *unit,
                vocab: vocab.clone(),
            })
            .map_err(|e| DataError::Tokenizer(e.to_string())),
        }
    }

    /// Writes [`to_json`](Self::to_json) to `path`, atomically.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), DataError> {
        let path = path.as_ref();
        write_atomic(path, self.to_json()?.as_bytes()).map_err(|e| DataError::TextFile {
            path: path.display().to_string(),
            message: format!("cannot write the tokenizer: {e}"),
        })
    }
}

impl TokenizerKind {
    /// The kind's name in messages: `huggingface`, `word`, `char`.
    pub fn name(self) -> &'static str {
        match self {
            TokenizerKind::HuggingFace => "huggingface",
            TokenizerKind::Word => "word",
            TokenizerKind::Char => "char",
            TokenizerKind::Whitespace => "whitespace",
        }
    }
}

fn split(unit: TokenizerKind, text: &str) -> Vec<String> {
    match unit {
        TokenizerKind::Char => text.chars().map(String::from).collect(),
        TokenizerKind::Whitespace => text
            .lines()
            .flat_map(|line| line.split_whitespace().chain([EOS_TOKEN]))
            .map(String::from)
            .collect(),
        _ => split_words_and_punctuation(text),
    }
}

/// Lower-cased words (runs of letters, digits and apostrophes) and single punctuation
/// characters; `<br />` and `<br/>` count as spaces.
///
/// ```
/// assert_eq!(seqlab_data::split_words_and_punctuation("It's GREAT!<br />10/10"),
///            ["it's", "great", "!", "10", "/", "10"]);
/// ```
pub fn split_words_and_punctuation(text: &str) -> Vec<String> {
    let text = text.replace("<br />", " ").replace("<br/>", " ");
    let mut tokens = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        if c.is_alphanumeric() || c == '\'' {
            word.extend(c.to_lowercase());
            continue;
        }
        if !word.is_empty() {
            tokens.push(std::mem::take(&mut word));
        }
        if !c.is_whitespace() {
            tokens.push(c.to_string());
        }
    }
    if !word.is_empty() {
        tokens.push(word);
    }
    tokens
}

#[cfg(test)]
mod tests;
