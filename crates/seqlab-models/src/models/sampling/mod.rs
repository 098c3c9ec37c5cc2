//! Generating from a language model: greedy, or sampled with temperature, top-k and top-p
//! (nucleus) — carrying the recurrent state one token at a time, or, as the RNN course does,
//! re-reading the whole prefix for every new token.

mod on_device;
#[cfg(feature = "cube")]
mod token_kernel;

pub use on_device::{TokenChoice, TokenChoiceBackend, TokenChooser, chooses_on_device};

use crate::layers::recurrent::fused::on_pool;
use crate::{LanguageModel, RecurrentState, TokenStepper};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use thiserror::Error;

/// What can go wrong generating.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum SamplingError {
    /// A setting outside its range.
    #[error("{0}")]
    InvalidSetting(String),
    /// Generation needs at least one token to start from.
    #[error("the prime text is empty: give at least one token to start from")]
    EmptyPrime,
    /// A token id outside the model's vocabulary.
    #[error("token id {id} is outside the model's vocabulary of {vocab}")]
    UnknownId {
        /// The id.
        id: u32,
        /// The model's vocabulary size.
        vocab: usize,
    },
}

/// How the next token is chosen from the model's scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampling {
    /// The most likely token.
    Greedy,
    /// A draw from `softmax(scores / temperature)`, restricted to the `top_k` most likely
    /// tokens and to the smallest set whose probability reaches `top_p`, when given.
    Random {
        /// Above 0; below 1 sharpens, above 1 flattens.
        temperature: f64,
        /// Keep only this many of the most likely tokens.
        top_k: Option<usize>,
        /// Keep the most likely tokens until their probability reaches this (0, 1].
        top_p: Option<f64>,
    },
}

impl Sampling {
    /// Plain multinomial sampling at `temperature` (the RNN course's `torch.multinomial`).
    pub fn temperature(temperature: f64) -> Self {
        Sampling::Random {
            temperature,
            top_k: None,
            top_p: None,
        }
    }

    /// An error when a setting is out of range.
    pub fn check(&self) -> Result<(), SamplingError> {
        if let Sampling::Random {
            temperature,
            top_k,
            top_p,
        } = *self
        {
            if !(temperature.is_finite() && temperature > 0.0) {
                return Err(SamplingError::InvalidSetting(format!(
                    "the temperature must be above 0, got {temperature}"
                )));
            }
            if top_k == Some(0) {
                return Err(SamplingError::InvalidSetting(
                    "top-k must keep at least 1 token".into(),
                ));
            }
            if let Some(p) = top_p.filter(|p| !(*p > 0.0 && *p <= 1.0)) {
                return Err(SamplingError::InvalidSetting(format!(
                    "top-p must be in (0, 1], got {p}"
                )));
            }
        }
        Ok(())
    }

    /// The probability this strategy gives each token for `scores` (all zero but one for
    /// greedy); tokens in `banned` get none.
    ///
    /// ```
    /// use seqlab_models::Sampling;
    /// let scores = [2.0f32, 1.0, 0.0, -1.0];
    /// let top2 = Sampling::Random { temperature: 1.0, top_k: Some(2), top_p: None };
    /// let p = top2.probabilities(&scores, &[]);
    /// assert!((p[0] - 1.0 / (1.0 + (-1.0f64).exp())).abs() < 1e-6);
    /// assert_eq!((p[2], p[3]), (0.0, 0.0));
    /// assert_eq!(Sampling::Greedy.probabilities(&scores, &[0]), [0.0, 1.0, 0.0, 0.0]);
    /// ```
    pub fn probabilities(&self, scores: &[f32], banned: &[u32]) -> Vec<f64> {
        let allowed = |id: usize| !banned.contains(&(id as u32));
        let mut order: Vec<usize> = (0..scores.len()).filter(|&id| allowed(id)).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
        let mut p = vec![0.0; scores.len()];
        let Some(&best) = order.first() else {
            return p;
        };
        let (temperature, top_k, top_p) = match *self {
            Sampling::Greedy => {
                p[best] = 1.0;
                return p;
            }
            Sampling::Random {
                temperature,
                top_k,
                top_p,
            } => (temperature, top_k, top_p),
        };
        order.truncate(top_k.unwrap_or(usize::MAX).max(1));
        let top = f64::from(scores[best]);
        let weights: Vec<f64> = order
            .iter()
            .map(|&id| ((f64::from(scores[id]) - top) / temperature).exp())
            .collect();
        let total: f64 = weights.iter().sum();
        let mut kept = 0.0;
        for (&id, weight) in order.iter().zip(&weights) {
            p[id] = weight / total;
            kept += p[id];
            if top_p.is_some_and(|top_p| kept >= top_p) {
                break;
            }
        }
        p.iter_mut().for_each(|x| *x /= kept);
        p
    }

    /// Chooses a token for `scores` with `rng`; never one in `banned` unless all are.
    pub fn pick(&self, scores: &[f32], banned: &[u32], rng: &mut StdRng) -> u32 {
        let p = self.probabilities(scores, banned);
        if *self == Sampling::Greedy {
            return p.iter().position(|&x| x == 1.0).unwrap_or(0) as u32;
        }
        let mut draw = rng.random::<f64>();
        let mut last = 0;
        for (id, &probability) in p.iter().enumerate().filter(|(_, x)| **x > 0.0) {
            if draw < probability {
                return id as u32;
            }
            draw -= probability;
            last = id;
        }
        last as u32
    }
}

/// What to generate: how many tokens, how to choose them, from which seed, and which ids
/// never to produce (e.g. padding).
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateConfig {
    /// Tokens to generate after the prime.
    pub length: usize,
    /// How each token is chosen.
    pub sampling: Sampling,
    /// Seed of the draws.
    pub seed: u64,
    /// Ids never produced.
    pub banned: Vec<u32>,
}

/// The generator of `config`'s draws, once the prime and the settings are checked against a
/// vocabulary of `vocab`.
fn checked_rng(
    vocab: usize,
    prime: &[u32],
    config: &GenerateConfig,
) -> Result<StdRng, SamplingError> {
    config.sampling.check()?;
    if prime.is_empty() {
        return Err(SamplingError::EmptyPrime);
    }
    match prime.iter().find(|&&id| id as usize >= vocab) {
        Some(&id) => Err(SamplingError::UnknownId { id, vocab }),
        None => Ok(StdRng::seed_from_u64(config.seed)),
    }
}

fn ids_tensor(ids: &[u32], device: &Device) -> Tensor<2, Int> {
    let data: Vec<i64> = ids.iter().map(|&id| i64::from(id)).collect();
    Tensor::from_data(TensorData::new(data, [1, ids.len()]), device)
}

/// The last step's scores of a `[1, time, vocab]` output, on the host.
fn last_scores(logits: Tensor<3>) -> Vec<f32> {
    let [_, time, vocab] = logits.dims();
    logits
        .slice([0..1, time - 1..time, 0..vocab])
        .into_data()
        .try_into_vec::<f32>()
        .expect("scores are floats")
}

/// Generates `config.length` tokens after `prime`, reading the prime once and then one token
/// per step, carrying the model's state. `model` should be in evaluation mode on a device
/// without autodiff. On a GPU ([`chooses_on_device`]) each token is chosen on the device by
/// a [`TokenChooser`] and fed straight back, and the ids are read in blocks: the same
/// probabilities, the same walk of each draw (see [`TokenChooser`] for where they can part).
pub fn generate_stepwise<M: LanguageModel>(
    model: &M,
    prime: &[u32],
    config: &GenerateConfig,
    device: &Device,
) -> Result<Vec<u32>, SamplingError> {
    let mut rng = checked_rng(model.vocab_size(), prime, config)?;
    let output = model.forward_lm(ids_tensor(prime, device), None);
    let mut state: Option<RecurrentState> = output.state;
    if chooses_on_device(device) {
        let generated =
            on_device::generate_on_device(model, output.logits, state, config, &mut rng);
        return Ok(generated);
    }
    let mut scores = last_scores(output.logits);
    if let Some(stepper) = model.token_stepper(state.clone()) {
        return Ok(generate_on_host(stepper, scores, config, rng));
    }
    let mut generated = Vec::with_capacity(config.length);
    for step in 0..config.length {
        let next = config.sampling.pick(&scores, &config.banned, &mut rng);
        generated.push(next);
        if step + 1 < config.length {
            let output = model.forward_lm(ids_tensor(&[next], device), state.take());
            state = output.state;
            scores = last_scores(output.logits);
        }
    }
    Ok(generated)
}

/// [`generate_stepwise`]'s loop on a model's [`TokenStepper`], from the scores after the
/// prime, on one of rayon's threads (each step splits its products across the others).
fn generate_on_host(
    mut stepper: Box<dyn TokenStepper>,
    first_scores: Vec<f32>,
    config: &GenerateConfig,
    mut rng: StdRng,
) -> Vec<u32> {
    on_pool(true, move || {
        let mut generated = Vec::with_capacity(config.length);
        if config.length == 0 {
            return generated;
        }
        let mut next = config
            .sampling
            .pick(&first_scores, &config.banned, &mut rng);
        loop {
            generated.push(next);
            if generated.len() == config.length {
                return generated;
            }
            next = config
                .sampling
                .pick(stepper.step(next), &config.banned, &mut rng);
        }
    })
}

/// Generates as the RNN course does: for every new token the model reads the whole text so
/// far from a fresh state (quadratic in the length; for comparison and tests).
pub fn generate_by_prefix<M: LanguageModel>(
    model: &M,
    prime: &[u32],
    config: &GenerateConfig,
    device: &Device,
) -> Result<Vec<u32>, SamplingError> {
    let mut text = prime.to_vec();
    let mut rng = checked_rng(model.vocab_size(), prime, config)?;
    for _ in 0..config.length {
        let scores = last_scores(model.forward_lm(ids_tensor(&text, device), None).logits);
        text.push(config.sampling.pick(&scores, &config.banned, &mut rng));
    }
    Ok(text.split_off(prime.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CellKind, RecurrentLmConfig};

    #[test]
    fn top_p_keeps_the_smallest_set_that_reaches_it() {
        let scores = [3.0f32, 2.0, 1.0, 0.0];
        let softmax: Vec<f64> = {
            let e: Vec<f64> = scores.iter().map(|&s| f64::from(s).exp()).collect();
            let total: f64 = e.iter().sum();
            e.iter().map(|x| x / total).collect()
        };
        let nucleus = Sampling::Random {
            temperature: 1.0,
            top_k: None,
            top_p: Some(softmax[0] + 0.01),
        };
        let p = nucleus.probabilities(&scores, &[]);
        let kept = softmax[0] + softmax[1];
        assert!((p[0] - softmax[0] / kept).abs() < 1e-12);
        assert!((p[1] - softmax[1] / kept).abs() < 1e-12);
        assert_eq!((p[2], p[3]), (0.0, 0.0));
        // Low temperature approaches greedy; banned ids get nothing.
        let cold = Sampling::temperature(0.01).probabilities(&scores, &[0]);
        assert!(cold[1] > 0.999 && cold[0] == 0.0);
    }

    #[test]
    fn draws_follow_the_probabilities() {
        let scores = [0.0f32, (2.0f32).ln(), (3.0f32).ln()]; // p = 1/6, 2/6, 3/6
        let mut rng = StdRng::seed_from_u64(3);
        let mut counts = [0usize; 3];
        for _ in 0..60_000 {
            counts[Sampling::temperature(1.0).pick(&scores, &[], &mut rng) as usize] += 1;
        }
        for (count, expected) in counts.iter().zip([10_000.0, 20_000.0, 30_000.0]) {
            assert!((*count as f64 - expected).abs() < 600.0, "{counts:?}");
        }
    }

    #[test]
    fn bad_settings_are_errors() {
        for bad in [
            Sampling::temperature(0.0),
            Sampling::temperature(f64::NAN),
            Sampling::Random {
                temperature: 1.0,
                top_k: Some(0),
                top_p: None,
            },
            Sampling::Random {
                temperature: 1.0,
                top_k: None,
                top_p: Some(1.5),
            },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn stepwise_and_prefix_generation_agree() {
        let device = Device::flex();
        device.seed(5);
        let model = RecurrentLmConfig::new(CellKind::Lstm, 12, 24, 2)
            .with_embedding_size(Some(8))
            .init(&device);
        let prime = [3, 1, 4, 1, 5];
        for sampling in [Sampling::Greedy, Sampling::temperature(1.0)] {
            let config = GenerateConfig {
                length: 40,
                sampling,
                seed: 9,
                banned: vec![0],
            };
            let stepwise = generate_stepwise(&model, &prime, &config, &device).unwrap();
            let by_prefix = generate_by_prefix(&model, &prime, &config, &device).unwrap();
            assert_eq!(stepwise, by_prefix, "{sampling:?}");
            assert!(stepwise.iter().all(|&id| id != 0 && id < 12));
        }
        let config = GenerateConfig {
            length: 3,
            sampling: Sampling::Greedy,
            seed: 0,
            banned: vec![],
        };
        assert_eq!(
            generate_stepwise(&model, &[], &config, &device),
            Err(SamplingError::EmptyPrime)
        );
        assert_eq!(
            generate_stepwise(&model, &[12], &config, &device),
            Err(SamplingError::UnknownId { id: 12, vocab: 12 })
        );
    }
}
