//! Sums of sinusoids with random phases: the RNN course's `generate_sin`, seeded.

use crate::DataError;
#[cfg(feature = "tensors")]
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::f64::consts::PI;

/// What [`generate_sinusoids`] draws: the notebook's `generate_sin` arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct SinusoidConfig {
    /// Frequencies in cycles per time unit (the notebook: `(1.,)`).
    pub frequencies: Vec<f64>,
    /// Weight of each frequency; `None` weighs them equally (`1 / n`).
    pub weights: Option<Vec<f64>>,
    /// Samples per series (100).
    pub time_steps: usize,
    /// Time between samples (0.1).
    pub sample_interval: f64,
    /// Standard deviation of Gaussian noise added to every sample (0, as the notebook).
    pub noise: f64,
}

impl Default for SinusoidConfig {
    /// The notebook's defaults: one frequency of 1, 100 steps 0.1 apart, no noise.
    fn default() -> Self {
        Self {
            frequencies: vec![1.0],
            weights: None,
            time_steps: 100,
            sample_interval: 0.1,
            noise: 0.0,
        }
    }
}

/// A set of series, row-major `[series, time_steps]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sinusoids {
    values: Vec<f32>,
    series: usize,
    time_steps: usize,
}

impl Sinusoids {
    /// Number of series.
    pub fn len(&self) -> usize {
        self.series
    }

    /// Whether there are no series (never true for generated ones).
    pub fn is_empty(&self) -> bool {
        self.series == 0
    }

    /// Samples per series.
    pub fn time_steps(&self) -> usize {
        self.time_steps
    }

    /// Series `index`, `time_steps` values.
    pub fn series(&self, index: usize) -> &[f32] {
        &self.values[index * self.time_steps..(index + 1) * self.time_steps]
    }

    /// The rows `rows` as `[rows.len(), time_steps, 1]`: one feature per step, as the notebook
    /// adds `np.newaxis`.
    #[cfg(feature = "tensors")]
    pub fn to_tensor(&self, rows: &[usize], device: &Device) -> Tensor<3> {
        let values = rows
            .iter()
            .flat_map(|&row| self.series(row).iter().copied())
            .collect::<Vec<_>>();
        Tensor::from_data(
            TensorData::new(values, [rows.len(), self.time_steps, 1]),
            device,
        )
    }

    /// Next-step pairs (the notebook's `ZipDataset(data[:, :-1], data[:, 1:])`): inputs are
    /// steps `0..T-1`, targets steps `1..T`, each `[rows.len(), T - 1, 1]`.
    #[cfg(feature = "tensors")]
    pub fn next_step_pair(&self, rows: &[usize], device: &Device) -> (Tensor<3>, Tensor<3>) {
        let all = self.to_tensor(rows, device);
        let steps = self.time_steps;
        (
            all.clone().slice([0..rows.len(), 0..steps - 1]),
            all.slice([0..rows.len(), 1..steps]),
        )
    }
}

/// Draws `count` series `sum_k w_k sin(2π f_k t + φ_k) + noise` with a random phase `φ_k` per
/// series and frequency, as the notebook's `generate_sin`, from `seed`.
///
/// ```
/// use seqlab_data::{SinusoidConfig, generate_sinusoids};
///
/// let data = generate_sinusoids(3, &SinusoidConfig::default(), 0).unwrap();
/// assert_eq!((data.len(), data.time_steps()), (3, 100));
/// // One frequency of 1 sampled every 0.1: the series repeats after 10 steps.
/// let s = data.series(0);
/// assert!((s[0] - s[10]).abs() < 1e-5);
/// ```
pub fn generate_sinusoids(
    count: usize,
    config: &SinusoidConfig,
    seed: u64,
) -> Result<Sinusoids, DataError> {
    check(count, config)?;
    let frequencies = &config.frequencies;
    let weights = match &config.weights {
        Some(weights) => weights.clone(),
        None => vec![1.0 / frequencies.len() as f64; frequencies.len()],
    };
    let mut rng = StdRng::seed_from_u64(seed);
    let mut values = Vec::with_capacity(count * config.time_steps);
    for _ in 0..count {
        let phases: Vec<f64> = frequencies
            .iter()
            .map(|_| rng.random::<f64>() * 2.0 * PI)
            .collect();
        for step in 0..config.time_steps {
            let time = step as f64 * config.sample_interval;
            let clean: f64 = frequencies
                .iter()
                .zip(&phases)
                .zip(&weights)
                .map(|((frequency, phase), weight)| {
                    weight * (2.0 * PI * time * frequency + phase).sin()
                })
                .sum();
            let noise = if config.noise > 0.0 {
                config.noise * standard_normal(&mut rng)
            } else {
                0.0
            };
            values.push((clean + noise) as f32);
        }
    }
    Ok(Sinusoids {
        values,
        series: count,
        time_steps: config.time_steps,
    })
}

fn check(count: usize, config: &SinusoidConfig) -> Result<(), DataError> {
    let invalid = |why: String| Err(DataError::InvalidSetting(why));
    if count == 0 {
        return invalid("the number of series must be at least 1".into());
    }
    if config.frequencies.is_empty() {
        return invalid("give at least one frequency".into());
    }
    if config.time_steps < 2 {
        return invalid(format!(
            "a series needs at least 2 steps for next-step prediction, got {}",
            config.time_steps
        ));
    }
    if let Some(weights) = &config.weights
        && weights.len() != config.frequencies.len()
    {
        return Err(DataError::LengthMismatch {
            what: "sinusoid weights and frequencies".into(),
            left: weights.len(),
            right: config.frequencies.len(),
        });
    }
    let finite = config.frequencies.iter().all(|f| f.is_finite())
        && config.weights.iter().flatten().all(|w| w.is_finite())
        && config.sample_interval.is_finite()
        && config.sample_interval > 0.0;
    if !finite {
        return invalid(
            "frequencies, weights and the sample interval must be finite (the interval positive)"
                .into(),
        );
    }
    if !(config.noise.is_finite() && config.noise >= 0.0) {
        return invalid(format!(
            "the noise level must be 0 or more, got {}",
            config.noise
        ));
    }
    Ok(())
}

/// One draw of N(0, 1) by the Box–Muller transform.
fn standard_normal(rng: &mut StdRng) -> f64 {
    // 1 - u lies in (0, 1], so its logarithm is finite.
    let radius = (-2.0 * (1.0 - rng.random::<f64>()).ln()).sqrt();
    radius * (2.0 * PI * rng.random::<f64>()).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_frequencies_with_weights_follow_the_formula() {
        let config = SinusoidConfig {
            frequencies: vec![1.0, 2.5],
            weights: Some(vec![0.3, 0.7]),
            ..SinusoidConfig::default()
        };
        let data = generate_sinusoids(2, &config, 7).unwrap();
        for row in 0..2 {
            let s = data.series(row);
            // Frequencies 1 and 2.5 sampled at 0.1 share a period of 2 time units = 20 steps.
            for t in 0..80 {
                assert!((s[t] - s[t + 20]).abs() < 1e-5, "row {row} step {t}");
            }
            assert!(s.iter().all(|v| v.abs() <= 1.0 + 1e-6));
        }
        assert_ne!(data.series(0), data.series(1), "phases differ per series");
    }

    #[test]
    fn the_same_seed_gives_the_same_series_and_noise_has_its_spread() {
        let noisy = SinusoidConfig {
            noise: 0.5,
            time_steps: 2000,
            ..SinusoidConfig::default()
        };
        let a = generate_sinusoids(1, &noisy, 3).unwrap();
        assert_eq!(a, generate_sinusoids(1, &noisy, 3).unwrap());
        // The clean signal repeats every 10 steps, so the difference with a copy shifted by
        // one period is noise alone, with twice its variance (0.5² each).
        let s = a.series(0);
        let variance: f64 = (0..1990)
            .map(|t| ((s[t] - s[t + 10]) as f64).powi(2))
            .sum::<f64>()
            / 1990.0;
        assert!((variance / 2.0 - 0.25).abs() < 0.03, "{variance}");
    }

    #[test]
    fn bad_settings_are_refused() {
        let base = SinusoidConfig::default();
        assert!(generate_sinusoids(0, &base, 0).is_err());
        for config in [
            SinusoidConfig {
                frequencies: vec![],
                ..base.clone()
            },
            SinusoidConfig {
                time_steps: 1,
                ..base.clone()
            },
            SinusoidConfig {
                weights: Some(vec![1.0, 2.0]),
                ..base.clone()
            },
            SinusoidConfig {
                noise: -1.0,
                ..base.clone()
            },
            SinusoidConfig {
                frequencies: vec![f64::NAN],
                ..base.clone()
            },
        ] {
            assert!(generate_sinusoids(1, &config, 0).is_err(), "{config:?}");
        }
    }
}
