//! Generation on a GPU: each token is chosen on the device from the model's scores, by one
//! kernel launch ([`TokenChooser`]), and fed straight back as the next input; the ids come
//! back in blocks, so the host never waits for the device between tokens (reading the scores
//! every token would).
//!
//! The chooser maps a uniform draw to a token as [`Sampling::pick`] does on the host, walking
//! the probabilities in id order; only the `f32` arithmetic differs, so a seed's text matches
//! the CPU's unless a draw falls within rounding of a boundary between two tokens. Ties with
//! the k-th most likely token all stay in top-k, and the top-k and top-p cut-offs are found by
//! bisection, to 2⁻³⁰ of the largest probability.

use super::{GenerateConfig, Sampling};
use crate::{LanguageModel, RecurrentState};
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Backend, Dispatch, backend_extension};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::RngExt;
use rand::rngs::StdRng;

/// Tokens generated between two reads of the ids.
const READ_EVERY: usize = 256;

/// What [`TokenChoiceBackend::choose_token`] needs besides its tensors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenChoice {
    /// The uniform draw, in `[0, 1)`.
    pub draw: f32,
    /// `1 / temperature`.
    pub inverse_temperature: f32,
    /// Keep this many of the most likely tokens; 0 keeps all.
    pub top_k: u32,
    /// Keep the most likely tokens until their share reaches this; 1 keeps all.
    pub top_p: f32,
    /// The most likely token, without a draw.
    pub greedy: bool,
}

/// A backend that chooses a token from a row of scores in one operation.
#[backend_extension(Cube: cfg(feature = "cube"))]
pub trait TokenChoiceBackend: Backend {
    /// Chooses from `scores` `[1, V]` as `choice` says, never an id where `banned` `[1, V]`
    /// is not 0 (unless all are), and writes it to `out` `[1, 1]`, which it returns.
    fn choose_token(
        scores: FloatTensor<Self>,
        banned: FloatTensor<Self>,
        out: IntTensor<Self>,
        choice: TokenChoice,
    ) -> IntTensor<Self>;
}

/// Whether `device` chooses tokens on the device: a CubeCL device (wgpu, CUDA) built in,
/// without autodiff.
pub fn chooses_on_device(device: &Device) -> bool {
    #[cfg(feature = "cube")]
    if matches!(device.as_dispatch(), burn::backend::DispatchDevice::Cube(_)) {
        return true;
    }
    let _ = device;
    false
}

/// [`Sampling`] on the device, one kernel launch per token.
///
/// ```no_run
/// use burn::tensor::{Device, DeviceKind, Tensor};
/// use seqlab_models::{Sampling, TokenChooser};
/// let device = Device::wgpu(DeviceKind::DefaultDevice);
/// let chooser = TokenChooser::new(Sampling::Greedy, &[], 3, &device);
/// let scores = Tensor::<2>::from_floats([[0.0, 2.0, 1.0]], &device);
/// let id = chooser.choose(scores, 0.5); // [1, 1], still on the device
/// assert_eq!(id.into_data().convert::<i64>().try_to_vec::<i64>().unwrap(), [1]);
/// ```
pub struct TokenChooser {
    sampling: Sampling,
    vocab: usize,
    /// 1 at the ids never to produce, `[1, vocab]`.
    banned: Tensor<2>,
}

impl TokenChooser {
    /// A chooser of `sampling` over `vocab` ids, never one in `banned`, on `device` (see
    /// [`chooses_on_device`]).
    pub fn new(sampling: Sampling, banned: &[u32], vocab: usize, device: &Device) -> Self {
        let mask: Vec<f32> = (0..vocab)
            .map(|id| f32::from(u8::from(banned.contains(&(id as u32)))))
            .collect();
        Self {
            sampling,
            vocab,
            banned: Tensor::from_data(TensorData::new(mask, [1, vocab]), device),
        }
    }

    /// The id chosen from `scores` `[1, vocab]` with the uniform draw `draw` in `[0, 1)`, as a
    /// `[1, 1]` tensor on their device.
    pub fn choose(&self, scores: Tensor<2>, draw: f64) -> Tensor<2, Int> {
        let choice = match self.sampling {
            Sampling::Greedy => TokenChoice {
                draw: 0.0,
                inverse_temperature: 1.0,
                top_k: 0,
                top_p: 1.0,
                greedy: true,
            },
            Sampling::Random {
                temperature,
                top_k,
                top_p,
            } => TokenChoice {
                // Kept below 1 by more than an `f32` rounding, so that the draw always falls
                // before the last kept token's end.
                draw: draw.clamp(0.0, 1.0 - f64::from(f32::EPSILON)) as f32,
                inverse_temperature: (1.0 / temperature) as f32,
                top_k: top_k.filter(|&k| k < self.vocab).map_or(0, |k| k as u32),
                top_p: top_p.map_or(1.0, |p| p as f32),
                greedy: false,
            },
        };
        let out = Tensor::<2, Int>::empty([1, 1], &scores.device());
        Tensor::from_dispatch(<Dispatch as TokenChoiceBackend>::choose_token(
            scores.into_dispatch(),
            self.banned.clone().into_dispatch(),
            out.into_dispatch(),
            choice,
        ))
    }
}

/// [`generate_stepwise`](super::generate_stepwise) after the prime, on a device that
/// [`chooses_on_device`]: `logits` and `state` are the model's output for the prime.
pub(super) fn generate_on_device<M: LanguageModel>(
    model: &M,
    mut logits: Tensor<3>,
    mut state: Option<RecurrentState>,
    config: &GenerateConfig,
    rng: &mut StdRng,
) -> Vec<u32> {
    let [_, _, vocab] = logits.dims();
    let chooser = TokenChooser::new(config.sampling, &config.banned, vocab, &logits.device());
    let mut generated = Vec::with_capacity(config.length);
    let mut block = Vec::new();
    for step in 0..config.length {
        let [_, time, _] = logits.dims();
        let scores = logits
            .slice([0..1, time - 1..time, 0..vocab])
            .reshape([1, vocab]);
        let draw = match config.sampling {
            Sampling::Greedy => 0.0,
            Sampling::Random { .. } => rng.random::<f64>(),
        };
        let next = chooser.choose(scores, draw);
        block.push(next.clone());
        let last = step + 1 == config.length;
        if block.len() == READ_EVERY || last {
            generated.extend(read_ids(Tensor::cat(std::mem::take(&mut block), 1)));
        }
        if last {
            break;
        }
        let output = model.forward_lm(next, state.take());
        state = output.state;
        logits = output.logits;
    }
    generated
}

/// The values of a `[1, n]` tensor of ids, read back.
fn read_ids(ids: Tensor<2, Int>) -> Vec<u32> {
    ids.into_data()
        .convert::<i64>()
        .try_into_vec::<i64>()
        .expect("converted to i64")
        .into_iter()
        .map(|id| id as u32)
        .collect()
}
