//! Characters as tokens: the character-level language model's vocabulary.

use crate::DataError;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

/// The characters of a text, sorted, with ids from 1 (id 0 is left free for padding, as the
/// RNN course's `TextDataset` does with `itext + 1`).
///
/// ```
/// use seqlab_data::CharVocab;
/// let vocab = CharVocab::from_text("hello");
/// assert_eq!(vocab.classes(), 5); // padding, e, h, l, o
/// let ids = vocab.encode("hole").unwrap();
/// assert_eq!(ids, [2, 4, 3, 1]);
/// assert_eq!(vocab.decode(&ids).unwrap(), "hole");
/// assert!(vocab.encode("help").is_err()); // 'p' is not in the text
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "CharVocabFile", into = "CharVocabFile")]
pub struct CharVocab {
    chars: Vec<char>,
    ids: HashMap<char, u32>,
    /// The ids of ASCII characters (0 where absent): most text is, and a table is quicker
    /// than the map when a corpus of gigabytes is encoded.
    ascii: [u32; 128],
}

/// The saved form: the characters in id order (from id 1).
#[derive(Serialize, Deserialize)]
struct CharVocabFile {
    chars: String,
}

impl TryFrom<CharVocabFile> for CharVocab {
    type Error = String;

    fn try_from(file: CharVocabFile) -> Result<Self, String> {
        let chars: Vec<char> = file.chars.chars().collect();
        let vocab = Self::from_chars(chars.iter().copied());
        if vocab.chars != chars {
            return Err("the characters must be sorted and appear once each".into());
        }
        if vocab.chars.is_empty() {
            return Err("the character list is empty".into());
        }
        Ok(vocab)
    }
}

impl From<CharVocab> for CharVocabFile {
    fn from(vocab: CharVocab) -> Self {
        Self {
            chars: vocab.chars.into_iter().collect(),
        }
    }
}

impl CharVocab {
    /// The distinct characters of `text`.
    pub fn from_text(text: &str) -> Self {
        Self::from_chars(text.chars())
    }

    pub(crate) fn from_chars(chars: impl IntoIterator<Item = char>) -> Self {
        let chars: Vec<char> = chars
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let ids: HashMap<char, u32> = chars
            .iter()
            .enumerate()
            .map(|(index, &c)| (c, index as u32 + 1))
            .collect();
        let mut ascii = [0; 128];
        for (&c, &id) in &ids {
            if c.is_ascii() {
                ascii[c as usize] = id;
            }
        }
        Self { chars, ids, ascii }
    }

    /// Output classes of a model over this vocabulary: the characters and the padding id 0.
    pub fn classes(&self) -> usize {
        self.chars.len() + 1
    }

    /// The characters, in id order from id 1.
    pub fn chars(&self) -> &[char] {
        &self.chars
    }

    /// The id of `c`, if the vocabulary has it.
    pub fn id(&self, c: char) -> Option<u32> {
        if c.is_ascii() {
            Some(self.ascii[c as usize]).filter(|&id| id != 0)
        } else {
            self.ids.get(&c).copied()
        }
    }

    /// Encodes `text`; a character outside the vocabulary is an error naming it and its
    /// position.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, DataError> {
        text.chars()
            .enumerate()
            .map(|(position, c)| {
                self.id(c).ok_or(DataError::UnknownChar {
                    character: c,
                    position,
                })
            })
            .collect()
    }

    /// Encodes `text`, giving characters outside the vocabulary the id `unknown` (a tagger's
    /// spelling features use 0 for them).
    pub fn encode_or(&self, text: &str, unknown: u32) -> Vec<u32> {
        text.chars()
            .map(|c| self.id(c).unwrap_or(unknown))
            .collect()
    }

    /// Decodes ids to text; id 0 (padding) and ids past the vocabulary are errors.
    pub fn decode(&self, ids: &[u32]) -> Result<String, DataError> {
        ids.iter()
            .map(|&id| {
                (id as usize)
                    .checked_sub(1)
                    .and_then(|index| self.chars.get(index).copied())
                    .ok_or(DataError::UnknownId {
                        id: id as usize,
                        size: self.classes(),
                    })
            })
            .collect()
    }

    /// Writes the vocabulary as JSON, atomically.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), DataError> {
        let path = path.as_ref();
        crate::write_atomic(path, &self.to_json()).map_err(|e| DataError::VocabFile {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// The vocabulary as JSON bytes (what [`CharVocab::save`] writes).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a list of characters always serialises")
    }

    /// Reads JSON written by [`CharVocab::to_json`]; `origin` names the source in errors.
    pub fn from_json(bytes: &[u8], origin: &str) -> Result<Self, DataError> {
        serde_json::from_slice(bytes).map_err(|e| DataError::VocabFile {
            path: origin.to_string(),
            message: e.to_string(),
        })
    }

    /// Reads a vocabulary written by [`CharVocab::save`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self, DataError> {
        let path = path.as_ref();
        let origin = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| DataError::VocabFile {
            path: origin.clone(),
            message: e.to_string(),
        })?;
        Self::from_json(&bytes, &origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_text_round_trips_through_its_own_vocabulary(text in "\\PC{1,80}") {
            let vocab = CharVocab::from_text(&text);
            let ids = vocab.encode(&text).unwrap();
            prop_assert!(ids.iter().all(|&id| id >= 1 && (id as usize) < vocab.classes()));
            prop_assert_eq!(vocab.decode(&ids).unwrap(), text.clone());
            let reloaded = CharVocab::from_json(&vocab.to_json(), "memory").unwrap();
            prop_assert_eq!(reloaded, vocab);
        }
    }

    #[test]
    fn unknown_characters_and_ids_are_errors() {
        let vocab = CharVocab::from_text("abc");
        assert_eq!(
            vocab.encode("abz").unwrap_err(),
            DataError::UnknownChar {
                character: 'z',
                position: 2
            }
        );
        assert!(vocab.decode(&[0]).is_err());
        assert_eq!(vocab.encode_or("abz", 0), [1, 2, 0]);
        assert!(vocab.decode(&[4]).is_err());
    }

    #[test]
    fn a_tampered_file_is_rejected() {
        for bad in [
            r#"{"chars": "ba"}"#,
            r#"{"chars": "aa"}"#,
            r#"{"chars": ""}"#,
            "{",
        ] {
            let error = CharVocab::from_json(bad.as_bytes(), "v.json").unwrap_err();
            assert!(
                error.to_string().starts_with("vocabulary file v.json"),
                "{error}"
            );
        }
    }
}
