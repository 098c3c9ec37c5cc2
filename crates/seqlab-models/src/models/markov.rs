//! Goldberg's baseline for character models: the next symbol given the `order` symbols before
//! it, counted in a table. The RNN course's `create_markov_dict`, with interpolated absolute
//! discounting so that a context never seen in training still gets a finite loss.

use rand::RngExt;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rustc_hash::FxHashMap as HashMap;
use thiserror::Error;

/// What can go wrong fitting or using a [`MarkovModel`].
#[derive(Debug, Error, Clone, PartialEq)]
pub enum MarkovError {
    /// A setting the model cannot work with.
    #[error("{0}")]
    InvalidSetting(String),
    /// A symbol id outside `1..classes`.
    #[error("symbol id {id} is outside the model's ids 1..{classes}")]
    UnknownId {
        /// The id.
        id: u32,
        /// The model's class count (id 0 is padding and never predicted).
        classes: usize,
    },
}

/// Counts of the contexts of one length.
#[derive(Debug, Default, Clone)]
struct OrderCounts {
    /// (context, next) → how often `next` followed `context`.
    pairs: HashMap<u64, u32>,
    /// context → (how often it was followed by anything, by how many distinct symbols).
    contexts: HashMap<u64, (u32, u32)>,
}

/// A character (or any symbol) n-gram model over ids `1..classes`, holding the counts of
/// every context length from 0 to `order`, so that one fit answers for every lower order too.
///
/// ```
/// use seqlab_models::MarkovModel;
/// // "abab…" over ids a = 1, b = 2.
/// let ids: Vec<u32> = (0..100).map(|i| 1 + i % 2).collect();
/// let model = MarkovModel::fit(&ids, 3, 2).unwrap();
/// let p = model.probabilities(&[1, 2, 1], 2).unwrap();
/// assert!(p[2] > 0.95); // after "aba" comes 'b'
/// assert!(model.bits_per_symbol(&ids, 2).unwrap() < 0.2);
/// ```
#[derive(Debug, Clone)]
pub struct MarkovModel {
    order: usize,
    classes: usize,
    bits: u32,
    counts: Vec<OrderCounts>,
    discount: f64,
}

impl MarkovModel {
    /// Absolute discount taken from every seen count and given to the shorter context.
    pub const DISCOUNT: f64 = 0.75;

    /// Counts every context of up to `order` symbols in `ids`, which are in `1..classes`.
    pub fn fit(ids: &[u32], classes: usize, order: usize) -> Result<Self, MarkovError> {
        if classes < 2 {
            return Err(MarkovError::InvalidSetting(
                "a Markov model needs at least one symbol besides padding".into(),
            ));
        }
        if ids.is_empty() {
            return Err(MarkovError::InvalidSetting(
                "a Markov model needs some text to count".into(),
            ));
        }
        let bits = usize::BITS - (classes - 1).leading_zeros();
        if (order as u32 + 1) * bits > 64 {
            return Err(MarkovError::InvalidSetting(format!(
                "order {order} is too high for {} symbols: at most {}",
                classes - 1,
                64 / bits - 1
            )));
        }
        let mut model = Self {
            order,
            classes,
            bits,
            counts: vec![OrderCounts::default(); order + 1],
            discount: Self::DISCOUNT,
        };
        model.check(ids)?;
        for position in 0..ids.len() {
            for length in 0..=order.min(position) {
                let context = model.key(&ids[position - length..position]);
                let counts = &mut model.counts[length];
                let pair = counts
                    .pairs
                    .entry(model_pair(context, ids[position], bits))
                    .or_insert(0);
                *pair += 1;
                let first = *pair == 1;
                let stats = counts.contexts.entry(context).or_insert((0, 0));
                stats.0 += 1;
                stats.1 += u32::from(first);
            }
        }
        Ok(model)
    }

    /// The longest context the model counted.
    pub fn order(&self) -> usize {
        self.order
    }

    /// Symbol classes, padding id 0 included.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Distinct contexts of exactly `length` symbols seen in training (the notebook's
    /// `len(markov_dict)` for `length = order`).
    pub fn contexts(&self, length: usize) -> usize {
        self.counts.get(length).map_or(0, |c| c.contexts.len())
    }

    fn check(&self, ids: &[u32]) -> Result<(), MarkovError> {
        match ids
            .iter()
            .find(|&&id| id == 0 || id as usize >= self.classes)
        {
            Some(&id) => Err(MarkovError::UnknownId {
                id,
                classes: self.classes,
            }),
            None => Ok(()),
        }
    }

    fn key(&self, context: &[u32]) -> u64 {
        context
            .iter()
            .fold(0u64, |key, &id| (key << self.bits) | u64::from(id))
    }

    fn check_order(&self, order: usize) -> Result<(), MarkovError> {
        if order > self.order {
            return Err(MarkovError::InvalidSetting(format!(
                "order {order} is above the {} the model was fitted with",
                self.order
            )));
        }
        Ok(())
    }

    /// The probability of each id `0..classes` (0 for padding) after `history`, using its
    /// last `order` symbols at most.
    pub fn probabilities(&self, history: &[u32], order: usize) -> Result<Vec<f64>, MarkovError> {
        self.check_order(order)?;
        self.check(history)?;
        let start = history.len().saturating_sub(order);
        Ok((0..self.classes)
            .map(|id| match id {
                0 => 0.0,
                id => self.probability(&history[start..], id as u32, order),
            })
            .collect())
    }

    /// The probability of `id` after `history` (the one entry of
    /// [`MarkovModel::probabilities`] that scoring needs).
    fn probability(&self, history: &[u32], id: u32, order: usize) -> f64 {
        let mut p = 1.0 / (self.classes - 1) as f64;
        for length in 0..=order.min(history.len()) {
            let context = self.key(&history[history.len() - length..]);
            let counts = &self.counts[length];
            let Some(&(total, types)) = counts.contexts.get(&context) else {
                break;
            };
            let total = f64::from(total);
            let seen = counts
                .pairs
                .get(&model_pair(context, id, self.bits))
                .map_or(0.0, |&c| f64::from(c));
            p = (seen - self.discount).max(0.0) / total
                + self.discount * f64::from(types) / total * p;
        }
        p
    }

    /// Mean bits per symbol of `ids` under the model of `order`, each symbol predicted from
    /// the ones before it in `ids`.
    pub fn bits_per_symbol(&self, ids: &[u32], order: usize) -> Result<f64, MarkovError> {
        self.check_order(order)?;
        self.check(ids)?;
        if ids.is_empty() {
            return Err(MarkovError::InvalidSetting(
                "bits per symbol of an empty text".into(),
            ));
        }
        let total: f64 = (0..ids.len())
            .map(|position| {
                let start = position.saturating_sub(order);
                -self
                    .probability(&ids[start..position], ids[position], order)
                    .log2()
            })
            .sum();
        Ok(total / ids.len() as f64)
    }

    /// Draws `length` symbols after `prime` (which may be empty) from the model of `order`,
    /// with a seeded generator.
    pub fn generate(
        &self,
        prime: &[u32],
        length: usize,
        order: usize,
        seed: u64,
    ) -> Result<Vec<u32>, MarkovError> {
        self.check_order(order)?;
        self.check(prime)?;
        let mut rng = StdRng::seed_from_u64(seed);
        let mut history = prime.to_vec();
        for _ in 0..length {
            let start = history.len().saturating_sub(order);
            let p = self.probabilities(&history[start..], order)?;
            let mut draw: f64 = rng.random::<f64>() * p.iter().sum::<f64>();
            let mut next = self.classes - 1;
            for (id, probability) in p.iter().enumerate().skip(1) {
                if draw < *probability {
                    next = id;
                    break;
                }
                draw -= probability;
            }
            history.push(next as u32);
        }
        Ok(history.split_off(prime.len()))
    }
}

fn model_pair(context: u64, next: u32, bits: u32) -> u64 {
    (context << bits) | u64::from(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ids over the letters "abcdr": a = 1, …, r = 5.
    fn ids(text: &str) -> Vec<u32> {
        text.chars()
            .map(|c| "abcdr".find(c).expect("a letter of abcdr") as u32 + 1)
            .collect()
    }

    #[test]
    fn probabilities_sum_to_one_for_every_order_and_history() {
        let model = MarkovModel::fit(&ids("abracadabraabracadabra"), 6, 4).unwrap();
        for order in 0..=4 {
            for history in [&[][..], &ids("a"), &ids("abr"), &ids("dddd"), &ids("cadab")] {
                let p = model.probabilities(history, order).unwrap();
                let sum: f64 = p.iter().sum();
                assert!((sum - 1.0).abs() < 1e-9, "order {order}: {sum}");
                assert!(p[1..].iter().all(|&x| x > 0.0) && p[0] == 0.0);
            }
        }
    }

    #[test]
    fn counts_match_the_notebooks_dictionary() {
        // Unigram with no context: counts a 5, b 2, r 2, c 1, d 1 over 11 symbols; 5 types
        // of the 6 symbols (id 6 never appears).
        let text = ids("abracadabra");
        let model = MarkovModel::fit(&text, 7, 2).unwrap();
        let p = model.probabilities(&[], 0).unwrap();
        // (count − 0.75) / 11 + 0.75 · 5 / 11 · 1/6, for a (id 1) and for the unseen id 6.
        let spread = 0.75 * 5.0 / 11.0 / 6.0;
        assert!((p[1] - (4.25 / 11.0 + spread)).abs() < 1e-12);
        assert!((p[6] - spread).abs() < 1e-12);
        assert_eq!(model.contexts(2), 7); // ab br ra ac ca ad da
        // Higher orders fit the training text better.
        let bits: Vec<f64> = (0..=2)
            .map(|k| model.bits_per_symbol(&text, k).unwrap())
            .collect();
        assert!(bits[0] > bits[1] && bits[1] > bits[2], "{bits:?}");
    }

    #[test]
    fn generation_is_seeded_and_follows_the_counts() {
        let text: Vec<u32> = ids(&"abc".repeat(50));
        let model = MarkovModel::fit(&text, 4, 2).unwrap();
        let a = model.generate(&ids("ab"), 30, 2, 7).unwrap();
        assert_eq!(a, model.generate(&ids("ab"), 30, 2, 7).unwrap());
        // A deterministic text is followed almost always.
        let expected: Vec<u32> = ids(&"cab".repeat(10));
        let agree = a.iter().zip(&expected).filter(|(x, y)| x == y).count();
        assert!(agree >= 27, "{a:?}");
    }

    #[test]
    fn bad_settings_are_errors() {
        assert!(MarkovModel::fit(&[], 4, 2).is_err());
        assert!(MarkovModel::fit(&[1, 2], 1, 2).is_err());
        assert!(MarkovModel::fit(&[1, 5], 4, 2).is_err());
        assert!(MarkovModel::fit(&[1, 2], 200, 8).is_err()); // 8 bits × 9 > 64
        let model = MarkovModel::fit(&[1, 2, 3], 4, 2).unwrap();
        assert!(model.probabilities(&[1], 3).is_err());
        assert!(model.bits_per_symbol(&[0], 1).is_err());
    }
}
