//! Numericalization: a vocabulary mapping tokens to ids and back.

use crate::DataError;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// How the non-special tokens of a [`Vocab`] are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum VocabOrder {
    /// Most frequent first, ties in order of first appearance (fastai's `make_vocab`).
    #[default]
    Frequency,
    /// In order of first appearance (fastai's `L(tokens).unique()`).
    FirstSeen,
    /// Alphabetical.
    Sorted,
}

/// Builds a [`Vocab`] from a token stream. Start from [`Vocab::builder`].
#[derive(Debug, Clone, Default)]
pub struct VocabBuilder {
    min_freq: usize,
    max_size: Option<usize>,
    specials: Vec<String>,
    unknown: Option<String>,
    order: VocabOrder,
}

impl VocabBuilder {
    /// Keeps only tokens seen at least `min_freq` times (fastai's `min_freq`; default 1).
    pub fn min_freq(mut self, min_freq: usize) -> Self {
        self.min_freq = min_freq;
        self
    }

    /// Keeps at most `max_size` tokens in all, special tokens included (fastai's `max_vocab`).
    pub fn max_size(mut self, max_size: usize) -> Self {
        self.max_size = Some(max_size);
        self
    }

    /// Special tokens placed first, in the order given (e.g. `xxpad`, `xxbos`).
    pub fn specials<S: Into<String>>(mut self, specials: impl IntoIterator<Item = S>) -> Self {
        self.specials = specials.into_iter().map(Into::into).collect();
        self
    }

    /// The token that stands for every token outside the vocabulary (e.g. `xxunk`); it is
    /// added after the specials if it is not one of them. Without one, encoding an unknown
    /// token is an error.
    pub fn unknown(mut self, unknown: impl Into<String>) -> Self {
        self.unknown = Some(unknown.into());
        self
    }

    /// How the other tokens are ordered.
    pub fn order(mut self, order: VocabOrder) -> Self {
        self.order = order;
        self
    }

    /// Builds the vocabulary from a token stream.
    pub fn build<S: AsRef<str>>(&self, tokens: &[S]) -> Vocab {
        let mut counts = TokenCounts::default();
        for token in tokens {
            counts.add(token.as_ref());
        }
        self.build_counted(&counts)
    }

    /// Builds the vocabulary from tokens counted as they came ([`TokenCounts`]): the same
    /// vocabulary [`VocabBuilder::build`] makes of the whole stream, without holding it.
    pub fn build_counted(&self, counts: &TokenCounts) -> Vocab {
        let mut entries: Vec<(&str, usize, usize)> = counts
            .counts
            .iter()
            .filter(|(_, (count, _))| *count >= self.min_freq.max(1))
            .map(|(token, &(count, first))| (token.as_str(), count, first))
            .collect();
        match self.order {
            VocabOrder::Frequency => {
                entries.sort_by_key(|&(_, count, first)| (usize::MAX - count, first))
            }
            VocabOrder::FirstSeen => entries.sort_by_key(|&(_, _, first)| first),
            VocabOrder::Sorted => entries.sort_by(|a, b| a.0.cmp(b.0)),
        }
        let mut itos: Vec<String> = Vec::new();
        for special in self.specials.iter().chain(&self.unknown) {
            if !itos.contains(special) {
                itos.push(special.clone());
            }
        }
        let specials = itos.clone();
        itos.extend(
            entries
                .into_iter()
                .map(|(token, _, _)| token.to_string())
                .filter(|token| !specials.contains(token)),
        );
        let specials_len = specials.len();
        if let Some(max_size) = self.max_size {
            itos.truncate(max_size.max(specials_len));
        }
        Vocab::from_parts(itos, self.unknown.clone())
    }
}

/// How often each token of a stream came, and where it came first: what a [`Vocab`] is built
/// from ([`VocabBuilder::build_counted`]), gathered a token at a time, so that a long stream
/// need not be held.
///
/// ```
/// use seqlab_data::{TokenCounts, Vocab};
/// let mut counts = TokenCounts::default();
/// for token in "b a b".split(' ') {
///     counts.add(token);
/// }
/// let builder = Vocab::builder();
/// assert_eq!(builder.build_counted(&counts), builder.build(&["b", "a", "b"]));
/// assert_eq!(counts.count("b"), 2);
/// ```
#[derive(Debug, Clone, Default)]
pub struct TokenCounts {
    /// Each token's count and the position of its first coming.
    counts: HashMap<String, (usize, usize)>,
    /// Tokens counted.
    seen: usize,
}

impl TokenCounts {
    /// Counts one more token.
    pub fn add(&mut self, token: &str) {
        match self.counts.get_mut(token) {
            Some((count, _)) => *count += 1,
            None => {
                self.counts.insert(token.to_string(), (1, self.seen));
            }
        }
        self.seen += 1;
    }

    /// How often `token` came.
    pub fn count(&self, token: &str) -> usize {
        self.counts.get(token).map_or(0, |&(count, _)| count)
    }
}

/// A token ↔ id mapping with an optional unknown token, saved and loaded as JSON.
///
/// ```
/// use seqlab_data::Vocab;
///
/// let vocab = Vocab::builder().unknown("xxunk").build(&["a", "b", "a"]);
/// assert_eq!(vocab.tokens(), ["xxunk", "a", "b"]);
/// assert_eq!(vocab.encode(&["b", "zzz"]).unwrap(), [2, 0]);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "VocabFile", into = "VocabFile")]
pub struct Vocab {
    itos: Vec<String>,
    stoi: HashMap<String, u32>,
    unknown: Option<u32>,
}

#[derive(Serialize, Deserialize)]
struct VocabFile {
    tokens: Vec<String>,
    unknown: Option<String>,
}

impl From<Vocab> for VocabFile {
    fn from(vocab: Vocab) -> Self {
        let unknown = vocab.unknown.map(|id| vocab.itos[id as usize].clone());
        VocabFile {
            tokens: vocab.itos,
            unknown,
        }
    }
}

impl TryFrom<VocabFile> for Vocab {
    type Error = String;

    fn try_from(file: VocabFile) -> Result<Self, Self::Error> {
        let vocab = Vocab::from_parts(file.tokens, file.unknown.clone());
        if vocab.stoi.len() != vocab.itos.len() {
            return Err("the token list has duplicates".into());
        }
        if file.unknown.is_some() && vocab.unknown.is_none() {
            return Err("the unknown token is not in the token list".into());
        }
        Ok(vocab)
    }
}

impl Vocab {
    /// Starts a [`VocabBuilder`] with fastai's defaults: frequency order, `min_freq` 1, no
    /// size limit, no special tokens.
    pub fn builder() -> VocabBuilder {
        VocabBuilder::default()
    }

    /// A vocabulary holding exactly these tokens, in this order.
    pub fn from_tokens<S: Into<String>>(
        tokens: impl IntoIterator<Item = S>,
        unknown: Option<&str>,
    ) -> Self {
        Self::from_parts(
            tokens.into_iter().map(Into::into).collect(),
            unknown.map(str::to_string),
        )
    }

    fn from_parts(itos: Vec<String>, unknown: Option<String>) -> Self {
        let stoi: HashMap<String, u32> = itos
            .iter()
            .enumerate()
            .map(|(id, token)| (token.clone(), id as u32))
            .collect();
        let unknown = unknown.and_then(|token| stoi.get(&token).copied());
        Self {
            itos,
            stoi,
            unknown,
        }
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.itos.len()
    }

    /// True when the vocabulary has no tokens.
    pub fn is_empty(&self) -> bool {
        self.itos.is_empty()
    }

    /// All tokens, in id order.
    pub fn tokens(&self) -> &[String] {
        &self.itos
    }

    /// The id of a token, if it is in the vocabulary.
    pub fn id(&self, token: &str) -> Option<u32> {
        self.stoi.get(token).copied()
    }

    /// The token with this id, if any.
    pub fn token(&self, id: u32) -> Option<&str> {
        self.itos.get(id as usize).map(String::as_str)
    }

    /// Encodes tokens as ids; tokens outside the vocabulary map to the unknown token, or are an
    /// error when there is none.
    pub fn encode<S: AsRef<str>>(&self, tokens: &[S]) -> Result<Vec<u32>, DataError> {
        tokens
            .iter()
            .map(|token| {
                let token = token.as_ref();
                self.id(token)
                    .or(self.unknown)
                    .ok_or_else(|| DataError::UnknownToken {
                        token: token.to_string(),
                    })
            })
            .collect()
    }

    /// Decodes ids back to tokens; an id outside the vocabulary is an error.
    pub fn decode(&self, ids: &[u32]) -> Result<Vec<&str>, DataError> {
        ids.iter()
            .map(|&id| {
                self.token(id).ok_or(DataError::UnknownId {
                    id: id as usize,
                    size: self.len(),
                })
            })
            .collect()
    }

    /// Writes the vocabulary as JSON, atomically (a temporary file renamed into place).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), DataError> {
        let path = path.as_ref();
        let error = |message: String| DataError::VocabFile {
            path: path.display().to_string(),
            message,
        };
        let json = serde_json::to_vec_pretty(self).map_err(|e| error(e.to_string()))?;
        crate::write_atomic(path, &json).map_err(|e| error(e.to_string()))
    }

    /// Reads a vocabulary written by [`Vocab::save`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self, DataError> {
        let path = path.as_ref();
        let error = |message: String| DataError::VocabFile {
            path: path.display().to_string(),
            message,
        };
        let bytes = std::fs::read(path).map_err(|e| error(e.to_string()))?;
        serde_json::from_slice(&bytes).map_err(|e| error(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn encode_then_decode_gives_the_tokens_back(tokens in proptest::collection::vec("[a-e]{1,3}", 0..60)) {
            let vocab = Vocab::builder().build(&tokens);
            let ids = vocab.encode(&tokens).unwrap();
            prop_assert_eq!(vocab.decode(&ids).unwrap(), tokens.iter().map(String::as_str).collect::<Vec<_>>());
            prop_assert!(ids.iter().all(|&id| (id as usize) < vocab.len()));
        }

        #[test]
        fn ids_are_dense_and_unique(tokens in proptest::collection::vec("[a-z]{1,2}", 0..80), max in 1usize..20) {
            let vocab = Vocab::builder().specials(["xxpad"]).unknown("xxunk").max_size(max.max(2)).build(&tokens);
            for (id, token) in vocab.tokens().iter().enumerate() {
                prop_assert_eq!(vocab.id(token), Some(id as u32));
            }
            prop_assert!(vocab.len() <= max.max(2));
        }
    }

    #[test]
    fn frequency_order_breaks_ties_by_first_appearance() {
        let vocab = Vocab::builder().build(&["b", "a", "c", "a", "c", "d"]);
        assert_eq!(vocab.tokens(), ["a", "c", "b", "d"]);
    }

    #[test]
    fn other_orders() {
        let tokens = ["b", "a", "c", "a"];
        let first = Vocab::builder().order(VocabOrder::FirstSeen).build(&tokens);
        assert_eq!(first.tokens(), ["b", "a", "c"]);
        let sorted = Vocab::builder().order(VocabOrder::Sorted).build(&tokens);
        assert_eq!(sorted.tokens(), ["a", "b", "c"]);
    }

    #[test]
    fn specials_min_freq_and_max_size() {
        let tokens = ["x", "y", "y", "z", "z", "z", "xxpad"];
        let vocab = Vocab::builder()
            .specials(["xxpad", "xxbos"])
            .unknown("xxunk")
            .min_freq(2)
            .build(&tokens);
        assert_eq!(vocab.tokens(), ["xxpad", "xxbos", "xxunk", "z", "y"]);
        let capped = Vocab::builder()
            .specials(["xxpad"])
            .max_size(2)
            .build(&tokens);
        assert_eq!(capped.tokens(), ["xxpad", "z"]);
        assert_eq!(vocab.encode(&["x", "z"]).unwrap(), [2, 3]);
    }

    #[test]
    fn unknown_tokens_and_ids_are_errors_without_unknown() {
        let vocab = Vocab::builder().build(&["a"]);
        assert_eq!(
            vocab.encode(&["b"]),
            Err(DataError::UnknownToken { token: "b".into() })
        );
        assert_eq!(
            vocab.decode(&[1]),
            Err(DataError::UnknownId { id: 1, size: 1 })
        );
    }

    #[test]
    fn save_and_load_round_trip() {
        let dir = std::env::temp_dir().join(format!("seqlab-vocab-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("vocab.json");
        let vocab = Vocab::builder().unknown("xxunk").build(&["a", "b", "b"]);
        vocab.save(&path).unwrap();
        assert_eq!(Vocab::load(&path).unwrap(), vocab);
        std::fs::write(&path, r#"{"tokens":["a","a"],"unknown":null}"#).unwrap();
        assert!(matches!(
            Vocab::load(&path),
            Err(DataError::VocabFile { .. })
        ));
        assert!(matches!(
            Vocab::load(dir.join("missing.json")),
            Err(DataError::VocabFile { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
