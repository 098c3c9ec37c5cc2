//! Symbol sequences for the copy and addition tasks: an alphabet whose id 0 is the stop symbol,
//! and seeded random sequences over it.

use crate::DataError;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::ops::RangeInclusive;

/// The id of the stop symbol that ends and pads every sequence.
pub const STOP: u32 = 0;

/// An ordered set of symbols: symbol `i` has id `i + 1`, and id 0 is [`STOP`], so a one-hot
/// vector has [`classes`](Self::classes) = `len() + 1` entries (the notebook's
/// `len(alphabet) + 1`).
///
/// ```
/// use seqlab_data::Alphabet;
///
/// let digits = Alphabet::new("+0123456789").unwrap();
/// let ids = digits.encode("12+3").unwrap();
/// assert_eq!(ids, [3, 4, 1, 5]);
/// assert_eq!(digits.decode(&[3, 4, 1, 5, 0, 7]), "12+3");
/// assert!(digits.encode("1-2").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alphabet {
    symbols: Vec<char>,
}

impl Alphabet {
    /// The symbols of `symbols`, in order; each must appear once.
    pub fn new(symbols: &str) -> Result<Self, DataError> {
        let symbols: Vec<char> = symbols.chars().collect();
        if symbols.is_empty() {
            return Err(DataError::InvalidSetting(
                "the alphabet is empty: give at least one symbol".into(),
            ));
        }
        for (index, symbol) in symbols.iter().enumerate() {
            if symbols[..index].contains(symbol) {
                return Err(DataError::InvalidSetting(format!(
                    "the alphabet has {symbol:?} twice"
                )));
            }
        }
        Ok(Self { symbols })
    }

    /// The first `size` lowercase letters, `a`, `b`, … (at most 26).
    pub fn letters(size: usize) -> Result<Self, DataError> {
        if !(1..=26).contains(&size) {
            return Err(DataError::InvalidSetting(format!(
                "the alphabet size must be between 1 and 26, got {size}"
            )));
        }
        Self::new(&('a'..='z').take(size).collect::<String>())
    }

    /// Number of symbols, without the stop symbol.
    pub fn len(&self) -> usize {
        self.symbols.len()
    }

    /// Always false: an alphabet has at least one symbol.
    pub fn is_empty(&self) -> bool {
        self.symbols.is_empty()
    }

    /// Number of ids, the stop symbol included: the width of a one-hot vector.
    pub fn classes(&self) -> usize {
        self.symbols.len() + 1
    }

    /// The ids of `text`'s symbols (no stop symbol added).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, DataError> {
        text.chars()
            .map(|c| {
                self.symbols
                    .iter()
                    .position(|&s| s == c)
                    .map(|index| index as u32 + 1)
                    .ok_or_else(|| DataError::UnknownToken {
                        token: c.to_string(),
                    })
            })
            .collect()
    }

    /// The text of `ids` up to the first stop symbol; an id outside the alphabet shows as `?`.
    pub fn decode(&self, ids: &[u32]) -> String {
        ids.iter()
            .take_while(|&&id| id != STOP)
            .map(|&id| self.symbols.get(id as usize - 1).copied().unwrap_or('?'))
            .collect()
    }
}

/// `count` sequences of symbol ids in `1..=alphabet_size`, each of a length drawn uniformly from
/// `lengths`, from `seed` (the notebook's `np.random.choice(alphabet, length)`).
///
/// ```
/// let sequences = seqlab_data::random_sequences(3, 100, 3..=14, 0).unwrap();
/// assert!(sequences.iter().all(|s| (3..=14).contains(&s.len())));
/// assert!(sequences.iter().flatten().all(|&id| (1..=3).contains(&id)));
/// ```
pub fn random_sequences(
    alphabet_size: usize,
    count: usize,
    lengths: RangeInclusive<usize>,
    seed: u64,
) -> Result<Vec<Vec<u32>>, DataError> {
    if alphabet_size == 0 {
        return Err(DataError::InvalidSetting(
            "the alphabet is empty: give at least one symbol".into(),
        ));
    }
    if count == 0 {
        return Err(DataError::InvalidSetting(
            "the number of sequences must be at least 1".into(),
        ));
    }
    check_range("sequence length", &lengths, 1)?;
    let mut rng = StdRng::seed_from_u64(seed);
    Ok((0..count)
        .map(|_| {
            let length = rng.random_range(lengths.clone());
            (0..length)
                .map(|_| rng.random_range(1..=alphabet_size as u32))
                .collect()
        })
        .collect())
}

/// Checks that `range` is not empty and starts at `min_allowed` or more.
pub(crate) fn check_range(
    what: &str,
    range: &RangeInclusive<usize>,
    min_allowed: usize,
) -> Result<(), DataError> {
    if range.start() > range.end() {
        return Err(DataError::InvalidSetting(format!(
            "the {what} range {}..{} has its minimum above its maximum",
            range.start(),
            range.end()
        )));
    }
    if *range.start() < min_allowed {
        return Err(DataError::InvalidSetting(format!(
            "the {what} must be at least {min_allowed}, got {}",
            range.start()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bad_alphabets_and_ranges_are_refused() {
        assert!(Alphabet::new("").is_err());
        assert!(Alphabet::new("abca").is_err());
        assert!(Alphabet::letters(0).is_err());
        assert!(Alphabet::letters(27).is_err());
        assert!(random_sequences(0, 5, 1..=3, 0).is_err());
        assert!(random_sequences(3, 0, 1..=3, 0).is_err());
        #[allow(clippy::reversed_empty_ranges)]
        let backwards = 5..=3;
        assert!(random_sequences(3, 5, backwards, 0).is_err());
        assert!(random_sequences(3, 5, 0..=3, 0).is_err());
    }

    #[test]
    fn lengths_and_symbols_cover_their_ranges() {
        let sequences = random_sequences(3, 2000, 3..=14, 1).unwrap();
        for length in 3..=14 {
            assert!(sequences.iter().any(|s| s.len() == length), "{length}");
        }
        for id in 1..=3 {
            assert!(sequences.iter().flatten().any(|&s| s == id), "{id}");
        }
        assert_eq!(sequences, random_sequences(3, 2000, 3..=14, 1).unwrap());
        assert_ne!(sequences, random_sequences(3, 2000, 3..=14, 2).unwrap());
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(text in "[abc+0-9]{0,20}") {
            let alphabet = Alphabet::new("abc+0123456789").unwrap();
            let ids = alphabet.encode(&text).unwrap();
            prop_assert_eq!(ids.len(), text.chars().count());
            prop_assert!(ids.iter().all(|&id| id >= 1 && (id as usize) < alphabet.classes()));
            prop_assert_eq!(alphabet.decode(&ids), text);
        }
    }
}
