//! Cross-entropy over every predicted position, and accuracy.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};

/// Mean cross-entropy of `logits` `[batch, steps, vocab]` against `targets` `[batch, steps]`,
/// flattened over batch and steps: the lesson's
/// `F.cross_entropy(inp.view(-1, vocab), targ.view(-1))`.
pub fn flat_cross_entropy(logits: Tensor<3>, targets: Tensor<2, Int>) -> Tensor<1> {
    let [batch, steps, vocab] = logits.dims();
    let log_probs = log_softmax(logits.reshape([batch * steps, vocab]), 1);
    let picked = log_probs.gather(1, targets.reshape([batch * steps, 1]));
    picked.mean().neg()
}

/// The number of positions where the highest score is the target, and the number of positions.
pub fn accuracy_counts(logits: Tensor<3>, targets: Tensor<2, Int>) -> (u64, u64) {
    let [batch, steps, _] = logits.dims();
    let predicted = logits.argmax(2).reshape([batch, steps]);
    let correct: i64 = predicted.equal(targets).int().sum().into_scalar();
    (correct as u64, (batch * steps) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn cross_entropy_matches_a_hand_computation() {
        let device = Device::flex();
        let logits = Tensor::<3>::from_data(
            TensorData::new(vec![0.0f32, 0.0, 1.0, 2.0, 0.0, 0.0], [1, 2, 3]),
            &device,
        );
        let targets = Tensor::<2, Int>::from_data(TensorData::new(vec![2i64, 1], [1, 2]), &device);
        let loss: f32 = flat_cross_entropy(logits.clone(), targets.clone()).into_scalar();
        let e = std::f32::consts::E;
        let first = -(e / (2.0 + e)).ln();
        let second = -(1.0 / (e * e + 2.0)).ln();
        assert!((loss - (first + second) / 2.0).abs() < 1e-5, "{loss}");
        assert_eq!(accuracy_counts(logits, targets), (1, 2));
    }
}
