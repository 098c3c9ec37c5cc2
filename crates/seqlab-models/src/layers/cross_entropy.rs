//! Softmax cross-entropy per row, fused on the CPU backends.
//!
//! `log_softmax` then `gather` makes Burn write and read several `[N, V]` temporaries
//! (exponentials, log-probabilities, and their gradients) with a scalar `exp`; for a language
//! model with a 10,000-word vocabulary that costs as much as the output layer's matrix product.
//! The fused operation reads the logits once, keeps the softmax as the state of its backward,
//! and turns it into the gradient in place: `softmax − one_hot(target)`, scaled. Rows run in
//! parallel and the exponential is a vectorised polynomial. Other devices (wgpu) take the plain
//! path.

// burn-ndarray is deprecated in favour of flex; seqlab supports both while burn ships both.
#![allow(deprecated)]

use std::sync::Arc;

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, TensorMetadata, backend_extension};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};
use rayon::prelude::*;

use crate::layers::recurrent::fused::activation::exp;
use crate::layers::recurrent::fused::op::{read, write};
use crate::layers::recurrent::fused::supports;

#[cfg(feature = "flex")]
use burn::backend::Flex;
#[cfg(feature = "ndarray")]
use burn::backend::NdArray;

/// Lanes of the row reductions: wide enough for the compiler to use 256-bit vectors.
const LANES: usize = 8;

/// The negative log-likelihood of each row's target under the softmax of its logits:
/// `logits` `[N, V]`, `targets` `[N]` (class ids below `V`), result `[N]` (nats). Equal to
/// `-log_softmax(logits, 1).gather(1, targets)`, and differentiable the same way; on the CPU
/// backends one fused operation for [`FUSED_MIN_CLASSES`] classes or more.
///
/// # Panics
/// If a target is negative or not below `V` (the data and the model disagree on the
/// vocabulary; the plain path would read out of bounds).
///
/// ```
/// use burn::tensor::{Int, Tensor};
/// use seqlab_models::cross_entropy_rows;
///
/// let device = burn::tensor::Device::flex();
/// let logits = Tensor::<2>::from_floats([[0.0, 0.0], [2.0, 0.0]], &device);
/// let targets = Tensor::<1, Int>::from_ints([1, 0], &device);
/// let losses: Vec<f32> = cross_entropy_rows(logits, targets).into_data().try_into_vec().unwrap();
/// assert!((losses[0] - 2f32.ln()).abs() < 1e-6);
/// assert!((losses[1] - (1.0 + (-2f32).exp()).ln()).abs() < 1e-6);
/// ```
pub fn cross_entropy_rows(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    let [_, classes] = logits.dims();
    if classes >= FUSED_MIN_CLASSES && supports(&logits.device()) {
        fused_rows(logits, targets)
    } else {
        plain_rows(logits, targets)
    }
}

/// The fewest classes the fused operation is used for. Below it the `[N, V]` temporaries are
/// small beside the model's own work, and Burn's `log_softmax` keeps every lesson's recorded
/// numbers bit for bit: training runs such as the RNN course's addition sit on a plateau for
/// many epochs, and which epoch they leave it at depends on the last bits of the loss.
pub const FUSED_MIN_CLASSES: usize = 1024;

fn plain_rows(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    let [rows, _] = logits.dims();
    log_softmax(logits, 1)
        .gather(1, targets.reshape([rows, 1]))
        .reshape([rows])
        .neg()
}

fn fused_rows(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    let [_, classes] = logits.dims();
    let ids: Vec<i64> = targets
        .into_data()
        .convert::<i64>()
        .try_into_vec()
        .expect("converted to i64");
    let ids = ids
        .into_iter()
        .map(|id| match usize::try_from(id) {
            Ok(id) if id < classes => id,
            _ => panic!("cross-entropy target {id} is outside the {classes} classes"),
        })
        .collect();
    Tensor::from_dispatch(<Dispatch as CrossEntropyBackend>::cross_entropy_rows(
        logits.into_dispatch(),
        ids,
    ))
}

/// A backend that computes [`cross_entropy_rows`] as one operation.
#[backend_extension(
    Autodiff,
    Flex: cfg(feature = "flex"),
    NdArray: cfg(feature = "ndarray")
)]
pub trait CrossEntropyBackend: Backend {
    /// Per-row losses `[N]` of `logits` `[N, V]` against `targets` (each below `V`).
    fn cross_entropy_rows(logits: FloatTensor<Self>, targets: Vec<usize>) -> FloatTensor<Self> {
        let device = logits.device();
        let [rows, classes] = logits.shape().dims();
        let (losses, _) = forward(&read::<Self>(logits), &targets, classes, false);
        write::<Self>(losses, vec![rows], &device)
    }
}

#[cfg(feature = "flex")]
impl CrossEntropyBackend for Flex {}

#[cfg(feature = "ndarray")]
impl CrossEntropyBackend for NdArray {}

/// Rows per parallel task: at least about 16k values each, so that small vocabularies do not
/// drown in scheduling.
fn rows_per_task(classes: usize) -> usize {
    (16_384 / classes.max(1)).max(1)
}

/// Each row's loss and, if `keep_softmax`, the softmax of every row (`[N, V]`, else empty).
fn forward(
    logits: &[f32],
    targets: &[usize],
    classes: usize,
    keep_softmax: bool,
) -> (Vec<f32>, Vec<f32>) {
    let mut losses = vec![0.0f32; targets.len()];
    let min_len = rows_per_task(classes);
    if keep_softmax {
        let mut softmax = vec![0.0f32; logits.len()];
        softmax
            .par_chunks_mut(classes)
            .zip(logits.par_chunks(classes))
            .zip(losses.par_iter_mut().zip(targets.par_iter()))
            .with_min_len(min_len)
            .for_each(|((probs, row), (loss, &target))| {
                let max = row_max(row);
                for (p, &x) in probs.iter_mut().zip(row) {
                    *p = exp(x - max);
                }
                let sum = row_sum(probs);
                let inverse = 1.0 / sum;
                probs.iter_mut().for_each(|p| *p *= inverse);
                *loss = max + sum.ln() - row[target];
            });
        (losses, softmax)
    } else {
        logits
            .par_chunks(classes)
            .zip(losses.par_iter_mut().zip(targets.par_iter()))
            .with_min_len(min_len)
            .for_each(|(row, (loss, &target))| {
                let max = row_max(row);
                *loss = max + row_sum_exp(row, max).ln() - row[target];
            });
        (losses, Vec::new())
    }
}

/// The largest value of a row (NaN-blind: a NaN logit still makes the loss NaN through the
/// exponentials).
fn row_max(row: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let chunks = row.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane = if x > *lane { x } else { *lane };
        }
    }
    tail.iter()
        .chain(&lanes)
        .fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m })
}

/// The sum of a row in `LANES` partial sums.
fn row_sum(row: &[f32]) -> f32 {
    lane_sum(row, |x| x)
}

/// `Σ e^(x − max)` over a row, without storing the exponentials.
fn row_sum_exp(row: &[f32], max: f32) -> f32 {
    lane_sum(row, |x| exp(x - max))
}

/// `Σ f(x)` over a row in `LANES` partial sums (so that the loop vectorises), then the tail.
#[inline(always)]
fn lane_sum(row: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0.0f32; LANES];
    let chunks = row.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane += f(x);
        }
    }
    lanes.iter().sum::<f32>() + tail.iter().map(|&x| f(x)).sum::<f32>()
}

/// Turns the softmax into the gradient of the losses in place: row `n` becomes
/// `d_n · (softmax_n − one_hot(target_n))`.
fn softmax_into_gradient(softmax: &mut [f32], targets: &[usize], d_losses: &[f32], classes: usize) {
    softmax
        .par_chunks_mut(classes)
        .zip(targets.par_iter().zip(d_losses.par_iter()))
        .with_min_len(rows_per_task(classes))
        .for_each(|(row, (&target, &d))| {
            row.iter_mut().for_each(|p| *p *= d);
            row[target] -= d;
        });
}

/// What the backward needs: the softmax of every row and the targets.
#[derive(Debug, Clone)]
struct Saved {
    softmax: Vec<f32>,
    targets: Vec<usize>,
    classes: usize,
}

#[derive(Debug)]
struct CrossEntropyBackward;

impl<B: Backend> Backward<B, 1> for CrossEntropyBackward {
    type State = Arc<Saved>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let d_losses = grads.consume::<B>(&ops.node);
        let device = d_losses.device();
        let Some(node) = node else { return };
        let d_losses = read::<B>(d_losses);
        // The graph holds the only reference once the forward is done: no copy.
        let Saved {
            mut softmax,
            targets,
            classes,
        } = Arc::try_unwrap(ops.state).unwrap_or_else(|shared| (*shared).clone());
        softmax_into_gradient(&mut softmax, &targets, &d_losses, classes);
        let shape = vec![targets.len(), classes];
        grads.register::<B>(node.id, write::<B>(softmax, shape, &device));
    }
}

impl<B: CrossEntropyBackend, C: CheckpointStrategy> CrossEntropyBackend for Autodiff<B, C> {
    fn cross_entropy_rows(logits: FloatTensor<Self>, targets: Vec<usize>) -> FloatTensor<Self> {
        match CrossEntropyBackward
            .prepare::<C>([logits.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                // Consumed, not cloned: flex then hands its buffer over without a copy.
                let inner = logits.into_primitive();
                let device = inner.device();
                let [rows, classes] = inner.shape().dims();
                let (losses, softmax) = forward(&read::<B>(inner), &targets, classes, true);
                let saved = Saved {
                    softmax,
                    targets,
                    classes,
                };
                prep.finish(Arc::new(saved), write::<B>(losses, vec![rows], &device))
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::cross_entropy_rows(logits.into_primitive(), targets))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution};

    /// The fused operation against `log_softmax` + `gather` on the same logits: the losses
    /// and the gradient of a loss that weighs each row differently.
    fn fused_matches_plain_on(device: Device) {
        for (rows, classes) in [(37, 1003), (960, 4)] {
            fused_matches_plain_with(device.clone(), rows, classes);
        }
    }

    fn fused_matches_plain_with(device: Device, rows: usize, classes: usize) {
        let device = device.autodiff();
        device.seed(5);
        let logits = Tensor::<2>::random([rows, classes], Distribution::Normal(0.0, 4.0), &device);
        let targets: Vec<i64> = (0..rows as i64)
            .map(|r| (r * 389) % classes as i64)
            .collect();
        let targets = Tensor::<1, Int>::from_ints(targets.as_slice(), &device);
        // Every third row weighs nothing, as a mask's padded positions do.
        let weights = Tensor::<1, Int>::arange(0..rows as i64, &device)
            .remainder_scalar(3)
            .float();
        let run = |fused: bool| {
            let x = logits.clone().detach().require_grad();
            let losses = if fused {
                fused_rows(x.clone(), targets.clone())
            } else {
                plain_rows(x.clone(), targets.clone())
            };
            let grads = (losses.clone() * weights.clone()).sum().backward();
            let gradient = x.grad(&grads).expect("the logits have a gradient");
            let values = |t: Tensor<2>| t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
            (
                losses.into_data().try_to_vec::<f32>().unwrap(),
                values(gradient),
            )
        };
        let (fused, plain) = (run(true), run(false));
        for (a, b) in fused.0.iter().zip(&plain.0) {
            assert!((a - b).abs() <= 2e-5 * b.abs().max(1.0), "loss {a} vs {b}");
        }
        for (a, b) in fused.1.iter().zip(&plain.1) {
            assert!((a - b).abs() <= 2e-5, "gradient {a} vs {b}");
        }
    }

    #[cfg(feature = "flex")]
    #[test]
    fn fused_matches_plain_on_flex() {
        fused_matches_plain_on(Device::flex());
    }

    #[cfg(feature = "ndarray")]
    #[test]
    fn fused_matches_plain_on_ndarray() {
        fused_matches_plain_on(Device::ndarray());
    }

    #[test]
    fn row_reductions_cover_the_tail() {
        let row: Vec<f32> = (0..19).map(|i| (i as f32 * 0.7).sin()).collect();
        let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        assert_eq!(row_max(&row), max);
        let sum: f32 = row.iter().sum();
        assert!((row_sum(&row) - sum).abs() < 1e-5);
        let sum_exp: f32 = row.iter().map(|x| (x - max).exp()).sum();
        assert!((row_sum_exp(&row, max) - sum_exp).abs() < 1e-5);
    }

    #[test]
    fn forward_keeps_a_softmax_that_sums_to_one() {
        let logits = [1.0, 2.0, 3.0, -50.0, 0.0, 50.0];
        let (losses, softmax) = forward(&logits, &[2, 0], 3, true);
        let want0 = -(3.0f32 - (1f32.exp() + 2f32.exp() + 3f32.exp()).ln());
        assert!((losses[0] - want0).abs() < 1e-6, "{losses:?}");
        assert!((losses[1] - 100.0).abs() < 1e-4, "{losses:?}");
        for row in softmax.chunks(3) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
        let mut gradient = softmax.clone();
        softmax_into_gradient(&mut gradient, &[2, 0], &[0.5, 1.0], 3);
        assert!((gradient[2] - 0.5 * (softmax[2] - 1.0)).abs() < 1e-7);
        assert!((gradient[3] - (softmax[3] - 1.0)).abs() < 1e-7);
        assert!((gradient[5] - softmax[5]).abs() < 1e-7);
    }
}
